# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""statuspage_incident refuses a bad request with one sentence before any request to Statuspage.

The Statuspage client and planning are tested in module_utils/_notify/test_statuspage.py, the module against the
contract server in tests/integration.
"""

from __future__ import annotations

import pytest
import requests
from ansible_collections.trdrhub.incident.plugins.modules import statuspage_incident

BASE = {'page_id': 'kctbh9vrtdwd', 'api_key': 'statuspage-api-key-0123456789', 'incident_id': 'INC-2025-0042'}


@pytest.fixture(autouse=True)
def no_requests(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError('no request may be sent')
    monkeypatch.setattr(requests.Session, 'request', refuse)


@pytest.mark.parametrize('change, message', [
    ({'incident_id': 'INC 1'}, "incident_id must be a TRDR Hub incident id such as INC-2025-0042"),
    ({'state': 'resolved', 'status': 'identified'}, 'state=resolved cannot be combined with status=identified'),
])
def test_a_bad_request_is_one_sentence_and_sends_nothing(run_module, change, message):
    result = run_module(statuspage_incident, dict(BASE, **change))
    assert result['failed'] and result['msg'].startswith(message)
    assert BASE['api_key'] not in str(result)
