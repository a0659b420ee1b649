# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filter ``investigation_report``; documented in the sidecar investigation_report.yml.

The findings, the redaction and the Markdown live in module_utils/_investigate/investigate.py, where
they are unit-tested; the filter only maps the collection's errors to a filter error.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.investigate import (
    build_report,
)


def investigation_report(collected: t.Any, incident_id: t.Any, generated_at: t.Any, thresholds: t.Any = None,
                         secrets: t.Any = None, check_mode: t.Any = False, bundle_dir: t.Any = None) -> dict[str, t.Any]:
    try:
        return build_report(collected, str(incident_id), str(generated_at), thresholds=thresholds,
                            secrets=[str(s) for s in secrets or [] if s not in (None, '')],
                            check_mode=bool(check_mode), bundle_dir=None if bundle_dir is None else str(bundle_dir))
    except TrdrhubError as exc:
        raise AnsibleFilterError(f'investigation_report: {exc}') from None


class FilterModule:
    """Investigation bundle filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'investigation_report': investigation_report}
