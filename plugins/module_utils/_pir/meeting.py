# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The PIR meeting: its date (business days after the resolution), the follow-up review and the checklist.

Business days are Monday to Friday in UTC; public holidays are not known unless listed
(``holidays``, dates ``YYYY-MM-DD``). The meeting is due ``business_days`` after the day of
the resolution; the follow-up review of the action items ``followup_days`` calendar days after
the meeting, moved to the next business day when that is a weekend day or a listed holiday.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    parse_time,
)

DEFAULTS = {'business_days': 2, 'followup_days': 30, 'holidays': []}
CHECKLIST = (
    'Blameless format agreed: systems and processes, not people',
    'Timeline reviewed and corrected against the ledger; gaps explained',
    'Root cause and contributing factors identified (5 whys)',
    'Detection and response times reviewed against the {priority} target',
    'Customer communication reviewed (timeliness, accuracy, cadence)',
    'Notification obligations reviewed: every one met, or the reason recorded',
    'Action items agreed, each with an owner and a due date, and filed as tickets',
    'Runbook and alerting updated where they fell short',
    'Review shared with engineering and stakeholders',
)


class MeetingError(InputError):
    """A meeting setting the review cannot use."""


def _day(value: t.Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        raise MeetingError(f'pir_holidays must list dates such as 2025-12-25, got {value!r}') from None


def settings(meeting: t.Any) -> dict[str, t.Any]:
    """DEFAULTS with ``meeting`` ({business_days, followup_days, holidays}) merged and checked."""
    if meeting in (None, ''):
        meeting = {}
    if not isinstance(meeting, dict):
        raise MeetingError(f'meeting must be a dict with business_days, followup_days and holidays, got {kind_of(meeting)}')
    unknown = sorted(set(meeting) - set(DEFAULTS))
    if unknown:
        raise MeetingError(f'meeting has unknown key(s) {", ".join(unknown)}; allowed: {", ".join(DEFAULTS)}')
    merged = dict(DEFAULTS, **{k: v for k, v in meeting.items() if v is not None})
    for key, option, low in (('business_days', 'pir_meeting_business_days', 0), ('followup_days', 'pir_followup_days', 1)):
        value = merged[key]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise MeetingError(f'{option} must be a whole number of days, at least {low}, got {merged[key]!r}')
        merged[key] = value
    if not isinstance(merged['holidays'], (list, tuple)):
        raise MeetingError(f"pir_holidays must be a list of dates such as 2025-12-25, got {kind_of(merged['holidays'])}")
    merged['holidays'] = sorted({_day(d) for d in merged['holidays']})
    return merged


def business_day(day: datetime.date, holidays: t.Collection[datetime.date] = ()) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: datetime.date, count: int, holidays: t.Collection[datetime.date] = ()) -> datetime.date:
    """The ``count``-th business day after ``day`` (``day`` itself when ``count`` is 0)."""
    while count > 0:
        day += datetime.timedelta(days=1)
        count -= business_day(day, holidays)
    return day


def next_business_day(day: datetime.date, holidays: t.Collection[datetime.date] = ()) -> datetime.date:
    """``day`` when it is a business day, else the next one."""
    while not business_day(day, holidays):
        day += datetime.timedelta(days=1)
    return day


def label(day: datetime.date | None) -> str:
    return day.strftime('%A %Y-%m-%d') if day else 'n/a'


def schedule(record: t.Mapping[str, t.Any], meeting: t.Any = None) -> dict[str, t.Any]:
    """When the PIR meeting and the follow-up review are due; no dates while the incident is not resolved."""
    conf = settings(meeting)
    resolved = record.get('resolved_at') if record.get('state') == 'resolved' else None
    meeting_day = followup_day = None
    if resolved:
        meeting_day = add_business_days(parse_time(resolved).date(), conf['business_days'], conf['holidays'])
        followup_day = next_business_day(meeting_day + datetime.timedelta(days=conf['followup_days']), conf['holidays'])
    return {
        'business_days': conf['business_days'], 'followup_days': conf['followup_days'],
        'holidays': [d.isoformat() for d in conf['holidays']],
        'resolved_on': parse_time(resolved).date().isoformat() if resolved else None,
        'meeting_due': meeting_day.isoformat() if meeting_day else None,
        'followup_due': followup_day.isoformat() if followup_day else None,
        'meeting_line': _meeting_line(conf, resolved, meeting_day),
        'followup_line': _followup_line(conf, followup_day),
    }


def _meeting_line(conf: dict[str, t.Any], resolved: t.Any, day: datetime.date | None) -> str:
    days = f"{conf['business_days']} business day{'s' if conf['business_days'] != 1 else ''}"
    skipped = 'weekends and the listed holidays skipped' if conf['holidays'] else 'weekends skipped; holidays not listed'
    if not day:
        return (f'PIR meeting held within {days} of the resolution (the incident is not resolved yet, so no date); '
                'incident commander, responders and service owners invited')
    return (f'PIR meeting held by {label(day)} ({days} after the resolution on {label(parse_time(resolved).date())}, '
            f'{skipped}); incident commander, responders and service owners invited')


def _followup_line(conf: dict[str, t.Any], day: datetime.date | None) -> str:
    when = f'on {label(day)}' if day else f"{conf['followup_days']} days after the meeting"
    extra = f" ({conf['followup_days']} days after the meeting)" if day else ''
    return f'Follow-up review scheduled {when}{extra}: action items done, runbook and alert changes in place'


def checklist(record: t.Mapping[str, t.Any], plan: t.Mapping[str, t.Any]) -> list[str]:
    """The meeting checklist: the meeting with its date first, the follow-up review last."""
    priority = record.get('priority') or 'priority'
    return [plan['meeting_line']] + [item.format(priority=priority) for item in CHECKLIST] + [plan['followup_line']]
