# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The incident ledger: an append-only, hash-chained record of what was done in an incident.

One chain per incident; each entry's ``hash`` is ``PROFILES['ledger'].compute(entry)``
(module_utils/_audit/chain.py) over every other field, ``prev_hash`` included. Storage: a JSON-lines
file ``<root>/<incident_id>/ledger.jsonl`` (appends serialised by ``flock`` on ``ledger.lock``)
or a PostgreSQL table (a transaction-scoped advisory lock per incident). The head is read and
the entry written while the lock is held, so concurrent runs never fork the chain or lose an
entry. Used by the ``trdrhub.incident.ledger`` callback and ``trdrhub.incident.ledger_record``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    PROFILES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgIncidentError,
    PgQueryError,
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    LEDGER_FILE,
    absolute,
    default_home,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
    jsonable,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_micro
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PSYCOPG2,
    PgClient,
    condense,
)

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:
    psycopg2 = sql = None

LEDGER_VERSION = 1
DEFAULT_TABLE = 'trdrhub_incident_ledger'
LOCK_FILE = 'ledger.lock'
BACKENDS = ('file', 'postgres')
PHASES = ('detect', 'triage', 'investigate', 'contain', 'recover', 'verify', 'communicate', 'review')
RECORD_EVENTS = ('note', 'decision', 'approval', 'escalation', 'communication', 'verification', 'finding', 'handover')
RECORD_MODULE = 'trdrhub.incident.ledger_record'
ENV = {'backend': 'TRDRHUB_LEDGER_BACKEND', 'root': 'TRDRHUB_LEDGER_DIR', 'table': 'TRDRHUB_LEDGER_TABLE', 'dsn': 'TRDRHUB_LEDGER_DSN'}
# The fields of an entry besides the chain bookkeeping (v, seq, incident_id, ts, prev_hash, hash).
BODY_DEFAULTS: dict[str, t.Any] = {'event': 'note', 'phase': None, 'actor': None, 'host': None, 'play': None,
                                   'task': None, 'module': None, 'changed': None, 'failed': None, 'args': {}, 'data': {}}

_INCIDENT_ID = re.compile(r'[A-Za-z0-9._-]{1,128}')
_TABLE_PART = re.compile(r'[A-Za-z_][A-Za-z0-9_$]{0,62}')
_HEAD_CHUNK = 8192

# Options shared by everything that writes the ledger (doc fragment trdrhub.incident.ledger).
LEDGER_BACKEND_ARGS: dict[str, dict[str, t.Any]] = {
    'backend': {'type': 'str', 'choices': list(BACKENDS)},
    'root': {'type': 'path', 'aliases': ['dir']},
    'table': {'type': 'str'},
}
RECORD_ARGS: dict[str, dict[str, t.Any]] = {
    'incident_id': {'type': 'str', 'required': True},
    'event': {'type': 'str', 'default': 'note', 'choices': list(RECORD_EVENTS)},
    'phase': {'type': 'str', 'choices': list(PHASES)},
    'msg': {'type': 'str'},
    'data': {'type': 'dict', 'default': {}},
    'actor': {'type': 'str'},
}

CREATE_SQL = """CREATE TABLE IF NOT EXISTS {table} (
    incident_id text NOT NULL, seq integer NOT NULL, entry jsonb NOT NULL, entry_hash text NOT NULL,
    prev_hash text, recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (incident_id, seq))"""
EXISTS_SQL = 'SELECT to_regclass(%s) IS NOT NULL AS present'
LOCK_SQL = 'SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))'
HEAD_SQL = 'SELECT seq, entry_hash FROM {table} WHERE incident_id = %s ORDER BY seq DESC LIMIT 1'
INSERT_SQL = 'INSERT INTO {table} (incident_id, seq, entry, entry_hash, prev_hash) VALUES (%s, %s, %s::jsonb, %s, %s)'


class LedgerError(TrdrhubError):
    """The ledger cannot be written or read; the message names the ledger and the reason."""


def validate_incident_id(value: t.Any) -> str:
    """The id names a directory, so it must be one safe path component."""
    text = '' if value is None else str(value)
    if not _INCIDENT_ID.fullmatch(text) or '..' in text or text == '.':
        raise LedgerError(f'incident_id {text!r} cannot name a ledger: use 1 to 128 letters, digits, ".", "_" or "-" '
                          '(no "..", no "/", no spaces), for example INC-2025-0042')
    return text


def make_entry(incident_id: str, seq: int, prev_hash: str | None, fields: t.Mapping[str, t.Any],
               ts: str | None = None) -> dict[str, t.Any]:
    """A complete entry, hashed. ``fields`` gives the body (event, phase, actor, ... data)."""
    entry: dict[str, t.Any] = {'v': LEDGER_VERSION, 'seq': seq, 'incident_id': incident_id, 'ts': ts or iso_micro()}
    for key, default in BODY_DEFAULTS.items():
        value = jsonable(fields.get(key, default))
        if key in ('args', 'data') and not isinstance(value, (dict, str)):
            value = {'value': value}
        entry[key] = value
    entry['prev_hash'] = prev_hash
    entry['hash'] = PROFILES['ledger'].compute(entry)
    return entry


def encode_line(entry: t.Mapping[str, t.Any]) -> bytes:
    return (json.dumps(entry, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False) + '\n').encode()


def detect_actor(env: t.Mapping[str, str] | None = None,
                 variables: t.Mapping[str, t.Any] | None = None) -> tuple[str, dict[str, t.Any]]:
    """Who runs this: AWX/Tower (env or its injected extra vars), Rundeck, else the OS user.

    Returns ``(actor, data)``: actor like ``awx:alice``, data with ``actor_source`` and
    ``job_id`` so an auditor can find the job in the scheduler's own records.
    """
    env = os.environ if env is None else env
    var = variables or {}
    awx_user = env.get('AWX_USER_NAME') or env.get('TOWER_USER_NAME') or var.get('awx_user_name') or var.get('tower_user_name')
    awx_job = env.get('AWX_JOB_ID') or var.get('awx_job_id') or var.get('tower_job_id')
    if awx_user or awx_job:
        schedule = var.get('awx_schedule_name') or var.get('tower_schedule_name')
        who = awx_user or (f'schedule {schedule}' if schedule else 'unknown')
        return f'awx:{who}', {'actor_source': 'awx', 'job_id': str(awx_job or env.get('JOB_ID') or '') or None}
    if env.get('RD_JOB_USERNAME') or env.get('RD_JOB_EXECID'):
        return (f"rundeck:{env.get('RD_JOB_USERNAME') or 'unknown'}",
                {'actor_source': 'rundeck', 'job_id': env.get('RD_JOB_EXECID') or None})
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f'uid-{os.getuid()}'
    data: dict[str, t.Any] = {'actor_source': 'local'}
    if env.get('SUDO_USER') and env.get('SUDO_USER') != user:
        data['sudo_user'] = env['SUDO_USER']
    return f'local:{user}', data


def resolve_root(root: str | None, base_dir: str | None = None) -> str:
    """An explicit root (relative ones are taken from ``base_dir``, else the current directory), else the
    default incidents home (module_utils/_common/incidents_home.py: the caller has already applied the
    environment variable and the inventory variable when it had them)."""
    return absolute(root, base_dir) if root else default_home()


class FileLedger:
    """``<root>/<incident_id>/ledger.jsonl``, one compact JSON entry per line."""

    backend = 'file'

    def __init__(self, root: str) -> None:
        self.root = root

    def directory(self, incident_id: str) -> str:
        return os.path.join(self.root, incident_id)

    def location(self, incident_id: str) -> str:
        return os.path.join(self.directory(incident_id), LEDGER_FILE)

    def head(self, incident_id: str) -> tuple[int, str] | None:
        """(seq, hash) of the last entry, without locking or creating anything (check mode)."""
        path = self.location(incident_id)
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None   # no ledger there (yet); an append says why it cannot make one
        except OSError as exc:
            raise LedgerError(f'Cannot read the incident ledger {path}: {exc.strerror}') from None
        try:
            return self._head_of(fd, path, incident_id)[0]
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self, incident_id: str) -> t.Iterator[str]:
        """Hold the incident's ledger lock (creating its directory if needed); yields the ledger file's path."""
        path, directory = self.location(incident_id), self.directory(incident_id)
        step = f'create the ledger directory {directory}'
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            step = f'lock {os.path.join(directory, LOCK_FILE)}'
            lock = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o640)
        except OSError as exc:
            raise LedgerError(f'Cannot {step}: {exc.strerror}') from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield path
        except OSError as exc:
            raise LedgerError(f'Cannot append to the incident ledger {path}: {exc.strerror}; nothing was appended.') from None
        finally:
            os.close(lock)   # releases the flock

    def append(self, incident_id: str, fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        with self.locked(incident_id) as path:
            return self._append_locked(path, incident_id, fields)

    def _append_locked(self, path: str, incident_id: str, fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            head, size = self._head_of(fd, path, incident_id)
            entry = make_entry(incident_id, head[0] + 1 if head else 1, head[1] if head else None, fields)
            line = encode_line(entry)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # a short write: the disk filled up
                os.fsync(fd)
            except OSError:
                # Never leave half an entry behind: the next append would refuse the ledger.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
            return entry
        finally:
            os.close(fd)

    @staticmethod
    def _head_of(fd: int, path: str, incident_id: str) -> tuple[tuple[int, str] | None, int]:
        """Read the last line from the end of the file (the ledger may be large); return (head, size)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return None, 0
        end, tail = size, b''
        while True:
            start = max(0, end - _HEAD_CHUNK)
            tail = os.pread(fd, end - start, start) + tail
            end = start
            if not tail.endswith(b'\n'):
                raise LedgerError(f'The incident ledger {path} does not end with a complete entry (a write was cut '
                                  'short); nothing was appended. Inspect it and move the incomplete last line aside.')
            cut = tail.rfind(b'\n', 0, len(tail) - 1)
            if cut >= 0 or start == 0:
                line = tail[cut + 1:]
                break
        try:
            last = json.loads(line)
            head = (int(last['seq']), str(last['hash']))
        except (ValueError, KeyError, TypeError):
            raise LedgerError(f'The last line of the incident ledger {path} is not a ledger entry; '
                              'nothing was appended. Inspect the file.') from None
        if last.get('incident_id') != incident_id:
            raise LedgerError(f'The incident ledger {path} belongs to incident {last.get("incident_id")!r}, '
                              f'not {incident_id!r}; nothing was appended.')
        return head, size


def table_identifier(table: str) -> t.Any:
    """``name`` or ``schema.name`` as a psycopg2 Identifier; one clear error otherwise."""
    parts = str(table or '').split('.')
    if len(parts) > 2 or not all(_TABLE_PART.fullmatch(p) for p in parts):
        raise LedgerError(f'table {table!r} is not a valid ledger table name: use name or schema.name '
                          '(letters, digits, "_" and "$", starting with a letter or "_")')
    return sql.Identifier(*parts)


class PgLedger:
    """A PostgreSQL table holding every incident's chain, keyed by (incident_id, seq)."""

    backend = 'postgres'

    def __init__(self, client: PgClient, table: str | None = None) -> None:
        self.client = client
        self.table = table or DEFAULT_TABLE
        self.ident = table_identifier(self.table)
        self._ready = False

    def location(self, incident_id: str) -> str:
        return self.table

    def _present(self) -> bool:
        quoted = self.ident.as_string(self.client.conn)
        return bool(self.client.query(EXISTS_SQL, (quoted,))[0]['present'])

    def ensure_table(self) -> None:
        if self._ready or self._present():
            self._ready = True
            return
        try:
            self.client.query(sql.SQL(CREATE_SQL).format(table=self.ident))
        except PgQueryError:
            if not self._present():   # not a concurrent creator that won the race
                raise
        self._ready = True

    def head(self, incident_id: str) -> tuple[int, str] | None:
        if not self._ready and not self._present():
            return None   # check mode creates nothing
        rows = self.client.query(sql.SQL(HEAD_SQL).format(table=self.ident), (incident_id,))
        return (rows[0]['seq'], rows[0]['entry_hash']) if rows else None

    def append(self, incident_id: str, fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        self.ensure_table()
        conn = self.client.conn
        try:
            conn.autocommit = False
            # Serialises writers of this incident until COMMIT: head read and insert are one step.
            self.client.query(LOCK_SQL, (self.table, incident_id))
            rows = self.client.query(sql.SQL(HEAD_SQL).format(table=self.ident), (incident_id,))
            head = (rows[0]['seq'], rows[0]['entry_hash']) if rows else None
            entry = make_entry(incident_id, head[0] + 1 if head else 1, head[1] if head else None, fields)
            self.client.query(sql.SQL(INSERT_SQL).format(table=self.ident),
                              (incident_id, entry['seq'], encode_line(entry).decode(), entry['hash'], entry['prev_hash']))
            conn.commit()
        except psycopg2.Error as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise LedgerError(f'Cannot append to the incident ledger table {self.table}: '
                              f'{condense(str(exc)) or type(exc).__name__}') from None
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        finally:
            with contextlib.suppress(Exception):
                conn.autocommit = True
        return entry


def preview(ledger: t.Any, incident_id: str, fields: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The entry an append would write now, computed from the current head; nothing is written."""
    head = ledger.head(incident_id)
    return make_entry(incident_id, head[0] + 1 if head else 1, head[1] if head else None, fields)


def pg_params(params: t.Mapping[str, t.Any], env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """Connection options for the postgres backend; TRDRHUB_LEDGER_DSN when none were given."""
    out = dict(params)
    given = ('dsn', 'login_host', 'login_port', 'login_user', 'login_password', 'login_unix_socket')
    if not any(out.get(key) for key in given) and env.get(ENV['dsn']):
        out['dsn'] = env[ENV['dsn']]
    out.setdefault('connect_timeout', 10)
    out.setdefault('statement_timeout', 10)
    return out


def connect(params: t.Mapping[str, t.Any], base_dir: str | None = None,
            env: t.Mapping[str, str] | None = None) -> t.Any:
    """The one ledger opener (``open_ledger`` and ``LedgerCache`` use it): FileLedger, or PgLedger on a
    new connection the caller closes; a failed connection raises PostgreSQL's own error."""
    env = os.environ if env is None else env
    backend = params.get('backend') or env.get(ENV['backend']) or 'file'
    if backend not in BACKENDS:
        raise LedgerError(f'ledger backend {backend!r} is not one of {", ".join(BACKENDS)}')
    if backend == 'file':
        return FileLedger(resolve_root(params.get('root') or env.get(ENV['root']), base_dir))
    if not PSYCOPG2.present:
        raise LedgerError('The postgres ledger backend needs the psycopg2 Python package (pip install psycopg2-binary).')
    table = params.get('table') or env.get(ENV['table']) or DEFAULT_TABLE
    table_identifier(table)
    return PgLedger(PgClient(pg_params(params, env)), table)


@contextlib.contextmanager
def open_ledger(params: t.Mapping[str, t.Any], base_dir: str | None = None,
                env: t.Mapping[str, str] | None = None) -> t.Iterator[t.Any]:
    """The ledger the options name: FileLedger, or PgLedger on a connection closed on exit."""
    env = os.environ if env is None else env
    try:
        ledger = connect(params, base_dir, env)
    except PgIncidentError as exc:
        table = params.get('table') or env.get(ENV['table']) or DEFAULT_TABLE
        raise LedgerError(f'Cannot open the incident ledger table {table}: {exc}') from None
    try:
        yield ledger
    finally:
        if ledger.backend == 'postgres':
            ledger.client.close()


class LedgerCache:
    """The ledgers of a playbook run (the callback), opened once by ``connect``: one per incidents home, one
    database connection (opened again when closed; after a failure, not again for ``retry_after`` seconds)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after, self.down_until = retry_after, 0.0
        self.files: dict[str, FileLedger] = {}   # incidents home -> its ledger
        self.pg: PgLedger | None = None

    def get(self, params: t.Mapping[str, t.Any], env: t.Mapping[str, str]) -> t.Any:
        if (params.get('backend') or 'file') == 'file':
            root = resolve_root(params.get('root'))
            if root not in self.files:
                self.files[root] = connect(params, None, env)
            return self.files[root]
        if self.pg is not None and not self.pg.client.conn.closed:
            return self.pg
        if time.monotonic() < self.down_until:
            raise LedgerError('the ledger database was unreachable moments ago; the next attempt is '
                              f'{self.down_until - time.monotonic():.0f}s away')
        try:
            self.pg = connect(params, None, env)
        except Exception:
            self.down_until = time.monotonic() + self.retry_after
            raise
        return self.pg

    def close(self) -> None:
        if self.pg is not None:
            self.pg.client.close()


def record_event(params: t.Mapping[str, t.Any], *, check_mode: bool = False, base_dir: str | None = None,
                 context: t.Mapping[str, t.Any] | None = None, env: t.Mapping[str, str] | None = None,
                 variables: t.Mapping[str, t.Any] | None = None, secrets: t.Iterable[str] = ()) -> dict[str, t.Any]:
    """Append one explicit event (ledger_record); in check mode return the would-be entry only."""
    env = os.environ if env is None else env
    incident_id = validate_incident_id(params.get('incident_id'))
    actor, provenance = detect_actor(env, variables)
    redactor = Redactor(secrets)
    data = redactor.clean(params.get('data') or {})
    if params.get('msg') is not None:
        data['message'] = redactor.text(params['msg'])
    if params.get('actor'):
        provenance['recorded_by'] = actor
        actor = redactor.text(params['actor'])
    if env.get('TRDRHUB_LEDGER_RUN'):
        provenance['run'] = env['TRDRHUB_LEDGER_RUN']   # the callback's id of this playbook run
    data.update(provenance)   # provenance last: event data cannot forge who recorded it
    context = context or {}
    fields = dict(event=params.get('event') or 'note', phase=params.get('phase'), actor=actor, host=context.get('host'),
                  play=context.get('play'), task=context.get('task'), module=RECORD_MODULE, args={}, data=data)
    root = resolve_root(params.get('root') or env.get(ENV['root']), base_dir)
    with open_ledger(params, base_dir, env) as ledger:
        if check_mode:
            entry = preview(ledger, incident_id, fields)
        else:
            entry = ledger.append(incident_id, fields)
        location = ledger.location(incident_id)
    return {'changed': not check_mode, 'entry': entry, 'seq': entry['seq'], 'hash': entry['hash'],
            'prev_hash': entry['prev_hash'], 'ledger': location, 'backend': ledger.backend,
            'incident_dir': os.path.join(root, incident_id)}
