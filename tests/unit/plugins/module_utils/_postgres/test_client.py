# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection layer: what reaches libpq, and that no failure leaks a password or a traceback."""

from __future__ import annotations

import psycopg2
import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgConnectionError,
    PgInputError,
    PgPermissionError,
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import client as _postgres

SECRET = 'Sup3r$ecret'
LIBPQ_ENV = ('PGHOST', 'PGHOSTADDR', 'PGSERVICE', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE')


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in LIBPQ_ENV:
        monkeypatch.delenv(var, raising=False)


def params(**overrides):
    base = {name: spec.get('default') for name, spec in _postgres.POSTGRES_COMMON_ARGS.items()}
    base.update(overrides)
    return base


def test_unset_options_are_left_to_libpq():
    assert _postgres.connection_kwargs(params()) == {'connect_timeout': 10, 'application_name': 'trdrhub.incident'}


def test_empty_host_counts_as_unset():
    assert 'host' not in _postgres.connection_kwargs(params(login_host=''))


def test_options_map_to_libpq_keywords():
    kwargs = _postgres.connection_kwargs(params(
        login_host='db', login_port=5432, login_user='trdrhub_app', login_password=SECRET, login_db='trdrhub',
        ssl_mode='verify-full', ca_cert='/etc/ssl/ca.pem'))
    assert kwargs == {
        'host': 'db', 'port': 5432, 'user': 'trdrhub_app', 'password': SECRET, 'dbname': 'trdrhub',
        'sslmode': 'verify-full', 'sslrootcert': '/etc/ssl/ca.pem', 'connect_timeout': 10,
        'application_name': 'trdrhub.incident'}


def test_unix_socket_wins_over_host():
    assert _postgres.connection_kwargs(params(login_host='db', login_unix_socket='/run/pg'))['host'] == '/run/pg'


def test_connect_params_yield_to_options_and_never_rename_the_session():
    kwargs = _postgres.connection_kwargs(params(
        login_db='trdrhub', connect_params={'dbname': 'other', 'application_name': 'x', 'target_session_attrs': 'read-write'}))
    assert kwargs['dbname'] == 'trdrhub'
    assert kwargs['application_name'] == 'trdrhub.incident'
    assert kwargs['target_session_attrs'] == 'read-write'


def test_dsn_excludes_login_options():
    pairs = {tuple(pair) for pair in _postgres.POSTGRES_MUTUALLY_EXCLUSIVE}
    assert pairs == {('dsn', o) for o in ('login_host', 'login_user', 'login_password', 'login_port', 'login_unix_socket')}


@pytest.mark.parametrize('text', [
    f'password={SECRET} host=db',
    f"password='{SECRET}' host=db",
    f'postgresql://trdrhub_app:{SECRET}@db:5432/trdrhub',
    'postgresql://trdrhub_app:{}@db:5432/trdrhub'.format('Sup3r%24ecret'),
])
def test_scrub_removes_passwords(text):
    scrubbed = _postgres.scrub(text, _postgres.secrets_of(params(login_password=SECRET)))
    assert SECRET not in scrubbed and 'Sup3r%24ecret' not in scrubbed
    assert _postgres.MASK in scrubbed


def test_scrub_finds_unknown_passwords_by_shape():
    assert 'hunter2' not in _postgres.scrub('invalid dsn: "postgresql://u:hunter2@[db/x"')
    assert 'hunter2' not in _postgres.scrub('missing "=" after "password=hunter2 x"')


def test_secrets_include_dsn_and_env_passwords(monkeypatch):
    monkeypatch.setenv('PGPASSWORD', 'fromenv')
    found = _postgres.secrets_of(params(dsn='postgresql://u:p%40ss@db/x'))
    assert {'fromenv', 'p@ss', 'p%40ss'} <= set(found)


def test_describe_target_resolves_like_libpq(monkeypatch):
    monkeypatch.setenv('PGHOST', 'envhost')
    monkeypatch.setenv('PGUSER', 'envuser')
    assert _postgres.describe_target(params()) == 'PostgreSQL at envhost:5432, database envuser, as user envuser'
    assert _postgres.describe_target(params(dsn='postgresql://u@dsnhost:6543/trdrhub')) == \
        'PostgreSQL at dsnhost:6543, database trdrhub, as user u'
    assert _postgres.describe_target(params(login_host='db', login_port=5433, login_db='trdrhub')) == \
        'PostgreSQL at db:5433, database trdrhub, as user envuser'


def test_connect_failure_is_one_clean_message(monkeypatch):
    def refuse(dsn, **kwargs):
        raise psycopg2.OperationalError(
            'connection to server at "db" (10.0.0.5), port 5432 failed: FATAL:  password authentication failed '
            f'for user "trdrhub_app"\n\tpassword={SECRET}\n')

    monkeypatch.setattr(psycopg2, 'connect', refuse)
    with pytest.raises(PgConnectionError) as caught:
        _postgres.connect(params(login_host='db', login_user='trdrhub_app', login_password=SECRET, login_db='trdrhub'))
    msg = str(caught.value)
    assert msg.startswith('Cannot connect to PostgreSQL at db:5432, database trdrhub, as user trdrhub_app: ')
    assert 'password authentication failed for user "trdrhub_app"' in msg
    assert SECRET not in msg and '\n' not in msg


def test_invalid_dsn_never_echoes_it():
    dsn = f'postgresql://trdrhub_app:{SECRET}@[db/trdrhub'
    with pytest.raises(PgConnectionError) as caught:
        _postgres.connect(params(dsn=dsn))
    assert 'dsn is not a valid' in str(caught.value)
    assert SECRET not in str(caught.value)


def test_negative_statement_timeout_is_rejected_before_connecting():
    with pytest.raises(PgInputError, match='statement_timeout'):
        _postgres.PgClient(params(statement_timeout=-1), conn=object())


class FakeDiag:
    def __init__(self, primary, hint=None):
        self.message_primary = primary
        self.message_hint = hint


def pg_error(code, primary, hint=None):
    cls = type('FakePgError', (psycopg2.Error,), {
        'pgcode': property(lambda self: code),
        'diag': property(lambda self: FakeDiag(primary, hint)),
    })
    return cls(primary)


class RaisingCursor:
    def __init__(self, exc):
        self.exc = exc

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def execute(self, statement, args=None):
        raise self.exc


class RaisingConn:
    def __init__(self, exc):
        self.exc = exc

    def cursor(self):
        return RaisingCursor(self.exc)


def client_raising(exc, statement_timeout=10):
    """A client whose every statement fails with exc (the session setup is skipped)."""
    client = _postgres.PgClient(params(statement_timeout=None), conn=RaisingConn(exc))
    client.params['statement_timeout'] = statement_timeout
    return client


def test_query_error_names_statement_not_values():
    client = client_raising(pg_error('42703', 'column "bogus" does not exist'))
    with pytest.raises(PgQueryError) as caught:
        client.query('SELECT bogus FROM pg_stat_activity WHERE usename = %s', ('trdrhub_app',))
    msg = str(caught.value)
    assert 'SELECT bogus FROM pg_stat_activity WHERE usename = %s' in msg
    assert 'column "bogus" does not exist' in msg
    assert 'trdrhub_app' not in msg
    assert client.queries == ['SELECT bogus FROM pg_stat_activity WHERE usename = %s']


def test_permission_error_has_its_own_class():
    client = client_raising(pg_error('42501', 'permission denied to terminate process'))
    with pytest.raises(PgPermissionError):
        client.query('SELECT pg_terminate_backend(1)')


def test_statement_timeout_is_named():
    client = client_raising(pg_error('57014', 'canceling statement due to statement timeout'), statement_timeout=10)
    with pytest.raises(PgQueryError, match=r'statement_timeout is 10s'):
        client.query('SELECT 1')


def test_pgbouncer_console_gets_a_hint():
    client = client_raising(pg_error('08P01', "invalid command 'SELECT 1', use SHOW HELP;"))
    with pytest.raises(PgQueryError, match='not the pooler'):
        client.query('SELECT 1')


class PidConn:
    def __init__(self, client_pid):
        self.client_pid = client_pid

    def get_backend_pid(self):
        return self.client_pid


@pytest.mark.parametrize('client_pid, pooled', [(4242, False), (9_999_999, True)])
def test_pooler_detection_compares_backend_pids(monkeypatch, client_pid, pooled):
    client = _postgres.PgClient(params(statement_timeout=None, login_host='db', login_port=6543), conn=PidConn(client_pid))
    monkeypatch.setattr(client, 'query', lambda statement, args=None: [{'pid': 4242}])
    warning = client.pooler_warning()
    assert (warning is not None) == pooled
    if pooled:
        assert 'db:6543' in warning and 'port 5432' in warning


def _no_connection(monkeypatch):
    calls = []
    monkeypatch.setattr(psycopg2, 'connect', lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


@pytest.mark.parametrize('overrides', [
    {},
    {'login_user': 'trdrhub_app', 'login_db': 'trdrhub', 'login_port': 5432},
    {'dsn': 'dbname=trdrhub user=trdrhub_app'},
    {'dsn': 'postgresql:///trdrhub'},
    {'connect_params': {'target_session_attrs': 'read-write'}},
    {'login_host': ''},
])
def test_no_target_fails_before_any_connection_attempt(monkeypatch, overrides):
    monkeypatch.setenv('PGPORT', '1')  # even a fall-through could not reach a local server
    calls = _no_connection(monkeypatch)
    with pytest.raises(PgInputError) as caught:
        _postgres.connect(params(**overrides))
    assert str(caught.value) == _postgres.NO_TARGET
    assert 'login_host, login_unix_socket or dsn' in str(caught.value)
    assert calls == []


@pytest.mark.parametrize('overrides,env', [
    ({'login_host': 'db'}, {}),
    ({'login_unix_socket': '/var/run/postgresql'}, {}),
    ({'dsn': 'host=db dbname=trdrhub'}, {}),
    ({'dsn': 'postgresql://u@db/trdrhub'}, {}),
    ({'dsn': 'service=trdrhub'}, {}),
    ({'connect_params': {'hostaddr': '10.0.0.5'}}, {}),
    ({}, {'PGHOST': 'envhost'}),
    ({}, {'PGHOSTADDR': '10.0.0.5'}),
    ({}, {'PGSERVICE': 'trdrhub'}),
])
def test_an_explicit_target_connects(monkeypatch, overrides, env):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    calls = []
    monkeypatch.setattr(psycopg2, 'connect', lambda *args, **kwargs: calls.append(kwargs) or FakeConn())
    _postgres.connect(params(**overrides))
    assert len(calls) == 1


class FakeConn:
    autocommit = False


# -- statement_timeout per transaction, never per session (pooler hygiene) --------------

IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
INTRANS = psycopg2.extensions.TRANSACTION_STATUS_INTRANS


class TxCursor:
    """Records what the client sends and tracks the transaction state as a server would."""

    def __init__(self, conn):
        self.conn = conn
        self.description = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def execute(self, statement, args=None):
        conn = self.conn
        if not conn.autocommit and not conn.in_tx:
            conn.sent.append('BEGIN (implicit)')   # psycopg2 opens the transaction itself
            conn.in_tx = True
        conn.sent.append((statement, args) if args is not None else statement)
        if statement == _postgres.BEGIN:
            conn.in_tx = True
        elif statement in (_postgres.COMMIT, _postgres.ROLLBACK):
            conn.in_tx = False
        if conn.fail_on and conn.fail_on in statement:
            raise pg_error('57014', 'canceling statement due to statement timeout')  # pylint: disable=raising-non-exception
        self.description = [('ok',)] if statement.startswith('SELECT') else None

    def fetchall(self):
        return [(1,)]


class TxConn:
    def __init__(self, autocommit=True, fail_on=None):
        self.autocommit = autocommit
        self.in_tx = False
        self.fail_on = fail_on
        self.sent = []
        self.info = self

    @property
    def transaction_status(self):
        return INTRANS if self.in_tx else IDLE

    def cursor(self):
        return TxCursor(self)


def test_a_statement_runs_in_its_own_transaction_with_set_local():
    conn = TxConn()
    client = _postgres.PgClient(params(statement_timeout=7), conn=conn)
    assert client.query('SELECT 1 AS ok') == [{'ok': 1}]
    assert conn.sent == ['BEGIN', ('SET LOCAL statement_timeout = %s', (7000,)), 'SELECT 1 AS ok', 'COMMIT']
    assert not conn.in_tx
    assert client.queries == ['SELECT 1 AS ok']   # the wrapper is not reported as the module's work
    assert not any('set_config' in str(sent) or sent == 'SET statement_timeout' for sent in conn.sent)


def test_a_failed_statement_rolls_its_transaction_back():
    conn = TxConn(fail_on='pg_sleep')
    client = _postgres.PgClient(params(statement_timeout=1), conn=conn)
    with pytest.raises(PgQueryError, match=r'statement_timeout is 1s'):
        client.query('SELECT pg_sleep(5)')
    assert conn.sent == ['BEGIN', ('SET LOCAL statement_timeout = %s', (1000,)), 'SELECT pg_sleep(5)', 'ROLLBACK']
    assert not conn.in_tx


def test_a_callers_transaction_gets_set_local_once_before_its_first_statement():
    conn = TxConn(autocommit=False)
    client = _postgres.PgClient(params(statement_timeout=10), conn=conn)
    client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
    client.query('SELECT 1 AS ok')
    assert conn.sent == ['BEGIN (implicit)', ('SET LOCAL statement_timeout = %s', (10000,)),
                         'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', 'SELECT 1 AS ok']
    assert conn.in_tx   # the caller commits or rolls back


def test_zero_means_no_limit_for_the_transaction():
    conn = TxConn()
    _postgres.PgClient(params(statement_timeout=0), conn=conn).query('SELECT 1 AS ok')
    assert conn.sent[1] == ('SET LOCAL statement_timeout = %s', (0,))


@pytest.mark.parametrize('statement', ['VACUUM (ANALYZE) public.t', 'CREATE DATABASE "r" TEMPLATE template0',
                                       'DROP DATABASE IF EXISTS "r"', 'vacuum public.t'])
def test_statements_that_cannot_run_in_a_transaction_are_sent_alone(statement):
    conn = TxConn()
    _postgres.PgClient(params(statement_timeout=10), conn=conn).query(statement)
    assert conn.sent == [statement]


def test_without_a_timeout_nothing_is_wrapped():
    conn = TxConn()
    _postgres.PgClient(params(statement_timeout=None), conn=conn).query('SELECT 1 AS ok')
    assert conn.sent == ['SELECT 1 AS ok']


def test_startup_settings_go_in_the_options_parameter_and_replace_set_local(monkeypatch):
    calls = []
    monkeypatch.setattr(psycopg2, 'connect', lambda *args, **kwargs: calls.append(kwargs) or TxConn())
    client = _postgres.PgClient(params(login_host='db.example', statement_timeout=10,
                                       connect_params={'options': '-c search_path=app'}),
                                startup_settings={'statement_timeout': '3600s', 'vacuum_cost_delay': '2.0ms'})
    assert calls[0]['options'] == '-c search_path=app -c statement_timeout=3600s -c vacuum_cost_delay=2.0ms'
    client.query('VACUUM public.t')
    client.query('SELECT 1 AS ok')
    assert client.conn.sent == ['VACUUM public.t', 'SELECT 1 AS ok']


def test_a_pooler_refusing_startup_options_gets_the_hint(monkeypatch):
    def refuse(dsn, **kwargs):
        raise psycopg2.OperationalError('FATAL:  unsupported startup parameter: options')
    monkeypatch.setattr(psycopg2, 'connect', refuse)
    with pytest.raises(PgConnectionError, match='not the pooler'):
        _postgres.PgClient(params(login_host='db.example'), startup_settings={'statement_timeout': '0s'})
