# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The key events: the runbook's condensed timeline, from the ledger, only what happened."""

from __future__ import annotations

from _pir_entries import incident, ledger, rec, task
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.events import key_events


def _rows(entries, record):
    return [(r['kind'], r['ts'][11:19], r['action'], r['person']) for r in key_events(entries, record)]


def test_a_whole_response_gives_every_key_event_once_in_order():
    identified = rec(status='identified', root_cause='Stuck consumer')
    resolved = dict(identified, state='resolved', status='resolved', resolution='Consumer restarted',
                    resolved_at='2025-01-15T10:50:00Z', resolved_by='awx:maria')
    entries = ledger(
        ('10:05:00', incident('open', rec())),
        ('10:06:00', {'event': 'playbook_start', 'phase': 'investigate', 'actor': 'awx:bob',
                      'data': {'run': 'i', 'playbook': '/ops/playbooks/investigate.yml'}}),
        ('10:07:00', {'event': 'finding', 'phase': 'investigate', 'data': {'run': 'i', 'message': 'Pool saturated'}}),
        ('10:10:00', task('Terminate sessions', 'trdrhub.incident.pg_terminate_sessions', 'contain', run='c1', check_mode=True)),
        ('10:12:00', task('Record', 'trdrhub.incident.ledger_record', 'contain', run='c2')),
        ('10:13:00', task('Terminate sessions', 'trdrhub.incident.pg_terminate_sessions', 'contain', run='c2', status='failed')),
        ('10:14:00', dict(task('Terminate sessions', 'trdrhub.incident.pg_terminate_sessions', 'contain', run='c2'),
                          actor='awx:carol')),
        ('10:20:00', incident('update', identified, {'status': {'before': 'investigating', 'after': 'identified'},
                                                     'root_cause': {'before': None, 'after': 'Stuck consumer'}},
                              actor='awx:maria')),
        ('10:30:00', task('Restart worker', 'trdrhub.incident.k8s_rollout', 'recover', run='r')),
        ('10:35:00', incident('status', dict(identified, status='monitoring'),
                              {'status': {'before': 'identified', 'after': 'monitoring'}})),
        ('10:40:00', {'event': 'verification', 'phase': 'verify',
                      'data': {'run': 'v', 'verdict': 'failed', 'message': 'Verification FAILED'}}),
        ('10:45:00', {'event': 'verification', 'phase': 'verify',
                      'data': {'run': 'v2', 'verdict': 'passed', 'message': 'Verification PASSED: 3 passed'}}),
        ('10:50:00', incident('resolve', resolved)),
    )
    assert _rows(entries, resolved) == [
        ('detected', '10:00:00', 'Detected: Queue stuck, P2 (record opened at 10:05:00)', 'awx:alice'),
        ('investigation', '10:06:00', 'Investigation started: ran investigate.yml', 'awx:bob'),
        ('containment', '10:14:00', 'Containment: Terminate sessions on db-1', 'awx:carol'),
        ('root_cause', '10:20:00', 'Root cause identified: Stuck consumer', 'awx:maria'),
        ('fix', '10:30:00', 'Fix implemented: Restart worker on db-1', 'awx:alice'),
        ('verified', '10:45:00', 'Service restored - Verification PASSED: 3 passed', 'awx:alice'),
        ('resolved', '10:50:00', 'Resolved: Consumer restarted', 'awx:maria'),
    ]


def test_only_what_happened_and_the_fallbacks():
    opened = rec(detected_at=None)
    identified = dict(opened, status='identified')
    entries = ledger(
        ('10:05:00', incident('open', opened)),
        ('10:20:00', incident('status', identified, {'status': {'before': 'investigating', 'after': 'identified'}})),
        ('10:35:00', incident('status', dict(identified, status='monitoring'),
                              {'status': {'before': 'identified', 'after': 'monitoring'}}, actor='awx:maria')),
        # a recorded dry run did nothing
        ('10:40:00', {'event': 'verification', 'phase': 'verify', 'data': {'verdict': 'passed', 'dry_run': True}}),
    )
    assert _rows(entries, dict(identified, status='monitoring')) == [
        ('detected', '10:05:00', 'Detected: Queue stuck, P2', 'awx:alice'),
        ('root_cause', '10:20:00', 'Root cause identified (status identified)', 'awx:alice'),
        ('fix', '10:35:00', 'Fix implemented (status monitoring)', 'awx:maria'),
    ]
    assert key_events('not a list', rec(detected_at=None, opened_at=None)) == []
