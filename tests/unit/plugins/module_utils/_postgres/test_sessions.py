# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Selection logic: durations, every filter, every guard rail, the cap, polling."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgInputError,
    PgPermissionError,
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


def test_blocking_counts_from_one_snapshot():
    rows = annotated(session(10), session(11, blocked_by=[10]), session(12, blocked_by=[10, 11]))
    assert [r['blocks'] for r in rows] == [[11, 12], [12], []]


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


@pytest.mark.parametrize('query, expected', [
    ("ALTER ROLE trdrhub_app PASSWORD 'hunter2'", "ALTER ROLE trdrhub_app PASSWORD ********"),
    ("alter user x with encrypted password E'it''s'", "alter user x with encrypted password ********"),
    ("SELECT dblink_connect('host=db password=hunter2 user=x')", "SELECT dblink_connect('host=db password=******** user=x')"),
    ("SELECT password FROM users", "SELECT password FROM users"),
    ('x' * 10, 'xxxx...'),
    (None, None),
])
def test_redact_query(query, expected):
    assert _sessions.redact_query(query, 4 if query == 'x' * 10 else 0) == expected


def test_session_view_shape():
    row = annotated(session(11, blocked_by=[]), session(12, blocked_by=[11]))[0]
    view = _sessions.session_view(row, 200)
    assert set(view) == {'pid', 'datname', 'usename', 'application_name', 'client_addr', 'state', 'backend_start',
                         'query_start', 'xact_start', 'state_change', 'duration_s', 'wait_event_type', 'wait_event',
                         'blocking', 'query'}
    assert view['blocking'] == 1
    assert view['query_start'] == '2025-01-15T14:29:50+00:00'


def test_count_by_state():
    assert _sessions.count_by_state([session(1), session(2, state=None), session(3, state='idle')]) == \
        {'active': 1, 'idle': 1, 'unknown': 1}


class PrivilegeClient:
    def __init__(self, **me):
        self.me = dict({'role': 'ops', 'is_superuser': False, 'has_signal_backend': False, 'own_roles': []}, **me)
        self.queries = []

    def query(self, statement, args=None):
        self.queries.append(statement)
        return [self.me]


def test_privilege_check_names_the_missing_grant():
    with pytest.raises(PgPermissionError) as caught:
        _sessions.check_signal_privilege(PrivilegeClient(), [session(11)])
    assert str(caught.value).startswith('role ops lacks pg_signal_backend (GRANT pg_signal_backend TO ops)')


def test_privilege_check_allows_own_role_sessions_and_grants():
    _sessions.check_signal_privilege(PrivilegeClient(own_roles=['trdrhub_app']), [session(11)])
    _sessions.check_signal_privilege(PrivilegeClient(has_signal_backend=True), [session(11)])
    _sessions.check_signal_privilege(PrivilegeClient(is_superuser=True), [session(11, is_superuser=True)])


def test_privilege_check_refuses_superuser_sessions_for_non_superusers():
    with pytest.raises(PgPermissionError, match='cannot signal superuser sessions'):
        _sessions.check_signal_privilege(PrivilegeClient(has_signal_backend=True), [session(11, is_superuser=True)])


def test_poll_returns_at_once_when_done(fake_clock):
    assert _sessions.poll(set, 10) == set()
    assert fake_clock.sleeps == []


def test_poll_backs_off_and_gives_up(fake_clock):
    assert _sessions.poll(lambda: {11}, 1.0) == {11}
    assert fake_clock.sleeps[:4] == [0.01, 0.02, 0.04, 0.05]
    assert max(fake_clock.sleeps) <= 0.05
    assert sum(fake_clock.sleeps) == pytest.approx(1.0)


def test_poll_stops_when_the_check_succeeds(fake_clock):
    answers = iter([{11, 12}, {12}, set()])
    assert _sessions.poll(lambda: next(answers), 10) == set()
    assert len(fake_clock.sleeps) == 2


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


def test_visibility_counts_hidden_and_undecided_sessions_and_names_the_grant():
    rows = annotated(hidden_session(10), hidden_session(12, usename='reporting'), hidden_session(13, datname='other'),
                     session(11, usename='trdrhub_ops'))
    report = _sessions.visibility('trdrhub_oncall', rows, flt(databases=['trdrhub'], min_duration=5))
    assert report['sessions'] == 3
    assert report['undecided'] == 2          # pids 10 and 12: right database, duration unknown
    assert report['users'] == ['reporting', 'trdrhub_app']
    assert report['privilege'] == 'pg_read_all_stats'
    assert report['msg'].startswith('3 of 4 client session(s) are hidden from role trdrhub_oncall')
    assert 'GRANT pg_read_all_stats TO trdrhub_oncall' in report['msg']
    assert '2 of them pass the filters' in report['msg']


def test_visibility_without_detail_filters_has_nothing_undecided():
    rows = annotated(hidden_session(10))
    report = _sessions.visibility('r', rows, flt(users=['trdrhub_app']))
    assert (report['sessions'], report['undecided']) == (1, 0)
    assert 'pass the filters' not in report['msg']


def test_visibility_of_a_role_that_sees_everything_is_silent():
    report = _sessions.visibility('r', annotated(session(10), session(11)), flt(min_duration=5))
    assert report == {'sessions': 0, 'undecided': 0, 'users': [], 'privilege': None, 'msg': None}


def test_login_role_comes_from_the_connection():
    client = type('C', (), {'conn': type('Conn', (), {'info': type('I', (), {'user': 'trdrhub_ops'})()})()})()
    assert _sessions.login_role(client) == 'trdrhub_ops'
    assert _sessions.login_role(object()) == 'the login role'


def test_guard_never_signals_a_hidden_session():
    allowed, excluded = guard().split([hidden_session(10, backend_type=None)])
    assert allowed == []
    assert excluded[0]['reason'].startswith('details hidden from the login role (it lacks pg_read_all_stats)')
