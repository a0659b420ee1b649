# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The two-person rule counts accounts, not the names voters give: OS logins, AWX and Rundeck users."""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import pwd
import shutil
import tempfile

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import approval as ap
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import (
    Gate,
    cast_vote,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import (
    DirStore,
)


def request(principal='os:alice', trust=False, mode='store', required=2):
    return ap.build_request(incident_id='INC-1', action='rotate_secrets', priority='P1', summary='s',
                            evidence={'role': 'trdrhub_app'}, requester='local:alice', requester_data={'actor_source': 'local'},
                            required=required, rule_source='policy.P1.rotate_secrets', mode=mode, timeout=600,
                            requester_principal=principal, trust_claimed_names=trust)


def vote(req, who, principal, decision='approve'):
    return ap.build_vote(req, approver=who, decision=decision, comment=None, recorded_by='local:alice', source='local',
                         principal=principal)


def test_os_login_prefers_the_audit_login_uid_then_sudo_user(tmp_path):
    loginuid = tmp_path / 'loginuid'
    loginuid.write_text('0')
    assert ap.os_login({'SUDO_USER': 'bob'}, str(loginuid)) == 'root'
    loginuid.write_text(str(ap.NO_LOGINUID))
    mine = pwd.getpwuid(os.geteuid()).pw_name
    expected_sudo = 'bob' if os.geteuid() == 0 else mine
    assert ap.os_login({'SUDO_USER': 'bob', 'USER': 'carol'}, str(loginuid)) == expected_sudo
    assert ap.os_login({'USER': 'carol', 'LOGNAME': 'carol'}, str(tmp_path / 'absent')) == mine


def test_authenticated_identity_is_the_scheduler_user_else_the_os_login():
    assert ap.authenticated_identity('awx:Bob', {'actor_source': 'awx'}, {}) == 'awx:bob'
    assert ap.authenticated_identity('rundeck:carol', {'actor_source': 'rundeck'}, {}) == 'rundeck:carol'
    assert ap.authenticated_identity('local:whoever', {'actor_source': 'local'}, {}, login=lambda env: 'Dave') == 'os:dave'


def test_claimed_names_from_the_requesters_account_do_not_count():
    req = request()
    counts = ap.tally(req, [vote(req, 'bob', 'os:alice'), vote(req, 'carol', 'os:alice')])
    assert counts['status'] == 'pending' and counts['approvers'] == []
    assert [i['approver'] for i in counts['ignored']] == ['bob', 'carol']
    assert all("the requester's own account" in i['reason'] and 'claim' in i['reason'] for i in counts['ignored'])


def test_one_account_counts_once_whatever_names_it_gives():
    req = request()
    counts = ap.tally(req, [vote(req, 'bob', 'os:bob'), vote(req, 'carol', 'os:bob'), vote(req, 'erin', None)])
    assert counts['approvers'] == ['bob'] and counts['status'] == 'pending'
    reasons = [i['reason'] for i in counts['ignored']]
    assert 'whose vote already counts as bob' in reasons[0] and 'no authenticated identity' in reasons[1]
    assert ap.tally(req, [vote(req, 'bob', 'os:bob'), vote(req, 'carol', 'awx:carol')])['status'] == 'approved'


def test_a_policy_that_trusts_claimed_names_counts_them():
    policy = ap.effective_policy({'P3': {'trust_claimed_names': True}})
    assert ap.trusts_claimed_names(policy, 'P3') and not ap.trusts_claimed_names(policy, 'P1')
    with pytest.raises(ap.ApprovalError, match='trust_claimed_names must be true or false'):
        ap.effective_policy({'P1': {'trust_claimed_names': 'yes'}})
    req = request(trust=True)
    assert ap.tally(req, [vote(req, 'bob', 'os:alice'), vote(req, 'carol', 'os:alice')])['status'] == 'approved'


def test_check_vote_refuses_a_vote_that_would_not_count_and_says_why():
    req = request()
    with pytest.raises(ap.ApprovalError, match="would not count: cast from os:alice, the requester's own account"):
        ap.check_vote(req, approver='bob', decision='approve', principal='os:alice', votes=[])
    with pytest.raises(ap.ApprovalError, match='whose vote already counts as bob'):
        ap.check_vote(req, approver='carol', decision='approve', principal='os:bob', votes=[vote(req, 'bob', 'os:bob')])
    ap.check_vote(req, approver='carol', decision='approve', principal='os:carol', votes=[vote(req, 'bob', 'os:bob')])
    prompt = request(mode='prompt')   # typed at the requester's terminal: judged by the names given
    ap.check_vote(prompt, approver='bob', decision='approve', principal='os:alice', votes=[])


class Ledger:
    def __init__(self):
        self.entries = []

    def __call__(self, kind, incident_id, msg, data, actor=None, phase=None):
        self.entries.append((kind, data))
        return {'seq': len(self.entries), 'hash': 'h'}


def test_the_gate_records_its_own_account_and_explains_votes_that_did_not_count(tmp_path):
    said = []
    params = {'incident_id': 'INC-1', 'action': 'rollback', 'priority': 'P1', 'evidence': {'to': 3}, 'mode': 'store',
              'poll_interval': 1, 'timeout': 3, 'root': str(tmp_path), 'store_backend': 'dir', 'fail_on_denied': True}
    store = DirStore(str(tmp_path))

    def sleep(seconds):   # while the gate waits, the requester's own account votes under another name
        pending = store.pending()
        if pending and not store.votes(pending[0]):
            store.add_vote(pending[0], vote(pending[0], 'bob', pending[0]['requester_principal']))
        clock.now += ap.datetime.timedelta(seconds=seconds)

    class Clock:
        now = ap.utc_now()

    clock = Clock()
    gate = Gate(params, record=Ledger(), env={}, variables={}, context={}, say=said.append, now=lambda: clock.now,
                sleep=sleep)
    result = gate.run()
    assert result['request']['requester_principal'] == f'os:{ap.os_login({})}'.lower()
    assert result['status'] == 'expired' and result['approvers'] == []
    assert "Votes that did not count: bob (cast from os:" in result['msg']
    assert any(line.startswith('Vote of bob on req-') and 'does NOT count' in line for line in said)


@pytest.fixture
def shared_dir():
    """A directory another OS account can reach (pytest's own tmp_path is private to this user)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix='trdrhub-approval-'))
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _vote_as(uid, root, rid, approver):
    """A vote from another OS account: the child drops to ``uid`` before it votes."""
    os.setgid(uid)
    os.setuid(uid)
    params = {'request_id': rid, 'decision': 'approve', 'approver': approver, 'incident_id': 'INC-1', 'root': root,
              'store_backend': 'dir'}
    try:
        return cast_vote(params, env={}, base_dir=root)['vote']['principal']
    except ap.ApprovalError as exc:
        return f'refused: {exc}'


@pytest.mark.skipif(os.geteuid() != 0, reason='voting as another OS account needs root to drop privileges')
def test_a_vote_from_another_os_account_counts_and_a_second_name_from_it_does_not(shared_dir):
    root = shared_dir / 'incidents'
    root.mkdir()
    req = request(principal=f'os:{ap.os_login({})}'.lower())
    DirStore(str(root)).create(req)
    for path in [root, *root.rglob('*')]:
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    nobody = pwd.getpwnam('nobody').pw_uid
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(1) as pool:
        first = pool.apply(_vote_as, (nobody, str(root), req['request_id'], 'bob'))
    with ctx.Pool(1) as pool:
        second = pool.apply(_vote_as, (nobody, str(root), req['request_id'], 'carol'))
    assert first == 'os:nobody'
    assert second.startswith('refused:') and 'whose vote already counts as bob' in second
    with pytest.raises(ap.ApprovalError, match="the requester's own account"):
        cast_vote({'request_id': req['request_id'], 'decision': 'approve', 'approver': 'dave', 'incident_id': 'INC-1',
                   'root': str(root), 'store_backend': 'dir'}, env={}, base_dir=str(root))
    counts = ap.tally(req, DirStore(str(root)).votes(req))
    assert counts['approvers'] == ['bob'] and counts['status'] == 'pending'
    stored = json.loads(next(root.rglob('*.vote.bob.json')).read_text())
    assert stored['principal'] == 'os:nobody' and stored['approver'] == 'bob'
