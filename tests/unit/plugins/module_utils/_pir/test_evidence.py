# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The compliance section: obligations met or missed, data accessed, evidence preserved."""

from __future__ import annotations

import pytest
from _pir_entries import ledger, rec, task
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.obligations import ObligationError
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.evidence import (
    compliance_section,
    data_accessed,
    evidence,
    obligations,
)

BREACH = rec(priority='P1', impact=['security'], notifications={
    'regulator': {'at': '2025-01-16T09:00:00Z', 'by': 'awx:dpo', 'to': 'ICO, case 123', 'note': None},
    'customers_breach': {'at': '2025-01-19T09:00:00Z', 'by': 'awx:cs', 'to': 'affected tenants', 'note': 'by email'},
})


def test_obligations_met_met_late_missed_and_open():
    result = obligations(BREACH, now='2025-01-20T00:00:00Z')
    states = {o['key']: (o['verdict'], o['detail']) for o in result['items']}
    assert states == {
        'regulator': ('MET', 'ICO, case 123 notified at 2025-01-16T09:00:00Z by awx:dpo'),
        'customers_breach': ('MET LATE', 'affected tenants notified at 2025-01-19T09:00:00Z by awx:cs (by email)'),
        'insurance': ('MISSED', 'not notified; 38 h 00 min overdue'),
    }
    assert result['line'] == '3 obligation(s): 1 met, 1 met late, 1 missed, 0 still open.'
    early = obligations(BREACH, now='2025-01-17T10:00:00Z')
    assert early['counts'] == {'met': 1, 'met_late': 1, 'overdue': 0, 'open': 1}
    assert [o['detail'] for o in early['items'] if o['key'] == 'insurance'] == ['not notified yet; 24 h 00 min left']
    # the inventory's table decides: an obligation removed is not owed
    assert [o['key'] for o in obligations(BREACH, {'insurance': None}, now='2025-01-20T00:00:00Z')['items']] == [
        'regulator', 'customers_breach']
    with pytest.raises(ObligationError, match='obligation_policy.insurance must be a dict'):
        obligations(BREACH, {'insurance': 'yes'})


def test_no_obligation():
    assert obligations(rec(), now='2025-01-20T00:00:00Z')['line'] == \
        'No notification obligation applies (impact: internal; priority P2).'


def _accessing_ledger():
    return ledger(
        ('10:10:00', task('Logs | Read the API logs', 'trdrhub.incident.app_logs_info', 'investigate', status='ok', run='i',
                          host='app-1')),
        ('10:10:05', task('Logs | Read the API logs', 'trdrhub.incident.app_logs_info', 'investigate', status='ok', run='i',
                          host='app-2')),
        ('10:10:06', task('Logs | Read the API logs', 'trdrhub.incident.app_logs_info', 'investigate', status='skipped', run='i')),
        ('10:10:07', task('Logs | Read', 'trdrhub.incident.app_logs_info', 'investigate', status='ok', run='dry', check_mode=True)),
        ('10:11:00', {'event': 'finding', 'phase': 'investigate', 'data': {
            'run': 'i', 'message': 'Diagnostics collected: 2 finding(s).', 'bundle_dir': '/srv/i/INC-9/diagnostics/x',
            'bundle_sha256': 'a' * 64, 'summary_sha256': 'b' * 64, 'written': True}}),
        ('10:12:00', {'event': 'finding', 'phase': 'investigate', 'data': {
            'run': 'dry2', 'message': 'Diagnostics collected (check mode)', 'bundle_sha256': None, 'dry_run': True}}),
        ('10:20:00', task('Review | Read the audit log', 'trdrhub.incident.audit_review_info', 'contain', status='ok', run='s')),
        ('10:21:00', {'event': 'finding', 'phase': 'contain', 'actor': 'awx:sec', 'data': {
            'run': 's', 'step': 'review', 'message': 'Audit review: 120 entries by 4 actor(s), 1 flagged (mallory).'}}),
        ('10:30:00', task('Restore | Restore the backup', 'trdrhub.incident.pg_restore_db', 'recover', run='r')),
        ('10:31:00', {'event': 'note', 'phase': 'recover', 'data': {
            'run': 'r', 'message': 'Restored trdrhub_backup_20250115_020000 into recovery_db in 42s (512 TOC entries).',
            'target_db': 'recovery_db', 'backup': {'backup_id': 'trdrhub_backup_20250115_020000'},
            'checksum': {'expected': 'c' * 64, 'actual': 'c' * 64, 'ok': True}}}),
        ('10:32:00', task('Restore | Restore the backup', 'trdrhub.incident.pg_restore_db', 'recover', run='r2', status='failed')),
        ('10:40:00', {'event': 'communication', 'phase': 'communicate', 'data': {'run': 'm', 'message_sha256': 'd' * 64}}),
        ('10:41:00', {'event': 'communication', 'phase': 'communicate', 'data': {'run': 'm', 'message_sha256': 'e' * 64}}),
    )


def test_data_accessed_lists_each_read_once():
    rows = [(r['ts'][11:19], r['kind'], r['what'], r['person']) for r in data_accessed(_accessing_ledger())]
    assert rows == [
        ('10:10:00', 'Application logs', 'Logs | Read the API logs on app-1, app-2', 'awx:alice'),
        ('10:11:00', 'Diagnostics bundle', '/srv/i/INC-9/diagnostics/x: Diagnostics collected: 2 finding(s).', 'awx:alice'),
        ('10:21:00', 'Application audit log', 'Audit review: 120 entries by 4 actor(s), 1 flagged (mallory).', 'awx:sec'),
        ('10:31:00', 'Backup restore', 'Restored trdrhub_backup_20250115_020000 into recovery_db in 42s (512 TOC entries).',
         'awx:alice'),
    ]
    assert data_accessed(None) == []


def test_evidence_preserved():
    head = {'sequence_number': 14, 'entry_hash': 'f' * 64}
    verification = {'checked': True, 'is_valid': True, 'head': head, 'verified_at': '2025-01-15T11:00:00Z', 'total_entries': 14}
    rows = evidence(_accessing_ledger(), verification)
    assert rows == [
        {'what': 'Incident ledger head', 'detail': f"seq 14 hash {'f' * 64} (verified at 2025-01-15T11:00:00Z, 14 entries)"},
        {'what': 'Diagnostics bundle /srv/i/INC-9/diagnostics/x',
         'detail': f"bundle.json sha256 {'a' * 64}, summary.md sha256 {'b' * 64} (ledger seq 5)"},
        {'what': 'Restored backup trdrhub_backup_20250115_020000',
         'detail': f"sha256 {'c' * 64}, matches the recorded checksum (ledger seq 10)"},
        {'what': 'Messages sent', 'detail': '2 message(s) recorded with the SHA-256 of their text'},
    ]
    assert evidence([], {'checked': False})[0]['detail'] == 'not verified - the ledger chain was not checked'
    section = compliance_section(rec(), _accessing_ledger(), verification, now='2025-01-15T12:00:00Z')
    assert set(section) == {'obligations', 'data_accessed', 'evidence'}
