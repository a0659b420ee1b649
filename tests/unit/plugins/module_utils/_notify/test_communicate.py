# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.communicate import (
    CommunicationError,
    plan,
    summary_lines,
)

ALL = {'slack': True, 'pagerduty': True, 'statuspage': True, 'email': True}
NOW = '2025-01-15T15:00:00Z'


def record(**kw):
    base = {'incident_id': 'INC-1', 'state': 'open', 'status': 'investigating', 'priority': 'P1', 'acknowledged': False}
    base.update(kw)
    return base


def sent(channel, kind, ts, status='investigating', action=None):
    data = {'channel': channel, 'kind': kind, 'status': status, 'sent': True}
    if action:
        data['action'] = action
    return {'event': 'communication', 'ts': ts, 'data': data}


def test_p1_first_run_sends_everything():
    result = plan(record(), [], ALL, now=NOW)
    assert result['due'] == ['slack', 'pagerduty', 'statuspage', 'email']
    assert result['channels']['pagerduty']['actions'] == ['trigger']
    assert result['channels']['slack']['kind'] == 'initial'
    assert result['channels']['slack']['next_update_at'] == '2025-01-15T15:15:00Z'     # internal: 15 min
    assert result['channels']['email']['next_update_at'] == '2025-01-15T15:30:00Z'     # customers: 30 min


def test_nothing_due_within_cadence_then_due_after_it():
    history = [sent('slack', 'initial', '2025-01-15T14:50:00+00:00'), sent('email', 'initial', '2025-01-15T14:50:00+00:00'),
               sent('statuspage', 'initial', '2025-01-15T14:50:00+00:00'),
               sent('pagerduty', 'initial', '2025-01-15T14:50:00+00:00', action='trigger')]
    quiet = plan(record(), history, ALL, now=NOW)
    assert quiet['due'] == []
    assert 'next update due at 2025-01-15T15:05:00Z' in quiet['skipped']['slack']
    later = plan(record(), history, ALL, now='2025-01-15T15:06:00Z')
    assert later['due'] == ['slack'] and later['channels']['slack']['kind'] == 'update'
    assert plan(record(), history, ALL, now='2025-01-15T15:20:00Z')['due'] == ['slack', 'statuspage', 'email']


def test_status_change_acknowledge_and_force():
    history = [sent('slack', 'initial', '2025-01-15T14:59:00+00:00'),
               sent('pagerduty', 'initial', '2025-01-15T14:59:00+00:00', action='trigger')]
    changed = plan(record(status='monitoring', acknowledged=True), history, ALL, now=NOW)
    assert 'status changed from investigating to monitoring' in changed['channels']['slack']['reason']
    assert changed['channels']['pagerduty']['actions'] == ['acknowledge']
    forced = plan(record(), history, ALL, now=NOW, force=True)
    assert forced['channels']['slack']['due'] and forced['channels']['slack']['reason'] == 'forced'


def test_resolved_once_then_nothing():
    history = [sent('slack', 'initial', '2025-01-15T14:40:00+00:00'),
               sent('pagerduty', 'initial', '2025-01-15T14:40:00+00:00', action='trigger')]
    done = record(state='resolved', status='resolved')
    first = plan(done, history, ALL, now=NOW)
    assert first['due'] == ['slack', 'pagerduty']   # nothing was ever sent to customers: no resolution either
    assert first['channels']['pagerduty']['actions'] == ['resolve'] and first['channels']['slack']['kind'] == 'resolved'
    history += [sent('slack', 'resolved', NOW, 'resolved'), sent('pagerduty', 'resolved', NOW, 'resolved', action='resolve')]
    assert plan(done, history, ALL, now=NOW)['due'] == []


def test_reopened_incident_starts_again():
    history = [sent('slack', 'initial', '2025-01-15T14:40:00+00:00'), sent('slack', 'resolved', '2025-01-15T14:50:00+00:00')]
    again = plan(record(), history, ALL, now=NOW)
    assert again['channels']['slack']['kind'] == 'initial' and 'reopened' in again['channels']['slack']['reason']


@pytest.mark.parametrize('priority, due', [
    ('P2', ['slack', 'pagerduty', 'statuspage']),
    ('P3', ['slack', 'pagerduty']),
    ('P4', []),
])
def test_priority_decides_the_channels(priority, due):
    assert plan(record(priority=priority), [], ALL, now=NOW)['due'] == due


def test_disabled_channel_is_reported():
    result = plan(record(), [], dict(ALL, slack='no webhook'), now=NOW)
    assert 'slack' not in result['due'] and result['skipped']['slack'] == 'disabled: no webhook'
    assert 'slack: nothing to send - disabled: no webhook' in summary_lines(result, check_mode=True)
    assert 'email: would send initial - no message sent yet' in summary_lines(result, check_mode=True)


def test_policy_and_mapping_override():
    result = plan(record(priority='P3'), [], ALL, now=NOW, policy={'P3': {'notify': ['on_call', 'customers']}},
                  notify_channels={'on_call': ['slack']})
    assert result['due'] == ['slack', 'email']
    assert result['channels']['email']['next_update_at'] is None   # P3 has no customer cadence


@pytest.mark.parametrize('args, message', [
    (({}, [], ALL), 'needs the incident record'),
    ((record(), [], {'fax': True}), 'unknown channel(s) fax'),
])
def test_bad_input(args, message):
    with pytest.raises(CommunicationError, match=message.replace('(', r'\(').replace(')', r'\)')):
        plan(*args, now=NOW)
    with pytest.raises(CommunicationError, match='unknown channel'):
        plan(record(), [], ALL, now=NOW, notify_channels={'on_call': ['fax']})
