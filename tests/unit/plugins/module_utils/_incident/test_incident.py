# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident record: fold, plan (changes, actions, idempotence), tamper detection, errors."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import incident as _incident
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import IncidentError, fold, plan, verify_entries
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger

UTC = datetime.timezone.utc


T0 = datetime.datetime(2025, 1, 15, 14, 33, 0, tzinfo=UTC)


T1 = T0 + datetime.timedelta(minutes=10)


T2 = T0 + datetime.timedelta(minutes=40)


def params(**kw):
    return dict({'incident_id': 'INC-9', 'state': 'open', 'reopen': False, 'policy': {}}, **kw)


def opened(**kw):
    record, changes, actions = plan(None, params(title='API down', priority='P1', detected_at='2025-01-15T14:30:00Z', **kw),
                                    actor='local:oncall', now=T0)
    return record


def test_open_sets_the_record_and_the_deadline_from_detection():
    impact = ['customer_facing', 'security', 'customer-facing']
    record, changes, actions = plan(None, params(title='API down', priority='P1', impact=impact, detected_at='2025-01-15T15:30:00+01:00'),
                                    actor='local:oncall', now=T0)
    assert actions == ['open']
    assert record['state'] == 'open' and record['status'] == 'investigating' and record['revision'] == 1
    assert record['detected_at'] == '2025-01-15T14:30:00Z' and record['response_deadline'] == '2025-01-15T14:45:00Z'
    assert record['impact'] == ['customer-facing', 'security']
    assert (record['opened_at'], record['opened_by']) == ('2025-01-15T14:33:00Z', 'local:oncall')
    assert changes['title'] == {'before': None, 'after': 'API down'} and 'acknowledged' not in changes


def test_deadline_counts_from_opening_without_detection_time():
    record, _c, _a = plan(None, params(title='x', priority='P2'), actor='a', now=T0)
    assert record['detected_at'] is None and record['response_deadline'] == '2025-01-15T15:33:00Z'


def test_same_request_again_changes_nothing():
    record = opened()
    again, changes, actions = plan(record, params(title='API down', priority='P1', detected_at='2025-01-15T14:30:00Z'),
                                   actor='someone-else', now=T1)
    assert (changes, actions) == ({}, []) and again == record


def test_commander_and_acknowledgement():
    record = opened()
    after, changes, actions = plan(record, params(commander='ic:maria', acknowledged=True), actor='awx:bob', now=T1)
    assert actions == ['assign_commander', 'acknowledge']
    assert _incident.dominant(actions) == 'assign_commander'
    assert (after['acknowledged_at'], after['acknowledged_by']) == ('2025-01-15T14:43:00Z', 'awx:bob')
    assert after['revision'] == 2 and set(changes) == {'commander', 'commander_assigned_at', 'acknowledged',
                                                       'acknowledged_at', 'acknowledged_by'}
    assert _incident.phase_of('assign_commander', after) == 'triage'


def test_status_priority_and_references():
    record = opened(references={'silence_ids': ['a']})
    after, changes, actions = plan(record, params(status='identified', priority='P2',
                                                  references={'statuspage_incident_id': 'sp1', 'silence_ids': None}),
                                   actor='a', now=T1)
    assert actions == ['status', 'update']
    assert after['references'] == {'statuspage_incident_id': 'sp1'}
    assert changes['response_deadline'] == {'before': '2025-01-15T14:45:00Z', 'after': '2025-01-15T15:30:00Z'}
    assert _incident.phase_of('status', after) == 'investigate'


def test_resolve_reopen_and_their_errors():
    record = opened()
    resolved, changes, actions = plan(record, params(state='resolved', resolution='pool raised'), actor='a', now=T2)
    assert actions == ['resolve'] and resolved['status'] == 'resolved'
    assert resolved['duration_seconds'] == 43 * 60 and resolved['resolved_at'] == '2025-01-15T15:13:00Z'
    assert _incident.phase_of('resolve', resolved) == 'recover'
    # resolving again is idempotent; a later resolution text is an update
    assert plan(resolved, params(state='resolved', resolution='pool raised'), actor='a', now=T2)[1] == {}
    with pytest.raises(IncidentError, match='Set reopen: true'):
        plan(resolved, params(title='API down'), actor='a', now=T2)
    reopened, changes, actions = plan(resolved, params(reopen=True), actor='a', now=T2)
    assert actions == ['reopen'] and reopened['state'] == 'open' and reopened['reopen_count'] == 1
    assert reopened['resolution'] is None and reopened['duration_seconds'] is None
    assert plan(reopened, params(reopen=True), actor='a', now=T2)[1] == {}


@pytest.mark.parametrize('current, kw, message', [
    (None, {}, 'opening it needs a title'),
    (None, {'state': 'resolved'}, 'nothing to resolve'),
    ('open', {'status': 'resolved'}, 'status resolved is set with state=resolved'),
    ('open', {'state': 'resolved', 'status': 'monitoring'}, 'cannot be combined with status monitoring'),
    ('open', {'resolution': 'x'}, 'resolution is given with state=resolved only'),
    ('open', {'impact': ['outage']}, "impact 'outage' is not one of"),
    ('open', {'detected_at': 'yesterday'}, 'detected_at must be an ISO 8601 time'),
])
def test_bad_requests_are_one_clear_message(current, kw, message):
    with pytest.raises(IncidentError, match=message):
        plan(opened() if current else None, params(**kw), actor='a', now=T1)


def _chain(*records_or_events):
    entries, prev = [], None
    for number, item in enumerate(records_or_events, start=1):
        fields = {'event': 'incident', 'data': {'record': item}} if isinstance(item, dict) else {'event': item}
        entry = _ledger.make_entry('INC-9', number, prev, fields)
        entries.append(entry)
        prev = entry['hash']
    return entries


def test_fold_takes_the_last_record_and_counts_revisions():
    first = opened()
    second = dict(first, commander='ic:maria')
    entries = _chain('playbook_start', first, 'task', second, 'playbook_end')
    verify_entries(entries, 'INC-9', 'here', 'audit_chain_verify')
    record = fold(entries, 'INC-9')
    assert record['commander'] == 'ic:maria' and record['revision'] == 2
    assert fold(_chain('task'), 'INC-9') is None


@pytest.mark.parametrize('tamper, problem', [
    (lambda e: e[1]['data']['record'].update(priority='P4'), 'entry 2 does not match its hash'),
    (lambda e: e.pop(1), 'entry 2 has sequence number 3'),
    (lambda e: e[2].update(prev_hash='0' * 64), 'entry 3 does not link'),
    (lambda e: e[0].update(incident_id='INC-X'), "entry 1 belongs to incident 'INC-X'"),
])
def test_a_tampered_ledger_is_refused(tamper, problem):
    entries = _chain('playbook_start', opened(), 'task')
    tamper(entries)
    with pytest.raises(IncidentError, match=problem) as info:
        verify_entries(entries, 'INC-9', '/x/ledger.jsonl', 'trdrhub.incident.audit_chain_verify (...)')
    assert 'tampered' in str(info.value) and 'audit_chain_verify' in str(info.value)


def test_render_is_one_field_a_line():
    text = _incident.render(opened(commander='ic:maria'))
    assert 'commander: "ic:maria"\n' in text and 'impact: []\n' in text and 'priority: P1\n' in text
    assert _incident.render(None) == ''


def test_an_automatic_acknowledgement_is_kept_apart_from_a_persons():
    record = opened()
    auto, changes, actions = plan(record, params(auto_acknowledged=True), actor='awx:triage', now=T1)
    assert actions == ['auto_acknowledge'] and _incident.phase_of('auto_acknowledge', auto) == 'triage'
    assert (auto['auto_acknowledged_at'], auto['auto_acknowledged_by']) == ('2025-01-15T14:43:00Z', 'awx:triage')
    assert auto['acknowledged'] is False and auto['acknowledged_at'] is None
    assert set(changes) == {'auto_acknowledged_at', 'auto_acknowledged_by'}
    assert plan(auto, params(auto_acknowledged=True), actor='awx:triage', now=T2)[1:] == ({}, [])
    human, changes, actions = plan(auto, params(acknowledged=True), actor='awx:maria', now=T2)
    assert actions == ['acknowledge'] and human['auto_acknowledged_at'] == '2025-01-15T14:43:00Z'
    assert (human['acknowledged_at'], human['acknowledged_by']) == ('2025-01-15T15:13:00Z', 'awx:maria')


def test_root_cause_is_recorded_with_the_resolution_or_on_its_own():
    record = opened()
    found, changes, actions = plan(record, params(status='identified', root_cause=' Pool too small '), actor='awx:maria', now=T1)
    assert actions == ['status', 'update'] and found['root_cause'] == 'Pool too small'
    assert changes['root_cause'] == {'before': None, 'after': 'Pool too small'}
    assert plan(found, params(root_cause='Pool too small'), actor='a', now=T2)[1:] == ({}, [])
    # with the resolution it is part of the resolve, not an update of its own
    resolved, changes, actions = plan(record, params(state='resolved', resolution='pool raised', root_cause='Pool too small'),
                                      actor='a', now=T2)
    assert actions == ['resolve'] and resolved['root_cause'] == 'Pool too small' and 'root_cause' in changes
    assert plan(resolved, params(state='resolved', resolution='pool raised', root_cause='Pool too small'),
                actor='a', now=T2)[1:] == ({}, [])
    corrected, changes, actions = plan(resolved, params(state='resolved', root_cause='Stuck consumer'), actor='a', now=T2)
    assert actions == ['update'] and set(changes) == {'root_cause'}
    # a reopen keeps it; an empty string removes it
    reopened = plan(resolved, params(reopen=True), actor='a', now=T2)[0]
    assert reopened['root_cause'] == 'Pool too small'
    cleared, changes, _a = plan(reopened, params(root_cause=''), actor='a', now=T2)
    assert cleared['root_cause'] is None and changes['root_cause'] == {'before': 'Pool too small', 'after': None}
    assert 'root_cause: Pool too small\n' in _incident.render(resolved)
