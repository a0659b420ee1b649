# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Small helpers the parts of the post-incident review share: an entry's data, time and text."""

from __future__ import annotations

import typing as t

PREFIX = 'trdrhub.incident.'


def data_of(entry: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    data = entry.get('data')
    return data if isinstance(data, dict) else {}


def entry_time(entry: t.Mapping[str, t.Any]) -> str:
    """When it happened: ``data.observed_at`` of a result held until the run had an incident id, else ``ts``."""
    data = data_of(entry)
    return str(data.get('observed_at') or entry.get('ts') or '')


def clip(value: t.Any, limit: int = 300) -> str:
    """One line of at most ``limit`` characters."""
    text = ' '.join(str(value).split()) if value is not None else ''
    return text if len(text) <= limit else text[:limit - 1] + '\u2026'


def dry(entry: t.Mapping[str, t.Any]) -> bool:
    """A check-mode task or an entry of a recorded dry run: nothing was done."""
    data = data_of(entry)
    return bool(data.get('check_mode') or data.get('dry_run'))


def short_module(entry: t.Mapping[str, t.Any]) -> str:
    module = str(entry.get('module') or '')
    return module[len(PREFIX):] if module.startswith(PREFIX) else module


def playbook_name(entry: t.Mapping[str, t.Any]) -> str:
    return str(data_of(entry).get('playbook') or entry.get('play') or 'playbook').rsplit('/', 1)[-1]
