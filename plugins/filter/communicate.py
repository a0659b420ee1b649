# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filter ``communication_plan``; documented in the sidecar communication_plan.yml.

The decision lives in module_utils/_notify/communicate.py, where it is unit-tested; the filter
only maps the collection's errors to a filter error.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.communicate import (
    plan,
    summary_lines,
)


def communication_plan(record: t.Any, entries: t.Any = None, enabled: t.Any = None, now: t.Any = None, force: t.Any = False,
                       policy: t.Any = None, notify_channels: t.Any = None, check_mode: t.Any = False) -> dict[str, t.Any]:
    try:
        result = plan(record, entries, enabled, now=now, force=bool(force), policy=policy or None,
                      notify_channels=notify_channels or None)
    except TrdrhubError as exc:
        raise AnsibleFilterError(f'communication_plan: {exc}') from None
    result['summary'] = summary_lines(result, check_mode=bool(check_mode))
    return result


class FilterModule:
    """Incident communication filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'communication_plan': communication_plan}
