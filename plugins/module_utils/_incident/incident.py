# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The incident record: kept only as ``incident`` events in the incident's hash-chained ledger.

Pure functions on plain data. ``verify_entries`` checks every entry's hash and link before
anything is trusted; ``fold`` turns the ``incident`` events into the current record;
``plan`` compares the record with what a task asks for and returns the record after the
change, the field changes and the actions. Storage lives in ``_incident_store.py``.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    PROFILES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
    IncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.obligations import (
    check_notification,
    effective_obligations,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    PRIORITIES,
    _norm,
    deadline,
    effective_policy,
    iso,
    parse_time,
)

EVENT = 'incident'
MODULE = 'trdrhub.incident.incident'
STATES = ('open', 'resolved')
STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
# Most to least significant: an entry is named after the first action it contains.
ACTIONS = ('resolve', 'reopen', 'open', 'assign_commander', 'acknowledge', 'auto_acknowledge', 'status', 'update')
# Ledger phase of an entry: by action, and for status changes and updates by the status reached.
ACTION_PHASES = {'open': 'triage', 'reopen': 'triage', 'acknowledge': 'triage', 'auto_acknowledge': 'triage',
                 'assign_commander': 'triage', 'resolve': 'recover'}
STATUS_PHASES = {'investigating': 'investigate', 'identified': 'investigate', 'monitoring': 'recover',
                 'resolved': 'review'}

# Every field of a record, in the order the diff shows them.
RECORD_FIELDS = ('incident_id', 'state', 'status', 'title', 'summary', 'priority', 'response_deadline', 'impact',
                 'commander', 'commander_assigned_at', 'acknowledged', 'acknowledged_at', 'acknowledged_by',
                 'auto_acknowledged_at', 'auto_acknowledged_by', 'detected_at', 'opened_at', 'opened_by', 'references', 'notifications',
                 'root_cause', 'resolution', 'resolved_at', 'resolved_by', 'duration_seconds', 'reopened_at', 'reopen_count',
                 'revision', 'updated_at', 'updated_by')
# Fields set directly by options (an "update"); the root cause and the resolution last: set with a resolution
# (or cleared by a reopen), they are part of that action, not an update of their own.
UPDATE_FIELDS = ('title', 'summary', 'priority', 'impact', 'detected_at', 'references', 'notifications', 'root_cause',
                 'resolution')
# Options that ask for a value of the record.
FIELD_OPTIONS = ('title', 'summary', 'priority', 'impact', 'status', 'commander', 'acknowledged', 'auto_acknowledged',
                 'detected_at', 'references', 'root_cause', 'resolution', 'notified')
# Bookkeeping that changes with every entry; never a reason to append one.
BOOKKEEPING = ('revision', 'updated_at', 'updated_by')

INCIDENT_ARGS: dict[str, dict[str, t.Any]] = {
    'incident_id': {'type': 'str', 'required': True},
    'state': {'type': 'str', 'default': 'open', 'choices': list(STATES)},
    'title': {'type': 'str'},
    'summary': {'type': 'str'},
    'priority': {'type': 'str', 'choices': list(PRIORITIES)},
    'impact': {'type': 'list', 'elements': 'str'},
    'status': {'type': 'str', 'choices': list(STATUSES)},
    'commander': {'type': 'str'},
    'acknowledged': {'type': 'bool'},
    'auto_acknowledged': {'type': 'bool'},
    'detected_at': {'type': 'str'},
    'references': {'type': 'dict'},
    'root_cause': {'type': 'str'},
    'resolution': {'type': 'str'},
    'note': {'type': 'str'},
    'reopen': {'type': 'bool', 'default': False},
    'policy': {'type': 'dict', 'default': {}},
    'notified': {'type': 'dict'},
    'obligation_policy': {'type': 'dict', 'default': {}},
}


def empty_record(incident_id: str) -> dict[str, t.Any]:
    record: dict[str, t.Any] = dict.fromkeys(RECORD_FIELDS)
    record.update(incident_id=incident_id, impact=[], references={}, acknowledged=False, reopen_count=0, revision=0)
    return record


# -- reading ---------------------------------------------------------------------------------------
def verify_entries(entries: t.Sequence[t.Any], incident_id: str, location: str, how_to_check: str) -> None:
    """Every entry hashes to its ``hash`` and links to the one before: a tampered ledger is never folded."""
    profile = PROFILES['ledger']
    prev = None
    for number, entry in enumerate(entries, start=1):
        problem = None
        if not isinstance(entry, dict):
            problem = 'an entry is not a JSON object'
        elif entry.get('incident_id') != incident_id:
            problem = f'entry {number} belongs to incident {entry.get("incident_id")!r}'
        elif entry.get('seq') != number:
            problem = f'entry {number} has sequence number {entry.get("seq")!r} (entries missing or reordered)'
        elif entry.get('prev_hash') != prev:
            problem = f'entry {number} does not link to the entry before it'
        else:
            try:
                digest = profile.compute(entry)
            except (TypeError, ValueError):
                digest = None
            if digest != entry.get('hash'):
                problem = f'entry {number} does not match its hash (its content was changed)'
        if problem:
            raise IncidentError(f'The ledger of incident {incident_id} ({location}) does not verify: {problem}. It may have '
                                f'been tampered with, so the incident record is not trusted and nothing was changed. '
                                f'Examine it with {how_to_check}.')
        prev = entry['hash']


def fold(entries: t.Iterable[t.Mapping[str, t.Any]], incident_id: str) -> dict[str, t.Any] | None:
    """The current record: each ``incident`` event carries the whole record after its change."""
    record = None
    revision = 0
    for entry in entries:
        if entry.get('event') != EVENT:
            continue
        data = entry.get('data')
        snapshot = data.get('record') if isinstance(data, dict) else None
        if not isinstance(snapshot, dict) or snapshot.get('incident_id') != incident_id:
            raise IncidentError(f'Ledger entry {entry.get("seq")} of incident {incident_id} is an incident event without '
                                'a record; the ledger was not written by trdrhub.incident.incident. Nothing was changed.')
        revision += 1
        record = empty_record(incident_id)
        record.update({k: v for k, v in snapshot.items() if k in RECORD_FIELDS})
        record['revision'] = revision
    return record


# -- requested values ------------------------------------------------------------------------------
def normalise_impact(impact: t.Iterable[t.Any], policy: dict[str, t.Any]) -> list[str]:
    """Known categories in the policy's spelling and order, each once ('-' and '_' alike)."""
    known = {_norm(name): name for name in policy['impact']}
    chosen = set()
    for category in impact:
        name = known.get(_norm(category))
        if name is None:
            raise IncidentError(f"impact {category!r} is not one of {', '.join(policy['impact'])}")
        chosen.add(name)
    return [name for name in policy['impact'] if name in chosen]


def _time(value: t.Any, option: str) -> str:
    try:
        return iso(parse_time(value))
    except AssessmentError:
        raise IncidentError(f'{option} must be an ISO 8601 time such as 2025-01-15T14:30:00Z, got {value!r}') from None


def _seconds_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return max(0, int((parse_time(end) - parse_time(start)).total_seconds()))


def _merge_references(current: dict[str, t.Any], given: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    merged = dict(current or {})
    for key, value in (given or {}).items():
        if value is None:
            merged.pop(key, None)   # null removes a reference
        else:
            merged[key] = value
    return merged


def asks_for_change(params: t.Mapping[str, t.Any]) -> bool:
    """Whether the task sets any field; with only incident_id it reads the record."""
    return any(params.get(option) is not None for option in FIELD_OPTIONS)


def _check_request(current: dict[str, t.Any] | None, params: t.Mapping[str, t.Any]) -> None:
    incident_id, state = params['incident_id'], params.get('state') or 'open'
    if params.get('status') == 'resolved' and state != 'resolved':
        raise IncidentError(f'status resolved is set with state=resolved (and a resolution), not with state={state}; '
                            f'incident {incident_id} was not changed')
    if state == 'resolved' and params.get('status') not in (None, 'resolved'):
        raise IncidentError(f'state=resolved cannot be combined with status {params["status"]}; '
                            f'incident {incident_id} was not changed')
    if params.get('resolution') is not None and state != 'resolved':
        raise IncidentError(f'resolution is given with state=resolved only; incident {incident_id} was not changed')
    if current is None:
        if state == 'resolved':
            raise IncidentError(f'Incident {incident_id} has no record in its ledger, so there is nothing to resolve: '
                                'open it first (state=open with a title).')
        if not params.get('title'):
            raise IncidentError(f'Incident {incident_id} has no record in its ledger yet: opening it needs a title.')
    elif current.get('state') == 'resolved' and state == 'open' and not params.get('reopen') and asks_for_change(params):
        raise IncidentError(f'Incident {incident_id} was resolved at {current.get("resolved_at")}; state=open would '
                            'reopen it. Set reopen: true to reopen it, or state=resolved to update the resolved record. '
                            'Nothing was changed.')


# -- planning --------------------------------------------------------------------------------------
def plan(current: dict[str, t.Any] | None, params: t.Mapping[str, t.Any], *, actor: str, now: datetime.datetime,
         policy: dict[str, t.Any] | None = None) -> tuple[dict[str, t.Any], dict[str, dict[str, t.Any]], list[str]]:
    """(record after the task, {field: {before, after}}, actions); no changes means nothing to append.

    ``params`` hold the module options, secrets already redacted. Options left out (None)
    keep the record's value.
    """
    merged_policy = effective_policy(policy or None)
    _check_request(current, params)
    stamp = iso(now)
    state = params.get('state') or 'open'
    before = current or empty_record(params['incident_id'])
    after = dict(before, impact=list(before.get('impact') or []), references=dict(before.get('references') or {}))
    actions: list[str] = []

    if current is None:
        actions.append('open')
        after.update(state='open', status='investigating', opened_at=stamp, opened_by=actor)
    elif current.get('state') == 'resolved' and state == 'open':
        if not params.get('reopen'):
            return current, {}, []   # only incident_id: a read of the resolved record
        actions.append('reopen')
        after.update(state='open', status='investigating', resolved_at=None, resolved_by=None, resolution=None,
                     duration_seconds=None, reopened_at=stamp, reopen_count=int(before.get('reopen_count') or 0) + 1)

    for field in ('title', 'summary', 'priority'):
        if params.get(field) is not None:
            after[field] = params[field]
    if params.get('impact') is not None:
        after['impact'] = normalise_impact(params['impact'], merged_policy)
    if params.get('detected_at') not in (None, ''):
        after['detected_at'] = _time(params['detected_at'], 'detected_at')
    after['references'] = _merge_references(after['references'], params.get('references'))
    if params.get('notified') is not None:
        key, done = check_notification(params['notified'], effective_obligations(params.get('obligation_policy')),
                                       actor=actor, now=now)
        notifications = dict(after.get('notifications') or {})
        if (notifications.get(key) or {}).get('to') != done['to']:   # the same notice again changes nothing
            notifications[key] = done
            after['notifications'] = notifications
    if params.get('root_cause') is not None:
        after['root_cause'] = params['root_cause'].strip() or None   # an empty string removes it
    if params.get('commander') is not None and params['commander'] != after.get('commander'):
        after.update(commander=params['commander'] or None, commander_assigned_at=stamp if params['commander'] else None)
        actions.append('assign_commander')
    if params.get('acknowledged') is not None and bool(params['acknowledged']) != bool(after.get('acknowledged')):
        acknowledged = bool(params['acknowledged'])
        after.update(acknowledged=acknowledged, acknowledged_at=stamp if acknowledged else None,
                     acknowledged_by=actor if acknowledged else None)
        actions.append('acknowledge')
    # An automatic acknowledgement (triage silencing the alerts) is kept apart: it is not a person's.
    automatic = params.get('auto_acknowledged')
    if automatic is not None and bool(automatic) != bool(after.get('auto_acknowledged_at')):
        automatic = bool(automatic)
        after.update(auto_acknowledged_at=stamp if automatic else None, auto_acknowledged_by=actor if automatic else None)
        actions.append('auto_acknowledge')
    if state == 'resolved':
        if after.get('state') != 'resolved':
            after.update(state='resolved', status='resolved', resolved_at=stamp, resolved_by=actor)
            actions.append('resolve')
        if params.get('resolution') is not None:
            after['resolution'] = params['resolution']
    elif params.get('status') is not None and params['status'] != after.get('status'):
        after['status'] = params['status']
        actions.append('status')

    # Derived fields follow from the others.
    start = after.get('detected_at') or after.get('opened_at')
    after['response_deadline'] = deadline(after['priority'], start, merged_policy) if after.get('priority') else None
    after['duration_seconds'] = _seconds_between(start, after.get('resolved_at'))

    if current is None:
        changes = {field: {'before': None, 'after': after.get(field)} for field in RECORD_FIELDS
                   if field not in BOOKKEEPING and after.get(field)}
    else:
        changes = {field: {'before': before.get(field), 'after': after.get(field)} for field in RECORD_FIELDS
                   if field not in BOOKKEEPING and after.get(field) != before.get(field)}
    if not changes:
        return before, {}, []
    edited = UPDATE_FIELDS if not {'resolve', 'reopen'} & set(actions) else UPDATE_FIELDS[:-2]
    if not actions or (current is not None and any(field in changes for field in edited)):
        actions.append('update')
    after.update(revision=int(before.get('revision') or 0) + 1, updated_at=stamp, updated_by=actor)
    return after, changes, sorted(set(actions), key=ACTIONS.index)


def dominant(actions: t.Sequence[str]) -> str:
    return min(actions, key=ACTIONS.index) if actions else 'update'


def phase_of(action: str, record: t.Mapping[str, t.Any]) -> str:
    return ACTION_PHASES.get(action) or STATUS_PHASES.get(str(record.get('status')), 'triage')


# -- diff ------------------------------------------------------------------------------------------
def _yaml_value(value: t.Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return '[' + ', '.join(_yaml_value(v) for v in value) + ']'
    if isinstance(value, dict):
        return '{' + ', '.join(f'{k}: {_yaml_value(v)}' for k, v in sorted(value.items())) + '}'
    text = str(value)
    plain = text and text.strip() == text and not any(c in text for c in ':#{}[],&*!|>\'"%@`\n') \
        and text.lower() not in ('null', 'true', 'false', 'yes', 'no', '~')
    return text if plain else '"' + text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n') + '"'


def render(record: t.Mapping[str, t.Any] | None) -> str:
    """The record as YAML-style lines, one field a line, for diff mode."""
    if record is None:
        return ''
    return ''.join(f'{field}: {_yaml_value(record.get(field))}\n' for field in RECORD_FIELDS)


def diff(incident_id: str, before: t.Mapping[str, t.Any] | None, after: t.Mapping[str, t.Any] | None) -> dict[str, str]:
    revision = (before or {}).get('revision') or 0
    return {'before': render(before), 'after': render(after),
            'before_header': f'incident {incident_id} (revision {revision})' if before else f'incident {incident_id} (none)',
            'after_header': f'incident {incident_id} (revision {(after or {}).get("revision") or 0})'}
