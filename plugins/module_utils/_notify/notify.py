# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Options and helpers shared by the notification modules (PagerDuty, Slack, email).

The HTTP notification modules post to one fixed endpoint with a secret in the URL or the
body, so they take only the transport half of ``HTTP_API_ARGS`` (no basic auth, no
bearer token) - documented once in the ``trdrhub.incident.notify_http`` doc fragment.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HTTP_API_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (  # noqa: F401  # pylint: disable=unused-import
    MASK,
    mask_secrets,
)

NOTIFY_HTTP_ARGS: dict[str, dict[str, t.Any]] = {
    name: dict(HTTP_API_ARGS[name]) for name in ('validate_certs', 'ca_path', 'timeout', 'retries', 'retry_delay')
}
INCIDENT_HEADER = 'X-TRDRHub-Incident'


def tag_incident(text: str | None, incident_id: str | None) -> str:
    """``[<incident_id>] text`` unless the text already mentions the incident id."""
    text = text or ''
    if not incident_id or incident_id in text:
        return text
    return f'[{incident_id}] {text}'.rstrip()
