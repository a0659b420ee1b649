# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""approval_vote executed directly on a host: a vote on a request that does not exist is one message, and nothing is stored.

The vote itself (checks, the store, the ledger entry) is tested in module_utils/_approval/.
"""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import approval_vote


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_APPROVAL_STORE', 'AWX_USER_NAME', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize('check_mode', [False, True])
def test_a_vote_on_an_unknown_request_is_one_message(run_module, tmp_path, check_mode):
    result = run_module(approval_vote, {'request_id': 'req-000000000000', 'decision': 'approve', 'approver': 'bob',
                                        'root': str(tmp_path), 'store_backend': 'dir'}, check_mode=check_mode)
    assert result['failed'] and result['msg'].startswith('No approval request req-000000000000')
    assert 'Traceback' not in result['msg']
    assert not any(p.name.endswith('.json') for p in tmp_path.rglob('*'))


def test_a_decision_outside_approve_and_deny_is_refused_naming_the_option(run_module, tmp_path):
    result = run_module(approval_vote, {'request_id': 'req-000000000000', 'decision': 'maybe', 'root': str(tmp_path)})
    assert result['failed'] and 'decision' in result['msg'] and 'maybe' in result['msg']
