# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The approval gate with a fake clock and ledger: timeout as a denial, automatic modes, check mode, the prompt, pre-approval, votes for unknown requests."""

from __future__ import annotations

import datetime
import os

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import approval as ap
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import (
    Gate,
    cast_vote,
)


class Ledger:
    def __init__(self):
        self.entries = []

    def __call__(self, kind, incident_id, msg, data, actor=None, phase=None):
        self.entries.append((kind, data))
        return {'seq': len(self.entries), 'hash': 'h'}


class Clock:
    def __init__(self):
        self.now = ap.utc_now()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)


def gate(tmp_path, clock, ask=None, **params):
    base = {'incident_id': 'INC-1', 'action': 'terminate_sessions', 'priority': 'P1', 'evidence': {'pids': [1]},
            'mode': 'store', 'poll_interval': 1, 'timeout': 5, 'root': str(tmp_path), 'store_backend': 'dir',
            'requester': 'alice', 'fail_on_denied': True}
    base.update(params)
    return Gate(base, record=Ledger(), env={}, variables={}, context={}, ask=ask, now=clock, sleep=clock.sleep)


def test_gate_times_out_as_a_denial(tmp_path):
    clock = Clock()
    g = gate(tmp_path, clock)
    result = g.run()
    assert result['status'] == 'expired' and result['failed'] and not result['approved']
    assert [entry[0] for entry in g.record.entries] == ['request', 'outcome']


def test_gate_automatic_and_auto_mode(tmp_path):
    clock = Clock()
    assert gate(tmp_path, clock, policy={'P1': {'terminate_sessions': 'automatic'}}).run()['approved'] is True
    denied = gate(tmp_path, clock, mode='auto', fail_on_denied=False).run()
    assert denied['approved'] is False and 'failed' not in denied and 'Mode auto' in denied['msg']


def test_gate_check_mode_waits_for_nothing(tmp_path):
    g = gate(tmp_path, Clock())
    result = g.run(check_mode=True)
    assert result['status'] == 'check_mode' and not result['approved'] and 'failed' not in result
    assert g.record.entries == [] and not os.path.exists(tmp_path / 'INC-1')


def test_prompt_refuses_the_requester_and_repeats(tmp_path):
    answers = iter(['local:Alice', 'bob', 'yes', 'bob', 'carol', 'y'])
    g = gate(tmp_path, Clock(), ask=lambda text: next(answers), mode='prompt', action='rotate_secrets')
    result = g.run()
    assert result['approved'] and result['approvers'] == ['bob', 'carol']
    assert [entry[0] for entry in g.record.entries] == ['request', 'vote', 'vote', 'outcome']


def test_preapproved_needs_the_workflow(tmp_path):
    g = gate(tmp_path, Clock(), mode='preapproved')
    g.variables = {'awx_job_id': 5}
    result = g.run()
    assert result['failed'] and 'awx_workflow_job_id not set' in result['msg']
    by_var = gate(tmp_path, Clock(), mode='preapproved', preapproved_by='variable contain_db_confirm').run()
    assert by_var['approved'] and by_var['approvers'] == ['variable contain_db_confirm']


def test_cast_vote_refuses_unknown_requests(tmp_path):
    with pytest.raises(ap.ApprovalError, match='No approval request req-000000000000'):
        cast_vote({'request_id': 'req-000000000000', 'decision': 'approve', 'approver': 'bob', 'root': str(tmp_path),
                   'store_backend': 'dir'}, env={})
