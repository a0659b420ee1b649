# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Escalation per the TRDR Hub runbook: which level is due now, what was escalated, what is new.

Pure logic on plain data. The time-based ladder is the ``escalation`` schedule of the
priority policy (module_utils/_incident/priority.py), so ``incident_assess``, the incident record
and escalation always agree; this file adds the external categories, the contacts and the
comparison with the ledger's ``escalation`` entries that makes a re-run send nothing twice.
Storage lives in ``_escalation_store.py``.
"""

from __future__ import annotations

import copy
import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import checked_dict, checked_overrides
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
    EscalationError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    PRIORITIES,
    _norm,
    add_minutes,
    effective_policy,
    iso,
    parse_time,
)

EVENT = 'escalation'
MODULE = 'trdrhub.incident.incident_escalate'
MAX_LEVEL = 4
CONTACT_FIELDS = ('name', 'slack', 'email', 'phone', 'secondary', 'secondary_phone', 'secondary_email',
                  'pagerduty_routing_key', 'pagerduty_escalation_policy')
SECRET_CONTACT_FIELDS = ('pagerduty_routing_key',)
RULE_FIELDS = ('title', 'conditions', 'when_impact')

# External escalation categories of the runbook. ``when_impact``: impact categories of the record
# that make the category due without being asked (a data breach - security, data_loss - brings in
# legal/compliance and PR); the others are requested by the responder with ``external``.
DEFAULT_EXTERNAL: dict[str, dict[str, t.Any]] = {
    'cloud_provider': {'title': 'Cloud provider', 'when_impact': [],
                       'conditions': 'Outage or degradation of a provider service (compute, managed database, storage, network, DNS)'},
    'vendor': {'title': 'Third-party vendors', 'when_impact': [],
               'conditions': 'Failure of a third-party service TRDR Hub depends on (document AI, email delivery, payments)'},
    'legal': {'title': 'Legal / compliance', 'when_impact': ['security', 'data_loss', 'compliance'],
              'conditions': 'Data breach, loss of customer data or a compliance violation (notification deadlines may apply)'},
    'pr': {'title': 'PR / communications', 'when_impact': ['security', 'data_loss'],
           'conditions': 'Data breach, or an incident visible to the press or on social media'},
    'monitoring': {'title': 'Monitoring vendor', 'when_impact': [],
                   'conditions': 'Metrics, dashboards or log collection missing or wrong during the incident'},
    'alerting': {'title': 'Alerting vendor', 'when_impact': [],
                 'conditions': 'Alerts or pages not delivered, delayed or duplicated'},
}

# Specialist teams of the runbook's contact list, paged (once, whatever the level) when the record's
# impact includes one of ``when_impact``; their contacts are in ``contacts`` under the same key.
TEAMS: dict[str, dict[str, t.Any]] = {
    'dba': {'title': 'Database Administrator', 'when_impact': ['data_integrity', 'data_loss']},
    'security_team': {'title': 'Security Team', 'when_impact': ['security']},
}


# -- configuration ---------------------------------------------------------------------------------
def external_rules(rules: t.Mapping[str, t.Any] | None = None) -> dict[str, dict[str, t.Any]]:
    """DEFAULT_EXTERNAL with ``rules`` merged per category (new categories may be added), checked."""
    merged = copy.deepcopy(DEFAULT_EXTERNAL)
    if not rules:
        return merged
    for category, rule in checked_overrides(rules, 'external_rules', 'categories', RULE_FIELDS,
                                            f'a dict with {", ".join(RULE_FIELDS)}', EscalationError):
        when = rule.get('when_impact', [])
        if not isinstance(when, list) or not all(isinstance(item, str) for item in when):
            raise EscalationError(f'external_rules.{category}.when_impact must be a list of impact categories')
        entry = merged.setdefault(str(category), {'title': str(category), 'conditions': '', 'when_impact': []})
        entry.update(rule)
    return merged


def check_contacts(contacts: t.Any, where: str) -> dict[str, dict[str, t.Any]]:
    """{role or category: contact}; every field a string, none unknown (a typo would page nobody)."""
    if contacts in (None, ''):
        return {}
    if not isinstance(contacts, dict):
        raise EscalationError(f'{where} must be a dict of contacts by name, got {type(contacts).__name__}')
    checked = {}
    for name, contact in contacts.items():
        if contact is None:
            continue
        checked_dict(contact, f'{where}.{name}', f'a dict with any of {", ".join(CONTACT_FIELDS)}', CONTACT_FIELDS,
                     EscalationError, 'field(s)')
        for field, value in contact.items():
            if value is not None and not isinstance(value, str):
                raise EscalationError(f'{where}.{name}.{field} must be a string')
        checked[str(name)] = {field: value for field, value in contact.items() if value not in (None, '')}
    return checked


def public_contact(contact: t.Mapping[str, t.Any] | None) -> dict[str, t.Any] | None:
    """A contact without its routing key: what results and the ledger may show."""
    if not contact:
        return None
    shown = {field: contact.get(field) for field in CONTACT_FIELDS if field not in SECRET_CONTACT_FIELDS}
    shown['pagerduty'] = bool(contact.get('pagerduty_routing_key'))
    return shown


def ladder(policy: dict[str, t.Any]) -> dict[int, dict[str, t.Any]]:
    """Level -> who and title, from the priorities' schedules (the first that names a level wins)."""
    levels: dict[int, dict[str, t.Any]] = {}
    for prio in PRIORITIES:
        for step in policy[prio]['escalation']:
            level = int(step.get('level') or 0)
            if 1 <= level <= MAX_LEVEL and level not in levels:
                levels[level] = {'level': level, 'who': step['who'], 'title': step.get('title') or step['who']}
    return levels


# -- the ledger ------------------------------------------------------------------------------------
def recorded(entries: t.Iterable[t.Mapping[str, t.Any]]) -> tuple[dict[str, dict[str, t.Any]], set[str]]:
    """({key: escalation recorded}, {keys whose contacts were notified}) from the ledger's ``escalation`` events.

    Only the entries this module and its role write carry ``data.escalation`` (L2, external:legal);
    escalation notes written by hand with ledger_record have none and are left alone.
    """
    escalated: dict[str, dict[str, t.Any]] = {}
    notified: set[str] = set()
    for entry in entries:
        data = entry.get('data') if entry.get('event') == EVENT else None
        if not isinstance(data, dict) or not isinstance(data.get('escalation'), str):
            continue
        key, action = data['escalation'], data.get('action', 'escalate')
        if action == 'escalate' and key not in escalated:
            escalated[key] = {'key': key, 'kind': data.get('kind'), 'level': data.get('level'), 'who': data.get('who'),
                              'category': data.get('category'), 'title': data.get('title'), 'seq': entry.get('seq'),
                              'recorded_at': iso(parse_time(entry['ts'])) if entry.get('ts') else None,
                              'actor': entry.get('actor')}
        elif action == 'notified':
            notified.add(key)
    return escalated, notified


def level_key(level: int) -> str:
    return f'L{level}'


def external_key(category: str) -> str:
    return f'external:{category}'


def team_key(team: str) -> str:
    return f'team:{team}'


def _teams(record: t.Mapping[str, t.Any]) -> dict[str, str]:
    """{team: why} - the specialist teams the record's impact calls for."""
    impact = {_norm(item).replace(' ', '_'): item for item in record.get('impact') or []}  # 'Data Integrity' too
    wanted = {}
    for team, rule in TEAMS.items():
        hits = [impact[_norm(item)] for item in rule['when_impact'] if _norm(item) in impact]
        if hits:
            wanted[team] = f"impact {', '.join(hits)}: page the {rule['title']}"
    return wanted


# -- the decision ----------------------------------------------------------------------------------
def _requested_level(level: t.Any) -> int | None:
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
        raise EscalationError(f'level must be 1 to {MAX_LEVEL}, got {level!r}')
    return level


def _externals(record: t.Mapping[str, t.Any], rules: dict[str, dict[str, t.Any]],
               requested: t.Iterable[t.Any]) -> dict[str, str]:
    """{category: why} - asked for with ``external``, or due by the record's impact."""
    wanted: dict[str, str] = {}
    for category in requested or []:
        name = str(category).strip().lower()
        if name not in rules:
            raise EscalationError(f'external category {category!r} is not one of {", ".join(rules)} (add it in external_rules)')
        wanted.setdefault(name, 'requested')
    impact = {_norm(item): item for item in record.get('impact') or []}
    for name, rule in rules.items():
        hits = [impact[_norm(item)] for item in rule.get('when_impact') or [] if _norm(item) in impact]
        if hits and name not in wanted:
            wanted[name] = f"impact {', '.join(hits)}: {rule.get('conditions') or rule.get('title')}"
    return wanted


def _schedule(record: t.Mapping[str, t.Any], policy: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], datetime.datetime | None]:
    priority = record.get('priority')
    start = record.get('detected_at') or record.get('opened_at')
    if priority not in PRIORITIES or not start:
        return [], None
    entry, begin = policy[priority], parse_time(start)
    steps = [dict(step, at=iso(add_minutes(begin, step['after_minutes'], entry['business_days_only'])))
             for step in sorted(entry['escalation'], key=lambda s: (s['after_minutes'], s.get('level') or 0))]
    return steps, begin


def decide(record: t.Mapping[str, t.Any], entries: t.Iterable[t.Mapping[str, t.Any]], *, now: t.Any = None,
           policy: dict[str, t.Any] | None = None, level: int | None = None, external: t.Iterable[t.Any] = (),
           contacts: t.Any = None, external_contacts: t.Any = None, rules: t.Any = None) -> dict[str, t.Any]:
    """What is due for ``record`` at ``now`` and what was already recorded; the new escalations with their contacts.

    The clock runs from detection (else opening) until the incident is acknowledged: once
    acknowledged, no further level is escalated by time. A resolved incident never escalates.
    Level 1 (the on-call engineer) is paged when the incident opens, so escalation starts at 2.
    """
    try:
        moment = parse_time(now)
    except AssessmentError:
        raise EscalationError(f'now must be an ISO 8601 time such as 2025-01-15T14:30:00Z, got {now!r}') from None
    merged = effective_policy(policy or None)
    rungs = ladder(merged)
    wanted_level = _requested_level(level)
    rules_ = external_rules(rules)
    people, outside = check_contacts(contacts, 'contacts'), check_contacts(external_contacts, 'external_contacts')
    escalated, notified = recorded(entries)
    steps, begin = _schedule(record, merged)
    incident_id, priority = record.get('incident_id'), record.get('priority')
    reasons: list[str] = []
    resolved = record.get('state') == 'resolved'
    acknowledged = bool(record.get('acknowledged'))
    current = max([1] + [int(item['level']) for item in escalated.values() if item.get('kind') == 'level' and item.get('level')])

    time_level, next_step = 1, None
    if resolved:
        reasons.append(f"resolved at {record.get('resolved_at')}: a resolved incident is never escalated")
    elif not steps:
        reasons.append(f'priority {priority} has no escalation schedule' if priority in PRIORITIES
                       else 'the incident has no priority yet: no time-based escalation (set it with trdrhub.incident.incident)')
    elif acknowledged:
        reasons.append(f"acknowledged at {record.get('acknowledged_at')}: time-based escalation stopped")
    else:
        minutes = int((moment - begin).total_seconds() // 60) if begin else 0
        for step in steps:
            if parse_time(step['at']) <= moment:
                time_level = max(time_level, int(step.get('level') or 1))
            elif next_step is None and int(step.get('level') or 1) > max(current, time_level):
                next_step = step
        if time_level > 1:
            reasons.append(f'{priority} not acknowledged {minutes} min after detection: level {time_level} is due')
        else:
            reasons.append(f'{priority} detected {minutes} min ago: within the on-call engineer\'s time')
    due = 1 if resolved else max(time_level, wanted_level or 1)
    if wanted_level and not resolved and wanted_level > time_level:
        reasons.append(f'level {wanted_level} requested')

    new: list[dict[str, t.Any]] = []
    timed = {int(step.get('level') or 1): step for step in steps}
    for number in range(current + 1, due + 1):
        rung = rungs.get(number)
        if rung is None or level_key(number) in escalated:
            continue
        step = timed.get(number)
        by_time = step is not None and number <= time_level
        why = (f'{priority} not acknowledged {step["after_minutes"]} min after detection' if by_time
               else f'level {wanted_level} requested')
        new.append({'key': level_key(number), 'kind': 'level', 'level': number, 'who': rung['who'], 'title': rung['title'],
                    'category': None, 'due_at': step['at'] if by_time else iso(moment), 'reason': why,
                    'contact': public_contact(people.get(rung['who'])), 'contact_ref': rung['who']})
    for team, why in ({} if resolved else _teams(record)).items():
        if team_key(team) in escalated:
            continue
        new.append({'key': team_key(team), 'kind': 'team', 'level': None, 'who': team, 'title': TEAMS[team]['title'],
                    'category': team, 'due_at': iso(moment), 'reason': why,
                    'contact': public_contact(people.get(team)), 'contact_ref': team})
    externals = {} if resolved else _externals(record, rules_, external)
    for category, why in externals.items():
        if external_key(category) in escalated:
            continue
        rule = rules_[category]
        new.append({'key': external_key(category), 'kind': 'external', 'level': None, 'who': None, 'title': rule.get('title'),
                    'category': category, 'conditions': rule.get('conditions'), 'due_at': iso(moment), 'reason': why,
                    'contact': public_contact(outside.get(category)), 'contact_ref': category})

    undelivered = [] if resolved else [_again(item, rungs, rules_, people, outside) for key, item in escalated.items() if key not in notified]
    missing = [f"no contact for {item['title']} ({'external_contacts' if item['kind'] == 'external' else 'contacts'}.{item['contact_ref']})"
               for item in new + undelivered if not item['contact']]
    reached = max([current] + [item['level'] for item in new if item['kind'] == 'level'])
    return {
        'incident_id': incident_id, 'priority': priority, 'state': record.get('state'), 'status': record.get('status'),
        'acknowledged': acknowledged, 'now': iso(moment), 'clock_started_at': iso(begin) if begin else None,
        'due_level': due, 'current_level': current, 'reached_level': reached,
        'next_level': int(next_step.get('level') or 1) if next_step else None,
        'next_escalation_at': next_step['at'] if next_step else None,
        'schedule': steps, 'new_escalations': new, 'undelivered': undelivered, 'notify': new + undelivered,
        'escalated': list(escalated.values()), 'reasons': reasons, 'missing_contacts': missing,
    }


def _again(item: dict[str, t.Any], rungs: dict[int, dict[str, t.Any]], rules: dict[str, dict[str, t.Any]],
           people: dict[str, dict[str, t.Any]], outside: dict[str, dict[str, t.Any]]) -> dict[str, t.Any]:
    """An escalation recorded earlier whose contacts were never notified, with today's contacts."""
    if item.get('kind') == 'level':
        rung = rungs.get(int(item.get('level') or 0)) or {'who': item.get('who'), 'title': item.get('title')}
        ref, contact = rung['who'], people.get(rung['who'])
    elif item.get('kind') == 'team':
        ref = item.get('category')
        contact = people.get(ref)
    else:
        ref = item.get('category')
        contact = outside.get(ref)
    rule = (rules.get(ref) or {}) if item.get('kind') == 'external' else {}
    return dict(item, reason=f"recorded at {item.get('recorded_at')} but its contacts were not notified yet",
                due_at=item.get('recorded_at'), conditions=rule.get('conditions'), contact=public_contact(contact), contact_ref=ref)


def message(incident_id: str, item: t.Mapping[str, t.Any], record: t.Mapping[str, t.Any]) -> str:
    """One line for the ledger and the notifications: who is brought in, and why."""
    who = (item.get('contact') or {}).get('name')
    target = f"level {item['level']} ({item['title']}" if item['kind'] == 'level' else f"{item['title']} ({item['category']}"
    target += f': {who})' if who else ')'
    return f"{incident_id} ({record.get('priority') or 'no priority'}, {record.get('status')}) escalated to {target}: {item['reason']}"
