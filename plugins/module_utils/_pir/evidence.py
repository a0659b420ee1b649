# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The review's compliance section: notification obligations, data accessed, evidence preserved.

- Obligations: the record's, as ``_incident/obligations.derive`` states them at the review's
  time - met, met late, missed (deadline passed, nobody notified) or still open.
- Data accessed during the response: the ledger entries that say data was read - diagnostics
  bundles, application audit log reviews, access-log scans, audit trail verifications,
  application logs, backup restores. Explicit entries carry the detail; a task of a reading
  module is listed only where its run recorded no such entry of its own.
- Evidence preserved: the verified ledger head, and the digests the ledger recorded (bundle and
  summary SHA-256, restored backups' checksums, message digests).
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._incident.obligations import (
    derive,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.common import (
    clip,
    data_of,
    dry,
    entry_time,
    short_module,
)

STATES = {'met': 'MET', 'met_late': 'MET LATE', 'overdue': 'MISSED', 'open': 'OPEN'}
# Modules that read data; their task entries count where the run recorded no entry of the same kind.
READING_MODULES = {
    'app_logs_info': 'Application logs',
    'audit_review_info': 'Application audit log',
    'access_log_scan': 'Access logs',
    'pg_restore_db': 'Backup restore',
}


def _left(seconds: int | None) -> str:
    if seconds is None:
        return 'no deadline (no detection or opening time)'
    hours, minutes = divmod(abs(int(seconds)) // 60, 60)
    return f'{hours} h {minutes:02d} min ' + ('left' if seconds >= 0 else 'overdue')


def obligations(record: t.Mapping[str, t.Any], policy: t.Any = None, now: t.Any = None) -> dict[str, t.Any]:
    """Each obligation with its verdict, and the counts by verdict."""
    rows = []
    for item in derive(record, now=now, policy=policy or None):
        done = item['notified'] or {}
        if done:
            detail = f"{done.get('to')} notified at {done.get('at')} by {done.get('by')}" + (
                f" ({done['note']})" if done.get('note') else '')
        elif item['state'] == 'overdue':
            detail = f"not notified; {_left(item['seconds_left'])}"
        else:
            detail = f"not notified yet; {_left(item['seconds_left'])}"
        rows.append({'key': item['key'], 'title': item['title'], 'party': item['party'], 'due_at': item['due_at'],
                     'reason': item['reason'], 'state': item['state'], 'verdict': STATES[item['state']], 'detail': clip(detail)})
    counts = {state: sum(r['state'] == state for r in rows) for state in STATES}
    return {'items': rows, 'counts': counts, 'line': _line(record, rows, counts)}


def _line(record: t.Mapping[str, t.Any], rows: list[dict[str, t.Any]], counts: dict[str, int]) -> str:
    if not rows:
        impact = ', '.join(record.get('impact') or []) or 'none recorded'
        return f"No notification obligation applies (impact: {impact}; priority {record.get('priority') or 'n/a'})."
    return (f"{len(rows)} obligation(s): {counts['met']} met, {counts['met_late']} met late, "
            f"{counts['overdue']} missed, {counts['open']} still open.")


def _accessed(entry: t.Mapping[str, t.Any]) -> tuple[str, str] | None:
    """(kind, what) of an explicit entry that records data read, else None."""
    event, data = entry.get('event'), data_of(entry)
    message = clip(data.get('message') or '', 400)
    if event == 'finding' and data.get('bundle_sha256'):
        return 'Diagnostics bundle', f"{data.get('bundle_dir') or 'bundle'}: {message}"
    if event == 'finding' and data.get('step') == 'review':
        return 'Application audit log', message
    if event == 'finding' and data.get('step') == 'scan':
        return 'Access logs', message
    if event == 'verification' and 'audit' in data and 'ledger' in data:
        return 'Audit trail verification', message
    if event == 'note' and isinstance(data.get('backup'), dict) and data.get('target_db'):
        return 'Backup restore', message
    return None


def data_accessed(entries: t.Any) -> list[dict[str, t.Any]]:
    """What data the response read, oldest first: ``{ts, kind, what, person, seq}``."""
    entries = [e for e in entries if isinstance(e, dict) and not dry(e)] if isinstance(entries, list) else []
    rows: list[dict[str, t.Any]] = []
    explicit = set()
    for entry in entries:
        found = _accessed(entry)
        if found:
            explicit.add((data_of(entry).get('run'), found[0]))
            rows.append({'ts': entry_time(entry), 'kind': found[0], 'what': found[1], 'person': entry.get('actor') or '',
                         'seq': [entry.get('seq')]})
    grouped: dict[tuple[t.Any, str], dict[str, t.Any]] = {}
    for entry in entries:
        kind = READING_MODULES.get(short_module(entry))
        data = data_of(entry)
        if entry.get('event') != 'task' or not kind or entry.get('failed') or data.get('status') == 'skipped' \
                or (data.get('run'), kind) in explicit:
            continue
        key = (data.get('run'), kind)
        row = grouped.get(key)
        if row is None:
            row = grouped[key] = {'ts': entry_time(entry), 'kind': kind, 'hosts': [], 'tasks': [],
                                  'person': entry.get('actor') or '', 'seq': []}
            rows.append(row)
        row['seq'].append(entry.get('seq'))
        for field, value in (('hosts', entry.get('host')), ('tasks', entry.get('task'))):
            if value and value not in row[field]:
                row[field].append(value)
    for row in grouped.values():
        hosts, tasks = row.pop('hosts'), row.pop('tasks')
        row['what'] = clip(f"{', '.join(tasks) or 'read'}" + (f" on {', '.join(hosts)}" if hosts else ''), 400)
    return sorted(rows, key=lambda r: (r['ts'], r['seq'][0] or 0))


def evidence(entries: t.Any, verification: t.Mapping[str, t.Any]) -> list[dict[str, str]]:
    """What preserves the record: ``{what, detail}`` rows."""
    entries = [e for e in entries if isinstance(e, dict) and not dry(e)] if isinstance(entries, list) else []
    rows = []
    head = verification.get('head') or {}
    if verification.get('checked'):
        state = 'verified' if verification.get('is_valid') else 'DOES NOT VERIFY'
        rows.append({'what': 'Incident ledger head', 'detail': (
            f"seq {head.get('sequence_number')} hash {head.get('entry_hash')} ({state} at {verification.get('verified_at')}, "
            f"{verification.get('total_entries')} entries)")})
    else:
        rows.append({'what': 'Incident ledger head', 'detail': 'not verified - the ledger chain was not checked'})
    messages = 0
    for entry in entries:
        data = data_of(entry)
        if entry.get('event') == 'finding' and data.get('bundle_sha256'):
            rows.append({'what': f"Diagnostics bundle {data.get('bundle_dir') or ''}".strip(), 'detail': (
                f"bundle.json sha256 {data['bundle_sha256']}, summary.md sha256 {data.get('summary_sha256') or 'n/a'} "
                f"(ledger seq {entry.get('seq')})")})
        elif entry.get('event') == 'note' and isinstance(data.get('backup'), dict) and isinstance(data.get('checksum'), dict):
            checksum = data['checksum']
            ok = {True: 'matches the recorded checksum', False: 'DOES NOT match the recorded checksum'}.get(
                checksum.get('ok'), 'no recorded checksum')
            rows.append({'what': f"Restored backup {data['backup'].get('backup_id') or data['backup'].get('path') or ''}".strip(),
                         'detail': f"sha256 {checksum.get('actual') or 'n/a'}, {ok} (ledger seq {entry.get('seq')})"})
        elif entry.get('event') == 'communication' and data.get('message_sha256'):
            messages += 1
    if messages:
        rows.append({'what': 'Messages sent', 'detail': f'{messages} message(s) recorded with the SHA-256 of their text'})
    return [{'what': clip(r['what'], 200), 'detail': clip(r['detail'], 400)} for r in rows]


def compliance_section(record: t.Mapping[str, t.Any], entries: t.Any, verification: t.Mapping[str, t.Any],
                       obligation_policy: t.Any = None, now: t.Any = None) -> dict[str, t.Any]:
    return {'obligations': obligations(record, obligation_policy, now), 'data_accessed': data_accessed(entries),
            'evidence': evidence(entries, verification)}
