# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit review's flag rules and option parsing, without a database."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._audit import review
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgInputError

DAY, WEEK = 86400.0, 7 * 86400.0
UTC = datetime.timezone.utc


def cfg(**over):
    base = {
        'window_s': DAY, 'baseline_s': WEEK, 'baseline_label': '7d', 'spike_ratio': 3.0, 'spike_min_count': 50,
        'off_hours_min_count': 3, 'max_ips': 3, 'sensitive_actions': set(review.SENSITIVE_ACTIONS),
        'weights': dict(review.WEIGHTS), 'flag_new_actions': True, 'failed_login_threshold': 5,
        'business_label': '07:00-20:00 mon,tue,wed,thu,fri UTC',
    }
    base.update(over)
    return base


def actor(counts, **over):
    data = {'count': sum(counts.values()), 'counts': counts, 'off_hours_count': 0, 'failed_logins': 0, 'ip_count': 1,
            'first_seen': '2025-01-15T10:00:00+00:00'}
    data.update(over)
    return data


def names(flags):
    return {f['flag'] for f in flags}


def test_steady_actor_is_not_flagged():
    who = actor({'read': 70, 'update': 10})
    flags = review.assess(who, {'read': 490, 'update': 70}, cfg())
    assert flags == []
    assert who['expected_count'] == 80.0 and who['ratio'] == 1.0


@pytest.mark.parametrize('window, baseline, flagged', [
    (300, 70, True),      # 30x the expected 10
    (29, 70, False),      # 2.9x but also under the minimum count
    (60, 140, True),      # 3x the expected 20, at the minimum count
    (49, 0, False),       # no baseline, but under the minimum count
    (50, 0, True),        # no baseline at all and at the minimum count
    (100, 350, False),    # 2x the expected 50
])
def test_volume_spike_uses_ratio_and_minimum(window, baseline, flagged):
    flags = review.assess(actor({'read': window}), {'read': baseline} if baseline else {}, cfg())
    assert ('volume_spike' in names(flags)) is flagged


def test_volume_spike_reason_names_the_ratio_and_the_baseline():
    flags = review.assess(actor({'read': 300}), {'read': 70}, cfg())
    reason = next(f['reason'] for f in flags if f['flag'] == 'volume_spike')
    assert '30.0x the 10.0 expected' in reason and '70 entries in the 7d baseline' in reason


def test_off_hours_needs_the_minimum_count():
    assert 'off_hours' not in names(review.assess(actor({'read': 10}, off_hours_count=2), {'read': 10}, cfg()))
    flags = review.assess(actor({'read': 10}, off_hours_count=3), {'read': 10}, cfg())
    assert names(flags) == {'off_hours'}
    assert flags[0]['reason'] == '3 of 10 entries outside business hours (07:00-20:00 mon,tue,wed,thu,fri UTC)'


def test_sensitive_and_new_actions():
    flags = review.assess(actor({'read': 5, 'export': 2, 'delete': 1}), {'read': 30, 'delete': 2}, cfg())
    by = {f['flag']: f for f in flags}
    assert set(by) == {'sensitive_action', 'new_action'}
    assert by['sensitive_action']['reason'] == 'sensitive actions: delete x1, export x2'
    assert by['new_action']['reason'].endswith(': export')


def test_new_actions_are_not_flagged_without_baseline_or_when_disabled():
    assert 'new_action' not in names(review.assess(actor({'update': 3}), {}, cfg()))
    assert 'new_action' not in names(review.assess(actor({'update': 3}), {'read': 3}, cfg(flag_new_actions=False)))
    assert 'new_actor' in names(review.assess(actor({'update': 3}), {}, cfg()))


def test_many_ips_and_failed_logins_with_weights():
    who = actor({'login': 9}, ip_count=4, failed_logins=5)
    flags = review.assess(who, {'login': 70}, cfg(weights={**review.WEIGHTS, 'failed_logins': 7}))
    by = {f['flag']: f for f in flags}
    assert set(by) == {'many_ips', 'failed_logins'}
    assert by['failed_logins']['weight'] == 7 and by['many_ips']['weight'] == 2
    assert 'failed_logins' not in names(review.assess(who, {'login': 70}, cfg(failed_login_threshold=0)))
    assert 'many_ips' not in names(review.assess(who, {'login': 70}, cfg(max_ips=4)))


@pytest.mark.parametrize('text, seconds', [('24h', 86400), ('90m', 5400), ('1h30m', 5400), ('7d', 604800),
                                           ('2w', 1209600), ('45', 45), ('1.5h', 5400)])
def test_durations(text, seconds):
    assert review.parse_point(text, 'since') == seconds


def test_iso_times_are_utc():
    assert review.parse_point('2025-01-15T14:30:00Z', 'since') == datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
    assert review.parse_point('2025-01-15T15:30:00+01:00', 'since') == datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
    assert review.parse_point('2025-01-15 14:30', 'since') == datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize('text, minutes', [('07:00-20:00', (420, 1200)), ('22:00-06:30', (1320, 390)),
                                           ('0:00-24:00', (0, 1440))])
def test_business_hours(text, minutes):
    assert review.parse_hours(text) == minutes


def params(**over):
    base = {key: spec.get('default') for key, spec in review.AUDIT_REVIEW_ARGS.items()}
    base.update(over)
    return base


@pytest.mark.parametrize('over, message', [
    ({'since': 'last tuesday'}, "since: 'last tuesday' is neither a duration"),
    ({'until': '2025-13-01T00:00:00'}, "until: '2025-13-01T00:00:00' is not an ISO 8601 time"),
    ({'baseline': '0'}, 'baseline must be longer than zero'),
    ({'business_hours': '25:00-26:00'}, "business_hours: '25:00-26:00' is not a range"),
    ({'weights': {'volume_spike': 'high'}}, 'weights: every weight must be a whole number'),
    ({'actor_id': ['not-a-uuid']}, "actor_id: 'not-a-uuid' is not a UUID"),
    ({'table': 'public.'}, 'table must be "table" or "schema.table"'),
])
def test_bad_options_fail_before_connecting(over, message):
    with pytest.raises(PgInputError) as exc:
        review.AuditReview(params(**over))
    assert str(exc.value).startswith(message)


def test_window_bounds_from_relative_and_absolute_times():
    now = datetime.datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert review.ReviewConfig(params()).bounds(now) == (now - datetime.timedelta(days=1), now)
    config = review.ReviewConfig(params(since='2h', until='1h'))
    assert config.bounds(now) == (now - datetime.timedelta(hours=3), now - datetime.timedelta(hours=1))
    with pytest.raises(PgInputError, match='must be before until'):
        review.ReviewConfig(params(since='2025-01-16T00:00:00Z')).bounds(now)
