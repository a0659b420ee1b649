# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notification obligations derived from the impact categories, the priority and the detection time."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.obligations import (
    ObligationError,
    check_notification,
    derive,
    describe,
    effective_obligations,
)

UTC = datetime.timezone.utc
DETECTED = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)


def record(impact, priority='P2', **kw):
    base = {'incident_id': 'INC-O1', 'priority': priority, 'impact': impact, 'detected_at': '2025-01-15T14:30:00Z',
            'opened_at': '2025-01-15T14:40:00Z'}
    base.update(kw)
    return base


def hours(value):
    return DETECTED + datetime.timedelta(hours=value)


def by_key(obligations):
    return {item['key']: item for item in obligations}


@pytest.mark.parametrize('impact,priority,expected', [
    (['security'], 'P1', ['regulator', 'customers_breach', 'insurance']),
    (['Data Integrity'], 'P2', []),
    (['data_loss'], 'P1', ['regulator', 'customers_breach', 'insurance']),
    (['compliance'], 'P2', ['regulator']),
    (['customer-facing'], 'P1', ['customers_impact', 'partners']),
    (['customer_facing'], 'P2', ['partners']),
    (['customer-facing'], 'P3', []),
    (['internal'], 'P1', []),
])
def test_obligations_follow_impact_and_priority(impact, priority, expected):
    assert [item['key'] for item in derive(record(impact, priority), now=hours(1))] == expected


def test_deadline_runs_from_detection_and_shows_time_left():
    regulator = by_key(derive(record(['security']), now=hours(10)))['regulator']
    assert regulator['due_at'] == '2025-01-18T14:30:00Z'
    assert regulator['state'] == 'open' and regulator['seconds_left'] == 62 * 3600
    assert describe(regulator) == 'Regulator (data protection supervisory authority) by 2025-01-18T14:30:00Z: 62h00m left'
    late = by_key(derive(record(['security']), now=hours(73.5)))['regulator']
    assert late['state'] == 'overdue' and late['seconds_left'] == -5400
    assert describe(late).endswith('OVERDUE by 1h30m')
    opened_only = by_key(derive(record(['security'], detected_at=None), now=hours(10)))['regulator']
    assert opened_only['due_at'] == '2025-01-18T14:40:00Z'


def test_notified_obligation_is_met_or_met_late():
    notes = {'regulator': {'at': '2025-01-16T09:00:00Z', 'by': 'dpo', 'to': 'ICO, case 123', 'note': None},
             'insurance': {'at': '2025-01-19T09:00:00Z', 'by': 'cfo', 'to': 'Carrier claims desk', 'note': None}}
    result = by_key(derive(record(['security'], notifications=notes), now=hours(100)))
    assert result['regulator']['state'] == 'met' and result['regulator']['seconds_left'] is None
    assert result['insurance']['state'] == 'met_late'
    assert result['customers_breach']['state'] == 'overdue'
    assert describe(result['regulator']).endswith('notified ICO, case 123 at 2025-01-16T09:00:00Z by dpo')
    # A notification made stays in the list after the impact was corrected.
    corrected = derive(record(['internal'], notifications=notes), now=hours(100))
    assert [item['key'] for item in corrected] == ['regulator', 'insurance']
    assert corrected[0]['reason'] == 'notified earlier'


def test_inventory_policy_changes_adds_and_removes():
    policy = {'regulator': {'within_hours': 24}, 'insurance': None,
              'card_networks': {'title': 'Card networks', 'when_impact': ['security'], 'within_hours': 24}}
    result = by_key(derive(record(['security']), now=hours(1), policy=policy))
    assert sorted(result) == ['card_networks', 'customers_breach', 'regulator']
    assert result['regulator']['due_at'] == '2025-01-16T14:30:00Z'
    assert result['card_networks']['party'] == 'card_networks'
    assert 'insurance' not in effective_obligations(policy)


@pytest.mark.parametrize('policy,message', [
    ({'regulator': {'within': 3}}, 'obligation_policy.regulator has unknown key(s) within'),
    ({'regulator': {'within_hours': 0}}, 'obligation_policy.regulator.within_hours must be a positive number'),
    ({'x': {'when_impact': 'security', 'within_hours': 1}}, 'obligation_policy.x.when_impact must be a list'),
    ({'x': {'when_priority': ['P9'], 'within_hours': 1}}, 'obligation_policy.x.when_priority has P9'),
    ({'x': 'soon'}, 'obligation_policy.x must be a dict'),
])
def test_bad_policy_is_one_message(policy, message):
    with pytest.raises(ObligationError, match=message.replace('(', r'\(').replace(')', r'\)')):
        effective_obligations(policy)


def test_check_notification():
    policy = effective_obligations()
    key, done = check_notification({'obligation': 'regulator', 'to': 'ICO'}, policy, actor='local:dpo', now=hours(5))
    assert key == 'regulator' and done == {'at': '2025-01-15T19:30:00Z', 'by': 'local:dpo', 'to': 'ICO', 'note': None}
    with pytest.raises(ObligationError, match='notified.obligation must be one of regulator'):
        check_notification({'obligation': 'press', 'to': 'x'}, policy, actor='a', now=hours(5))
    with pytest.raises(ObligationError, match='notified.to must say whom'):
        check_notification({'obligation': 'regulator'}, policy, actor='a', now=hours(5))
    with pytest.raises(ObligationError, match='notified.at must be an ISO 8601 time'):
        check_notification({'obligation': 'regulator', 'to': 'ICO', 'at': 'yesterday'}, policy, actor='a', now=hours(5))


def test_incident_record_keeps_notifications_and_returns_obligations(tmp_path, monkeypatch):
    from ansible_collections.trdrhub.incident.plugins.module_utils._incident import store as _incident_store

    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_RUN', 'AWX_USER_NAME', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    base = {'incident_id': 'INC-O2', 'root': str(tmp_path), 'state': 'open'}

    def manage(check_mode=False, now=None, **kw):
        return _incident_store.manage_incident(dict(base, **kw), env={}, check_mode=check_mode, now=now or hours(2))

    opened = manage(title='Suspicious export', priority='P1', impact=['security'], detected_at='2025-01-15T14:30:00Z')
    assert [item['key'] for item in opened['obligations']] == ['regulator', 'customers_breach', 'insurance']
    assert by_key(opened['obligations'])['regulator']['seconds_left'] == 70 * 3600
    notice = {'obligation': 'regulator', 'to': 'ICO, case 123', 'by': 'dpo'}
    checked = manage(check_mode=True, notified=notice)
    assert checked['changed'] and checked['entry'] is None
    assert by_key(manage()['obligations'])['regulator']['state'] == 'open'   # check mode recorded nothing
    done = manage(notified=notice, now=hours(20))
    assert done['changed'] and done['incident']['notifications'] == {
        'regulator': {'at': '2025-01-16T10:30:00Z', 'by': 'dpo', 'to': 'ICO, case 123', 'note': None}}
    assert done['entry']['data']['actions'] == ['update']
    assert by_key(done['obligations'])['regulator']['state'] == 'met'
    assert not manage(notified=notice, now=hours(30))['changed']
    policy = {'insurance': None, 'regulator': {'within_hours': 12}}
    read = manage(obligation_policy=policy, now=hours(30))
    assert not read['changed'] and sorted(by_key(read['obligations'])) == ['customers_breach', 'regulator']
    assert by_key(read['obligations'])['regulator']['state'] == 'met_late'
    with pytest.raises(ObligationError, match='notified.obligation must be one of'):
        manage(notified={'obligation': 'insurance', 'to': 'carrier'}, obligation_policy=policy)
