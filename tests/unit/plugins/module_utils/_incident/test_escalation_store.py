# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Escalations recorded in the incident ledger: each escalation once, check mode records nothing, an unknown incident refused."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import escalation_store as _escalation_store
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import store as _incident_store
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.escalation import EscalationError
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger

UTC = datetime.timezone.utc


DETECTED = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)


KEY = 'R0utingKeyR0utingKeyR0utingKey12'


CONTACTS = {
    'team_lead': {'name': 'Dana Lee', 'slack': 'U024BE7LH', 'email': 'dana@trdrhub.example', 'pagerduty_routing_key': KEY},
    'engineering_manager': {'name': 'Sam Ortiz', 'email': 'sam@trdrhub.example'},
}


def record(priority='P1', **kw):
    base = {'incident_id': 'INC-E1', 'state': 'open', 'status': 'investigating', 'priority': priority, 'impact': [],
            'acknowledged': False, 'acknowledged_at': None, 'detected_at': '2025-01-15T14:30:00Z',
            'opened_at': '2025-01-15T14:33:00Z'}
    base.update(kw)
    return base


def at(minutes):
    return DETECTED + datetime.timedelta(minutes=minutes)


# -- storage: the ledger ---------------------------------------------------------------------------
@pytest.fixture
def ledger_root(tmp_path, monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_RUN', 'AWX_USER_NAME', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')
    _incident_store.manage_incident({'incident_id': 'INC-E1', 'root': str(tmp_path), 'title': 'API down', 'priority': 'P1',
                                     'impact': ['customer-facing'], 'detected_at': '2025-01-15T14:30:00Z', 'state': 'open'},
                                    now=at(2))
    return tmp_path


def _escalate(root, check_mode=False, **kw):
    params = dict({'incident_id': 'INC-E1', 'root': str(root), 'now': '2025-01-15T15:10:00Z', 'contacts': CONTACTS}, **kw)
    return _escalation_store.manage_escalation(params, check_mode=check_mode)


def _escalations(root):
    lines = (root / 'INC-E1' / 'ledger.jsonl').read_text().splitlines()
    return [e for e in map(json.loads, lines) if e['event'] == 'escalation']


def test_store_records_each_escalation_once(ledger_root):
    check = _escalate(ledger_root, check_mode=True)
    assert check['changed'] and [i['key'] for i in check['new_escalations']] == ['L2', 'L3'] and check['entries'] == []
    assert _escalations(ledger_root) == []
    first = _escalate(ledger_root)
    assert first['changed'] and [e['data']['escalation'] for e in first['entries']] == ['L2', 'L3']
    written = _escalations(ledger_root)
    assert [(e['phase'], e['module'], e['data']['level']) for e in written] == [
        ('investigate', 'trdrhub.incident.incident_escalate', 2), ('investigate', 'trdrhub.incident.incident_escalate', 3)]
    assert written[0]['data']['message'].startswith('INC-E1 (P1, investigating) escalated to level 2 (Senior engineer / team lead: Dana Lee)')
    assert KEY not in (ledger_root / 'INC-E1' / 'ledger.jsonl').read_text() and KEY not in json.dumps(first)
    again = _escalate(ledger_root)
    assert not again['changed'] and again['new_escalations'] == [] and again['current_level'] == 3
    assert [i['key'] for i in again['undelivered']] == ['L2', 'L3']   # no delivery recorded yet
    assert len(_escalations(ledger_root)) == 2


def test_store_refuses_an_unknown_incident(tmp_path):
    with pytest.raises(EscalationError, match='has no record in its ledger'):
        _escalation_store.manage_escalation({'incident_id': 'INC-NONE', 'root': str(tmp_path)})
