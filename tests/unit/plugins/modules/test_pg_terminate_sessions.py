# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_terminate_sessions end to end against the fake server: what is signalled, and what is not."""

from __future__ import annotations

import psycopg2
import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import sessions as _sessions
from ansible_collections.trdrhub.incident.plugins.modules import (
    pg_terminate_sessions as module,
)

CONN = {'login_host': 'db-primary', 'login_user': 'ops', 'login_db': 'trdrhub'}


def args(**overrides):
    return dict(CONN, **overrides)


def by_pid(result):
    return {s['pid']: s for s in result['sessions']}


def test_check_mode_signals_nothing(run_module, fake_server):
    fake_server.add(11, application_name='trdrhub-api')
    fake_server.add(12, application_name='trdrhub-worker')
    result = run_module(module, args(applications=['trdrhub-api*']), check_mode=True, diff=True)
    assert not result.get('failed'), result
    assert result['changed'] is True
    assert result['matched'] == 1
    assert [(s['pid'], s['signal'], s['outcome']) for s in result['sessions']] == [(11, 'terminate', 'would_signal')]
    assert fake_server.signals == []
    assert not any('pg_terminate_backend' in q or 'pg_cancel_backend' in q for q in fake_server.statements)
    assert result['diff'] == {'before': {'active': 3}, 'after': {'active': 2}}


def test_terminate_reports_terminated_and_is_idempotent(run_module, fake_server):
    fake_server.add(11)
    fake_server.add(12)
    result = run_module(module, args(users=['trdrhub_app']))
    assert result['changed'] is True
    assert fake_server.signals == [('terminate', [11, 12])]
    assert {p: s['outcome'] for p, s in by_pid(result).items()} == {11: 'terminated', 12: 'terminated'}
    assert result['survivors'] == []
    assert _sessions.SIGNAL_SQL['terminate'] in result['queries']
    assert result['warnings'] == []
    again = run_module(module, args(users=['trdrhub_app']))
    assert (again['changed'], again['matched'], again['sessions']) == (False, 0, [])


def test_one_signal_statement_for_many_sessions(run_module, fake_server):
    for pid in range(100, 300):
        fake_server.add(pid)
    result = run_module(module, args(users=['trdrhub_app'], max_sessions=500))
    assert result['matched'] == 200
    assert len(fake_server.signals) == 1
    sessions_reads = [q for q in fake_server.statements if q == _sessions.SESSIONS_SQL]
    assert len(sessions_reads) == 1


def test_survivors_are_reported(run_module, fake_server):
    fake_server.add(11)
    fake_server.exit_on_terminate = False
    result = run_module(module, args(users=['trdrhub_app'], wait_timeout=2))
    assert result['survivors'] == [11]
    assert by_pid(result)[11]['outcome'] == 'survived'
    assert result['warnings'] == ['1 session(s) survived: pids 11']
    assert fake_server.clock.now - 1000.0 == pytest.approx(2.0)


def test_reused_pid_is_not_a_survivor(run_module, fake_server, make_session):
    fake_server.add(11)
    fake_server.exit_on_terminate = False
    original = fake_server.sessions[-1]

    def reuse(kind, pids):
        fake_server.signals.append((kind, pids))
        fake_server.sessions.remove(original)
        fake_server.sessions.append(make_session(11, backend_start=original['now']))
        return [{'pid': 11, 'signalled': True}]

    fake_server._signal = reuse
    result = run_module(module, args(users=['trdrhub_app']))
    assert by_pid(result)[11]['outcome'] == 'terminated'


def test_gone_and_signal_failed(run_module, fake_server):
    fake_server.add(11)
    fake_server.add(12)
    fake_server.signal_result = {11: False, 12: False}
    fake_server.sessions = [s for s in fake_server.sessions if s['pid'] != 11]  # 11 ends before the signal

    original = fake_server.answer

    def answer(sql, params):
        if sql == _sessions.SESSIONS_SQL and 11 not in fake_server.pids():
            rows = original(sql, params)
            return rows + [dict(rows[-1], pid=11)]
        return original(sql, params)

    fake_server.answer = answer
    result = run_module(module, args(users=['trdrhub_app']))
    assert {p: s['outcome'] for p, s in by_pid(result).items()} == {11: 'gone', 12: 'signal_failed'}
    assert result['changed'] is False
    assert result['survivors'] == [12]


def test_cancel_keeps_backends_and_counts_them_done(run_module, fake_server):
    fake_server.add(11, state='active')
    fake_server.add(12, state='idle in transaction')
    result = run_module(module, args(users=['trdrhub_app'], mode='cancel', states=['active', 'idle in transaction']))
    assert fake_server.signals == [('cancel', [11, 12])]
    outcomes = {p: s['outcome'] for p, s in by_pid(result).items()}
    assert outcomes == {11: 'cancelled', 12: 'survived'}
    assert {11, 12} <= fake_server.pids()


def test_cancel_then_terminate_terminates_only_what_still_matches(run_module, fake_server):
    fake_server.add(11, state='active')
    fake_server.add(12, state='idle in transaction')
    result = run_module(module, args(users=['trdrhub_app'], mode='cancel_then_terminate',
                                     states=['active', 'idle in transaction'], grace=3))
    assert fake_server.signals == [('cancel', [11, 12]), ('terminate', [12])]
    assert {p: s['outcome'] for p, s in by_pid(result).items()} == {11: 'cancelled', 12: 'terminated'}
    assert all(s['signal'] == 'cancel_then_terminate' for s in result['sessions'])
    assert fake_server.clock.now == 1000.0  # nothing left to wait for: no grace spent


def test_guard_rails_exclude_with_reasons(run_module, fake_server):
    fake_server.add(11)
    fake_server.add(12, application_name='pg_dump')
    fake_server.add(13, usename='postgres', is_superuser=True)
    fake_server.add(14, usename='trdrhub_migrator')
    result = run_module(module, args(databases=['trdrhub'], protected_users=['trdrhub_migrator']), check_mode=True)
    assert [s['pid'] for s in result['sessions']] == [11]
    assert {e['pid']: e['reason'].split(' (')[0] for e in result['excluded']} == {
        1: 'own session', 12: 'protected application pg_dump', 13: 'superuser session',
        14: 'protected user trdrhub_migrator'}


def test_max_sessions_fails_without_signalling(run_module, fake_server):
    for pid in (11, 12, 13):
        fake_server.add(pid)
    result = run_module(module, args(users=['trdrhub_app'], max_sessions=2))
    assert result['failed'] is True
    assert '3 sessions match' in result['msg'] and 'max_sessions (2)' in result['msg']
    assert result['matched'] == 3
    assert [s['outcome'] for s in result['sessions']] == ['would_signal'] * 3
    assert fake_server.signals == []


def test_missing_privilege_fails_before_any_signal(run_module, fake_server):
    fake_server.add(11)
    fake_server.has_signal_backend = False
    result = run_module(module, args(users=['trdrhub_app']))
    assert result['failed'] is True
    assert result['msg'].startswith('role ops lacks pg_signal_backend (GRANT pg_signal_backend TO ops)')
    assert fake_server.signals == []


def test_pooler_is_refused(run_module, fake_server):
    fake_server.add(11)
    fake_server.client_side_pid = 987654
    result = run_module(module, args(users=['trdrhub_app'], login_port=6543))
    assert result['failed'] is True
    assert 'connection pooler' in result['msg'] and 'port 5432' in result['msg']
    assert fake_server.signals == []


def test_diff_after_real_run_is_measured(run_module, fake_server):
    fake_server.add(11)
    fake_server.add(12, state='idle')
    result = run_module(module, args(states=['active'], users=['trdrhub_app']), diff=True)
    assert result['diff'] == {'before': {'active': 2, 'idle': 1}, 'after': {'active': 1, 'idle': 1}}


def test_check_mode_diff_for_cancel_predicts_state_changes(run_module, fake_server, make_session):
    fake_server.add(11)  # autocommit statement: xact_start == query_start
    row = fake_server.add(12)
    row['xact_start'] = row['query_start'] - (row['now'] - row['query_start'])
    result = run_module(module, args(users=['trdrhub_app'], mode='cancel'), check_mode=True, diff=True)
    assert result['diff']['after'] == {'active': 1, 'idle': 1, 'idle in transaction (aborted)': 1}


@pytest.mark.parametrize('extra, message', [
    ({}, 'refusing to select every client session'),
    ({'users': ['x'], 'min_duration': -1}, 'min_duration must be at least 0, got -1'),
    ({'users': ['x'], 'grace': -1}, 'grace must be at least 0, got -1'),
    ({'users': ['x'], 'wait_timeout': -0.5}, 'wait_timeout must be at least 0, got -0.5'),
    ({'users': ['x'], 'max_sessions': 0}, 'max_sessions must be at least 1, got 0'),
    ({'users': ['x'], 'client_addrs': ['10.1.1.1/40']}, "client_addrs: '10.1.1.1/40'"),
    ({'users': ['x'], 'query_pattern': '[a-'}, "query_pattern: '[a-'"),
    ({'users': ['x'], 'states': ['sleeping']}, 'value of states must be one or more of'),
    ({'users': ['x'], 'mode': 'kill'}, 'value of mode must be one of'),
    ({'users': ['x'], 'dsn': 'host=db'}, 'parameters are mutually exclusive: dsn|login_host'),
])
def test_bad_input_fails_once_and_cleanly(run_module, fake_server, extra, message):
    result = run_module(module, args(**extra))
    assert result['failed'] is True
    assert message in result['msg']
    assert fake_server.statements == []  # rejected before connecting


def test_connection_failure_message_hides_password(run_module, monkeypatch):
    secret = 'Sup3r$ecret'

    def refuse(dsn, **kwargs):
        raise psycopg2.OperationalError(f'FATAL:  password authentication failed for user "ops" (password={secret})')

    monkeypatch.setattr(psycopg2, 'connect', refuse)
    result = run_module(module, args(users=['x'], login_password=secret))
    assert result['failed'] is True
    assert result['msg'].startswith('Cannot connect to PostgreSQL at db-primary:5432, database trdrhub, as user ops: ')
    assert secret not in str(result)
    assert 'Traceback' not in str(result)


def test_missing_psycopg2_is_reported(run_module, monkeypatch):
    monkeypatch.setattr(module, 'PSYCOPG2', ('psycopg2', False, None))
    result = run_module(module, args(users=['x']))
    assert result['failed'] is True
    assert 'psycopg2' in result['msg']


def test_cancel_counts_as_done_when_the_statement_ended_even_if_filters_still_match(run_module, fake_server):
    # Only a user filter: after the cancel the session is idle but still "matches" it.
    fake_server.add(11, state='active')
    result = run_module(module, args(users=['trdrhub_app'], mode='cancel_then_terminate', grace=3))
    assert fake_server.signals == [('cancel', [11])]
    assert by_pid(result)[11]['outcome'] == 'cancelled'
    assert result['survivors'] == []
    assert 11 in fake_server.pids()


def test_check_mode_reports_a_missing_signal_privilege(run_module, fake_server):
    fake_server.add(11, state='active')
    fake_server.has_signal_backend = False
    result = run_module(module, args(users=["trdrhub_app"]), check_mode=True)
    assert result["failed"] is True
    assert 'pg_signal_backend' in result['msg']
    assert fake_server.signals == []
