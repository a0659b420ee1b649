# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filter ``pir_report``; documented in the sidecar pir_report.yml.

The timeline, the compliance check and the rendering live in module_utils/_pir/pir.py and
_pir_render.py, where they are unit-tested; the filter only maps errors to a filter error.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.pir import (
    build_review,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.render import (
    render,
    verification_line,
)


def pir_report(entries: t.Any, incident_id: t.Any, verification: t.Any = None, content: t.Any = None, policy: t.Any = None,
               now: t.Any = None, obligation_policy: t.Any = None, meeting: t.Any = None) -> dict[str, t.Any]:
    try:
        review = build_review(entries, str(incident_id), verification=verification, content=content,
                              policy=policy or None, now=now, obligation_policy=obligation_policy or None, meeting=meeting)
        rendered = render(review)
    except TrdrhubError as exc:
        raise AnsibleFilterError(f'pir_report: {exc}') from None
    return {'markdown': rendered['markdown'], 'html': rendered['html'], 'svg': rendered['svg'],
            'timeline': review['timeline'], 'compliance': review['compliance'],
            'verification': review['verification'], 'verification_line': verification_line(review),
            'record': review['record'], 'draft': review['draft'], 'missing': review['missing'],
            'key_events': review['key_events'], 'meeting': review['meeting'], 'obligations': review['obligations'],
            'data_accessed': review['data_accessed'], 'evidence': review['evidence']}


class FilterModule:
    """Post-incident review filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {'pir_report': pir_report}
