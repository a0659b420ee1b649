# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Reading kubeconfig files the way kubectl merges them, with malformed entries named in words."""

from __future__ import annotations

import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import K8sConfigError, config_reason

try:
    import yaml
except ImportError:  # the module reports the missing kubernetes library first
    pass


def kubeconfig_contexts(files: list[str], where: str) -> tuple[list[str], str | None]:
    """Context names of the kubeconfig files (merged like kubectl: first file wins) and the current one."""
    names: list[str] = []
    current: str | None = None
    for path in files:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding='utf-8') as handle:
                data = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise K8sConfigError(f'Cannot read {where}: {config_reason(exc)}') from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise K8sConfigError(f'Cannot use {where}: {path} is not a kubeconfig (a YAML mapping)')
        problem = kubeconfig_shape(data)
        if problem:
            raise K8sConfigError(f'Cannot use {where}: {problem}')
        for context in data.get('contexts') or []:
            name = context.get('name') if isinstance(context, dict) else None
            if name and str(name) not in names:
                names.append(str(name))
        current = current or (str(data['current-context']) if data.get('current-context') else None)
    return names, current


_KUBECONFIG_LISTS = {'clusters': 'cluster', 'contexts': 'context', 'users': 'user'}


def kubeconfig_shape(data: dict[str, t.Any]) -> str | None:
    """What is malformed in a kubeconfig, in words, before the Kubernetes client trips over it."""
    for key, inner in _KUBECONFIG_LISTS.items():
        entries = data.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            return f'{key} must be a list of entries, got {kind_of(entries)}'
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                return f'{key}[{index}] must be a mapping with name and {inner}, got {kind_of(entry)}'
            if entry.get(inner) is not None and not isinstance(entry[inner], dict):
                return f'{key}[{index}].{inner} must be a mapping, got {kind_of(entry[inner])}'
    return None
