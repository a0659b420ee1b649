# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""trdrhub.incident.incident run as a module (the path ansible-test and direct execution take)."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger
from ansible_collections.trdrhub.incident.plugins.modules import incident


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_TABLE', 'TRDRHUB_LEDGER_DSN',
                'TRDRHUB_LEDGER_RUN', 'AWX_USER_NAME', 'TOWER_USER_NAME', 'AWX_JOB_ID', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')


def test_open_then_rerun_then_errors(run_module, tmp_path):
    args = {'incident_id': 'INC-M1', 'root': str(tmp_path), 'title': 'API down', 'priority': 'P2'}
    opened = run_module(incident, args)
    assert opened['changed'] and opened['incident']['opened_by'] == 'local:oncall'
    assert opened['entry']['module'] == 'trdrhub.incident.incident'
    assert run_module(incident, args)['changed'] is False
    refused = run_module(incident, dict(args, state='resolved', status='monitoring'))
    assert refused['failed'] and refused['msg'].startswith('state=resolved cannot be combined with status monitoring')
    bad = run_module(incident, dict(args, incident_id='../x'))
    assert bad['failed'] and 'cannot name a ledger' in bad['msg']
