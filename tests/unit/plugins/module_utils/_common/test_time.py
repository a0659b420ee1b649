# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one home of time reading and writing, and the domain wrappers that word its errors."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils import _alertmanager
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.approval import ApprovalError, parse_iso
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import utc_isoformat
from ansible_collections.trdrhub.incident.plugins.module_utils._common import time as _time
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_errors import HttpInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import priority as _priority
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log as _access_log
from ansible_collections.trdrhub.incident.plugins.module_utils._security import ip_block as _ip_block

UTC = datetime.timezone.utc
MOMENT = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
EPOCH = 1736951400


@pytest.mark.parametrize('value', [
    '2025-01-15T14:30:00Z', '2025-01-15T14:30:00z', ' 2025-01-15T14:30:00+00:00 ', '2025-01-15T15:30:00+01:00',
    '2025-01-15T14:30:00', '2025-01-15 14:30:00', EPOCH, float(EPOCH), MOMENT, MOMENT.replace(tzinfo=None),
    MOMENT.astimezone(datetime.timezone(datetime.timedelta(hours=-5))),
])
def test_parse_time_reads_iso_epoch_and_datetimes_as_aware_utc(value):
    parsed = _time.parse_time(value)
    assert parsed == MOMENT and parsed.tzinfo is UTC


def test_parse_time_keeps_microseconds_and_cuts_longer_fractions():
    assert _time.parse_time('2025-01-15T14:30:00.123456789Z') == MOMENT.replace(microsecond=123456)


@pytest.mark.parametrize('value', [None, ''])
def test_no_time_is_now_unless_required(value):
    assert _time.parse_time(value, now=MOMENT) == MOMENT
    assert abs((_time.parse_time(value) - _time.utc_now()).total_seconds()) < 5
    with pytest.raises(ValueError):
        _time.parse_time(value, required=True)


@pytest.mark.parametrize('value', ['yesterday', '2025-13-01T00:00:00Z', '15/01/2025'])
def test_parse_time_refuses_other_text_with_a_value_error(value):
    with pytest.raises(ValueError):
        _time.parse_time(value)


@pytest.mark.parametrize('value, expected', [
    ('1736951400', EPOCH), (' 1736951400.5 ', EPOCH + 0.5), ('2025-01-15T14:30:00Z', EPOCH), (EPOCH, EPOCH), (MOMENT, EPOCH),
])
def test_parse_epoch(value, expected):
    assert _time.parse_epoch(value) == expected


@pytest.mark.parametrize('text, expected', [
    ('2025-01-15T14:30:00Z', EPOCH), ('2025-01-15 14:30', EPOCH), ('2025-01-15T15:30:00+0100', EPOCH),
    ('2025-01-15T15:30:00 +01', EPOCH), ('2025-01-15T14:30:00,5Z', EPOCH + 0.5), ('2025-01-15', EPOCH - 52200),
    ('2025-02-30T00:00:00Z', None), ('not a time', None), ('1736951400', None),
])
def test_loose_iso_epoch_reads_log_forms_without_raising(text, expected):
    assert _time.loose_iso_epoch(text) == expected


def test_formatters():
    moment = MOMENT.replace(microsecond=123456)
    assert _time.iso_micro(moment) == '2025-01-15T14:30:00.123456+00:00'
    assert _time.iso_seconds(moment) == '2025-01-15T14:30:00+00:00'
    assert _time.iso_z(moment) == _time.iso_z(EPOCH + 0.9) == '2025-01-15T14:30:00Z'
    assert _time.iso_millis_z(moment) == '2025-01-15T14:30:00.123Z'
    assert _time.iso_epoch(EPOCH) == '2025-01-15T14:30:00Z' and _time.iso_epoch(EPOCH + 0.25) == '2025-01-15T14:30:00.250Z'
    assert _time.iso_epoch(None) is None


def test_iso_utc_is_the_audit_chains_hashed_form():
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    assert _time.iso_utc(MOMENT.astimezone(berlin)) == '2025-01-15T14:30:00+00:00'
    assert _time.iso_utc(MOMENT.replace(tzinfo=None, microsecond=5)) == '2025-01-15T14:30:00.000005+00:00'
    assert _time.iso_utc('2025-01-15T15:30:00+01:00') == _time.iso_utc('2025-01-15T14:30:00Z') == '2025-01-15T14:30:00+00:00'
    assert _time.iso_utc(None) is None and _time.iso_utc(7) == '7'
    with pytest.raises(ValueError):
        _time.iso_utc(' 2025-01-15T14:30:00Z')   # nothing forgiven: a hash is over exact text
    assert utc_isoformat is _time.iso_utc


def test_iso_as_read_keeps_the_servers_offset():
    tokyo = MOMENT.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert _time.iso_as_read(tokyo) == '2025-01-15T23:30:00+09:00' and _time.iso_as_read(None) is None


# -- the wrappers keep each caller's words -------------------------------------------------------------
def test_priority_words_a_bad_time_as_detected_at():
    assert _priority.parse_time('2025-01-15T14:30:00Z') == MOMENT and _priority.parse_time(None, MOMENT) == MOMENT
    with pytest.raises(_priority.AssessmentError, match="detected_at must be an ISO 8601 time .*, got 'soon'"):
        _priority.parse_time('soon')


@pytest.mark.parametrize('value', [None, '', 'later', EPOCH])
def test_alertmanager_times_are_required_text(value):
    with pytest.raises(HttpInputError, match=f'invalid ends_at {value!r}: use ISO 8601'):
        _alertmanager.parse_time(value, 'ends_at')
    assert _alertmanager.parse_time('2025-01-15T14:30:00.000Z', 'ends_at') == MOMENT
    assert _alertmanager.format_time(MOMENT) == '2025-01-15T14:30:00.000Z'


@pytest.mark.parametrize('value, expected', [('1736951400', EPOCH), (EPOCH, EPOCH), ('2025-01-15T14:30:00Z', EPOCH)])
def test_ip_block_reads_epochs_and_iso(value, expected):
    assert _ip_block.parse_time(value) == expected


@pytest.mark.parametrize('value', [None, '', 'tomorrow', 5])
def test_ip_block_words_a_bad_time(value):
    with pytest.raises(_ip_block.IpBlockError, match=f'Invalid time {value!r}: use an ISO 8601 time'):
        _ip_block.parse_time(value)


def test_approval_reads_stored_times():
    assert parse_iso('2025-01-15T14:30:00+00:00') == parse_iso(MOMENT) == MOMENT
    with pytest.raises(ApprovalError, match="'never' is not an ISO 8601 time"):
        parse_iso('never')


def test_access_log_uses_the_shared_helpers():
    assert _access_log.parse_iso is _time.loose_iso_epoch and _access_log.iso is _time.iso_epoch
