# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reading and signalling sessions: blocking, the query shown, counts by state, the privilege check, polling, visibility."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgPermissionError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import sessions as _sessions
from ansible_collections.trdrhub.incident.tests.unit.conftest import session


def annotated(*rows):
    return _sessions.annotate([dict(r) for r in rows])


def flt(**params):
    return _sessions.SessionFilter.from_params(params)


def test_blocking_counts_from_one_snapshot():
    rows = annotated(session(10), session(11, blocked_by=[10]), session(12, blocked_by=[10, 11]))
    assert [r['blocks'] for r in rows] == [[11, 12], [12], []]


def guard(**params):
    return _sessions.Guard.from_params(dict({'max_sessions': 25}, **params))


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


def hidden_session(pid, **overrides):
    """What pg_stat_activity shows a role without pg_read_all_stats of another role's session."""
    row = session(pid, state=None, query=_sessions.HIDDEN_QUERY, query_start=None, state_change=None,
                  backend_start=None, xact_start=None, client_addr=None, wait_event_type=None)
    row.update(overrides)
    return row


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
