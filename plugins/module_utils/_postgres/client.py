# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""PostgreSQL connection layer shared by the collection's database modules.

The option spec lives here once (``POSTGRES_COMMON_ARGS``) and is documented once
in the ``trdrhub.incident.postgres`` doc fragment. Connection parameters the user
did not set are left out on purpose so that libpq falls back to ``PGPORT``,
``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``, ``PGSSLMODE``, ``~/.pgpass`` and
``PGSERVICE`` exactly as ``psql`` would -- except the server itself: libpq's
default (the local Unix socket) is never used implicitly, see ``require_target``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import typing as t
from urllib.parse import quote, quote_plus

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgConnectionError,
    PgIncidentError,
    PgInputError,
    PgPermissionError,
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (  # noqa: F401  # pylint: disable=unused-import
    MASK,
    condense,
    scrub,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Library
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded, with_secret_keys

with Library.optional('psycopg2') as PSYCOPG2:
    import psycopg2
    from psycopg2.extensions import parse_dsn

APPLICATION_NAME = 'trdrhub.incident'
SSL_MODES = ['allow', 'disable', 'prefer', 'require', 'verify-ca', 'verify-full']

POSTGRES_COMMON_ARGS: dict[str, dict[str, t.Any]] = {
    'login_host': {'type': 'str'},
    'login_port': bounded({'type': 'int'}, 1, 65535),
    'login_user': {'type': 'str'},
    'login_password': {'type': 'str', 'no_log': True},
    'login_db': {'type': 'str', 'aliases': ['db']},
    'login_unix_socket': {'type': 'str'},
    'ssl_mode': {'type': 'str', 'choices': SSL_MODES},
    'ca_cert': {'type': 'str', 'aliases': ['ssl_rootcert']},
    'connect_timeout': bounded({'type': 'int', 'default': 10}, minimum=0),
    'connect_params': with_secret_keys({'type': 'dict', 'default': {}}, 'password', 'sslpassword'),
    'dsn': {'type': 'str', 'no_log': True},
    'statement_timeout': bounded({'type': 'int', 'default': 10}, minimum=0),
}


def postgres_spec(*option_sets: t.Mapping[str, dict[str, t.Any]], **options: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The spec of a module connecting to PostgreSQL: POSTGRES_COMMON_ARGS, then each of ``option_sets`` and ``options``."""
    spec = dict(POSTGRES_COMMON_ARGS)
    for option_set in option_sets:
        spec.update(option_set)
    spec.update(options)
    return spec


# A dsn is a complete set of connection parameters; mixing it with the login_*
# options would make it unclear which host or role is actually used.
POSTGRES_MUTUALLY_EXCLUSIVE: list[list[str]] = [
    ['dsn', option]
    for option in ('login_host', 'login_user', 'login_password', 'login_port', 'login_unix_socket')
]
# The module keywords of a module with the connection options (run_module(..., **POSTGRES_CONSTRAINTS)).
POSTGRES_CONSTRAINTS: dict[str, t.Any] = dict(mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)

# Option name -> libpq keyword. Only options the user set are passed on.
_LIBPQ_KEYWORDS = (
    ('login_host', 'host'),
    ('login_port', 'port'),
    ('login_user', 'user'),
    ('login_password', 'password'),
    ('login_db', 'dbname'),
    ('ssl_mode', 'sslmode'),
    ('ca_cert', 'sslrootcert'),
    ('connect_timeout', 'connect_timeout'),
)
# Settings that name the server; without one libpq silently picks the local socket.
_TARGET_KEYWORDS = ('host', 'hostaddr', 'service')
_TARGET_ENV = ('PGHOST', 'PGHOSTADDR', 'PGSERVICE')
NO_TARGET = (
    'No PostgreSQL server given: set login_host, login_unix_socket or dsn (or PGHOST, PGHOSTADDR or '
    'PGSERVICE in the environment). libpq\'s default, the local Unix socket, is never used implicitly; '
    'to use the local server on purpose, set login_unix_socket to its socket directory '
    '(for example /var/run/postgresql)'
)
_LIBPQ_ENV = (('host', 'PGHOST'), ('port', 'PGPORT'), ('dbname', 'PGDATABASE'), ('user', 'PGUSER'))

_POOLER_REASON = re.compile(r'pgbouncer|SHOW HELP|unsupported (startup parameter|pkt type)', re.IGNORECASE)
_POOLER_HINT = (
    'this looks like PgBouncer (or another pooler), not PostgreSQL: connect to the '
    'PostgreSQL server itself (port 5432), not the pooler (port 6543)'
)

# The statement timeout is set per transaction, never per session: behind a pooler in
# transaction mode (PgBouncer) a session-level SET stays on the server connection and
# applies to whichever client gets it next. SET (not set_config) takes no snapshot, so
# SET TRANSACTION ISOLATION LEVEL may still follow it.
SET_STATEMENT_TIMEOUT = 'SET LOCAL statement_timeout = %s'
BEGIN = 'BEGIN'
COMMIT = 'COMMIT'
ROLLBACK = 'ROLLBACK'
BACKEND_PID = 'SELECT pg_backend_pid() AS pid'
# Statements PostgreSQL refuses inside a transaction block: they run without the
# per-transaction timeout (see PgClient ``startup_settings`` for a connection-wide one).
_NO_TRANSACTION = re.compile(
    r'^\s*(VACUUM\b|(CREATE|DROP)\s+DATABASE\b|ALTER\s+SYSTEM\b|(CREATE|DROP)\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b'
    r'|REINDEX\b.*\bCONCURRENTLY\b)', re.IGNORECASE | re.DOTALL)


def connection_kwargs(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """libpq keywords for the options the user set; unset ones stay with libpq/env."""
    kwargs: dict[str, t.Any] = {
        key: value for key, value in (params.get('connect_params') or {}).items() if value is not None
    }
    for option, keyword in _LIBPQ_KEYWORDS:
        value = params.get(option)
        if value is not None and value != '':
            kwargs[keyword] = value
    if params.get('login_unix_socket'):
        # Same precedence as community.postgresql: an explicit socket wins.
        kwargs['host'] = params['login_unix_socket']
    # Always ours: protected_applications relies on it to spare this collection's sessions.
    kwargs['application_name'] = APPLICATION_NAME
    return kwargs


def _parse_dsn(dsn: str | None) -> dict[str, str]:
    if not dsn or not PSYCOPG2.present:
        return {}
    try:
        return parse_dsn(dsn)
    except psycopg2.Error:
        return {}


def secrets_of(params: dict[str, t.Any]) -> list[str]:
    """Every password that could surface in an error text, in its raw and URL forms."""
    found = [
        params.get('login_password'),
        params.get('dsn'),
        _parse_dsn(params.get('dsn')).get('password'),
        (params.get('connect_params') or {}).get('password'),
        os.environ.get('PGPASSWORD'),
    ]
    secrets: set[str] = set()
    for value in found:
        if value:
            secrets.update({str(value), quote(str(value), safe=''), quote_plus(str(value))})
    return sorted(secrets, key=len, reverse=True)


def describe_target(params: dict[str, t.Any]) -> str:
    """Where libpq will try to connect, resolved the way libpq resolves it (env < dsn < options)."""
    settings: dict[str, t.Any] = {key: os.environ[var] for key, var in _LIBPQ_ENV if os.environ.get(var)}
    settings.update(_parse_dsn(params.get('dsn')))
    settings.update(connection_kwargs(params))
    host = settings.get('host') or settings.get('hostaddr') or 'the local socket'
    user = settings.get('user') or _os_user()
    port, dbname = settings.get('port') or 5432, settings.get('dbname') or user
    return f'PostgreSQL at {host}:{port}, database {dbname}, as user {user}'


def require_target(params: dict[str, t.Any]) -> None:
    """Refuse to connect unless something names the server.

    A run with no target would reach whatever PostgreSQL answers on the local
    socket -- on an engineer's laptop or a shared jump host, the wrong database
    -- and report success against it. An explicit option, dsn host, connect_params
    host or a PGHOST/PGHOSTADDR/PGSERVICE variable in the module's environment is
    a deliberate choice; nothing else is.
    """
    named = dict(_parse_dsn(params.get('dsn')))
    named.update(connection_kwargs(params))
    if any(named.get(keyword) for keyword in _TARGET_KEYWORDS):
        return
    if any(os.environ.get(var) for var in _TARGET_ENV):
        return
    raise PgInputError(NO_TARGET)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # getuser() raises when the uid has no passwd entry (common in containers).
        return 'the operating-system user'


def startup_options(settings: t.Mapping[str, t.Any]) -> str:
    """The libpq ``options`` startup parameter that sets ``settings`` for the whole connection."""
    parts = []
    for name, value in settings.items():
        text = str(value).replace('\\', '\\\\').replace(' ', '\\ ')
        parts.append(f'-c {name}={text}')
    return ' '.join(parts)


def connect(params: dict[str, t.Any], startup_settings: t.Mapping[str, t.Any] | None = None) -> t.Any:
    """Open an autocommit connection or raise PgConnectionError with one clean message.

    Autocommit matters: signals are not transactional, and a failed read must not
    leave the session in an aborted transaction for the next statement.
    ``startup_settings`` go in the ``options`` startup parameter (PgBouncer refuses
    it unless told to ignore it, so only connections that cannot do without use it).
    """
    secrets = secrets_of(params)
    if params.get('dsn'):
        try:
            parse_dsn(params['dsn'])
        except psycopg2.Error as exc:
            raise PgConnectionError('Cannot connect to PostgreSQL: dsn is not a valid libpq connection string or '
                                    f'URL: {scrub(condense(str(exc)), secrets)}') from None
    require_target(params)
    try:
        kwargs = connection_kwargs(params)
        if startup_settings:
            kwargs['options'] = ' '.join(filter(None, [kwargs.get('options'), startup_options(startup_settings)]))
        conn = psycopg2.connect(params.get('dsn') or '', **kwargs)
        conn.autocommit = True
    except psycopg2.Error as exc:
        reason = scrub(condense(str(exc)), secrets) or type(exc).__name__
        if _POOLER_REASON.search(reason):
            reason += '; ' + _POOLER_HINT
        raise PgConnectionError(f'Cannot connect to {scrub(describe_target(params), secrets)}: {reason}') from None
    return conn


class PgClient:
    """A connection plus the list of statements run on it (reported as ``queries``).

    ``statement_timeout`` is applied with ``SET LOCAL`` at the start of every
    transaction the client runs: an autocommit statement is wrapped in
    ``BEGIN; SET LOCAL ...; <statement>; COMMIT``, and a transaction the caller opens
    (``conn.autocommit = False``) gets the ``SET LOCAL`` before its first statement.
    Nothing is set for the session, so a pooled server connection goes back to the
    pool as it came. ``startup_settings`` (a dedicated connection for statements that
    cannot run in a transaction, such as VACUUM) are set once, at connection time.
    """

    def __init__(self, params: dict[str, t.Any], conn: t.Any = None,
                 startup_settings: t.Mapping[str, t.Any] | None = None) -> None:
        timeout = params.get('statement_timeout')
        if timeout is not None and timeout < 0:
            raise PgInputError(f'statement_timeout must be 0 (no limit) or a positive number of seconds, got {timeout}')
        self.params = params
        self.secrets = secrets_of(params)
        self.queries: list[str] = []
        self.startup_settings = dict(startup_settings or {})
        if timeout is not None and 'statement_timeout' not in self.startup_settings:
            self.timeout_ms: int | None = int(round(timeout * 1000))
        else:
            self.timeout_ms = None
        self.conn = conn if conn is not None else connect(params, self.startup_settings)

    def _begin(self, cur: t.Any, text: str) -> bool:
        """Issue the transaction's SET LOCAL if this statement starts one; True when we opened it (and must end it)."""
        if self.timeout_ms is None or _NO_TRANSACTION.match(text):
            return False
        if self.conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            return False   # inside a transaction: its first statement already set the timeout
        own = bool(self.conn.autocommit)
        if own:
            cur.execute(BEGIN)
        cur.execute(SET_STATEMENT_TIMEOUT, (self.timeout_ms,))
        return own

    def query(self, statement: t.Any, args: t.Any = None) -> list[dict[str, t.Any]]:
        """Run one statement and return its rows as dicts; map every driver error."""
        text = statement if isinstance(statement, str) else statement.as_string(self.conn)
        if not self.queries or self.queries[-1] != condense(text):
            # Polling repeats one statement many times; list it once per run of repeats.
            self.queries.append(condense(text))
        own = False
        try:
            with self.conn.cursor() as cur:
                own = self._begin(cur, text)
                cur.execute(statement, args)
                rows: list[dict[str, t.Any]] = []
                if cur.description is not None:
                    columns = [column[0] for column in cur.description]
                    rows = [dict(zip(columns, row)) for row in cur.fetchall()]
                if own:
                    own = False
                    cur.execute(COMMIT)
                return rows
        except psycopg2.Error as exc:
            if own:
                with contextlib.suppress(psycopg2.Error), self.conn.cursor() as cur:
                    cur.execute(ROLLBACK)
            raise self.query_error(text, exc) from None

    def query_error(self, statement: str, exc: t.Any) -> PgIncidentError:
        """Name the statement (never its values) and quote the server's reason."""
        diag = getattr(exc, 'diag', None)
        reason = condense(getattr(diag, 'message_primary', None) or str(exc)) or type(exc).__name__
        hint = getattr(diag, 'message_hint', None)
        if hint:
            reason = f'{reason} (hint: {condense(hint)})'
        code = getattr(exc, 'pgcode', None)
        if code == '57014':
            timeout = self.startup_settings.get('statement_timeout', f"{self.params.get('statement_timeout')}s")
            reason += f' (statement_timeout is {timeout})'
        if _POOLER_REASON.search(reason) or (code == '42P01' and 'pg_stat' in reason):
            reason += '; ' + _POOLER_HINT
        sql = condense(statement)
        if len(sql) > 160:
            sql = sql[:157] + '...'
        if getattr(getattr(self, 'conn', None), 'closed', 0):
            # The server went away mid-statement (restart, crash, pg_terminate_backend of this session).
            return PgConnectionError(scrub(
                f'Lost the connection to PostgreSQL during {sql} (the server closed it: restarted, or this session '
                'was terminated); that statement and anything after it were not done, run again once the server '
                'answers', self.secrets))
        msg = scrub(f'Query failed: {sql} -- server said: {reason}', self.secrets)
        if code == '42501':
            return PgPermissionError(msg)
        return PgQueryError(msg)

    def pooler_warning(self) -> str | None:
        """Detect PgBouncer: its client-side backend key is not the server's backend pid.

        A pooler hands out server connections per transaction, so "our own backend"
        is meaningless and a signal may hit whatever client shares the pooled
        connection. A TCP port-forward keeps both pids equal and is not flagged.
        """
        rows = self.query(BACKEND_PID)
        server_pid = rows[0]['pid'] if rows else None
        client_pid = self.conn.get_backend_pid()
        if server_pid == client_pid:
            return None
        target = scrub(describe_target(self.params), self.secrets)
        return (f'{target}: the connection reports backend pid {client_pid} but the server runs it '
                f'as pid {server_pid}, so {_POOLER_HINT}')

    def close(self) -> None:
        # Closing is best effort; the module result is already decided.
        with contextlib.suppress(psycopg2.Error):
            self.conn.close()
