# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Where approval requests wait for votes: a directory on the controller or a PostgreSQL table.

Directory: ``<request_id>.json`` per request, replaced atomically (temporary file, fsync,
rename); one ``<request_id>.vote.<approver>.json`` per vote, fully written to a temporary
file and then linked into place, which fails with EEXIST like ``O_EXCL`` when that approver
has voted already - so concurrent votes never overwrite each other and a reader never sees
half a vote. PostgreSQL: one row per request and one per vote with the primary key
``(request_id, approver)``, so a second vote of the same person is refused by the server.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._approval.approval import (
    ApprovalError,
    DuplicateVote,
    check_request_id,
    slug,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    ENV,
    LedgerError,
    pg_params,
    resolve_root,
    table_identifier,
    validate_incident_id,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PSYCOPG2,
    PgClient,
)

try:
    from psycopg2 import sql
except ImportError:
    sql = None

STORE_BACKENDS = ('dir', 'postgres')
DEFAULT_TABLE = 'trdrhub_incident_approvals'
APPROVALS_DIR = 'approvals'

STORE_ARGS: dict[str, dict[str, t.Any]] = {
    'store_backend': {'type': 'str', 'default': 'dir', 'choices': list(STORE_BACKENDS)},
    'store_dir': {'type': 'path'},
    'store_table': {'type': 'str', 'default': DEFAULT_TABLE},
}

CREATE_SQL = """
CREATE TABLE IF NOT EXISTS {requests} (
    request_id text PRIMARY KEY,
    incident_id text NOT NULL,
    request jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    outcome jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {votes} (
    request_id text NOT NULL REFERENCES {requests} (request_id) ON DELETE CASCADE,
    approver text NOT NULL,
    vote jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, approver)
)"""
INSERT_REQUEST_SQL = 'INSERT INTO {requests} (request_id, incident_id, request, status, expires_at) VALUES (%s, %s, %s, %s, %s)'
GET_REQUEST_SQL = 'SELECT request, status, outcome FROM {requests} WHERE request_id = %s'
PENDING_SQL = "SELECT request FROM {requests} WHERE status = 'pending' AND expires_at > now() ORDER BY created_at"
FINISH_SQL = 'UPDATE {requests} SET status = %s, outcome = %s WHERE request_id = %s'
INSERT_VOTE_SQL = 'INSERT INTO {votes} (request_id, approver, vote) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING approver'
VOTES_SQL = 'SELECT vote FROM {votes} WHERE request_id = %s ORDER BY recorded_at'


def _dump(value: t.Mapping[str, t.Any]) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + '\n').encode()


class DirStore:
    """One directory per incident, ``<ledger root>/<incident>/approvals/`` unless given."""

    backend = 'dir'

    def __init__(self, root: str, directory: str | None = None) -> None:
        self.root = root
        self.directory = directory

    def location(self, incident_id: str | None = None) -> str:
        if self.directory:
            return self.directory
        return os.path.join(self.root, validate_incident_id(incident_id), APPROVALS_DIR)

    def _path(self, request_id: str, incident_id: str | None) -> str:
        return os.path.join(self.location(incident_id), check_request_id(request_id) + '.json')

    def _write_tmp(self, directory: str, content: bytes) -> str:
        os.makedirs(directory, mode=0o750, exist_ok=True)
        fd = -1
        for attempt in range(100):
            tmp = os.path.join(directory, f'.tmp-{os.getpid()}-{attempt}-{os.urandom(4).hex()}')
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
                break
            except FileExistsError:
                continue
        else:
            raise ApprovalError(f'Cannot create a temporary file in {directory}')
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp

    def _sync_dir(self, directory: str) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _place(self, directory: str, path: str, content: bytes, exclusive: bool) -> bool:
        """Write ``content`` to ``path`` atomically; with ``exclusive`` never over an existing file."""
        tmp = self._write_tmp(directory, content)
        try:
            if exclusive:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._sync_dir(directory)
        return True

    def _io(self, step: str, func: t.Callable[[], t.Any]) -> t.Any:
        try:
            return func()
        except OSError as exc:
            raise ApprovalError(f'Cannot {step}: {exc.strerror or exc}') from None

    def create(self, request: t.Mapping[str, t.Any]) -> None:
        directory = self.location(request['incident_id'])
        path = self._path(request['request_id'], request['incident_id'])
        if not self._io(f'write the approval request {path}', lambda: self._place(directory, path, _dump(request), True)):
            raise ApprovalError(f'Approval request {path} exists already')

    def find(self, request_id: str, incident_id: str | None = None) -> str | None:
        """The request file: under the given directory or incident, else searched in every incident."""
        if self.directory or incident_id:
            path = self._path(request_id, incident_id)
            return path if os.path.exists(path) else None
        found = glob.glob(os.path.join(glob.escape(self.root), '*', APPROVALS_DIR, glob.escape(check_request_id(request_id)) + '.json'))
        if len(found) > 1:
            raise ApprovalError(f'Approval request {request_id} exists in several incidents ({", ".join(sorted(found))}); '
                                'name the incident (incident_id).')
        return found[0] if found else None

    def get(self, request_id: str, incident_id: str | None = None) -> dict[str, t.Any] | None:
        path = self.find(request_id, incident_id)
        if path is None:
            return None
        try:
            with open(path, encoding='utf-8') as handle:
                return json.load(handle)
        except (OSError, ValueError) as exc:
            raise ApprovalError(f'Cannot read the approval request {path}: {getattr(exc, "strerror", None) or exc}') from None

    def finish(self, request: t.Mapping[str, t.Any], status: str, outcome: t.Mapping[str, t.Any]) -> None:
        path = self._path(request['request_id'], request['incident_id'])
        updated = dict(request, status=status, outcome=dict(outcome))
        self._io(f'update the approval request {path}', lambda: self._place(os.path.dirname(path), path, _dump(updated), False))

    def add_vote(self, request: t.Mapping[str, t.Any], vote: t.Mapping[str, t.Any]) -> str:
        base = self._path(request['request_id'], request['incident_id'])[:-len('.json')]
        path = f"{base}.vote.{slug(vote['approver'])}.json"
        if not self._io(f'write the vote {path}', lambda: self._place(os.path.dirname(path), path, _dump(vote), True)):
            raise DuplicateVote(f"{vote['approver']} has already voted on {request['request_id']}; a vote cannot be changed.")
        return path

    def votes(self, request: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
        base = self._path(request['request_id'], request['incident_id'])[:-len('.json')]
        found = []
        for path in sorted(glob.glob(glob.escape(base) + '.vote.*.json')):
            try:
                with open(path, encoding='utf-8') as handle:
                    found.append(json.load(handle))
            except (OSError, ValueError):
                found.append({'approver': os.path.basename(path), 'decision': None, 'evidence_hash': None})
        return found

    def pending(self) -> list[dict[str, t.Any]]:
        paths = glob.glob(os.path.join(self.directory, '*.json')) if self.directory else \
            glob.glob(os.path.join(glob.escape(self.root), '*', APPROVALS_DIR, '*.json'))
        out = []
        for path in sorted(paths):
            if '.vote.' in os.path.basename(path):
                continue
            with contextlib.suppress(OSError, ValueError):
                with open(path, encoding='utf-8') as handle:
                    request = json.load(handle)
                if request.get('status') == 'pending':
                    out.append(request)
        return out


class PgStore:
    """Table ``<store_table>`` for requests and ``<store_table>_votes`` for votes."""

    backend = 'postgres'

    def __init__(self, client: PgClient, table: str) -> None:
        self.client = client
        self.table = table
        try:
            self.requests = table_identifier(table)
            self.vote_table = table_identifier(table + '_votes')
        except LedgerError as exc:
            raise ApprovalError(str(exc).replace('ledger table', 'approval table')) from None

    def _sql(self, text: str) -> t.Any:
        return sql.SQL(text).format(requests=self.requests, votes=self.vote_table)

    def location(self, incident_id: str | None = None) -> str:
        return self.table

    def create(self, request: t.Mapping[str, t.Any]) -> None:
        self.client.query(self._sql(CREATE_SQL))
        self.client.query(self._sql(INSERT_REQUEST_SQL), (request['request_id'], request['incident_id'],
                                                          json.dumps(request), 'pending', request['expires_at']))

    def get(self, request_id: str, incident_id: str | None = None) -> dict[str, t.Any] | None:
        try:
            rows = self.client.query(self._sql(GET_REQUEST_SQL), (check_request_id(request_id),))
        except PgIncidentError:
            self.client.query(self._sql(CREATE_SQL))   # a store nobody has used yet
            rows = []
        if not rows:
            return None
        request = dict(rows[0]['request'])
        request.update(status=rows[0]['status'], outcome=rows[0]['outcome'])
        if incident_id and request.get('incident_id') != incident_id:
            return None
        return request

    def finish(self, request: t.Mapping[str, t.Any], status: str, outcome: t.Mapping[str, t.Any]) -> None:
        self.client.query(self._sql(FINISH_SQL), (status, json.dumps(outcome), request['request_id']))

    def add_vote(self, request: t.Mapping[str, t.Any], vote: t.Mapping[str, t.Any]) -> str:
        rows = self.client.query(self._sql(INSERT_VOTE_SQL), (request['request_id'], vote['identity'], json.dumps(vote)))
        if not rows:
            raise DuplicateVote(f"{vote['approver']} has already voted on {request['request_id']}; a vote cannot be changed.")
        return self.table + '_votes'

    def votes(self, request: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
        return [dict(row['vote']) for row in self.client.query(self._sql(VOTES_SQL), (request['request_id'],))]

    def pending(self) -> list[dict[str, t.Any]]:
        try:
            return [dict(row['request']) for row in self.client.query(self._sql(PENDING_SQL))]
        except PgIncidentError:
            return []


@contextlib.contextmanager
def open_store(params: t.Mapping[str, t.Any], base_dir: str | None = None,
               env: t.Mapping[str, str] | None = None) -> t.Iterator[t.Any]:
    """The store the options name; the directory store's root is the ledger's root."""
    env = os.environ if env is None else env
    if (params.get('store_backend') or 'dir') == 'dir':
        directory = params.get('store_dir')
        yield DirStore(resolve_root(params.get('root') or env.get(ENV['root']), base_dir),
                       resolve_root(directory, base_dir) if directory else None)
        return
    if not PSYCOPG2.present:
        raise ApprovalError('The postgres approval store needs the psycopg2 Python package (pip install psycopg2-binary).')
    client = PgClient(pg_params(params, env))
    try:
        yield PgStore(client, params.get('store_table') or DEFAULT_TABLE)
    finally:
        client.close()


def no_such_request(request_id: str, store: t.Any, incident_id: str | None) -> ApprovalError:
    where = store.location(incident_id) if (incident_id or getattr(store, 'directory', None) or store.backend != 'dir') \
        else os.path.join(store.root, '*', APPROVALS_DIR)
    return ApprovalError(f'No approval request {request_id} in {where}. List the pending ones with scripts/approve.py list.')
