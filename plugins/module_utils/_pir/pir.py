# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The post-incident review (PIR): timeline, response-time compliance and the review's content.

Built from the incident's ledger only - the record is the ``record`` of the last
``incident`` entry, the timeline is the ledger collapsed to what a reviewer reads. The key
events live in events.py, the compliance section (obligations, data accessed, evidence) in
evidence.py, the meeting date and checklist in meeting.py, the rendering (Markdown, HTML, SVG)
in render.py.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import (
    IncidentError,
    fold,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    effective_policy,
    iso,
    parse_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.common import (
    clip,
    entry_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.events import (
    key_events,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.evidence import (
    compliance_section,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.meeting import (
    checklist,
    schedule,
)

UTC = datetime.timezone.utc
# Entries a reviewer reads as they are; their message is the row's text.
EXPLICIT = ('decision', 'approval', 'escalation', 'finding', 'verification', 'note', 'handover')
# Modules whose task entries duplicate an entry of their own (the record change, the explicit event).
SELF_RECORDING = ('trdrhub.incident.incident', 'trdrhub.incident.ledger_record')
# Modules that send a message: in a run that records its messages (``communication`` entries) the
# message's own row tells what was sent, so the sending task is not a row of its own and does not
# split the run's messages apart.
MESSAGE_MODULES = ('slack_message', 'pagerduty_event', 'statuspage_incident', 'email_notify')
# Roles whose runs are not part of the incident's story (the PIR's own runs).
OWN_ROLES = ('pir', 'trdrhub.incident.pir')
PLACEHOLDER = '_To be completed in the PIR meeting._'


class PirError(TrdrhubError):
    """The ledger cannot make a review: no record, entries that are not entries."""


_time, _text = entry_time, clip


def _incident_text(data: dict[str, t.Any]) -> str:
    record = data.get('record') or {}
    changes = data.get('changes') or {}
    parts = []
    for action in data.get('actions') or [data.get('action')]:
        if action == 'open':
            parts.append(f"Incident opened: {record.get('title')} ({record.get('priority') or 'no priority'})")
        elif action == 'reopen':
            parts.append('Incident reopened')
        elif action == 'acknowledge':
            by = f" by {record['acknowledged_by']}" if record.get('acknowledged_by') else ''
            parts.append(f'Acknowledged{by}' if record.get('acknowledged') else 'Acknowledgement withdrawn')
        elif action == 'auto_acknowledge':
            parts.append('Alerts acknowledged automatically (silenced)' if record.get('auto_acknowledged_at')
                         else 'Automatic acknowledgement withdrawn')
        elif action == 'assign_commander':
            parts.append(f"Incident commander: {record.get('commander') or 'none'}")
        elif action == 'status':
            change = changes.get('status') or {}
            parts.append(f"Status {change.get('before')} \u2192 {change.get('after')}")
        elif action == 'resolve':
            parts.append(f"Resolved: {record.get('resolution') or 'no resolution given'}")
        elif action == 'update':
            shown = [k for k in changes if k not in ('status', 'commander', 'acknowledged', 'auto_acknowledged_at',
                                                     'auto_acknowledged_by', 'updated_at', 'root_cause')]
            if 'priority' in changes:
                parts.append(f"Priority {changes['priority'].get('before')} \u2192 {changes['priority'].get('after')}")
                shown.remove('priority')
            if shown:
                parts.append(f"Record updated ({', '.join(sorted(shown))})")
    if 'root_cause' in changes:
        cause = (changes['root_cause'] or {}).get('after')
        parts.append(f'Root cause: {cause}' if cause else 'Root cause removed')
    if data.get('note'):
        parts.append(f"note: {data['note']}")
    return '; '.join(p for p in parts if p) or 'Record updated'


def _communication_text(group: list[dict[str, t.Any]]) -> str:
    kinds = sorted({str((e.get('data') or {}).get('kind') or 'message') for e in group})
    what = []
    for entry in group:
        data = entry.get('data') or {}
        label = str(data.get('channel') or 'message')
        if data.get('action'):
            label += f" {data['action']}"
        what.append(label)
    return f"Communication ({', '.join(kinds)}): {', '.join(what)}"


def _run_counts(entries: list[dict[str, t.Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        data = entry.get('data') or {}
        if entry.get('event') != 'task' or not data.get('run'):
            continue
        bucket = counts.setdefault(data['run'], {'tasks': 0, 'changed': 0, 'failed': 0})
        bucket['tasks'] += 1
        bucket['changed'] += 1 if entry.get('changed') else 0
        bucket['failed'] += 1 if entry.get('failed') else 0
    return counts


def _own_runs(entries: list[dict[str, t.Any]]) -> set[str]:
    """Runs of the PIR itself: a run with a task of one of OWN_ROLES."""
    return {e['data'].get('run') for e in entries if isinstance(e.get('data'), dict) and e['data'].get('role') in OWN_ROLES
            and e['data'].get('run')}


def _recorded_message(entry: dict[str, t.Any], message_runs: set[t.Any]) -> bool:
    """A changed task that sent a message its run recorded as a ``communication`` entry."""
    data = entry.get('data') if isinstance(entry.get('data'), dict) else {}
    module = str(entry.get('module') or '')
    name = module[len('trdrhub.incident.'):] if module.startswith('trdrhub.incident.') else module
    return not entry.get('failed') and data.get('run') in message_runs and name in MESSAGE_MODULES


def _excluded(entry: dict[str, t.Any], own: set[str]) -> bool:
    data = entry.get('data') if isinstance(entry.get('data'), dict) else {}
    own_run = entry.get('event') in ('playbook_start', 'playbook_end', 'task') and data.get('run') in own
    return data.get('role') in OWN_ROLES or own_run


def build_timeline(entries: t.Any) -> list[dict[str, t.Any]]:
    """The ledger collapsed: incident events, explicit events, messages, runs, changed and failed tasks.

    Skipped and unchanged tasks, check-mode runs and the PIR's own runs are left out (counted
    in each run's row); task entries of modules that write their own entry are not repeated;
    consecutive messages of one run and one kind are one row - the tasks that sent them are
    shown by the messages' row, so they do not split it.
    """
    if not isinstance(entries, list):
        raise PirError(f'the ledger entries must be a list, got {kind_of(entries)}')
    entries = [e for e in entries if isinstance(e, dict)]
    own = _own_runs(entries)
    entries = [e for e in entries if not _excluded(e, own)]
    runs = _run_counts(entries)
    message_runs = {e['data'].get('run') for e in entries if e.get('event') == 'communication'
                    and isinstance(e.get('data'), dict) and e['data'].get('run')}
    rows: list[dict[str, t.Any]] = []
    for entry in entries:
        event, data = entry.get('event'), entry.get('data') if isinstance(entry.get('data'), dict) else {}
        row = {'ts': _time(entry), 'actor': entry.get('actor') or '', 'phase': entry.get('phase'), 'seq': [entry.get('seq')]}
        if event == 'incident':
            row.update(category='incident', action=_incident_text(data))
        elif event in EXPLICIT:
            row.update(category=event, action=f"{event.capitalize()}: {data.get('message') or '(no message)'}")
        elif event == 'communication':
            last = rows[-1] if rows else None
            key = (data.get('run'), data.get('kind'))
            if last and last['category'] == 'communication' and last.get('_key') == key:
                last['_group'].append(entry)
                last['seq'].append(entry.get('seq'))
                last['action'] = _communication_text(last['_group'])
                continue
            row.update(category='communication', action=_communication_text([entry]), _key=key, _group=[entry])
        elif event == 'playbook_start':
            if data.get('check_mode'):
                continue
            count = runs.get(data.get('run'), {'tasks': 0, 'changed': 0, 'failed': 0})
            name = str(data.get('playbook') or entry.get('play') or 'playbook').rsplit('/', 1)[-1]
            row.update(category='run', action=f"Ran {name} ({count['tasks']} tasks, {count['changed']} changed, "
                                              f"{count['failed']} failed)")
        elif event == 'task':
            if data.get('check_mode') or entry.get('module') in SELF_RECORDING and not entry.get('failed') \
                    or _recorded_message(entry, message_runs):
                continue
            if entry.get('failed'):
                why = f": {data.get('msg')}" if data.get('msg') else ''
                ignored = ' (ignored)' if data.get('ignored') else ''
                row.update(category='failure', action=f"FAILED{ignored}: {entry.get('task')} on {entry.get('host')}{why}")
            elif entry.get('changed'):
                row.update(category='change', action=f"Changed: {entry.get('task')} on {entry.get('host')}")
            else:
                continue
        else:
            continue
        rows.append(row)
    for row in rows:
        row.pop('_key', None)
        row.pop('_group', None)
        row['action'] = _text(row['action'])
    return rows


def _seconds(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return int((parse_time(end) - parse_time(start)).total_seconds())


def human(seconds: int | None) -> str:
    """1 h 12 min, 42 min, 35 s; 'n/a' when unknown."""
    if seconds is None:
        return 'n/a'
    sign, seconds = ('-' if seconds < 0 else ''), abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f'{days} d'] * bool(days) + [f'{hours} h'] * bool(hours) + [f'{minutes} min'] * bool(minutes)
    if not parts:
        parts = [f'{secs} s']
    return sign + ' '.join(parts)


def _first_ack(entries: list[dict[str, t.Any]], field: str = 'acknowledged_at') -> tuple[str | None, str | None]:
    """(when, by whom) of the first acknowledgement - by a person, or automatic with ``auto_acknowledged_at``."""
    by = field.replace('_at', '_by')
    for entry in entries:
        record = (entry.get('data') or {}).get('record') if entry.get('event') == 'incident' else None
        if isinstance(record, dict) and record.get(field):
            return record[field], record.get(by)
    return None, None


def compliance(record: dict[str, t.Any], entries: list[dict[str, t.Any]], timeline: list[dict[str, t.Any]],
               policy: dict[str, t.Any] | None = None, now: t.Any = None) -> dict[str, t.Any]:
    """Did a person acknowledge the incident within the response target of its priority?

    The automatic acknowledgement (triage silencing the alerts) and the procedure's own first
    actions are shown, but they are not a response: only a person's acknowledgement is.
    """
    priority = record.get('priority')
    target = effective_policy(policy).get(priority, {}).get('response_minutes') if priority else None
    start = record.get('detected_at') or record.get('opened_at')
    deadline = record.get('response_deadline')
    acknowledged_at, acknowledged_by = _first_ack(entries)
    auto_at, _auto_by = _first_ack(entries, 'auto_acknowledged_at')
    actions = [r['ts'] for r in timeline if r['category'] not in ('run', 'failure')
               and not (r['category'] == 'incident' and r['action'].startswith('Incident opened'))
               and start and parse_time(r['ts']) >= parse_time(start)]
    first_action = min(actions, key=parse_time) if actions else None
    responded = acknowledged_at
    moment = parse_time(now)
    auto = f' (auto-acknowledged at {iso(parse_time(auto_at))}, which does not count)' if auto_at else ''
    if not deadline:
        verdict, text = 'unknown', 'no priority recorded, so no response target'
    elif responded:
        met = parse_time(responded) <= parse_time(deadline)
        verdict = 'met' if met else 'missed'
        late = _seconds(deadline, responded)
        by = f' by {acknowledged_by}' if acknowledged_by else ''
        text = (f'acknowledged{by} at {iso(parse_time(responded))}, '
                f'{human(_seconds(start, responded))} after detection; '
                + (f'within the {priority} target' if met else f'{human(late)} after the {priority} deadline'))
    elif moment > parse_time(deadline):
        verdict, text = 'missed', f'no acknowledgement by a person before the deadline{auto}'
    else:
        verdict, text = 'pending', f'not acknowledged by a person yet{auto}; the deadline has not passed'
    return {
        'priority': priority, 'target_minutes': target, 'detected_at': start, 'response_deadline': deadline,
        'acknowledged_at': acknowledged_at, 'acknowledged_by': acknowledged_by, 'auto_acknowledged_at': auto_at,
        'first_action_at': first_action, 'responded_at': responded,
        'time_to_acknowledge_seconds': _seconds(start, acknowledged_at),
        'time_to_first_action_seconds': _seconds(start, first_action),
        'time_to_resolve_seconds': record.get('duration_seconds'), 'resolved_at': record.get('resolved_at'),
        'verdict': verdict, 'text': text,
    }


def _items(value: t.Any) -> list[str]:
    if value in (None, '', []):
        return []
    return [_text(v, 1000) for v in ([value] if isinstance(value, str) else value)]


def _action_items(value: t.Any) -> list[dict[str, str]]:
    out = []
    for item in value or []:
        if isinstance(item, dict):
            out.append({'item': _text(item.get('item') or item.get('title') or '', 500), 'owner': _text(item.get('owner') or 'TBD'),
                        'due': _text(item.get('due') or 'TBD'), 'ticket': _text(item.get('ticket') or '')})
        else:
            out.append({'item': _text(item, 500), 'owner': 'TBD', 'due': 'TBD', 'ticket': ''})
    return out


def _story(entries: list[t.Any]) -> list[dict[str, t.Any]]:
    """The entries the review tells: the review's own runs left out."""
    entries = [e for e in entries if isinstance(e, dict)]
    own = _own_runs(entries)
    return [e for e in entries if not _excluded(e, own)]


def _root_cause(content: dict[str, t.Any], record: dict[str, t.Any]) -> tuple[str, str | None]:
    """(the review's root cause, the record's when the review says something else)."""
    given, recorded = _text(content.get('root_cause') or '', 4000), _text(record.get('root_cause') or '', 4000)
    return given or recorded or PLACEHOLDER, recorded if given and recorded and recorded != given else None


def build_review(entries: t.Any, incident_id: str, verification: t.Any = None, content: t.Any = None,
                 policy: dict[str, t.Any] | None = None, now: t.Any = None, obligation_policy: t.Any = None,
                 meeting: t.Any = None) -> dict[str, t.Any]:
    """Everything the PIR shows, as data: the renderers only lay it out.

    ``obligation_policy`` changes the notification obligation table (as the incident module's
    option); ``meeting`` holds ``business_days``, ``followup_days`` and ``holidays`` (meeting.py).
    """
    if not isinstance(entries, list) or not entries:
        raise PirError(f'the ledger of {incident_id} has no entries: there is nothing to review')
    verification = verification if isinstance(verification, dict) else {}
    head = ((verification.get('chains') or {}).get(incident_id) or {}).get('head') or {}
    if verification.get('is_valid') and isinstance(head.get('sequence_number'), int):
        # Entries appended after the verification (this run's own) were not verified: leave them out.
        entries = [e for e in entries if not isinstance(e, dict) or not isinstance(e.get('seq'), int) or e['seq'] <= head['sequence_number']]
    try:
        record = fold(entries, incident_id)
    except IncidentError as exc:   # the entries do not fold into a record
        raise PirError(str(exc)) from None
    if record is None:
        raise PirError(f'the ledger of {incident_id} has no incident record (open it with trdrhub.incident.incident)')
    content = content if isinstance(content, dict) else {}
    timeline = build_timeline(entries)
    check = compliance(record, entries, timeline, policy, now)
    findings = [r['action'] for r in timeline if r['category'] == 'finding']
    failures = [r for r in timeline if r['category'] == 'failure']
    well, improve = _items(content.get('went_well')), _items(content.get('could_improve'))
    if check['verdict'] == 'met':
        well.append(f"Response within the {record.get('priority')} target ({check['text']}).")
    elif check['verdict'] == 'missed':
        improve.append(f"Response target missed: {check['text']}.")
    if failures:
        improve.append(f'{len(failures)} task(s) failed during the response (see the timeline).')
    story = _story(entries)
    plan = schedule(record, meeting)
    root_cause, recorded_cause = _root_cause(content, record)
    review = {
        'incident_id': incident_id, 'record': record, 'generated_at': iso(parse_time(now)),
        'title': record.get('title') or incident_id,
        'summary': _text(content.get('summary') or record.get('summary') or '', 2000) or PLACEHOLDER,
        'impact': _text(content.get('impact') or ', '.join(record.get('impact') or []), 2000) or PLACEHOLDER,
        'root_cause': root_cause, 'recorded_root_cause': recorded_cause,
        'resolution': _text(record.get('resolution') or content.get('resolution') or '', 4000) or PLACEHOLDER,
        'findings': findings, 'went_well': well or [PLACEHOLDER], 'could_improve': improve or [PLACEHOLDER],
        'action_items': _action_items(content.get('action_items')),
        'timeline': timeline, 'compliance': check, 'key_events': key_events(story, record),
        'meeting': plan, 'checklist': checklist(record, plan),
        'verification': {
            'checked': bool(verification), 'is_valid': bool(verification.get('is_valid')),
            'total_entries': verification.get('total_entries'), 'violation_count': verification.get('violation_count'),
            'violations': [_text(v.get('message') if isinstance(v, dict) else v) for v in verification.get('violations') or []][:20],
            'head': ((verification.get('chains') or {}).get(incident_id) or {}).get('head'),
            'verified_at': verification.get('verified_at'),
        },
    }
    review.update(compliance_section(record, story, review['verification'], obligation_policy, now))
    review['missing'] = missing_parts(review)
    review['draft'] = record.get('state') != 'resolved'
    return review


def missing_parts(review: dict[str, t.Any]) -> list[str]:
    """What a final review still lacks; a review of an incident that is not resolved is a DRAFT listing them."""
    record, missing = review['record'], []
    if record.get('state') != 'resolved':
        missing.append(f"resolution (the incident is {record.get('status') or 'open'}, not resolved)")
    if not review['compliance']['acknowledged_at']:
        missing.append('acknowledgement by a person')
    for key, label in (('summary', 'summary'), ('impact', 'impact'), ('root_cause', 'root cause')):
        if review[key] == PLACEHOLDER:
            missing.append(label)
    if not review['action_items']:
        missing.append('action items')
    if not review['verification']['checked']:
        missing.append('ledger verification')
    return missing


def draft_line(review: dict[str, t.Any]) -> str:
    return ('DRAFT - not final until the incident is resolved. Missing: ' + '; '.join(review['missing']) + '.'
            if review['draft'] else '')
