# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Alertmanager helpers: matcher syntax, durations and timestamps."""

from __future__ import annotations

import datetime

import pytest
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils import _alertmanager as am
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HttpApiMismatchError, HttpInputError

UTC = datetime.timezone.utc


def m(name, value, regex=False, equal=True):
    return {'name': name, 'value': value, 'isRegex': regex, 'isEqual': equal}


@pytest.mark.parametrize('text, expected', [
    ('severity="P1"', m('severity', 'P1')),
    ('alertname=~"Queue.*"', m('alertname', 'Queue.*', regex=True)),
    ('component!="reports"', m('component', 'reports', equal=False)),
    ('severity!~"P2|P3"', m('severity', 'P2|P3', regex=True, equal=False)),
    ('  service = lcpilot ', m('service', 'lcpilot')),
    ('summary="say \\"hi\\""', m('summary', 'say "hi"')),
    ('path="C:\\\\tmp"', m('path', 'C:\\tmp')),
    ('empty=""', m('empty', '')),
])
def test_matchers_parse(text, expected):
    assert am.parse_matcher(text) == expected


@pytest.mark.parametrize('text, needle', [
    ('severity', 'expected <label><op>"<value>"'),
    ('severity=="P1"', 'quote the value on both sides'),
    ('1abc="x"', 'expected <label><op>'),
    ('alertname=~"Queue', 'quote the value on both sides'),
    ('alertname="Que"ue"', 'unescaped double quote'),
    ('alertname=~"Queue(("', 'not a valid regular expression'),
    ('alertname=~"(?!Queue).*"', 'Go RE2'),
    ('a="x\\"', 'lone backslash'),
])
def test_bad_matchers_name_themselves(text, needle):
    with pytest.raises(HttpInputError) as caught:
        am.parse_matcher(text)
    assert needle in str(caught.value)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize('item, expected', [
    ('alertname="X"', m('alertname', 'X')),
    ({'name': 'alertname', 'value': 'X'}, m('alertname', 'X')),
    ({'name': 'severity', 'value': 'P1|P2', 'isRegex': True}, m('severity', 'P1|P2', regex=True)),
    ({'name': 'severity', 'value': 'P3', 'is_equal': False}, m('severity', 'P3', equal=False)),
    ({'name': 'code', 'value': 503}, m('code', '503')),
])
def test_matcher_dicts_and_strings_normalise_alike(item, expected):
    assert am.normalize_matcher(item) == expected


@pytest.mark.parametrize('item, needle', [
    ({'name': 'alert name', 'value': 'X'}, 'label name'),
    ({'value': 'X'}, 'label name'),
    ({'name': 'a', 'value': None}, 'value must be a string'),
    ({'name': 'a', 'value': 'x', 'isRegex': 'yes'}, 'isRegex must be true or false'),
    ({'name': 'a', 'value': 'x', 'regex': True}, 'unknown key(s) regex'),
    ({'name': 'a', 'value': '((', 'isRegex': True}, 'not a valid regular expression'),
    (42, 'expected a string'),
])
def test_bad_matcher_dicts(item, needle):
    with pytest.raises(HttpInputError, match='invalid matcher') as caught:
        am.normalize_matcher(item)
    assert needle in str(caught.value)


@pytest.mark.parametrize('text', ['severity="P1"', 'alertname=~"Queue.*"', 'a!="x"', 'b!~"y|z"', 'q="say \\"hi\\""'])
def test_matcher_text_round_trips(text):
    parsed = am.parse_matcher(text)
    assert am.parse_matcher(am.matcher_text(parsed)) == parsed


def test_matcher_sets_compare_without_order():
    left = [m('alertname', 'X'), m('severity', 'P1')]
    assert am.same_matchers(left, list(reversed(left)))
    assert not am.same_matchers(left, [m('alertname', 'X')])
    assert not am.same_matchers(left, [m('alertname', 'X'), m('severity', 'P1', regex=True)])
    assert not am.same_matchers(left, [m('alertname', 'X'), m('severity', 'P1', equal=False)])


@pytest.mark.parametrize('text, seconds', [
    ('2h', 7200), ('30m', 1800), ('1h30m', 5400), ('1d', 86400), ('1w', 604800), ('90', 90), (45, 45),
    ('1.5h', 5400), ('500ms', 0.5), ('2h 15m', 8100),
])
def test_durations(text, seconds):
    assert am.parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['', None, 'two hours', '2x', '-1h', '0s', 0, 'h2'])
def test_bad_durations(text):
    with pytest.raises(HttpInputError, match='invalid duration'):
        am.parse_duration(text)


@pytest.mark.parametrize('text, expected', [
    ('2025-01-15T14:30:00Z', datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    ('2025-01-15T16:30:00+02:00', datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    ('2025-01-15T14:30:00', datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    ('2025-01-15T14:30:00.123456789Z', datetime.datetime(2025, 1, 15, 14, 30, 0, 123456, tzinfo=UTC)),
])
def test_times_are_utc(text, expected):
    assert am.parse_time(text, 'ends_at') == expected


def test_bad_time_names_the_option():
    with pytest.raises(HttpInputError, match="invalid ends_at 'tomorrow'"):
        am.parse_time('tomorrow', 'ends_at')


def test_format_time_is_alertmanagers_format():
    when = datetime.datetime(2025, 1, 15, 16, 30, 0, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert am.format_time(when) == '2025-01-15T14:30:00.123Z'


def test_silence_view_sorts_matchers_and_keeps_state():
    view = am.silence_view({'id': 'a', 'matchers': [m('z', '1'), m('a', '2')], 'status': {'state': 'active'},
                            'startsAt': 's', 'endsAt': 'e', 'createdBy': 'c', 'comment': 'x'})
    assert [x['name'] for x in view['matchers']] == ['a', 'z']
    assert view['status'] == {'state': 'active'}


# -- success is Alertmanager's documented answer, not a status code -----------------------------

def _client(answer):
    params = {'url': 'http://am.example:9093', 'timeout': 5, 'retries': 0, 'retry_delay': 0, 'validate_certs': True}
    return am.AlertmanagerClient(params, session=FakeSession([answer]))


@pytest.mark.parametrize('body, shown', [
    ({}, 'JSON {}'),
    ({'status': 'success'}, 'JSON {"status": "success"}'),
    (None, 'an empty body'),
])
def test_a_silence_not_confirmed_with_its_id_is_a_failure(body, shown):
    client = _client(FakeResponse(200, body))
    with pytest.raises(HttpApiMismatchError) as caught:
        client.create({'matchers': []})
    assert str(caught.value) == ('http://am.example:9093 is not an Alertmanager API v2: POST /api/v2/silences answered '
                                 f'{shown}, not {{"silenceID": ...}}, so the silence was not confirmed')
