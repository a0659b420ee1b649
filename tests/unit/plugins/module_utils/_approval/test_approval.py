# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Approval policy, quorum, votes and evidence hashing, without Ansible or a clock."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import approval as ap

T0 = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=datetime.timezone.utc)


def request(required=1, evidence=None, now=T0, timeout=60):
    return ap.build_request(incident_id='INC-1', action='terminate_sessions', priority='P1', summary='s',
                            evidence=evidence or {'pids': [1]}, requester='awx:alice', requester_data={'actor_source': 'awx'},
                            required=required, rule_source='policy.P1.terminate_sessions', mode='store', timeout=timeout, now=now)


def vote(req, who, decision='approve', at=T0):
    return ap.build_vote(req, approver=who, decision=decision, comment=None, recorded_by=None, source='awx', now=at)


@pytest.mark.parametrize('priority, action, required', [
    ('P1', 'terminate_sessions', 1), ('P1', 'rotate_secrets', 2), ('P1', 'restore_db', 2), ('P1', 'anything_else', 1),
    ('P3', 'rollback', 2), ('P3', 'block_ips', 1), ('P4', 'terminate_sessions', 2), ('P4', 'other', 2),
])
def test_default_policy(priority, action, required):
    assert ap.rule(ap.effective_policy(), priority, action)[0] == required


def test_policy_override_merges_per_priority():
    policy = ap.effective_policy({'P1': {'terminate_sessions': 'automatic', 'timeout': 60}, 'p4': {'default': 3}})
    assert ap.rule(policy, 'P1', 'terminate_sessions') == (0, 'policy.P1.terminate_sessions')
    assert ap.rule(policy, 'P1', 'rotate_secrets')[0] == 2 and policy['P1']['timeout'] == 60
    assert ap.rule(policy, 'P4', 'new_step') == (3, 'policy.P4.default')


@pytest.mark.parametrize('override, message', [
    ({'P5': {}}, 'priority must be one of'), ({'P1': {'Bad Name': 'one'}}, 'is not an action name'),
    ({'P1': {'rollback': 'three'}}, 'must be automatic, one, two'), ({'P1': {'rollback': 9}}, 'between 0'),
    ({'P1': {'timeout': 0}}, 'positive number'), ([], 'policy must be a mapping of priorities .P1..P4., got a list$'),
    ({'P1': 'everyone'}, 'policy.P1 must be a mapping of actions .and timeout, default. to approvers, got a string$'),
])
def test_bad_policy(override, message):
    with pytest.raises(ap.ApprovalError, match=message):
        ap.effective_policy(override)


def test_identities_ignore_case_and_prefix():
    assert ap.identity('awx:Alice') == ap.identity('local:alice') == ap.identity(' ALICE ')
    assert ap.slug('rundeck:Bob') == 'bob' and ap.slug('Ann O/Neil') != ap.slug('Ann O_Neil')
    with pytest.raises(ap.ApprovalError):
        ap.identity('awx:')


def test_quorum_one_deny_and_ignored_votes():
    req = request(required=2)
    assert ap.tally(req, [vote(req, 'bob')], T0)['status'] == 'pending'
    done = ap.tally(req, [vote(req, 'bob'), vote(req, 'carol')], T0)
    assert done['status'] == 'approved' and done['approvers'] == ['bob', 'carol']
    assert ap.tally(req, [vote(req, 'bob'), vote(req, 'carol', 'deny'), vote(req, 'dave')], T0)['status'] == 'denied'
    ignored = ap.tally(req, [vote(req, 'local:alice'), vote(req, 'bob'), vote(req, 'BOB'),
                             dict(vote(req, 'erin'), evidence_hash='x')], T0)
    assert ignored['status'] == 'pending' and ignored['approvers'] == ['bob']
    assert [i['reason'] for i in ignored['ignored']] == ['the requester cannot vote (two-person rule)',
                                                         'a second vote of the same person', 'cast on other evidence (evidence hash differs)']


def test_expiry():
    req = request(timeout=10)
    late = T0 + datetime.timedelta(seconds=11)
    assert ap.tally(req, [], late)['status'] == 'expired'
    assert ap.tally(req, [vote(req, 'bob', at=late)], late)['status'] == 'expired'
    with pytest.raises(ap.ApprovalError, match='expired'):
        ap.check_vote(req, approver='bob', decision='approve', now=late)


def test_check_vote_rules():
    req = request()
    ap.check_vote(req, approver='bob', decision='approve', given_hash=req['evidence_hash'][:12], now=T0)
    for kwargs, message in (({'approver': 'Alice'}, 'two-person rule'),
                            ({'approver': 'bob', 'runner': 'awx:alice', 'runner_source': 'awx'}, 'two-person rule'),
                            ({'approver': 'bob', 'given_hash': '0' * 64}, 'evidence changed'),
                            ({'approver': 'bob', 'given_hash': req['evidence_hash'][:6]}, 'evidence changed')):
        with pytest.raises(ap.ApprovalError, match=message):
            ap.check_vote(req, decision='approve', now=T0, **kwargs)
    altered = dict(req, evidence={'pids': [1, 2]})
    with pytest.raises(ap.ApprovalError, match='altered'):
        ap.check_vote(altered, approver='bob', decision='approve', now=T0)
    with pytest.raises(ap.ApprovalError, match='not pending'):
        ap.check_vote(dict(req, status='denied'), approver='bob', decision='approve', now=T0)


def test_evidence_is_redacted_before_hashing():
    clean = ap.clean_evidence({'pids': [1], 'dsn': 'postgresql://u:pw@h/db', 'note': 'password=hunter2'})
    assert clean['dsn'] == '<redacted>' and 'hunter2' not in json.dumps(clean)
    assert ap.evidence_hash(clean) == ap.evidence_hash(json.loads(json.dumps(clean)))


def test_the_policy_table_in_the_docs_is_the_policy_the_code_enforces():
    """docs/approvals.md's table, row by row and column by column, against DEFAULT_POLICY."""
    root = __file__.rsplit('/tests/', 1)[0]
    with open(f'{root}/docs/approvals.md', encoding='utf-8') as handle:
        lines = [line.strip() for line in handle if line.startswith('| ')]
    header = next(line for line in lines if 'terminate_sessions' in line and 'timeout' in line)
    columns = [cell.strip() for cell in header.strip('|').split('|')][1:]
    rows = {cells[0]: dict(zip(columns, cells[1:])) for cells in
            ([cell.strip() for cell in line.strip('|').split('|')] for line in lines) if cells[0] in ap.PRIORITIES}
    assert sorted(rows) == list(ap.PRIORITIES)
    policy = ap.effective_policy()
    for prio, cells in rows.items():
        for column, text in cells.items():
            if column == 'timeout':
                assert policy[prio]['timeout'] == int(text), (prio, column)
            else:
                action = 'some_other_step' if column == 'other' else column
                assert ap.rule(policy, prio, action)[0] == ap.LEVELS[text], (prio, column)
