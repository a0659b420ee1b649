# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Which incident messages are due now, on which channel: runbook phase 5 "communicate".

Pure logic on plain data, called by the ``communication_plan`` filter of the
``communicate`` role. Who is told comes from the priority policy's ``notify`` list
(module_utils/_incident/priority.py), mapped to channels; how often from its update cadence
(``update_internal_minutes`` for internal channels, ``update_customer_minutes`` for
customer channels). What was already sent comes from the ledger's ``communication``
entries, so the ledger is the only memory and a re-run within the cadence sends nothing.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    effective_policy,
    iso,
    parse_time,
)

# channel -> audience; the audience picks the cadence of the priority policy.
CHANNELS = {'slack': 'internal', 'pagerduty': 'internal', 'statuspage': 'customer', 'email': 'customer'}
KINDS = ('initial', 'update', 'resolved')
EVENT = 'communication'
# PagerDuty follows the record's state instead of a cadence: each action is sent once.
PAGERDUTY_KIND = {'trigger': 'initial', 'acknowledge': 'update', 'resolve': 'resolved'}
DEFAULT_NOTIFY_CHANNELS: dict[str, list[str]] = {
    'on_call': ['pagerduty', 'slack'], 'incident_commander': ['slack'], 'engineering_manager': ['slack'],
    'team_lead': ['slack'], 'team_channel': ['slack'], 'status_page': ['statuspage'], 'customers': ['email'],
    'customer_success': ['email'], 'ticket': [],
}


class CommunicationError(InputError):
    """An input the plan cannot use: no record, an unknown channel, a bad time."""


def _sent(entries: t.Iterable[t.Any]) -> dict[str, list[dict[str, t.Any]]]:
    """The communication entries of each channel, oldest first (check-mode previews are never in the ledger)."""
    out: dict[str, list[dict[str, t.Any]]] = {name: [] for name in CHANNELS}
    for entry in entries or []:
        if not isinstance(entry, dict) or entry.get('event') != EVENT:
            continue
        data = entry.get('data') if isinstance(entry.get('data'), dict) else {}
        channel = data.get('channel')
        if channel in out and data.get('sent', True):
            out[channel].append({'ts': entry.get('ts'), 'kind': data.get('kind'), 'status': data.get('status'),
                                 'action': data.get('action'), 'seq': entry.get('seq')})
    return out


def _channels_for(notify: list[str], notify_channels: dict[str, list[str]]) -> dict[str, list[str]]:
    """channel -> the notify targets that ask for it, for one priority."""
    wanted: dict[str, list[str]] = {}
    for target in notify:
        for channel in notify_channels.get(target, []):
            if channel not in CHANNELS:
                raise CommunicationError(f"notify_channels.{target} names unknown channel {channel!r}; "
                                         f"known: {', '.join(CHANNELS)}")
            wanted.setdefault(channel, []).append(target)
    return wanted


def _since_last_cycle(history: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Messages after the last resolution: a reopened incident starts a new cycle with an initial message."""
    for index in range(len(history) - 1, -1, -1):
        if history[index]['kind'] == 'resolved':
            return history[index + 1:]
    return history


def _pagerduty(record: dict[str, t.Any], history: list[dict[str, t.Any]], force: bool) -> tuple[list[str], str]:
    """The events that bring the PagerDuty incident to the record's state (dedup_key = incident id)."""
    resolved = record.get('state') == 'resolved'
    cycle = [h for h in history if h.get('action')]
    if resolved:
        if not cycle or cycle[-1]['action'] == 'resolve':
            if force and cycle:
                return ['resolve'], 'forced'
            return [], 'already resolved' if cycle else 'resolved before anyone was paged: nothing to resolve'
        return ['resolve'], 'the incident was resolved'
    open_cycle = _since_last_cycle([dict(h, kind=PAGERDUTY_KIND.get(h['action'])) for h in cycle])
    sent = [h['action'] for h in open_cycle]
    actions = [] if 'trigger' in sent else ['trigger']
    if record.get('acknowledged') and 'acknowledge' not in sent:
        actions.append('acknowledge')
    if not actions and force:
        return ['trigger'], 'forced'
    reason = {(): 'already triggered' + (' and acknowledged' if 'acknowledge' in sent else ''),
              ('trigger',): 'the incident is open and nobody was paged yet',
              ('acknowledge',): 'the incident was acknowledged',
              ('trigger', 'acknowledge'): 'the incident is open and acknowledged'}[tuple(actions)]
    return actions, reason


def _message(record: dict[str, t.Any], history: list[dict[str, t.Any]], cadence: int | None, now: datetime.datetime,
             force: bool) -> tuple[str | None, bool, str, str | None]:
    """(kind, due, reason, next update time) of a message channel."""
    status, resolved = record.get('status'), record.get('state') == 'resolved'
    if resolved:
        if history and history[-1]['kind'] == 'resolved':
            return 'resolved', force, 'forced' if force else 'the resolution was already sent', None
        if not history:
            return 'resolved', force, 'forced' if force else 'resolved before any message was sent on this channel', None
        return 'resolved', True, 'the incident was resolved', None
    cycle = _since_last_cycle(history)
    if not cycle:
        return 'initial', True, 'no message sent yet' if not history else 'the incident was reopened', _next(now, cadence)
    last = cycle[-1]
    last_at = parse_time(last['ts'])
    next_at = last_at + datetime.timedelta(minutes=cadence) if cadence is not None else None
    if force:
        return 'update', True, 'forced', _next(now, cadence)
    if last.get('status') != status:
        return 'update', True, f"the status changed from {last.get('status')} to {status}", _next(now, cadence)
    if next_at is not None and now >= next_at:
        return 'update', True, f'the last message was sent at {iso(last_at)}, {cadence} min cadence', _next(now, cadence)
    if next_at is None:
        return 'update', False, 'no periodic updates at this priority; the status is unchanged', None
    return 'update', False, f'the last message was sent at {iso(last_at)}; next update due at {iso(next_at)}', iso(next_at)


def _next(now: datetime.datetime, cadence: int | None) -> str | None:
    return iso(now + datetime.timedelta(minutes=cadence)) if cadence is not None else None


def plan(record: t.Any, entries: t.Any, enabled: t.Any, now: t.Any = None, force: bool = False,
         policy: dict[str, t.Any] | None = None, notify_channels: dict[str, list[str]] | None = None) -> dict[str, t.Any]:
    """For each channel: enabled, wanted at this priority, kind, due, reason and the next update time.

    ``enabled`` maps a channel to ``True`` or to the reason it is disabled (its configuration is absent).
    """
    if not isinstance(record, dict) or not record.get('incident_id'):
        raise CommunicationError('communication_plan needs the incident record (the incident module\'s "incident" result)')
    enabled = enabled or {}
    unknown = sorted(set(enabled) - set(CHANNELS))
    if unknown:
        raise CommunicationError(f"unknown channel(s) {', '.join(unknown)}; known: {', '.join(CHANNELS)}")
    moment = parse_time(now)
    merged = effective_policy(policy)
    priority = record.get('priority') or 'P4'
    entry = merged.get(priority)
    if not isinstance(entry, dict):
        raise CommunicationError(f'the incident has priority {priority!r}, which the policy does not know')
    mapping = dict(DEFAULT_NOTIFY_CHANNELS, **(notify_channels or {}))
    wanted = _channels_for(entry['notify'], mapping)
    cadence = {'internal': entry['update_internal_minutes'], 'customer': entry['update_customer_minutes']}
    sent = _sent(entries)
    channels: dict[str, dict[str, t.Any]] = {}
    for name, audience in CHANNELS.items():
        history = sent[name]
        info: dict[str, t.Any] = {
            'channel': name, 'audience': audience, 'cadence_minutes': cadence[audience], 'notify': wanted.get(name, []),
            'last_sent_at': history[-1]['ts'] if history else None, 'sent_count': len(history),
            'due': False, 'kind': None, 'actions': [], 'next_update_at': None, 'enabled': enabled.get(name) is True,
        }
        if name not in wanted:
            info['reason'] = f"not notified at {priority} (policy notify: {', '.join(entry['notify']) or 'nobody'})"
        elif enabled.get(name) is not True:
            info['reason'] = f'disabled: {enabled.get(name) or "not configured"}'
        elif name == 'pagerduty':
            info['actions'], info['reason'] = _pagerduty(record, history, force)
            info['due'] = bool(info['actions'])
            info['kind'] = PAGERDUTY_KIND[info['actions'][-1]] if info['actions'] else None
        else:
            info['kind'], info['due'], info['reason'], info['next_update_at'] = _message(
                record, history, cadence[audience], moment, force)
        channels[name] = info
    due = [name for name, info in channels.items() if info['due']]
    return {'incident_id': record['incident_id'], 'priority': priority, 'status': record.get('status'),
            'state': record.get('state'), 'now': iso(moment), 'forced': bool(force), 'cadence': cadence,
            'channels': channels, 'due': due,
            'skipped': {name: info['reason'] for name, info in channels.items() if not info['due']}}


def summary_lines(the_plan: dict[str, t.Any], check_mode: bool = False) -> list[str]:
    """What the role prints: one line per channel, due or not and why."""
    verb = 'would send' if check_mode else 'sending'
    lines = [f"[{the_plan['incident_id']}] {the_plan['priority']} {the_plan['status']}: "
             f"{len(the_plan['due'])} channel(s) due ({', '.join(the_plan['due']) or 'none'})"]
    for name, info in the_plan['channels'].items():
        if info['due']:
            what = ', '.join(info['actions']) if info['actions'] else info['kind']
            lines.append(f"{name}: {verb} {what} - {info['reason']}")
        else:
            lines.append(f"{name}: nothing to send - {info['reason']}")
    return lines
