# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    make_entry,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.meeting import MeetingError
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.pir import (
    PirError,
    build_review,
    build_timeline,
    human,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.render import (
    md,
    render,
)

EVIL = '<img src=x onerror=alert(1)> | [link](javascript:x)'


def rec(**kw):
    base = {'incident_id': 'INC-9', 'state': 'open', 'status': 'investigating', 'title': 'Queue stuck', 'priority': 'P2',
            'detected_at': '2025-01-15T10:00:00Z', 'opened_at': '2025-01-15T10:05:00Z',
            'response_deadline': '2025-01-15T11:00:00Z', 'impact': ['internal'], 'acknowledged': False}
    base.update(kw)
    return base


def ledger(*specs):
    entries, prev = [], None
    for seq, (clock, fields) in enumerate(specs, start=1):
        entry = make_entry('INC-9', seq, prev, fields, ts=f'2025-01-15T{clock}.000000+00:00')
        prev = entry['hash']
        entries.append(entry)
    return entries


def incident(action, record, changes=None, **data):
    return {'event': 'incident', 'data': {'action': action, 'actions': [action], 'changes': changes or {}, 'record': record, **data}}


def test_timeline_collapses_and_keeps_what_matters():
    entries = ledger(
        ('10:05:00', {'event': 'playbook_start', 'data': {'run': 'a', 'playbook': 'triage.yml'}}),
        ('10:05:01', {'event': 'task', 'module': 'trdrhub.incident.incident', 'changed': True, 'failed': False,
                      'task': 'open', 'data': {'run': 'a', 'status': 'changed'}}),
        ('10:05:02', incident('open', rec())),
        ('10:06:00', {'event': 'task', 'task': 'probe', 'changed': False, 'failed': False, 'data': {'run': 'a', 'status': 'ok'}}),
        ('10:07:00', {'event': 'playbook_start', 'data': {'run': 'b', 'check_mode': True}}),
        ('10:07:01', {'event': 'task', 'task': 'x', 'changed': True, 'data': {'run': 'b', 'check_mode': True}}),
        ('10:08:00', {'event': 'communication', 'data': {'run': 'c', 'channel': 'slack', 'kind': 'initial'}}),
        ('10:08:01', {'event': 'communication', 'data': {'run': 'c', 'channel': 'pagerduty', 'kind': 'initial', 'action': 'trigger'}}),
        ('10:09:00', {'event': 'task', 'task': 'restart', 'host': 'h', 'failed': True, 'data': {'run': 'c', 'msg': 'boom', 'ignored': True}}),
        ('10:10:00', {'event': 'task', 'task': 'write', 'changed': True, 'data': {'run': 'd', 'role': 'trdrhub.incident.pir'}}),
        ('10:10:00', {'event': 'playbook_start', 'data': {'run': 'd'}}),
    )
    rows = build_timeline(entries)
    assert [r['action'] for r in rows] == [
        'Ran triage.yml (2 tasks, 1 changed, 0 failed)',
        'Incident opened: Queue stuck (P2)',
        'Communication (initial): slack, pagerduty trigger',
        'FAILED (ignored): restart on h: boom',
    ]
    assert rows[2]['seq'] == [7, 8] and rows[3]['category'] == 'failure'


def _sent(clock, run, channel, module, kind='initial', action=None):
    """What communicate.yml writes per channel: the sending task, its message, the recording task."""
    data = {'run': run, 'channel': channel, 'kind': kind, **({'action': action} if action else {})}
    return [
        (clock + ':00', {'event': 'task', 'module': module, 'task': f'{channel} | Send', 'host': 'localhost',
                         'changed': True, 'failed': False, 'data': {'run': run, 'status': 'changed'}}),
        (clock + ':01', {'event': 'communication', 'phase': 'communicate', 'data': data}),
        (clock + ':02', {'event': 'task', 'module': 'trdrhub.incident.ledger_record', 'task': 'Record | Record the message',
                         'host': 'localhost', 'changed': False, 'failed': False, 'data': {'run': run, 'status': 'ok'}}),
    ]


def test_messages_of_one_run_are_one_row_across_their_sending_tasks():
    """communicate.yml: send, record, send, record ... is one row, as docs/pir.md shows it."""
    entries = ledger(
        ('10:08:00', {'event': 'playbook_start', 'data': {'run': 'c', 'playbook': 'communicate.yml'}}),
        *_sent('10:08', 'c', 'slack', 'trdrhub.incident.slack_message'),
        *_sent('10:09', 'c', 'pagerduty', 'trdrhub.incident.pagerduty_event', action='trigger'),
        *_sent('10:10', 'c', 'statuspage', 'trdrhub.incident.statuspage_incident'),
        *_sent('10:11', 'c', 'email', 'email_notify'),
        ('10:12:00', {'event': 'task', 'module': 'trdrhub.incident.slack_message', 'task': 'Other | Post', 'host': 'h',
                      'changed': True, 'failed': False, 'data': {'run': 'x', 'status': 'changed'}}),
        ('10:13:00', {'event': 'task', 'module': 'trdrhub.incident.email_notify', 'task': 'email | Send', 'host': 'h',
                      'failed': True, 'data': {'run': 'c', 'msg': 'Connection refused'}}),
    )
    assert [r['action'] for r in build_timeline(entries)] == [
        'Ran communicate.yml (9 tasks, 4 changed, 1 failed)',
        'Communication (initial): slack, pagerduty trigger, statuspage, email',
        'Changed: Other | Post on h',                   # a run that recorded no message keeps its task row
        'FAILED: email | Send on h: Connection refused',  # a failed send is always a row
    ]


@pytest.mark.parametrize('ack, verdict, text', [
    ('10:40:00', 'met', 'within the P2 target'),
    ('11:20:00', 'missed', '20 min after the P2 deadline'),
])
def test_compliance(ack, verdict, text):
    acked = rec(acknowledged=True, acknowledged_at=f'2025-01-15T{ack}Z')
    resolved = dict(acked, state='resolved', status='resolved', resolved_at='2025-01-15T12:30:00Z', duration_seconds=9000)
    entries = ledger(('10:05:00', incident('open', rec())), (ack, incident('acknowledge', acked)),
                     ('12:30:00', incident('resolve', resolved)))
    review = build_review(entries, 'INC-9', now='2025-01-15T13:00:00Z')
    comp = review['compliance']
    assert comp['verdict'] == verdict and text in comp['text']
    assert comp['target_minutes'] == 60 and comp['time_to_resolve_seconds'] == 9000
    assert (review['went_well'] if verdict == 'met' else review['could_improve'])[0].startswith('Response')


def test_no_response_before_the_deadline_is_missed_or_pending():
    entries = ledger(('10:05:00', incident('open', rec())))
    assert build_review(entries, 'INC-9', now='2025-01-15T12:00:00Z')['compliance']['verdict'] == 'missed'
    assert build_review(entries, 'INC-9', now='2025-01-15T10:30:00Z')['compliance']['verdict'] == 'pending'


def test_human_durations():
    assert [human(s) for s in (None, 35, 2560, 4320, 90000)] == ['n/a', '35 s', '42 min', '1 h 12 min', '1 d 1 h']


def test_render_escapes_everything_and_svg_is_xml():
    entries = ledger(('10:05:00', incident('open', rec(title=EVIL), note=EVIL)),
                     ('10:06:00', {'event': 'note', 'actor': EVIL, 'data': {'message': EVIL}}))
    verification = {'is_valid': True, 'total_entries': 2, 'violation_count': 0, 'verified_at': 'now',
                    'chains': {'INC-9': {'head': {'sequence_number': 2, 'entry_hash': entries[-1]['hash']}}}}
    out = render(build_review(entries, 'INC-9', verification=verification, content={'root_cause': EVIL},
                              now='2025-01-15T10:30:00Z'))
    for text in out.values():
        assert '<img' not in text
    assert ' [link](javascript' not in out['markdown'] and '&lt;img src=x onerror=alert(1)&gt; \\| \\[link\\]' in out['markdown']
    assert '&lt;img src=x onerror=alert(1)&gt;' in out['html']
    root = ET.fromstring(out['svg'])
    assert len(root.findall('{http://www.w3.org/2000/svg}circle')) == 2
    assert 'VALID - 2 entries, head seq 2' in out['markdown']


def test_invalid_ledger_is_marked():
    entries = ledger(('10:05:00', incident('open', rec())))
    review = build_review(entries, 'INC-9', verification={'is_valid': False, 'total_entries': 1, 'violation_count': 1,
                                                          'violations': [{'message': 'entry 1 hash mismatch'}]})
    out = render(review)
    assert 'INVALID - 1 violation(s)' in out['markdown'] and '> - entry 1 hash mismatch' in out['markdown']
    assert 'class="invalid"' in out['html']


def test_errors():
    with pytest.raises(PirError, match='no entries'):
        build_review([], 'INC-9')
    with pytest.raises(PirError, match='no incident record'):
        build_review(ledger(('10:00:00', {'event': 'note', 'data': {}})), 'INC-9')
    assert md('a|b') == 'a\\|b'


def test_only_a_persons_acknowledgement_is_the_response_and_the_review_shows_both():
    auto = rec(auto_acknowledged_at='2025-01-15T10:05:30Z', auto_acknowledged_by='awx:alice')
    entries = ledger(('10:05:00', incident('open', rec())), ('10:05:30', incident('auto_acknowledge', auto)),
                     ('10:06:00', {'event': 'decision', 'data': {'message': 'Triage: P2'}}))
    comp = build_review(entries, 'INC-9', now='2025-01-15T10:30:00Z')['compliance']
    assert comp['verdict'] == 'pending' and comp['acknowledged_at'] is None and comp['time_to_acknowledge_seconds'] is None
    assert 'auto-acknowledged at 2025-01-15T10:05:30Z, which does not count' in comp['text']
    comp = build_review(entries, 'INC-9', now='2025-01-15T12:00:00Z')['compliance']
    assert comp['verdict'] == 'missed' and comp['first_action_at'] is not None

    human = dict(auto, acknowledged=True, acknowledged_at='2025-01-15T10:20:00Z', acknowledged_by='awx:maria')
    entries = ledger(('10:05:00', incident('open', rec())), ('10:05:30', incident('auto_acknowledge', auto)),
                     ('10:20:00', incident('acknowledge', human)))
    review = build_review(entries, 'INC-9', now='2025-01-15T12:00:00Z')
    comp = review['compliance']
    assert comp['verdict'] == 'met' and comp['time_to_acknowledge_seconds'] == 1200
    assert comp['text'].startswith('acknowledged by awx:maria at 2025-01-15T10:20:00Z, 20 min after detection')
    md_text = render(review)['markdown']
    assert '| Auto-acknowledged | 2025-01-15 10:05:30 UTC |' in md_text
    assert '| Acknowledged | by awx:maria at 2025-01-15 10:20:00 UTC |' in md_text
    assert '| Time to acknowledge | 20 min |' in md_text
    rows = [r['action'] for r in review['timeline']]
    assert 'Alerts acknowledged automatically (silenced)' in rows and 'Acknowledged by awx:maria' in rows


def test_a_review_before_resolution_is_a_draft_that_lists_what_is_missing():
    monitoring = rec(status='monitoring')
    entries = ledger(('10:05:00', incident('open', rec())), ('10:30:00', incident('status', monitoring)))
    review = build_review(entries, 'INC-9', now='2025-01-15T10:40:00Z')
    out = render(review)
    first = out['markdown'].splitlines()[0]
    assert first == ('**DRAFT - not final until the incident is resolved. Missing: resolution (the incident is '
                     'monitoring, not resolved); acknowledgement by a person; summary; root cause; action items; '
                     'ledger verification.**')
    assert '<title>DRAFT PIR INC-9' in out['html'] and 'DRAFT - not final' in out['html']

    resolved = rec(state='resolved', status='resolved', acknowledged=True, acknowledged_at='2025-01-15T10:20:00Z',
                   acknowledged_by='awx:maria', resolved_at='2025-01-15T11:00:00Z', resolution='Restarted the consumer')
    entries = ledger(('10:05:00', incident('open', rec())), ('11:00:00', incident('resolve', resolved)))
    review = build_review(entries, 'INC-9', content={'root_cause': 'A stuck consumer'}, now='2025-01-15T12:00:00Z')
    out = render(review)
    assert review['draft'] is False and review['missing'] == ['summary', 'action items', 'ledger verification']
    assert out['markdown'].startswith('# Post-Incident Review: Queue stuck') and 'DRAFT' not in out['html']


def test_the_status_row_names_the_state_only_where_it_differs():
    monitoring = rec(status='monitoring')
    out = render(build_review(ledger(('10:05:00', incident('status', monitoring))), 'INC-9', now='2025-01-15T10:40:00Z'))
    assert '| Status | monitoring (open) |' in out['markdown']
    resolved = rec(state='resolved', status='resolved', resolved_at='2025-01-15T11:00:00Z', resolution='Restarted')
    out = render(build_review(ledger(('11:00:00', incident('resolve', resolved))), 'INC-9', now='2025-01-15T12:00:00Z'))
    assert '| Status | resolved |' in out['markdown'] and 'resolved (resolved)' not in out['markdown']


def test_the_records_root_cause_is_the_reviews_and_a_row_of_the_timeline():
    found = rec(status='identified', root_cause='A stuck consumer')
    entries = ledger(('10:05:00', incident('open', rec())),
                     ('10:20:00', incident('update', found, {'root_cause': {'before': None, 'after': 'A stuck consumer'}})),
                     ('10:25:00', incident('update', rec(), {'root_cause': {'before': 'A stuck consumer', 'after': None}})))
    review = build_review(entries[:2], 'INC-9', now='2025-01-15T10:30:00Z')
    assert review['root_cause'] == 'A stuck consumer' and review['recorded_root_cause'] is None
    assert 'root cause' not in review['missing']
    assert [r['action'] for r in build_timeline(entries)][1:] == ['Root cause: A stuck consumer', 'Root cause removed']
    with pytest.raises(MeetingError, match='pir_followup_days must be a whole number'):
        build_review(entries, 'INC-9', meeting={'followup_days': 'soon'})
