# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The review's key events: the runbook's condensed timeline (Time | Action | Person), from the ledger.

Detected, investigation started, root cause identified, containment, fix implemented,
verification passed and resolved - each once, only when the ledger shows it happened. The
entries given are the ones the full timeline is built from (the review's own runs left out);
check-mode tasks and dry runs never count.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    parse_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.common import (
    clip,
    data_of,
    dry,
    entry_time,
    playbook_name,
    short_module,
)

# Tasks that only record or send messages are not the work itself.
NOT_WORK = ('incident', 'ledger_record', 'slack_message', 'pagerduty_event', 'statuspage_incident', 'email_notify',
            'incident_ticket', 'approval', 'approval_vote')
KINDS = ('detected', 'investigation', 'root_cause', 'containment', 'fix', 'verified', 'resolved')


def _describe(entry: t.Mapping[str, t.Any]) -> str:
    """What an entry did, in a few words."""
    event, data = entry.get('event'), data_of(entry)
    if event == 'playbook_start':
        return f'ran {playbook_name(entry)}'
    if event == 'task':
        host = f" on {entry['host']}" if entry.get('host') else ''
        return f"{entry.get('task') or short_module(entry) or 'task'}{host}"
    return str(data.get('message') or event)


def _changes(entry: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    changes = data_of(entry).get('changes')
    return changes if isinstance(changes, dict) else {}


def _status_to(entry: t.Mapping[str, t.Any], status: str) -> bool:
    change = _changes(entry).get('status')
    return entry.get('event') == 'incident' and isinstance(change, dict) and change.get('after') == status


def _work(entry: t.Mapping[str, t.Any], phase: str) -> bool:
    """A task that changed something in ``phase`` (not a message, not bookkeeping)."""
    return (entry.get('event') == 'task' and entry.get('phase') == phase and bool(entry.get('changed'))
            and not entry.get('failed') and short_module(entry) not in NOT_WORK)


def _first(entries: list[dict[str, t.Any]], test: t.Callable[[dict[str, t.Any]], bool]) -> dict[str, t.Any] | None:
    return next((e for e in entries if test(e)), None)


def _row(kind: str, ts: t.Any, action: str, person: t.Any) -> dict[str, t.Any]:
    return {'kind': kind, 'ts': str(ts or ''), 'action': clip(action), 'person': str(person or '')}


def _at(entry: t.Mapping[str, t.Any], kind: str, action: str) -> dict[str, t.Any]:
    return _row(kind, entry_time(entry), action, entry.get('actor'))


def _passed(entry: t.Mapping[str, t.Any]) -> bool:
    data = data_of(entry)
    return entry.get('event') == 'verification' and entry.get('phase') == 'verify' and (
        data.get('verdict') == 'passed' or data.get('passed') is True)


def key_events(entries: t.Any, record: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The key events, oldest first, each ``{kind, ts, action, person}``."""
    entries = [e for e in entries if isinstance(e, dict) and not dry(e)] if isinstance(entries, list) else []
    opened = _first(entries, lambda e: e.get('event') == 'incident' and 'open' in (data_of(e).get('actions') or []))
    rows = []
    start = record.get('detected_at') or record.get('opened_at')
    if start:
        opener = opened.get('actor') if opened else record.get('opened_by')
        how = f" (record opened at {parse_time(record['opened_at']).strftime('%H:%M:%S')})" \
            if record.get('detected_at') and record.get('opened_at') and record['opened_at'] != record['detected_at'] else ''
        priority = f", {record['priority']}" if record.get('priority') else ''
        rows.append(_row('detected', start, f"Detected: {record.get('title') or record.get('incident_id')}{priority}{how}",
                         record.get('opened_by') or opener))
    begun = _first(entries, lambda e: e.get('phase') == 'investigate' and e.get('event') not in ('incident', 'communication'))
    if begun:
        rows.append(_at(begun, 'investigation', f'Investigation started: {_describe(begun)}'))
    cause = _first(entries, lambda e: _status_to(e, 'identified') or e.get('event') == 'incident'
                   and (_changes(e).get('root_cause') or {}).get('after'))
    if cause:
        text = (_changes(cause).get('root_cause') or {}).get('after')
        rows.append(_at(cause, 'root_cause', f'Root cause identified: {text}' if text else 'Root cause identified (status identified)'))
    contained = _first(entries, lambda e: _work(e, 'contain'))
    if contained:
        rows.append(_at(contained, 'containment', f'Containment: {_describe(contained)}'))
    fixed = _first(entries, lambda e: _work(e, 'recover'))
    monitoring = _first(entries, lambda e: _status_to(e, 'monitoring'))
    if fixed:
        rows.append(_at(fixed, 'fix', f'Fix implemented: {_describe(fixed)}'))
    elif monitoring:
        rows.append(_at(monitoring, 'fix', 'Fix implemented (status monitoring)'))
    verified = _first(entries, _passed)
    if verified:
        rows.append(_at(verified, 'verified', f'Service restored - {_describe(verified)}'))
    if record.get('state') == 'resolved' and record.get('resolved_at'):
        rows.append(_row('resolved', record['resolved_at'], f"Resolved: {record.get('resolution') or 'no resolution given'}",
                         record.get('resolved_by')))
    return sorted(rows, key=lambda r: (parse_time(r['ts']), KINDS.index(r['kind'])))
