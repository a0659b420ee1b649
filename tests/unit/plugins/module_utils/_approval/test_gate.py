# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The approval gate with a fake clock and ledger: timeout as a denial, automatic modes, check mode, the prompt, pre-approval, votes for unknown requests."""

from __future__ import annotations

import datetime
import json
import os

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import approval as ap
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import gate as gate_module
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import (
    Gate,
    cast_vote,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import DirStore
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError


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


def _stored_request(root):
    request = ap.build_request(incident_id='INC-1', action='rotate_secrets', priority='P1', summary='s',
                               evidence={'role': 'trdrhub_app'}, requester='local:alice',
                               requester_data={'actor_source': 'local'}, required=1, rule_source='policy.P1.rotate_secrets',
                               mode='store', timeout=600, requester_principal='os:alice', trust_claimed_names=False)
    DirStore(str(root)).create(request)
    return request


def _approvals(root):
    path = root / 'INC-1' / 'ledger.jsonl'
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [(entry['data']['approval'], entry['actor']) for entry in entries]


def _vote(root, request):
    return cast_vote({'request_id': request['request_id'], 'decision': 'approve', 'approver': 'bob', 'incident_id': 'INC-1',
                      'root': str(root), 'store_backend': 'dir'}, env={}, base_dir=str(root))


def test_a_vote_is_in_the_ledger_before_a_polling_gate_can_count_it(tmp_path, monkeypatch):
    request = _stored_request(tmp_path)
    ledger_when_stored = []
    add_vote = DirStore.add_vote

    def watched(store, req, vote):
        ledger_when_stored.append(_approvals(tmp_path))
        return add_vote(store, req, vote)

    monkeypatch.setattr(DirStore, 'add_vote', watched)
    out = _vote(tmp_path, request)
    assert ledger_when_stored == [[('vote', 'bob')]]
    assert out['quorum'] is True and [entry['kind'] for entry in out['ledger_entries']] == ['vote']
    assert ap.tally(request, DirStore(str(tmp_path)).votes(request))['approvers'] == ['bob']


def test_a_vote_that_cannot_be_stored_is_voided_in_the_ledger(tmp_path, monkeypatch):
    request = _stored_request(tmp_path)

    def first_vote_won(store, req, vote):
        raise ap.DuplicateVote(f"{vote['approver']} has already voted on {req['request_id']}; a vote cannot be changed.")

    monkeypatch.setattr(DirStore, 'add_vote', first_vote_won)
    with pytest.raises(ap.DuplicateVote, match='bob has already voted'):
        _vote(tmp_path, request)
    assert _approvals(tmp_path) == [('vote', 'bob'), ('void', 'bob')]
    void = json.loads((tmp_path / 'INC-1' / 'ledger.jsonl').read_text().splitlines()[-1])
    assert 'was not stored and does not count' in void['data']['message'] and void['data']['request_id'] == request['request_id']


def test_a_vote_the_ledger_refuses_is_not_stored(tmp_path, monkeypatch):
    request = _stored_request(tmp_path)

    def refuse(*args, **kwargs):
        raise TrdrhubError('the ledger table is read-only')

    monkeypatch.setattr(gate_module, 'record_event', refuse)
    with pytest.raises(ap.ApprovalError, match=r'NOT cast: the incident ledger refused its entry \(the ledger table is read-only\)'):
        _vote(tmp_path, request)
    assert DirStore(str(tmp_path)).votes(request) == []
