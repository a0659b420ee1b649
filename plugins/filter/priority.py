# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters ``incident_priority`` and ``response_deadline``; documented in the sidecar .yml files.

Both call module_utils/_incident/priority.py, the same code as the ``incident_assess`` module,
so a template and a task never disagree about a priority or a deadline.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    assess,
    deadline,
)


def incident_priority(alerts: t.Any, health: t.Any = None, impact: t.Any = None, scope: t.Any = None,
                      override: t.Any = None, detected_at: t.Any = None, policy: t.Any = None) -> dict[str, t.Any]:
    try:
        return assess(alerts=alerts, health=health, impact=impact, scope=scope, override=override,
                      detected_at=detected_at, policy=policy)
    except TrdrhubError as exc:
        raise AnsibleFilterError(f'incident_priority: {exc}') from None


def response_deadline(priority: t.Any, detected_at: t.Any = None, policy: t.Any = None) -> str:
    try:
        return deadline(priority, detected_at, policy)
    except TrdrhubError as exc:
        raise AnsibleFilterError(f'response_deadline: {exc}') from None


class FilterModule:
    """Incident priority filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            'incident_priority': incident_priority,
            'response_deadline': response_deadline,
        }
