# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Escalation: schedule per priority, acknowledgement, resolution, external categories, idempotence, storage."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.escalation import EscalationError, decide, recorded

UTC = datetime.timezone.utc


DETECTED = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)


KEY = 'R0utingKeyR0utingKeyR0utingKey12'


CONTACTS = {
    'team_lead': {'name': 'Dana Lee', 'slack': 'U024BE7LH', 'email': 'dana@trdrhub.example', 'pagerduty_routing_key': KEY},
    'engineering_manager': {'name': 'Sam Ortiz', 'email': 'sam@trdrhub.example'},
}


def record(priority='P1', **kw):
    base = {'incident_id': 'INC-E1', 'state': 'open', 'status': 'investigating', 'priority': priority, 'impact': [],
            'acknowledged': False, 'acknowledged_at': None, 'detected_at': '2025-01-15T14:30:00Z',
            'opened_at': '2025-01-15T14:33:00Z'}
    base.update(kw)
    return base


def at(minutes):
    return DETECTED + datetime.timedelta(minutes=minutes)


def keys(decision):
    return [item['key'] for item in decision['new_escalations']]


def entry(key, seq=1, action='escalate', **data):
    kind = 'level' if key.startswith('L') else 'external'
    level = int(key[1:]) if kind == 'level' else None
    return {'seq': seq, 'event': 'escalation', 'ts': '2025-01-15T14:46:00.000001+00:00', 'actor': 'local:oncall',
            'data': dict({'action': action, 'escalation': key, 'kind': kind, 'level': level}, **data)}


@pytest.mark.parametrize('priority,minutes,due,new,next_level,next_at', [
    ('P1', 10, 1, [], 2, '2025-01-15T14:45:00Z'),
    ('P1', 15, 2, ['L2'], 3, '2025-01-15T15:00:00Z'),
    ('P1', 40, 3, ['L2', 'L3'], 4, '2025-01-15T15:30:00Z'),
    ('P1', 61, 4, ['L2', 'L3', 'L4'], None, None),
    ('P2', 40, 1, [], 2, '2025-01-15T15:30:00Z'),
    ('P2', 90, 2, ['L2'], 3, '2025-01-15T16:30:00Z'),
    ('P2', 125, 3, ['L2', 'L3'], None, None),
    ('P3', 200, 1, [], 2, '2025-01-15T18:30:00Z'),
    ('P3', 241, 2, ['L2'], None, None),
    ('P4', 5000, 1, [], None, None),
])
def test_schedule_of_each_priority(priority, minutes, due, new, next_level, next_at):
    decision = decide(record(priority), [], now=at(minutes))
    assert (decision['due_level'], keys(decision)) == (due, new)
    assert (decision['next_level'], decision['next_escalation_at']) == (next_level, next_at)
    assert decision['current_level'] == 1 and decision['reached_level'] == max([1] + [int(k[1:]) for k in new])


def test_clock_starts_at_opening_without_detection_time():
    decision = decide(record(detected_at=None), [], now=at(47))   # opened 14:33, now 15:17: 44 minutes
    assert decision['clock_started_at'] == '2025-01-15T14:33:00Z' and keys(decision) == ['L2', 'L3']


def test_acknowledged_incident_stops_the_clock():
    acked = record(acknowledged=True, acknowledged_at='2025-01-15T14:40:00Z')
    decision = decide(acked, [], now=at(90))
    assert decision['new_escalations'] == [] and decision['due_level'] == 1 and decision['next_escalation_at'] is None
    assert decision['reasons'] == ['acknowledged at 2025-01-15T14:40:00Z: time-based escalation stopped']
    # the commander can still escalate by hand
    assert keys(decide(acked, [], now=at(90), level=3)) == ['L2', 'L3']


@pytest.mark.parametrize('extra', [{}, {'level': 4, 'external': ['legal']}])
def test_resolved_incident_never_escalates(extra):
    done = record(state='resolved', status='resolved', resolved_at='2025-01-15T15:00:00Z', impact=['security'])
    decision = decide(done, [entry('L2')], now=at(300), **extra)
    assert decision['new_escalations'] == [] and decision['undelivered'] == [] and decision['next_level'] is None
    assert 'never escalated' in decision['reasons'][0]


def test_recorded_escalations_are_not_repeated():
    entries = [entry('L2', 1), entry('L2', 2, action='notified')]
    decision = decide(record(), entries, now=at(40))
    assert keys(decision) == ['L3'] and decision['current_level'] == 2 and decision['undelivered'] == []
    assert decision['escalated'][0]['recorded_at'] == '2025-01-15T14:46:00Z'
    entries += [entry('L3', 3), entry('L3', 4, action='notified')]
    again = decide(record(), entries, now=at(40))
    assert again['new_escalations'] == [] and again['notify'] == [] and again['reached_level'] == 3


def test_escalation_goes_up_only():
    decision = decide(record(), [entry('L3'), entry('L3', 2, action='notified')], now=at(40))
    assert decision['new_escalations'] == [] and decision['current_level'] == 3


def test_recorded_but_not_notified_is_undelivered():
    decision = decide(record(), [entry('L2')], now=at(20), contacts=CONTACTS)
    assert decision['new_escalations'] == []
    [again] = decision['undelivered']
    assert again['key'] == 'L2' and again['contact']['name'] == 'Dana Lee' and decision['notify'] == [again]


def test_notes_written_by_hand_do_not_count():
    note = {'seq': 1, 'event': 'escalation', 'data': {'message': 'Called Dana'}}
    assert recorded([note]) == ({}, set())
    assert keys(decide(record(), [note], now=at(20))) == ['L2']


def test_external_categories_requested_and_by_impact():
    decision = decide(record(impact=['security']), [], now=at(5), external=['cloud_provider', 'PR'])
    assert keys(decision) == ['team:security_team', 'external:cloud_provider', 'external:pr', 'external:legal']
    by_key = {item['key']: item for item in decision['new_escalations']}
    assert by_key['external:pr']['reason'] == 'requested'
    assert by_key['external:legal']['reason'].startswith('impact security: Data breach')
    recorded_legal = decide(record(impact=['data_loss']), [entry('external:legal'), entry('external:legal', 2, action='notified')],
                            now=at(5))
    assert keys(recorded_legal) == ['team:dba', 'external:pr']
    quiet = decide(record(impact=['security']), [], now=at(5), rules={'pr': {'when_impact': []}, 'legal': {'when_impact': []}})
    assert keys(quiet) == ['team:security_team']


TEAM_CONTACTS = {
    'dba': {'name': 'Ravi Patel', 'secondary': 'Mia Chen', 'phone': '+1 555 0110', 'secondary_phone': '+1 555 0111',
            'email': 'dba@trdrhub.example', 'pagerduty_routing_key': KEY},
    'security_team': {'name': 'Alex Kim', 'secondary': 'Jo Park', 'email': 'security@trdrhub.example'},
}


@pytest.mark.parametrize('impact,teams', [
    (['Data Integrity'], ['team:dba']),
    (['data_loss'], ['team:dba']),
    (['Security'], ['team:security_team']),
    (['security', 'data-integrity', 'customer-facing'], ['team:dba', 'team:security_team']),
    (['customer-facing', 'internal', 'compliance'], []),
])
def test_impact_pages_the_specialist_teams(impact, teams):
    decision = decide(record(priority='P3', impact=impact), [], now=at(1), contacts=TEAM_CONTACTS)
    paged = [item for item in decision['new_escalations'] if item['kind'] == 'team']
    assert [item['key'] for item in paged] == teams
    for item in paged:
        assert item['contact']['name'] == TEAM_CONTACTS[item['who']]['name']
        assert item['contact']['secondary'] == TEAM_CONTACTS[item['who']]['secondary']
        assert item['level'] is None and item['contact_ref'] == item['category'] == item['who']
    assert KEY not in json.dumps(decision)


def test_specialist_team_paged_once_and_again_until_notified():
    first = entry('team:dba', kind='team', level=None, category='dba', who='dba')
    again = decide(record(impact=['data_integrity']), [first], now=at(5), contacts=TEAM_CONTACTS)
    assert keys(again) == []
    assert [item['key'] for item in again['undelivered']] == ['team:dba']
    assert again['undelivered'][0]['contact']['name'] == 'Ravi Patel'
    done = decide(record(impact=['data_integrity']), [first, entry('team:dba', 2, action='notified')], now=at(5))
    assert done['notify'] == []
    assert decide(record(impact=['security']), [], now=at(5))['missing_contacts'] == [
        'no contact for Security Team (contacts.security_team)', 'no contact for Legal / compliance (external_contacts.legal)',
        'no contact for PR / communications (external_contacts.pr)']
    resolved = decide(record(impact=['security'], state='resolved', resolved_at='2025-01-15T15:00:00Z'), [], now=at(40))
    assert resolved['notify'] == []


def test_vendor_categories_monitoring_and_alerting():
    vendors = {'monitoring': {'name': 'Datadog Support', 'email': 'support@monitoring.example'}}
    decision = decide(record(), [], now=at(1), external=['monitoring', 'alerting'], external_contacts=vendors)
    by_key = {item['key']: item for item in decision['new_escalations']}
    assert by_key['external:monitoring']['contact']['name'] == 'Datadog Support'
    assert by_key['external:alerting']['title'] == 'Alerting vendor'
    assert decision['missing_contacts'] == ['no contact for Alerting vendor (external_contacts.alerting)']


def test_contacts_are_returned_without_routing_keys():
    decision = decide(record(), [], now=at(40), contacts=CONTACTS)
    l2, l3 = decision['new_escalations']
    assert l2['contact'] == {'name': 'Dana Lee', 'slack': 'U024BE7LH', 'email': 'dana@trdrhub.example', 'phone': None,
                             'secondary': None, 'secondary_phone': None, 'secondary_email': None,
                             'pagerduty_escalation_policy': None, 'pagerduty': True}
    assert l3['contact']['pagerduty'] is False and KEY not in json.dumps(decision)
    assert decide(record(), [], now=at(61), contacts=CONTACTS)['missing_contacts'] == [
        'no contact for CTO / VP Engineering (contacts.executive)']


def test_policy_changes_the_schedule():
    policy = {'P2': {'escalation': [{'level': 2, 'after_minutes': 10, 'who': 'team_lead', 'title': 'Team lead'}]}}
    assert keys(decide(record('P2'), [], now=at(11), policy=policy)) == ['L2']


@pytest.mark.parametrize('kwargs,message', [
    ({'external': ['press']}, "external category 'press' is not one of"),
    ({'level': 5}, 'level must be 1 to 4'),
    ({'contacts': {'team_lead': {'pager': 'x'}}}, 'contacts.team_lead has unknown field(s) pager'),
    ({'contacts': {'team_lead': 'dana'}}, 'contacts.team_lead must be a dict'),
    ({'rules': {'pr': {'when': []}}}, 'external_rules.pr has unknown key(s) when'),
    ({'now': 'yesterday'}, 'now must be an ISO 8601 time'),
])
def test_bad_input_is_one_message(kwargs, message):
    kwargs.setdefault('now', at(20))
    with pytest.raises(EscalationError, match=message.replace('(', r'\(').replace(')', r'\)')):
        decide(record(), [], **kwargs)
