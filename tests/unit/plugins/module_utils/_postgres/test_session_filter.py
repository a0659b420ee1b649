# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which sessions match and which may be signalled: durations, each filter, narrowing, the guard rails and the cap, pinned pids, hidden sessions."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import sessions as _sessions
from ansible_collections.trdrhub.incident.tests.unit.conftest import NOW, session

S = datetime.timedelta(seconds=1)


def annotated(*rows):
    return _sessions.annotate([dict(r) for r in rows])


def flt(**params):
    return _sessions.SessionFilter.from_params(params)


@pytest.mark.parametrize('state, expected', [
    ('active', 30.0),                          # now - query_start
    ('fastpath function call', 30.0),
    ('idle in transaction', 20.0),             # now - state_change
    ('idle in transaction (aborted)', 20.0),
    ('idle', 20.0),
    ('disabled', 3600.0),                      # now - backend_start
    (None, 3600.0),
])
def test_duration_depends_on_state(state, expected):
    row = session(7, state=state, query_start=NOW - 30 * S, state_change=NOW - 20 * S, backend_start=NOW - 3600 * S)
    assert _sessions.duration_of(row) == expected


def test_duration_is_unknown_when_hidden():
    assert _sessions.duration_of(session(7, query_start=None)) is None


def test_duration_is_rounded_to_milliseconds():
    assert _sessions.duration_of(session(7, query_start=NOW - datetime.timedelta(microseconds=1_234_567))) == 1.235


@pytest.mark.parametrize('params, row, matches', [
    ({'databases': ['trdrhub']}, {}, True),
    ({'databases': ['lcopilot']}, {}, False),
    ({'databases': []}, {}, True),  # empty list = no filter
    ({'states': ['idle in transaction']}, {}, False),
    ({'states': ['active', 'idle']}, {}, True),
    ({'min_duration': 10}, {}, True),
    ({'min_duration': 10.5}, {}, False),
    ({'min_duration': 1}, {'query_start': None}, False),
    ({'users': ['trdrhub_app']}, {}, True),
    ({'users': ['trdrhub_app_ro']}, {}, False),
    ({'exclude_users': ['trdrhub_app']}, {}, False),
    ({'applications': ['trdrhub-*']}, {}, True),
    ({'applications': ['TRDRHUB-*']}, {}, False),  # globs are case-sensitive
    ({'applications': ['trdrhub-worker*']}, {}, False),
    ({'applications': ['']}, {'application_name': ''}, True),
    ({'exclude_applications': ['*-api']}, {}, False),
    ({'client_addrs': ['10.42.0.0/16']}, {}, True),
    ({'client_addrs': ['10.43.0.0/16', '10.42.3.17']}, {}, True),
    ({'client_addrs': ['192.168.0.0/16']}, {}, False),
    ({'client_addrs': ['10.0.0.0/8']}, {'client_addr': None}, False),  # unix socket
    ({'client_addrs': ['fd00::/8']}, {'client_addr': 'fd00::17'}, True),
    ({'client_addrs': ['fd00::/8']}, {}, False),
    ({'query_pattern': r'(?i)^select'}, {}, True),
    ({'query_pattern': r'lc_documents'}, {}, False),
    ({'query_pattern': r'x'}, {'query': None}, False),
    ({'wait_event_types': ['Lock']}, {'wait_event_type': 'Lock'}, True),
    ({'wait_event_types': ['Lock']}, {}, False),
    ({'blockers_only': True}, {}, False),
    ({'blockers_only': True}, {'blocks': [12]}, True),
])
def test_each_filter(params, row, matches):
    base = annotated(session(11))[0]
    base.update(row)
    if 'query_start' in row:
        base['duration_s'] = _sessions.duration_of(base)
    assert flt(**params).matches(base) is matches


@pytest.mark.parametrize('params, message', [
    ({'client_addrs': ['10.0.0.0/8', '10.0.0.0/33']}, "client_addrs: '10.0.0.0/33' is not a valid"),
    ({'client_addrs': ['trdrhub-api']}, "client_addrs: 'trdrhub-api' is not a valid"),
    ({'query_pattern': '(unclosed'}, "query_pattern: '(unclosed' is not a valid Python regular expression: missing )"),
])
def test_invalid_filters_fail_clearly(params, message):
    with pytest.raises(PgInputError) as caught:
        flt(**params)
    assert message in str(caught.value)


def test_narrows():
    assert not flt().narrows
    assert not flt(min_duration=0, databases=[]).narrows
    assert flt(min_duration=0.5).narrows
    assert flt(exclude_users=['x']).narrows


def guard(**params):
    return _sessions.Guard.from_params(dict({'max_sessions': 25}, **params))


@pytest.mark.parametrize('row, params, reason', [
    ({'pid': 1}, {}, 'own session'),
    ({'backend_type': 'autovacuum worker'}, {}, 'not a client backend'),
    ({'is_superuser': True}, {}, 'superuser session'),
    ({'is_superuser': True}, {'allow_superuser': True}, None),
    ({'usename': 'trdrhub_migrator'}, {'protected_users': ['trdrhub_migrator']}, 'protected user trdrhub_migrator'),
    ({'application_name': 'pg_dump'}, {'protected_applications': ['pg_dump']}, 'protected application pg_dump'),
    ({'application_name': 'trdrhub.incident'}, {'protected_applications': _sessions.DEFAULT_PROTECTED_APPLICATIONS},
     'protected application'),
    ({'application_name': 'psql-maintenance-7'}, {'protected_applications': ['psql-maintenance*']}, 'protected'),
    ({}, {}, None),
])
def test_guard_reasons(row, params, reason):
    found = guard(**params).reason(session(row.pop('pid', 11), **row))
    assert (found is None) if reason is None else (reason in found)


def test_guard_split_reports_each_exclusion():
    allowed, excluded = guard().split([session(1), session(11), session(12, is_superuser=True, usename='postgres')])
    assert [s['pid'] for s in allowed] == [11]
    assert excluded == [
        {'pid': 1, 'usename': 'trdrhub_app', 'application_name': 'trdrhub-api',
         'reason': 'own session (the backend running this module)'},
        {'pid': 12, 'usename': 'postgres', 'application_name': 'trdrhub-api',
         'reason': 'superuser session (set allow_superuser to include it)'},
    ]


def test_cap_fails_with_evidence():
    with pytest.raises(PgGuardError) as caught:
        guard(max_sessions=2).enforce_cap([session(11), session(12), session(13)], {'sessions': ['evidence']})
    assert str(caught.value).startswith('3 sessions match the filters and guard rails, more than max_sessions (2)')
    assert caught.value.details == {'matched': 3, 'sessions': ['evidence']}
    guard(max_sessions=3).enforce_cap([session(11), session(12), session(13)], {})


def test_pids_pin_the_selection_and_an_empty_list_selects_nothing():
    rows = [{'pid': 10, 'state': 'active'}, {'pid': 11, 'state': 'active'}, {'pid': 12, 'state': 'idle'}]
    pinned = _sessions.SessionFilter.from_params({'pids': [11, 12], 'states': ['active']})
    assert [r['pid'] for r in rows if pinned.matches(r)] == [11]
    nothing = _sessions.SessionFilter.from_params({'pids': []})
    assert nothing.narrows
    assert not any(nothing.matches(r) for r in rows)


def hidden_session(pid, **overrides):
    """What pg_stat_activity shows a role without pg_read_all_stats of another role's session."""
    row = session(pid, state=None, query=_sessions.HIDDEN_QUERY, query_start=None, state_change=None,
                  backend_start=None, xact_start=None, client_addr=None, wait_event_type=None)
    row.update(overrides)
    return row


def test_hidden_sessions_never_match_a_filter_on_hidden_fields():
    rows = annotated(hidden_session(10), session(11, usename='trdrhub_ops'))
    for params in ({'states': ['active']}, {'min_duration': 1}, {'query_pattern': '.*'},
                   {'query_pattern': 'insufficient'}, {'client_addrs': ['0.0.0.0/0']}, {'wait_event_types': ['Lock']},
                   {'blockers_only': True}):
        assert 10 not in {s['pid'] for s in flt(**params).select(rows)}, params


def test_hidden_sessions_match_on_visible_fields_alone():
    rows = annotated(hidden_session(10), hidden_session(12, usename='reporting'))
    assert [s['pid'] for s in flt(users=['trdrhub_app']).select(rows)] == [10]


def test_guard_never_signals_a_hidden_session():
    allowed, excluded = guard().split([hidden_session(10, backend_type=None)])
    assert allowed == []
    assert excluded[0]['reason'].startswith('details hidden from the login role (it lacks pg_read_all_stats)')
