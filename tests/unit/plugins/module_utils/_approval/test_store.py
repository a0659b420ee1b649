# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The approval directory store: concurrent votes from several processes never clobber each other."""

from __future__ import annotations

import datetime
import multiprocessing
import os

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import approval as ap
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import (
    DirStore,
)

T0 = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=datetime.timezone.utc)


def request(required=1, evidence=None, now=T0, timeout=60):
    return ap.build_request(incident_id='INC-1', action='terminate_sessions', priority='P1', summary='s',
                            evidence=evidence or {'pids': [1]}, requester='awx:alice', requester_data={'actor_source': 'awx'},
                            required=required, rule_source='policy.P1.terminate_sessions', mode='store', timeout=timeout, now=now)


def vote(req, who, decision='approve', at=T0):
    return ap.build_vote(req, approver=who, decision=decision, comment=None, recorded_by=None, source='awx', now=at)


def _vote_in_child(args):
    root, req, who = args
    try:
        DirStore(root).add_vote(req, vote(req, who))
        return 'ok'
    except ap.DuplicateVote:
        return 'duplicate'


def test_dir_store_concurrent_votes_never_clobber(tmp_path):
    store = DirStore(str(tmp_path))
    req = request(required=2, now=ap.utc_now())
    store.create(req)
    with pytest.raises(ap.ApprovalError, match='exists already'):
        store.create(req)
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(8) as pool:
        outcomes = pool.map(_vote_in_child, [(str(tmp_path), req, who) for who in ['bob'] * 6 + ['carol'] * 6])
    assert sorted(outcomes) == ['duplicate'] * 10 + ['ok'] * 2
    votes = store.votes(req)
    assert sorted(v['approver'] for v in votes) == ['bob', 'carol']
    assert ap.tally(req, votes)['status'] == 'approved'
    assert not [n for n in os.listdir(store.location('INC-1')) if n.startswith('.tmp-')]
    store.finish(req, 'approved', {'status': 'approved'})
    assert store.get(req['request_id'])['status'] == 'approved' and store.pending() == []
