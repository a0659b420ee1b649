# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Notification obligations: who must be told of an incident, by when, and whether they were.

One policy table (``DEFAULT_OBLIGATIONS``, changed per inventory with ``policy``) says which
impact categories (and, optionally, which priorities) oblige the organisation to notify a party
and within how many hours of detection. ``derive`` applies it to an incident record: every
obligation with its deadline, its state at ``now`` (open, overdue, met, met late) and the seconds
left. Notifications already made are the record's ``notifications`` ({key: {at, by, to}}).
Pure logic on plain data.
"""

from __future__ import annotations

import copy
import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import checked_overrides
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
    ObligationError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    PRIORITIES,
    _norm,
    iso,
    parse_time,
)

RULE_FIELDS = ('title', 'party', 'when_impact', 'when_priority', 'within_hours', 'conditions')

# The runbook's notification requirements. Deadlines are hours after detection (else opening).
# The defaults follow common obligations (GDPR art. 33: the supervisory authority within 72 hours
# of becoming aware of a personal-data breach); contracts and the insurance policy decide the
# real ones: set them in inventory (trdrhub_notification_obligations).
DEFAULT_OBLIGATIONS: dict[str, dict[str, t.Any]] = {
    'regulator': {'title': 'Regulator (data protection supervisory authority)', 'party': 'regulator',
                  'when_impact': ['security', 'data_loss', 'compliance'], 'when_priority': [], 'within_hours': 72,
                  'conditions': 'Personal-data breach or compliance violation'},
    'customers_breach': {'title': 'Affected customers (breach notice)', 'party': 'customers',
                         'when_impact': ['security', 'data_loss'], 'when_priority': [], 'within_hours': 72,
                         'conditions': "Breach or loss of customers' data"},
    'customers_impact': {'title': 'Customers (significant service impact)', 'party': 'customers',
                         'when_impact': ['customer-facing'], 'when_priority': ['P1'], 'within_hours': 1,
                         'conditions': 'Customer-facing service down or severely degraded (status page and notice)'},
    'partners': {'title': 'Integration partners', 'party': 'partners',
                 'when_impact': ['customer-facing'], 'when_priority': ['P1', 'P2'], 'within_hours': 4,
                 'conditions': 'Partner integrations (API clients, webhooks) affected by the incident'},
    'insurance': {'title': 'Insurance carrier', 'party': 'insurance',
                  'when_impact': ['security', 'data_loss'], 'when_priority': [], 'within_hours': 72,
                  'conditions': 'Security incident or data loss that may lead to a claim (cyber policy notice clause)'},
}


def _names(value: t.Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ObligationError(f'{where} must be a list of strings')
    return value


def effective_obligations(policy: t.Mapping[str, t.Any] | None = None) -> dict[str, dict[str, t.Any]]:
    """DEFAULT_OBLIGATIONS with ``policy`` merged per obligation (new ones added, ``null`` removes one), checked."""
    merged = copy.deepcopy(DEFAULT_OBLIGATIONS)
    if not policy:
        return merged
    shape = f'a dict with any of {", ".join(RULE_FIELDS)}, or null to remove it'
    for key, rule in checked_overrides(policy, 'obligation_policy', 'obligations', RULE_FIELDS, shape, ObligationError,
                                       null_ok=True):
        key = str(key)
        if rule is None:
            merged.pop(key, None)
            continue
        entry = merged.setdefault(key, {'title': key, 'party': key, 'when_impact': [], 'when_priority': [],
                                        'within_hours': None, 'conditions': ''})
        entry.update(rule)
        _names(entry['when_impact'], f'obligation_policy.{key}.when_impact')
        bad = [p for p in _names(entry['when_priority'], f'obligation_policy.{key}.when_priority') if p not in PRIORITIES]
        if bad:
            raise ObligationError(f'obligation_policy.{key}.when_priority has {", ".join(bad)}; priorities are {", ".join(PRIORITIES)}')
        hours = entry['within_hours']
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
            raise ObligationError(f'obligation_policy.{key}.within_hours must be a positive number of hours, got {hours!r}')
    return merged


def _impact_key(name: t.Any) -> str:
    return _norm(name).replace(' ', '_')


def check_notification(notified: t.Mapping[str, t.Any], policy: t.Mapping[str, t.Any], *, actor: str,
                       now: datetime.datetime) -> tuple[str, dict[str, t.Any]]:
    """(obligation key, {at, by, to, note}) from the ``notified`` option; ``at`` defaults to now, ``by`` to the actor."""
    if not isinstance(notified, dict):
        raise ObligationError('notified must be a dict with obligation, to, and optionally by, at and note')
    unknown = sorted(set(notified) - {'obligation', 'to', 'by', 'at', 'note'})
    if unknown:
        raise ObligationError(f'notified has unknown key(s) {", ".join(unknown)}; allowed: obligation, to, by, at, note')
    key = notified.get('obligation')
    if key not in policy:
        raise ObligationError(f'notified.obligation must be one of {", ".join(policy)}, got {key!r}')
    if not notified.get('to'):
        raise ObligationError('notified.to must say whom was notified (for example the authority and its case number)')
    try:
        at = parse_time(notified.get('at') or now)
    except AssessmentError:
        raise ObligationError(f"notified.at must be an ISO 8601 time such as 2025-01-15T14:30:00Z, got {notified.get('at')!r}") from None
    return str(key), {'at': iso(at), 'by': str(notified.get('by') or actor), 'to': str(notified['to']),
                      'note': notified.get('note')}


def derive(record: t.Mapping[str, t.Any], *, now: t.Any = None,
           policy: t.Mapping[str, t.Any] | None = None) -> list[dict[str, t.Any]]:
    """Every obligation of ``record`` with its deadline and its state at ``now``.

    ``state``: ``open`` (time left), ``overdue`` (deadline passed, not notified), ``met`` or ``met_late``
    (notified after the deadline). An obligation already notified stays even if the impact changed later.
    """
    rules = effective_obligations(policy)
    moment = parse_time(now)
    impact = {_impact_key(item): item for item in record.get('impact') or []}
    priority = record.get('priority')
    start_value = record.get('detected_at') or record.get('opened_at')
    start = parse_time(start_value) if start_value else None
    done = record.get('notifications') or {}
    result = []
    for key, rule in rules.items():
        hits = [impact[_impact_key(name)] for name in rule['when_impact'] if _impact_key(name) in impact]
        applies = bool(hits) and (not rule['when_priority'] or priority in rule['when_priority'])
        if not applies and key not in done:
            continue
        due = start + datetime.timedelta(hours=rule['within_hours']) if start else None
        notified = done.get(key)
        if notified:
            state = 'met_late' if due and parse_time(notified['at']) > due else 'met'
            left = None
        else:
            left = int((due - moment).total_seconds()) if due else None
            state = 'overdue' if left is not None and left < 0 else 'open'
        why = f"impact {', '.join(hits)}" + (f' and priority {priority}' if rule['when_priority'] else '') if hits else 'notified earlier'
        result.append({'key': key, 'title': rule['title'], 'party': rule['party'], 'conditions': rule['conditions'],
                       'within_hours': rule['within_hours'], 'due_at': iso(due) if due else None, 'reason': why,
                       'state': state, 'seconds_left': left, 'notified': notified})
    return result


def describe(obligation: t.Mapping[str, t.Any]) -> str:
    """One line for the status display: whom, by when, and the time left or who notified."""
    head = f"{obligation['title']} by {obligation['due_at']}"
    if obligation['notified']:
        done = obligation['notified']
        late = ' (late)' if obligation['state'] == 'met_late' else ''
        return f"{head}: notified{late} {done['to']} at {done['at']} by {done['by']}"
    left = obligation['seconds_left']
    if left is None:
        return f'{head}: not notified'
    hours, minutes = divmod(abs(left) // 60, 60)
    span = f'{hours}h{minutes:02d}m'
    return f'{head}: OVERDUE by {span}' if left < 0 else f'{head}: {span} left'
