# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Incident priority per the TRDR Hub runbook's matrix, shared by a module and filters.

Pure logic on plain data: the ``incident_assess`` module and the ``incident_priority``
/ ``response_deadline`` filters call the same ``assess`` and ``deadline``, so a
playbook gets the same answer on the controller and on a target. Every time figure
lives in ``DEFAULT_POLICY``, the one table an inventory overrides with ``policy``.
"""

from __future__ import annotations

import copy
import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_z as iso
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import parse_time as common_parse_time
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.health import health_signals

PRIORITIES = ('P1', 'P2', 'P3', 'P4')
IGNORE = 'ignore'  # a severity_map value: the alert is listed in ``ignored`` and never counted
SCOPES = ('all', 'some', 'none')
UTC = datetime.timezone.utc
WEEKEND = (5, 6)  # Saturday, Sunday (UTC)

# The escalation levels of the runbook, level 1 first: who is brought in, and the title.
LEVELS = (('on_call', 'On-call engineer'), ('team_lead', 'Senior engineer / team lead'),
          ('engineering_manager', 'Engineering manager'), ('executive', 'CTO / VP Engineering'))


def _schedule(*after_minutes: int) -> list[dict[str, t.Any]]:
    """The escalation steps of a priority: level n after the n-th number of minutes (after detection)."""
    return [{'level': level, 'after_minutes': minutes, 'who': LEVELS[level - 1][0], 'title': LEVELS[level - 1][1]}
            for level, minutes in enumerate(after_minutes, 1)]


DEFAULT_POLICY: dict[str, t.Any] = {
    'P1': {
        'label': 'Critical', 'response_minutes': 15, 'business_days_only': False,
        'escalation': _schedule(0, 15, 30, 60),
        'notify': ['on_call', 'incident_commander', 'engineering_manager', 'status_page', 'customers'],
        'update_internal_minutes': 15, 'update_customer_minutes': 30,
    },
    'P2': {
        'label': 'High', 'response_minutes': 60, 'business_days_only': False,
        'escalation': _schedule(0, 60, 120),
        'notify': ['on_call', 'team_lead', 'status_page'],
        'update_internal_minutes': 30, 'update_customer_minutes': 60,
    },
    'P3': {
        'label': 'Medium', 'response_minutes': 240, 'business_days_only': False,
        'escalation': _schedule(0, 240),
        'notify': ['on_call', 'team_channel'],
        'update_internal_minutes': 120, 'update_customer_minutes': None,
    },
    'P4': {
        'label': 'Low', 'response_minutes': 1440, 'business_days_only': True,
        'escalation': _schedule(),
        'notify': ['ticket'],
        'update_internal_minutes': None, 'update_customer_minutes': None,
    },
    # Alert label severity -> priority, or 'ignore' (listed, never counted). TRDR Hub's rules use
    # P1|P2|P3; a cluster's Alertmanager also carries kube-prometheus' critical|warning|info and the
    # always-firing Watchdog / InfoInhibitor (severity none). Labels compare without case; a
    # firing alert whose label is not here is a finding, not a failure.
    'severity_map': {'P1': 'P1', 'P2': 'P2', 'P3': 'P3', 'P4': 'P4',
                     'critical': 'P1', 'warning': 'P3', 'info': 'ignore', 'none': 'ignore'},
    # Impact category -> scope of customers affected (or 'unknown' when not given) -> priority.
    'impact': {
        'customer-facing': {'all': 'P1', 'some': 'P2', 'none': 'P3', 'unknown': 'P2'},
        'data_loss': {'all': 'P1', 'some': 'P1', 'none': 'P1', 'unknown': 'P1'},
        'security': {'all': 'P1', 'some': 'P1', 'none': 'P1', 'unknown': 'P1'},
        'data_integrity': {'all': 'P2', 'some': 'P2', 'none': 'P2', 'unknown': 'P2'},
        'compliance': {'all': 'P2', 'some': 'P2', 'none': 'P2', 'unknown': 'P2'},
        'internal': {'all': 'P3', 'some': 'P3', 'none': 'P3', 'unknown': 'P3'},
        'cosmetic': {'all': 'P4', 'some': 'P4', 'none': 'P4', 'unknown': 'P4'},
    },
    # A failing endpoint whose path ends with one of these makes the incident at least P2; others P3.
    'critical_endpoints': ['/healthz', '/health/ready', '/health/live'],
    # A dependency the application cannot serve without: an endpoint's JSON answer whose
    # ``checks.<name>.status`` is neither ok nor degraded (TRDR Hub's /health/ready when the
    # database is down) makes the incident P1 - the service is down though its process answers.
    'critical_dependencies': ['database'],
}
_PRIORITY_KEYS = {'label': str, 'response_minutes': int, 'business_days_only': bool, 'escalation': list, 'notify': list,
                  'update_internal_minutes': (int, type(None)), 'update_customer_minutes': (int, type(None))}
_ACTIVE_STATES = ('active', 'firing', 'unprocessed')


def _rank(priority: str) -> int:
    return PRIORITIES.index(priority)


def _priority(value: t.Any, where: str) -> str:
    text = str(value).strip().upper() if value is not None else ''
    if text not in PRIORITIES:
        raise AssessmentError(f"{where} must be one of {', '.join(PRIORITIES)}, got {value!r}")
    return text


def _severity_target(value: t.Any, label: t.Any) -> str:
    """A severity_map value: a priority, or ``ignore``."""
    if isinstance(value, str) and value.strip().lower() == IGNORE:
        return IGNORE
    if str(value).strip().upper() not in PRIORITIES:
        raise AssessmentError(f"policy.severity_map.{label} must be one of {', '.join(PRIORITIES)} or {IGNORE}, got {value!r}")
    return _priority(value, f'policy.severity_map.{label}')


def _norm(name: t.Any) -> str:
    """Impact names compare without case and with '-' and '_' alike (customer_facing = customer-facing)."""
    return str(name).strip().lower().replace('-', '_')


# -- policy ----------------------------------------------------------------------------------------
def effective_policy(policy: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    """DEFAULT_POLICY with ``policy`` merged in (one level deep; lists are replaced), checked."""
    merged = copy.deepcopy(DEFAULT_POLICY)
    if policy is None:
        return merged
    if not isinstance(policy, dict):
        raise AssessmentError(f'policy must be a mapping, got {kind_of(policy)}')
    for key, value in policy.items():
        if key not in merged:
            raise AssessmentError(f"policy has unknown key {key!r}; allowed: {', '.join(merged)}")
        if key == 'critical_endpoints':
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise AssessmentError('policy.critical_endpoints must be a list of URL paths')
            merged[key] = list(value)
            continue
        if key == 'critical_dependencies':
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise AssessmentError('policy.critical_dependencies must be a list of check names such as database')
            merged[key] = list(value)
            continue
        if not isinstance(value, dict):
            raise AssessmentError(f'policy.{key} must be a mapping, got {kind_of(value)}')
        if key == 'impact':
            for category, scopes in value.items():
                if not isinstance(scopes, dict):
                    raise AssessmentError(f'policy.impact.{category} must map scopes (all, some, none, unknown) to priorities')
                target = merged['impact'].setdefault(_impact_key(merged, category), {})
                for scope, prio in scopes.items():
                    if scope not in SCOPES + ('unknown',):
                        raise AssessmentError(f'policy.impact.{category} has unknown scope {scope!r}; allowed: all, some, none, unknown')
                    target[scope] = _priority(prio, f'policy.impact.{category}.{scope}')
        elif key == 'severity_map':
            for label, prio in value.items():
                merged['severity_map'][str(label)] = _severity_target(prio, label)
        else:
            merged[key].update(value)
    for prio in PRIORITIES:
        _check_priority_policy(prio, merged[prio])
    return merged


def _impact_key(policy: dict[str, t.Any], category: t.Any) -> str:
    """The policy's spelling of an impact category, or the new name as given."""
    for known in policy['impact']:
        if _norm(known) == _norm(category):
            return known
    return str(category)


def _check_priority_policy(prio: str, entry: dict[str, t.Any]) -> None:
    for key, value in entry.items():
        kind = _PRIORITY_KEYS.get(key)
        if kind is None:
            raise AssessmentError(f"policy.{prio} has unknown key {key!r}; allowed: {', '.join(_PRIORITY_KEYS)}")
        if not isinstance(value, kind) or (isinstance(value, bool) and key != 'business_days_only'):
            raise AssessmentError(f'policy.{prio}.{key} has the wrong type: {value!r}')
        if key.endswith('_minutes') and value is not None and value < 0:
            raise AssessmentError(f'policy.{prio}.{key} must not be negative, got {value}')
    for index, step in enumerate(entry['escalation']):
        if not isinstance(step, dict) or not isinstance(step.get('after_minutes'), int) or step['after_minutes'] < 0 \
                or not step.get('who'):
            raise AssessmentError(f'policy.{prio}.escalation[{index}] needs who and after_minutes (0 or more), got {step!r}')


# -- time ------------------------------------------------------------------------------------------
def parse_time(value: t.Any = None, now: datetime.datetime | None = None) -> datetime.datetime:
    """``_common/time.parse_time`` (None means now; no offset means UTC, as documented); a bad time is an AssessmentError."""
    try:
        return common_parse_time(value, now)
    except ValueError:
        raise AssessmentError(f'detected_at must be an ISO 8601 time such as 2025-01-15T14:30:00Z, got {value!r}') from None


def add_minutes(start: datetime.datetime, minutes: int, business_days_only: bool = False) -> datetime.datetime:
    """``start`` + ``minutes``; with business_days_only, Saturday and Sunday (UTC) do not count.

    Friday 14:00 + 1 business day = Monday 14:00; Saturday 10:00 + 1 business day =
    Tuesday 00:00, because the clock only starts on Monday at 00:00.
    """
    if not business_days_only or minutes == 0:
        return start + datetime.timedelta(minutes=minutes)
    remaining, current = datetime.timedelta(minutes=minutes), start
    while True:
        midnight = datetime.datetime.combine(current.date() + datetime.timedelta(days=1), datetime.time(), UTC)
        if current.weekday() not in WEEKEND:
            if remaining <= midnight - current:
                return current + remaining
            remaining -= midnight - current
        current = midnight


def deadline(priority: str, detected_at: t.Any = None, policy: dict[str, t.Any] | None = None) -> str:
    """The response deadline (ISO 8601 UTC) of ``priority`` for an incident detected at ``detected_at``."""
    entry = effective_policy(policy)[_priority(priority, 'priority')]
    return iso(add_minutes(parse_time(detected_at), entry['response_minutes'], entry['business_days_only']))


# -- signals ---------------------------------------------------------------------------------------
def _alert_state(alert: dict[str, t.Any]) -> str:
    status = alert.get('status')
    if isinstance(status, dict):
        if status.get('silencedBy') or status.get('inhibitedBy'):
            return 'suppressed'
        return str(status.get('state') or 'active').lower()
    return str(status or alert.get('state') or 'active').lower()


def alert_signals(alerts: t.Any, policy: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], list[str], list[str]]:
    """Signals, ignored alerts and findings: what counted, what did not and why, what could not be classified.

    A firing alert counts with the priority ``policy.severity_map`` gives its ``severity``
    label; a label mapped to ``ignore`` (kube-prometheus' Watchdog) is only listed, and a label
    the map does not know is a finding: one foreign alert must not stop the assessment of the
    others.
    """
    if alerts is None:
        return [], [], []
    if not isinstance(alerts, list):
        raise AssessmentError(f'alerts must be a list of Alertmanager alerts, got {kind_of(alerts)}')
    severity_map = {str(k).strip().upper(): v for k, v in policy['severity_map'].items()}
    signals: list[dict[str, t.Any]] = []
    ignored: list[str] = []
    findings: list[str] = []
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get('labels', {}), dict):
            raise AssessmentError(f'alerts[{index}] is not an alert (a dict with labels), got {alert!r}')
        labels = alert.get('labels') or {}
        name = labels.get('alertname') or f'alerts[{index}]'
        state = _alert_state(alert)
        severity = labels.get('severity')
        if state not in _ACTIVE_STATES:
            ignored.append(f'alert {name} (severity {severity}) is {state}: not counted')
            continue
        prio = severity_map.get(str(severity).strip().upper()) if severity is not None else None
        if prio == IGNORE:
            ignored.append(f'alert {name} (severity {severity}) is ignored by policy.severity_map: not counted')
            continue
        if prio is None:
            label = f'severity label {severity!r}' if severity is not None else 'no severity label'
            findings.append(f'alert {name} is firing with {label}, which policy.severity_map does not classify: '
                            'not counted (map it to a priority or to ignore)')
            continue
        where = f", component {labels['component']}" if labels.get('component') else ''
        signals.append({'source': 'alert', 'priority': prio, 'alertname': name, 'fingerprint': alert.get('fingerprint'),
                        'reason': f'alert {name} (severity {severity}{where}) is firing'})
    return signals, ignored, findings


def impact_signals(impact: t.Any, scope: t.Any, policy: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The responder's judgement: impact categories, graded by how many customers are affected."""
    scope = str(scope).strip().lower() if scope not in (None, '') else None
    if scope is not None and scope not in SCOPES:
        raise AssessmentError(f"scope must be one of {', '.join(SCOPES)} (customers affected), got {scope!r}")
    categories = [impact] if isinstance(impact, str) else list(impact or [])
    if not categories and scope in ('all', 'some'):
        categories = ['customer-facing']  # customers are affected, so the impact is customer-facing
    known = {_norm(name): name for name in policy['impact']}
    signals = []
    for category in categories:
        name = known.get(_norm(category))
        if name is None:
            raise AssessmentError(f"impact {category!r} is not one of {', '.join(policy['impact'])}")
        prio = policy['impact'][name].get(scope or 'unknown') or policy['impact'][name].get('unknown')
        if prio is None:
            raise AssessmentError(f"policy.impact.{name} has no priority for scope {scope or 'unknown'}")
        customers = f', {scope} customers affected' if scope else ''
        signals.append({'source': 'impact', 'priority': prio, 'reason': f'impact {name}{customers}'})
    return signals


# -- assessment ------------------------------------------------------------------------------------
def _override(override: t.Any) -> dict[str, str] | None:
    if override is None or override == {}:
        return None
    if not isinstance(override, dict) or not str(override.get('reason') or '').strip():
        raise AssessmentError('override needs a priority and a reason, for example {priority: P1, reason: "CEO escalation"}')
    return {'priority': _priority(override.get('priority'), 'override.priority'), 'reason': str(override['reason']).strip()}


def assess(alerts: t.Any = None, health: t.Any = None, impact: t.Any = None, scope: t.Any = None, override: t.Any = None,
           detected_at: t.Any = None, policy: dict[str, t.Any] | None = None,
           now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Priority, reasons, deadline, escalation, notification and update cadence of one incident."""
    merged = effective_policy(policy)
    detected = parse_time(detected_at, now)
    chosen = _override(override)
    signals, ignored, findings = alert_signals(alerts, merged)
    health_found, health_findings = health_signals(health, merged)
    signals += health_found + impact_signals(impact, scope, merged)
    findings += health_findings
    signals.sort(key=lambda s: _rank(s['priority']))
    assessed = signals[0]['priority'] if signals else 'P4'
    reasons = [f"{s['reason']} -> {s['priority']}" for s in signals]
    if not signals:
        unassessed = f'; {len(findings)} input(s) could not be assessed (see findings)' if findings else ''
        reasons.append(f'no firing alert, failing health check or impact given{unassessed} -> P4')
    priority = chosen['priority'] if chosen else assessed
    if chosen:
        changed = f'overridden from {assessed} to {priority}' if priority != assessed else f'set to {priority} (as assessed)'
        reasons.insert(0, f"{changed}: {chosen['reason']}")
    entry = merged[priority]
    business = entry['business_days_only']

    def at(minutes: int | None) -> str | None:
        return iso(add_minutes(detected, minutes, business)) if minutes is not None else None

    return {
        'priority': priority, 'label': entry['label'], 'assessed_priority': assessed, 'overridden': chosen is not None,
        'override': chosen, 'reasons': reasons, 'signals': signals, 'ignored': ignored, 'findings': findings,
        'detected_at': iso(detected), 'response_minutes': entry['response_minutes'], 'business_days_only': business,
        'response_deadline': at(entry['response_minutes']),
        'escalation': [dict(step, at=at(step['after_minutes'])) for step in entry['escalation']],
        'notify': list(entry['notify']),
        'update_cadence': {'internal_minutes': entry['update_internal_minutes'],
                           'customer_minutes': entry['update_customer_minutes']},
    }
