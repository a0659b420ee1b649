# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""approval (the gate) executed directly on a host: check mode asks nobody and records nothing; mode auto denies what
the policy does not mark automatic, and records the request and the outcome.

The gate's modes, votes and timeouts are tested in module_utils/_approval/test_gate.py.
"""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger
from ansible_collections.trdrhub.incident.plugins.modules import approval

REQUEST = {'incident_id': 'INC-1', 'action': 'terminate_sessions', 'evidence': {'pids': [4242]}, 'store_backend': 'dir',
           'requester': 'alice', 'timeout': 1, 'poll_interval': 1}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_RUN', 'TRDRHUB_APPROVAL_STORE',
                'AWX_USER_NAME', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')


def test_check_mode_asks_nobody_and_records_nothing(run_module, tmp_path):
    result = run_module(approval, dict(REQUEST, priority='P1', mode='store', root=str(tmp_path)), check_mode=True)
    assert not result.get('failed') and result['changed'] is False
    assert result['status'] == 'check_mode' and result['approved'] is False and result['ledger_entries'] == []
    assert result['msg'].startswith('Check mode: would ask for approval') and result['required'] == 1
    assert list(tmp_path.rglob('*')) == []


def test_mode_auto_denies_an_action_the_policy_does_not_mark_automatic(run_module, tmp_path):
    result = run_module(approval, dict(REQUEST, priority='P4', mode='auto', root=str(tmp_path)))
    assert result['failed'] and result['status'] == 'denied' and result['approved'] is False
    assert result['msg'].startswith('Not approved: terminate_sessions (P4)')
    assert 'Mode auto approves only what the policy marks automatic' in result['msg']
    assert [entry['kind'] for entry in result['ledger_entries']] == ['request', 'outcome']
    assert (tmp_path / 'INC-1' / 'ledger.jsonl').is_file()
