# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""incident_ticket refuses a bad request with one sentence before any request to Jira or ServiceNow.

The ticket logic is tested in module_utils/_ticket/, the module against the contract servers in tests/integration.
"""

from __future__ import annotations

import pytest
import requests
from ansible_collections.trdrhub.incident.plugins.modules import incident_ticket

JIRA = {'system': 'jira', 'url': 'https://trdrhub.atlassian.net', 'username': 'oncall@trdrhub.example',
        'api_token': 'jira-api-token-0123456789', 'incident_id': 'INC-2025-0042', 'project': 'OPS'}


@pytest.fixture(autouse=True)
def no_requests(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError('no request may be sent')
    monkeypatch.setattr(requests.Session, 'request', refuse)


@pytest.mark.parametrize('change, message', [
    ({'incident_id': 'INC 42'}, 'incident_id must be a TRDR Hub incident id such as INC-2025-0042'),
    ({'bearer_token': 'b', 'api_token': None}, 'bearer_token is for ServiceNow'),
    ({'state': 'resolved', 'status': 'identified'}, 'state=resolved cannot be combined with status=identified'),
])
def test_a_bad_request_is_one_sentence_and_sends_nothing(run_module, change, message):
    result = run_module(incident_ticket, dict(JIRA, **change))
    assert result['failed'] and result['msg'].startswith(message)
    assert JIRA['api_token'] not in str(result)
