# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident record stored in the ledger: check, apply and re-run on the file backend, a tampered ledger
refused, an unknown incident read, secrets kept out of the root cause."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import store as _incident_store
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import IncidentError
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger

UTC = datetime.timezone.utc


SECRET = 'Incident-Secret-7f3a'


def params(**kw):
    return dict({'incident_id': 'INC-9', 'state': 'open', 'reopen': False, 'policy': {}}, **kw)


# -- storage, file backend ---------------------------------------------------------------------------
@pytest.fixture
def manage(tmp_path, monkeypatch):
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')
    env = {}

    def run(check_mode=False, **kw):
        return _incident_store.manage_incident(dict(params(root=str(tmp_path)), **kw), check_mode=check_mode,
                                               want_diff=True, env=env, secrets=[SECRET])
    run.path = tmp_path / 'INC-9' / 'ledger.jsonl'
    return run


def test_file_backend_check_apply_rerun(manage):
    predicted = manage(check_mode=True, title='API down', priority='P1')
    assert predicted['changed'] and predicted['entry'] is None and not manage.path.parent.exists()
    assert predicted['diff']['before'] == '' and 'title: API down' in predicted['diff']['after']
    applied = manage(title='API down', priority='P1', note=f'password={SECRET}')
    assert applied['changed'] and applied['entry']['seq'] == 1 and applied['entry']['event'] == 'incident'
    assert applied['entry']['data']['action'] == 'open' and applied['entry']['phase'] == 'triage'
    again = manage(title='API down', priority='P1')
    assert not again['changed'] and again['entry'] is None and again['incident'] == applied['incident']
    assert len(manage.path.read_text().splitlines()) == 1 and SECRET not in manage.path.read_text()
    looked_up = manage(check_mode=True)
    assert looked_up['incident'] == applied['incident'] and not looked_up['changed']


def test_file_backend_refuses_a_tampered_ledger(manage):
    manage(title='API down', priority='P1')
    entry = json.loads(manage.path.read_text())
    entry['data']['record']['priority'] = 'P4'
    manage.path.write_text(json.dumps(entry) + '\n')
    with pytest.raises(IncidentError, match='does not verify.*source: ledger_file'):
        manage(commander='ic:maria')
    manage.path.write_text('{"seq": 1')
    with pytest.raises(_ledger.LedgerError, match='does not end with a complete entry'):
        manage(commander='ic:maria')


def test_reading_an_unknown_incident_names_the_known_ones_and_creates_nothing(tmp_path):
    for known in ('INC-UX-0001', 'INC-UX-0002'):
        _incident_store.manage_incident({'incident_id': known, 'root': str(tmp_path), 'title': 'API down', 'priority': 'P2'}, env={})
    with pytest.raises(IncidentError) as caught:
        _incident_store.manage_incident({'incident_id': 'INC-UX-001', 'root': str(tmp_path)}, env={})
    message = str(caught.value)
    assert 'INC-UX-001 has no record in its ledger yet' in message and 'Did you mean INC-UX-0001?' in message
    assert 'Known incidents: INC-UX-0001, INC-UX-0002' in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ['INC-UX-0001', 'INC-UX-0002']


def test_root_cause_loses_its_secrets_and_is_stored_once(manage):
    manage(title='API down', priority='P1')
    first = manage(root_cause=f'leaked password={SECRET} in the pool config')
    assert first['changed'] and first['entry']['data']['action'] == 'update'
    assert SECRET not in first['incident']['root_cause'] and 'leaked password=' in first['incident']['root_cause']
    assert not manage(root_cause=f'leaked password={SECRET} in the pool config')['changed']
    assert SECRET not in manage.path.read_text()
