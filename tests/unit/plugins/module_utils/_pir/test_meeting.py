# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PIR meeting date (business days after the resolution), the follow-up review, the checklist."""

from __future__ import annotations

import datetime

import pytest
from _pir_entries import rec
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.meeting import (
    MeetingError,
    add_business_days,
    checklist,
    next_business_day,
    schedule,
    settings,
)

D = datetime.date


@pytest.mark.parametrize('start, count, holidays, due', [
    (D(2025, 1, 15), 2, (), D(2025, 1, 17)),    # Wednesday -> Friday
    (D(2025, 1, 16), 2, (), D(2025, 1, 20)),    # Thursday -> Monday
    (D(2025, 1, 17), 2, (), D(2025, 1, 21)),    # Friday -> Tuesday
    (D(2025, 1, 18), 2, (), D(2025, 1, 21)),    # Saturday -> Tuesday
    (D(2025, 1, 17), 2, (D(2025, 1, 20),), D(2025, 1, 22)),  # a Monday holiday
    (D(2025, 1, 18), 0, (), D(2025, 1, 18)),
])
def test_business_days(start, count, holidays, due):
    assert add_business_days(start, count, holidays) == due


def test_next_business_day():
    assert next_business_day(D(2025, 2, 16)) == D(2025, 2, 17)
    assert next_business_day(D(2025, 2, 17), [D(2025, 2, 17)]) == D(2025, 2, 18)
    assert next_business_day(D(2025, 2, 19)) == D(2025, 2, 19)


def test_schedule_of_a_resolved_incident():
    resolved = rec(state='resolved', status='resolved', resolved_at='2025-01-15T15:12:40Z')
    plan = schedule(resolved)
    assert (plan['resolved_on'], plan['meeting_due'], plan['followup_due']) == ('2025-01-15', '2025-01-17', '2025-02-17')
    assert plan['meeting_line'].startswith('PIR meeting held by Friday 2025-01-17 (2 business days after the resolution '
                                           'on Wednesday 2025-01-15, weekends skipped; holidays not listed)')
    assert plan['followup_line'].startswith('Follow-up review scheduled on Monday 2025-02-17 (30 days after the meeting)')
    items = checklist(resolved, plan)
    assert items[0] == plan['meeting_line'] and items[-1] == plan['followup_line']
    assert 'Detection and response times reviewed against the P2 target' in items

    plan = schedule(resolved, {'business_days': '3', 'followup_days': 14, 'holidays': ['2025-01-17']})
    assert (plan['meeting_due'], plan['followup_due']) == ('2025-01-21', '2025-02-04')
    assert 'weekends and the listed holidays skipped' in plan['meeting_line'] and plan['holidays'] == ['2025-01-17']


def test_no_dates_before_the_resolution():
    plan = schedule(rec(status='monitoring'))
    assert plan['meeting_due'] is None and plan['followup_due'] is None
    assert 'within 2 business days of the resolution (the incident is not resolved yet, so no date)' in plan['meeting_line']
    assert plan['followup_line'].startswith('Follow-up review scheduled 30 days after the meeting:')


@pytest.mark.parametrize('meeting, message', [
    ({'holidays': ['tomorrow']}, "pir_holidays must list dates such as 2025-12-25, got 'tomorrow'"),
    ({'holidays': '2025-12-25'}, 'pir_holidays must be a list of dates'),
    ({'business_days': -1}, 'pir_meeting_business_days must be a whole number of days, at least 0'),
    ({'followup_days': 0}, 'pir_followup_days must be a whole number of days, at least 1'),
    ({'weeks': 2}, 'meeting has unknown key'),
    ('soon', 'meeting must be a dict'),
])
def test_bad_settings_are_one_sentence_naming_the_option(meeting, message):
    with pytest.raises(MeetingError, match=message):
        settings(meeting)
