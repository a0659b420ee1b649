# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""incident_escalate executed directly on a host: it records the due escalation, never shows the routing key, refuses an unknown external party."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import store as _incident_store
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger
from ansible_collections.trdrhub.incident.plugins.modules import incident_escalate

UTC = datetime.timezone.utc


DETECTED = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)


KEY = 'R0utingKeyR0utingKeyR0utingKey12'


CONTACTS = {
    'team_lead': {'name': 'Dana Lee', 'slack': 'U024BE7LH', 'email': 'dana@trdrhub.example', 'pagerduty_routing_key': KEY},
    'engineering_manager': {'name': 'Sam Ortiz', 'email': 'sam@trdrhub.example'},
}


def at(minutes):
    return DETECTED + datetime.timedelta(minutes=minutes)


@pytest.fixture
def ledger_root(tmp_path, monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_RUN', 'AWX_USER_NAME', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')
    _incident_store.manage_incident({'incident_id': 'INC-E1', 'root': str(tmp_path), 'title': 'API down', 'priority': 'P1',
                                     'impact': ['customer-facing'], 'detected_at': '2025-01-15T14:30:00Z', 'state': 'open'},
                                    now=at(2))
    return tmp_path


def test_module_runs_directly(run_module, ledger_root):
    result = run_module(incident_escalate, {'incident_id': 'INC-E1', 'root': str(ledger_root), 'now': '2025-01-15T14:50:00Z',
                                            'contacts': CONTACTS})
    assert result['changed'] and [i['key'] for i in result['new_escalations']] == ['L2']
    assert KEY not in json.dumps(result)
    bad = run_module(incident_escalate, {'incident_id': 'INC-E1', 'root': str(ledger_root), 'external': ['press']})
    assert bad['failed'] and 'press' in bad['msg']
