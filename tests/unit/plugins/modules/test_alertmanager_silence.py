# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""alertmanager_silence: the create/reuse/update decision, check and diff mode, expiry, bad input."""

from __future__ import annotations

import datetime

import pytest
from _http_fakes import FakeAlertmanager, FakeSession, iso
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http
from ansible_collections.trdrhub.incident.plugins.modules import alertmanager_silence as mod

UTC = datetime.timezone.utc
NOW = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
URL = 'http://am.example:9093'
QLC = {'name': 'alertname', 'value': 'QueueLagCritical', 'isRegex': False, 'isEqual': True}
P1 = {'name': 'severity', 'value': 'P1', 'isRegex': False, 'isEqual': True}


def at(**delta):
    return NOW + datetime.timedelta(**delta)


def existing(state='active', matchers=(QLC, P1), created_by='trdrhub.incident', comment='c', starts=None, ends=None):
    return {'id': 'old', 'matchers': list(matchers), 'createdBy': created_by, 'comment': comment,
            'startsAt': iso(starts or at(minutes=-10)), 'endsAt': iso(ends or at(hours=2)), 'status': {'state': state}}


DESIRED = {'matchers': [P1, QLC], 'createdBy': 'trdrhub.incident', 'comment': 'c'}


@pytest.mark.parametrize('silence, start, end, exact, expected', [
    (None, NOW, at(hours=2), False, 'create'),
    (existing(state='expired'), NOW, at(hours=2), False, 'create'),
    (existing(), NOW, at(hours=2), False, 'reuse'),
    (existing(), NOW, at(hours=2, seconds=59), False, 'reuse'),           # a re-run within the tolerance
    (existing(), NOW, at(hours=2, seconds=61), False, 'update'),          # a later run extends
    (existing(), NOW, at(hours=1), False, 'reuse'),                       # a duration: already covered
    (existing(), NOW, at(hours=1), True, 'update'),                       # an exact ends_at: shorten
    (existing(), NOW, at(hours=2, seconds=30), True, 'reuse'),
    (existing(comment='other'), NOW, at(hours=2), False, 'update'),
    (existing(created_by='someone'), NOW, at(hours=2), False, 'update'),
    (existing(matchers=[QLC]), NOW, at(hours=2), False, 'update'),
    (existing(state='pending', starts=at(hours=1)), NOW, at(hours=2), False, 'update'),  # must start now
    (existing(state='pending', starts=at(hours=1)), at(hours=1), at(hours=2), False, 'reuse'),
])
def test_decide(silence, start, end, exact, expected):
    assert mod.decide(silence, DESIRED, start, end, 60, exact) == expected


def test_candidates_match_matcher_sets_and_creator_only():
    sils = [existing(), dict(existing(), id='mine-later', endsAt=iso(at(hours=3))),
            dict(existing(), id='other-creator', createdBy='alice'), dict(existing(state='expired'), id='expired'),
            dict(existing(matchers=[QLC]), id='fewer-matchers'),
            dict(existing(matchers=[P1, QLC]), id='reordered', endsAt=iso(at(hours=1)))]
    found = mod.candidates(sils, [QLC, P1], 'trdrhub.incident')
    assert [s['id'] for s in found] == ['mine-later', 'old', 'reordered']


@pytest.mark.parametrize('comment, incident, expected', [
    (None, None, 'Acknowledged with trdrhub.incident'),
    ('scaling workers', 'INC-7', '[INC-7] scaling workers'),
    ('[INC-7] scaling workers', 'INC-7', '[INC-7] scaling workers'),
    (None, 'INC-7', '[INC-7] Acknowledged with trdrhub.incident'),
])
def test_comment_carries_the_incident(comment, incident, expected):
    assert mod.compose_comment(comment, incident) == expected


@pytest.fixture
def am(monkeypatch):
    fake = FakeAlertmanager()
    monkeypatch.setattr(_http.requests, 'Session', lambda: FakeSession(fake.handle))
    monkeypatch.setattr(_http, '_sleep', lambda seconds: None)
    return fake


def args(**overrides):
    base = {'url': URL, 'matchers': ['alertname="QueueLagCritical"', {'name': 'severity', 'value': 'P1'}],
            'duration': '2h', 'incident_id': 'INC-7', 'comment': 'workers scaled'}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_create_reuse_update_expire_cycle(run_module, am):
    res = run_module(mod, args())
    assert res['changed'] is True and res['action'] == 'created'
    sid = res['silence_id']
    assert res['silence']['createdBy'] == 'trdrhub.incident/INC-7'
    assert res['silence']['comment'] == '[INC-7] workers scaled'
    assert res['silence']['status'] == {'state': 'active'}
    assert res['requests'] == ['GET /api/v2/silences', 'POST /api/v2/silences', f'GET /api/v2/silence/{sid}']
    assert am.posts[0]['matchers'] == [QLC, P1]

    again = run_module(mod, args(matchers=[{'name': 'severity', 'value': 'P1'}, 'alertname="QueueLagCritical"']))
    assert again['changed'] is False and again['action'] == 'reused' and again['silence_id'] == sid
    assert again['requests'] == ['GET /api/v2/silences']

    longer = run_module(mod, args(duration='4h'))
    assert longer['changed'] is True and longer['action'] == 'updated'
    assert longer['previous_id'] == sid
    assert am.posts[-1]['id'] == sid
    assert am.posts[-1]['startsAt'] == am.silences[sid]['startsAt']   # an active silence keeps its start

    gone = run_module(mod, args(state='absent', duration=None))
    assert gone['changed'] is True and gone['action'] == 'expired'
    assert gone['expired_ids'] == [longer['silence_id']]
    assert gone['silence']['status'] == {'state': 'expired'}

    still_gone = run_module(mod, args(state='absent', duration=None))
    assert still_gone['changed'] is False and still_gone['action'] == 'none'


def test_update_that_replaces_reports_both_ids(run_module, am):
    old = am.add_silence([QLC], 'trdrhub.incident', 'Acknowledged with trdrhub.incident', at(days=-1), at(days=9999))
    res = run_module(mod, {'url': URL, 'silence_id': old, 'matchers': ['alertname="QueueLagCritical"',
                                                                       'severity="P1"'], 'duration': '1h'})
    assert res['action'] == 'updated'
    assert res['previous_id'] == old and res['silence_id'] != old   # new matchers: Alertmanager replaces it
    assert am.silences[old]['endsAt'] <= iso(datetime.datetime.now(UTC))


def test_silence_id_keeps_matchers_and_creator_of_the_target(run_module, am):
    ends = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    old = am.add_silence([QLC], 'alice', 'by hand', datetime.datetime.now(UTC), ends)
    res = run_module(mod, {'url': URL, 'silence_id': old, 'duration': '3h', 'comment': 'by hand'})
    assert res['action'] == 'updated' and res['silence_id'] == old
    assert res['silence']['createdBy'] == 'alice'
    assert res['silence']['matchers'] == [QLC]


def test_unknown_silence_id_for_present_is_one_message(run_module, am):
    res = run_module(mod, {'url': URL, 'silence_id': '00000000-0000-0000-0000-000000000000', 'duration': '1h'})
    assert res['failed'] is True
    assert res['msg'] == ('Alertmanager API v2 at http://am.example:9093 has no silence with silence_id '
                          '00000000-0000-0000-0000-000000000000')


def test_absent_by_unknown_or_expired_id_changes_nothing(run_module, am):
    res = run_module(mod, {'url': URL, 'state': 'absent', 'silence_id': '00000000-0000-0000-0000-000000000000'})
    assert res['changed'] is False and res['action'] == 'none'
    old = am.add_silence([QLC], 'x', 'y', at(days=-2), at(days=-1))
    res = run_module(mod, {'url': URL, 'state': 'absent', 'silence_id': old})
    assert res['changed'] is False and res['action'] == 'none'
    assert am.deletes == []


def test_absent_expires_every_match_of_the_creator_only(run_module, am):
    now = datetime.datetime.now(UTC)
    mine = [am.add_silence([QLC], 'trdrhub.incident/INC-7', 'c', now, now + datetime.timedelta(hours=h)) for h in (1, 2)]
    theirs = am.add_silence([QLC], 'alice', 'c', now, now + datetime.timedelta(hours=1))
    res = run_module(mod, {'url': URL, 'state': 'absent', 'incident_id': 'INC-7',
                           'matchers': ['alertname="QueueLagCritical"']})
    assert sorted(res['expired_ids']) == sorted(mine)
    assert theirs not in am.deletes


def test_check_mode_changes_nothing_and_says_what_would_happen(run_module, am):
    res = run_module(mod, args(), check_mode=True, diff=True)
    assert res['changed'] is True and res['action'] == 'would_create' and res['silence_id'] is None
    assert am.posts == [] and am.silences == {}
    assert res['diff']['before'] == {}
    assert res['diff']['after']['matchers'] == ['alertname="QueueLagCritical"', 'severity="P1"']
    assert res['diff']['after']['comment'] == '[INC-7] workers scaled'

    sid = run_module(mod, args())['silence_id']
    res = run_module(mod, args(duration='5h'), check_mode=True, diff=True)
    assert res['action'] == 'would_update' and res['previous_id'] == sid
    assert res['diff']['before']['endsAt'] < res['diff']['after']['endsAt']
    assert len(am.posts) == 1

    res = run_module(mod, args(state='absent', duration=None), check_mode=True, diff=True)
    assert res['action'] == 'would_expire' and res['expired_ids'] == [sid]
    assert res['diff']['after'] == {'silences': []}
    assert am.deletes == []
    assert res['silence']['status'] == {'state': 'active'}


def test_diff_mode_on_reuse_shows_no_change(run_module, am):
    run_module(mod, args())
    res = run_module(mod, args(), diff=True)
    assert res['action'] == 'reused' and res['diff']['before'] == res['diff']['after']


@pytest.mark.parametrize('overrides, needle', [
    ({'matchers': ['alertname=~"Queue(("']}, 'not a valid regular expression'),
    ({'matchers': ['alertname']}, "invalid matcher 'alertname'"),
    ({'matchers': []}, 'matchers must not be empty'),
    ({'duration': 'soon'}, "invalid duration 'soon'"),
    ({'duration': None, 'ends_at': '2020-01-01T00:00:00Z'}, 'the silence would already be over'),
    ({'duration': None, 'starts_at': '2099-01-02T00:00:00Z', 'ends_at': '2099-01-01T00:00:00Z'},
     'the silence would end before it starts: ends_at 2099-01-01T00:00:00.000Z is not after starts_at '
     '2099-01-02T00:00:00.000Z'),
    ({'duration': None, 'ends_at': 'next week'}, "invalid ends_at 'next week'"),
    ({'duration': None}, 'missing: duration, ends_at'),
    ({'ends_at': '2099-01-01T00:00:00Z'}, 'mutually exclusive: duration|ends_at'),
    ({'tolerance': -1}, 'tolerance must be at least 0, got -1'),
    ({'url': 'alertmanager:9093'}, 'url must be an http:// or https:// URL'),
])
def test_bad_input_is_one_message_before_any_request(run_module, am, overrides, needle):
    res = run_module(mod, args(**overrides))
    assert res['failed'] is True
    assert needle in res['msg']
    assert am.posts == [] and am.deletes == []


def test_server_rejection_is_quoted(run_module, am):
    res = run_module(mod, args(matchers=['alertname=~".*"']))
    assert res['failed'] is True
    assert res['msg'] == ('Alertmanager API v2 at http://am.example:9093: POST /api/v2/silences answered 400: '
                          'silence invalid: at least one matcher must not match the empty string')
    assert res['status'] == 400
    assert res['requests'] == ['GET /api/v2/silences', 'POST /api/v2/silences']
