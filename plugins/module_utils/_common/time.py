# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Every time the collection reads or writes is UTC; the conversions live here, once.

``utc_now`` is an aware datetime. The text forms differ on purpose, each where it is
kept: ledger entries carry microseconds (``iso_micro``), approval requests whole seconds
with an offset (``iso_seconds``), deadlines and block expiries the short ``Z`` form
(``iso_z``, from a datetime or epoch seconds).
"""

from __future__ import annotations

import datetime

UTC = datetime.timezone.utc


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


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
