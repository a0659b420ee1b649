# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Every time the collection reads or writes is UTC; the conversions live here, once.

Reading: ``parse_time`` turns ISO 8601 text, a datetime or epoch seconds into an aware UTC
datetime (``parse_epoch``: into epoch seconds, also from epoch text); ``loose_iso_epoch`` reads
the looser ISO forms of log lines fast, without raising. They raise ``ValueError``: each caller
words the failure for its own option (``AssessmentError`` about detected_at, ``HttpInputError``
about starts_at...).

Writing: ``utc_now`` is an aware datetime. The text forms differ on purpose, each where it is
kept: ledger entries carry microseconds (``iso_micro``), approval requests whole seconds
with an offset (``iso_seconds``), deadlines and block expiries the short ``Z`` form
(``iso_z``, from a datetime or epoch seconds), Alertmanager milliseconds (``iso_millis_z``),
access-log findings seconds or milliseconds (``iso_epoch``), the audit chain's hashed
``created_at`` and the audit review full precision (``iso_utc``); session times are shown
as the server gave them (``iso_as_read``).
"""

from __future__ import annotations

import calendar
import datetime
import re
import typing as t

UTC = datetime.timezone.utc
_LONG_FRACTION = re.compile(r'(\.\d{6})\d+')   # fromisoformat before 3.11 takes 3 or 6 digits only
_EPOCH_TEXT = re.compile(r'^\d{9,11}(\.\d+)?$')
_LOOSE_ISO = re.compile(
    r'^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$',
    re.IGNORECASE)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


# -- reading ---------------------------------------------------------------------------------------
def parse_time(value: t.Any = None, now: datetime.datetime | None = None, *, required: bool = False) -> datetime.datetime:
    """An aware UTC datetime from ISO 8601 text (``Z`` or an offset; none means UTC), a datetime or epoch seconds.

    None or ``''`` is ``now`` (default: this moment), or a ``ValueError`` when the time is ``required``;
    text that is not ISO 8601 is a ``ValueError``.
    """
    if value is None or value == '':
        if required:
            raise ValueError('no time given')
        return (now or utc_now()).astimezone(UTC)
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.datetime.fromtimestamp(value, UTC)
    else:
        text = str(value).strip()
        if text[-1:] in ('Z', 'z'):
            text = text[:-1] + '+00:00'
        moment = datetime.datetime.fromisoformat(_LONG_FRACTION.sub(r'\1', text))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def aware_or_none(value: t.Any) -> datetime.datetime | None:
    """ISO 8601 text (``Z`` or an offset; none means UTC) as an aware datetime in its own offset; None otherwise."""
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace('Z', '+00:00'))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def parse_epoch(value: t.Any = None, now: datetime.datetime | None = None, *, required: bool = False) -> float:
    """``parse_time`` as epoch seconds; text of 9 to 11 digits (``1736951400``) is epoch seconds too."""
    if isinstance(value, str) and _EPOCH_TEXT.match(value.strip()):
        return float(value.strip())
    return parse_time(value, now, required=required).timestamp()


def loose_iso_epoch(text: str) -> float | None:
    """ISO 8601 (``2025-01-15T14:30:00+01:00``, ``...Z``, ``2025-01-15 14:30``, a date) -> epoch seconds; None otherwise.

    For log lines: no exception, no datetime object, up to nanoseconds, ``,`` or ``.`` before the
    fraction, an offset with or without ``:``. A time without an offset is UTC.
    """
    match = _LOOSE_ISO.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        stamp = calendar.timegm((int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)))
        datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    value = float(stamp)
    if fraction:
        value += float('0.' + fraction)
    if offset and offset.upper() != 'Z':
        digits = offset[1:].replace(':', '')
        shift = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) >= 4 else 0)
        value -= shift if offset[0] == '+' else -shift
    return value


# -- writing ---------------------------------------------------------------------------------------


def iso_micro(moment: datetime.datetime | None = None) -> str:
    """``2025-01-15T14:30:00.123456+00:00``; now when no moment is given."""
    return (moment or utc_now()).astimezone(UTC).isoformat(timespec='microseconds')


def iso_seconds(moment: datetime.datetime) -> str:
    """``2025-01-15T14:30:00+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec='seconds')


def iso_z(value: datetime.datetime | float) -> str:
    """``2025-01-15T14:30:00Z`` from an aware datetime or epoch seconds."""
    moment = value if isinstance(value, datetime.datetime) else datetime.datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def iso_millis_z(moment: datetime.datetime) -> str:
    """``2025-01-15T14:30:00.123Z``: RFC 3339 in UTC with milliseconds, the way Alertmanager writes timestamps."""
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.') + f'{moment.microsecond // 1000:03d}Z'


def iso_epoch(epoch: float | None) -> str | None:
    """Epoch seconds -> ``2025-01-15T14:30:00Z``, with milliseconds when the value has a fraction; None stays None."""
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch, UTC)
    spec = 'seconds' if epoch == int(epoch) else 'milliseconds'
    return moment.isoformat(timespec=spec).replace('+00:00', 'Z')


def iso_utc(value: t.Any) -> t.Any:
    """``isoformat()`` of the instant in UTC (``2025-01-15T14:30:00.123456+00:00``, no fraction when it is 0).

    The form the audit chain hashes ``created_at`` in: a datetime without offset is UTC, text is read
    exactly as ``datetime.fromisoformat`` reads it (``Z`` allowed, nothing else forgiven). None stays
    None; any other value becomes ``str()``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def iso_as_read(value: t.Any) -> str | None:
    """``isoformat()`` of a time as a server gave it (its own offset, for example the session time zone); None stays None."""
    return value.isoformat() if value is not None else None
