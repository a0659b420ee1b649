# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Where hash-chained records come from: a PostgreSQL table or a ledger JSON-lines file.

Each reader streams records into a ``ChainVerifier`` and never holds more than one
fetch batch: tables are read through a server-side (named) cursor inside one
read-only REPEATABLE READ transaction, so every row comes from a single consistent
snapshot while the application keeps writing; files are read line by line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    trdrhub_canonical,
    trdrhub_canonical_values,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import (
    AuditError,
    ChainVerifier,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
    PgInputError,
    PgPermissionError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import LEDGER_FILE, ledger_lines
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import require_readable_file

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:  # the module reports the missing library before calling anything here
    pass

# Logical field -> default column, in the order rows are selected.
TABLE_COLUMNS = {
    'table': ('id', 'sequence_number', 'tenant_id', 'actor_id', 'resource_type', 'resource_id', 'action',
              'before_hash', 'after_hash', 'prev_entry_hash', 'entry_hash', 'created_at'),
    'ledger_table': ('incident_id', 'seq', 'entry', 'entry_hash', 'prev_hash'),
}
# Chain key and sequence among those fields.
CHAIN_FIELDS = {'table': ('tenant_id', 'sequence_number'), 'ledger_table': ('incident_id', 'seq')}
DEFAULT_TABLES = {'table': 'audit_log_entries', 'ledger_table': 'trdrhub_incident_ledger'}
INTEGER_TYPES = ('smallint', 'integer', 'bigint')
ITERSIZE = 5000
PREFETCH = 1            # batches the reader thread may fetch ahead of the verifier (0: no thread)
PREFETCH_ROWS = 2500    # rows per fetch when read ahead: three batches live at once (hashed, waiting, arriving)
CURSOR_NAME = 'trdrhub_audit_chain_verify'


class LedgerFileError(AuditError, InputError):
    """The ledger file to verify cannot be found or read; the message names the file."""


SET_UTC = "SET LOCAL TIME ZONE 'UTC'"
SNAPSHOT = 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY'
RELATION_SQL = """
SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name, current_user AS role
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s)
                          ELSE quote_ident(%(schema)s) || '.' || quote_ident(%(name)s) END)
"""
COLUMNS_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type,
       has_column_privilege(a.attrelid, a.attnum, 'SELECT') AS can_select
FROM pg_attribute AS a WHERE a.attrelid = %s::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""


def split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table`` (found through search_path); names are case-sensitive."""
    schema, dot, table = name.partition('.')
    if not dot:
        schema, table = None, name
    if not table or (dot and not schema):
        raise PgInputError(f'table must be "table" or "schema.table", got "{name}"')
    return schema, table


def column_map(source: str, columns: dict[str, str] | None) -> dict[str, str]:
    """Logical field -> real column, the user's ``columns`` over the defaults."""
    names = TABLE_COLUMNS[source]
    unknown = sorted(set(columns or {}) - set(names))
    if unknown:
        raise PgInputError(f"columns: unknown field(s) {', '.join(unknown)} for source {source}; "
                           f"known: {', '.join(names)}")
    mapping = {name: name for name in names}
    mapping.update({k: str(v) for k, v in (columns or {}).items() if v})
    return mapping


def check_columns(client: t.Any, source: str, table: str, mapping: dict[str, str]) -> t.Any:
    """The table and every mapped column exist and are readable; return the table as an SQL identifier."""
    schema, name = split_table(table)
    found = client.query(RELATION_SQL, {'schema': schema, 'name': name})
    if not found:
        where = f'table {table}' if schema else f'table {name} (searched in search_path)'
        raise PgInputError(f'{where} does not exist')
    rel = found[0]
    qualified = f"{rel['schema']}.{rel['name']}"
    columns = {row['name']: row for row in client.query(COLUMNS_SQL, (rel['oid'],))}
    missing = [f'{col} (columns.{field})' for field, col in mapping.items() if col not in columns]
    if missing:
        raise PgInputError(f"table {qualified} has no column {', '.join(missing)}; "
                           f"its columns are: {', '.join(columns)}")
    hidden = sorted({col for col in mapping.values() if not columns[col]['can_select']})
    if hidden:
        raise PgPermissionError(f"role {rel['role']} may not read column(s) {', '.join(hidden)} of table {qualified}: "
                                f"GRANT SELECT ON {qualified} TO {rel['role']}")
    seq_field = CHAIN_FIELDS[source][1]
    seq_type = columns[mapping[seq_field]]['type']
    if seq_type not in INTEGER_TYPES:
        raise PgInputError(f'column {mapping[seq_field]} of table {qualified} is {seq_type}; the sequence column '
                           f'must be an integer type')
    if source == 'ledger_table' and columns[mapping['entry']]['type'] not in ('json', 'jsonb'):
        raise PgInputError(f"column {mapping['entry']} of table {qualified} is {columns[mapping['entry']]['type']}; "
                           'the entry column must be json or jsonb')
    return sql.Identifier(rel['schema'], rel['name'])


def _where(conditions: list[t.Any]) -> t.Any:
    return sql.SQL(' WHERE ') + sql.SQL(' AND ').join(conditions) if conditions else sql.SQL('')


@contextlib.contextmanager
def snapshot(client: t.Any) -> t.Iterator[None]:
    """One read-only REPEATABLE READ transaction: anchors and rows from the same snapshot.

    The time zone is set for the transaction only (the server then hands created_at back
    in UTC, as the application hashes it), so nothing outlives it on a pooled connection.
    """
    client.conn.autocommit = False
    try:
        client.query(SNAPSHOT)
        client.query(SET_UTC)
        yield
    finally:
        if not client.conn.closed:   # a lost connection has nothing to roll back or restore
            with contextlib.suppress(psycopg2.Error):
                client.conn.rollback()
                client.conn.autocommit = True


def stream(client: t.Any, statement: t.Any, args: dict[str, t.Any], prefetch: int = 0) -> t.Iterator[tuple]:
    """Rows of ``statement`` through a named cursor, ITERSIZE at a time; driver errors mapped.

    With ``prefetch`` > 0 a reader thread fetches the next batches (at most ``prefetch`` waiting) while
    the caller works on the current one: the driver releases the GIL while it waits for the server,
    so the round trips overlap with the caller's hashing. Memory stays bounded by ``prefetch + 2`` batches
    of PREFETCH_ROWS rows.
    """
    text = statement.as_string(client.conn)
    client.queries.append(' '.join(text.split()))
    try:
        with client.conn.cursor(name=CURSOR_NAME) as cur:
            cur.itersize = ITERSIZE
            cur.execute(statement, args)
            if prefetch > 0:
                batches = _prefetched(cur, PREFETCH_ROWS, prefetch)
                try:
                    for batch in batches:
                        yield from batch
                finally:
                    batches.close()  # the reader thread has stopped before the cursor closes
            else:
                yield from cur
    except psycopg2.Error as exc:
        raise client.query_error(text, exc) from None


def _prefetched(cur: t.Any, size: int, depth: int) -> t.Iterator[list]:
    """Batches of ``cur.fetchmany(size)`` read ahead by a thread of their own, at most ``depth`` waiting.

    The cursor is used by the reader thread only until it has finished, and the thread always has
    finished when this generator returns (exhausted, closed early or raising), so the caller may close
    the cursor and use the connection again. The reader's exception is raised here, in the caller.
    """
    batches: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: t.Any) -> bool:
        while not stop.is_set():
            try:
                batches.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            while not stop.is_set():
                batch = cur.fetchmany(size)
                if not put(batch) or not batch:
                    return
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to the caller
            put(exc)

    thread = threading.Thread(target=reader, name='trdrhub-chain-fetch', daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                batches.get_nowait()
            thread.join(0.05)


class TableReader:
    """``table`` (TRDR Hub's audit_log_entries) and ``ledger_table`` sources."""

    def __init__(self, source: str, table: str | None, columns: dict[str, str] | None,
                 keys: list[str] | None, start: int | None, end: int | None, scope: str) -> None:
        self.source = source
        self.table = table or DEFAULT_TABLES[source]
        self.mapping = column_map(source, columns)
        self.keys, self.start, self.end, self.scope = keys, start, end, scope
        self.key, self.seq = CHAIN_FIELDS[source]

    def statements(self, relation: t.Any) -> tuple[t.Any, t.Any, dict[str, t.Any]]:
        """The rows query, the anchors query (each chain's last entry before start_sequence) and their values."""

        def col(field: str) -> t.Any:
            return sql.Identifier(self.mapping[field])

        key, seq = col(self.key), col(self.seq)
        selected, args = [], {'keys': self.keys, 'start': self.start, 'end': self.end}
        if self.keys:
            selected.append(sql.SQL('{} = ANY(%(keys)s)').format(key))
        in_range = list(selected)
        if self.start is not None:
            in_range.append(sql.SQL('{} >= %(start)s').format(seq))
        if self.end is not None:
            in_range.append(sql.SQL('{} <= %(end)s').format(seq))
        if self.scope == 'table' and not self.keys:
            # one counter for the whole table: read in global order, so the verifier sees its gaps
            order = sql.SQL('{}, {}').format(seq, key)
        else:
            order = sql.SQL('{}, {}').format(key, seq)
        rows = sql.SQL('SELECT {} FROM {}{} ORDER BY {}').format(
            sql.SQL(', ').join(col(field) for field in TABLE_COLUMNS[self.source]), relation, _where(in_range), order)
        stored = col('entry_hash') if self.source == 'table' else sql.SQL("{} ->> 'hash'").format(col('entry'))
        before = _where(selected + [sql.SQL('{} < %(start)s').format(seq)])
        anchors = sql.SQL('SELECT DISTINCT ON ({key}) {key} AS chain_key, {seq} AS seq, {stored} AS stored_hash '
                          'FROM {rel}{where} ORDER BY {key}, {seq} DESC').format(
            key=key, seq=seq, stored=stored, rel=relation, where=before)
        return rows, anchors, args

    def run(self, client: t.Any, verifier: ChainVerifier) -> None:
        relation = check_columns(client, self.source, self.table, self.mapping)
        rows, anchors, args = self.statements(relation)
        with snapshot(client):
            if self.start is not None:
                for row in client.query(anchors, args):
                    verifier.anchor(row['chain_key'], row['seq'], row['stored_hash'])
            if self.source == 'table':
                self._verify_audit_rows(stream(client, rows, args, PREFETCH), verifier)
            else:
                self._verify_ledger_rows(stream(client, rows, args), verifier)

    @staticmethod
    def _verify_audit_rows(rows: t.Iterable[tuple], verifier: ChainVerifier) -> None:
        """The hot loop: one canonical encoding built from the row's values, one SHA-256 and one ``add`` per row."""
        p = verifier.profile
        if p.canonical is not trdrhub_canonical:  # another profile over this table layout: the generic path
            names = TABLE_COLUMNS['table']
            i_key, i_seq, i_id = names.index(p.chain_key), names.index(p.sequence), names.index(p.record_id)
            i_prev, i_hash = names.index(p.prev_hash), names.index(p.entry_hash)
            for row in rows:
                if row[i_seq] is None:
                    verifier.malformed('the sequence number is NULL', key=row[i_key], rid=row[i_id])
                    continue
                verifier.add(row[i_key], row[i_seq], row[i_id], row[i_prev], row[i_hash],
                             p.compute(dict(zip(names, row))))
            return
        canonical, sha256, add = trdrhub_canonical_values, hashlib.sha256, verifier.add
        # TABLE_COLUMNS['table'] order: id, sequence_number, tenant_id, actor_id, resource_type, resource_id,
        # action, before_hash, after_hash, prev_entry_hash, entry_hash, created_at
        for rid, seq, key, actor, rtype, resource, action, before, after, prev, stored, created in rows:
            if seq is None:  # only possible in a copy whose columns allow it
                verifier.malformed('the sequence number is NULL', key=key, rid=rid)
                continue
            add(key, seq, rid, prev, stored,
                sha256(canonical(seq, key, actor, rtype, resource, action, before, after, prev, created)).hexdigest())

    @staticmethod
    def _verify_ledger_rows(rows: t.Iterable[tuple], verifier: ChainVerifier) -> None:
        """Verify the ``entry`` objects; the denormalised columns must agree with them."""
        p = verifier.profile
        for incident_id, seq, entry, entry_hash, prev_hash in rows:
            if isinstance(entry, t.Mapping):
                for column, field, value in (('incident_id', p.chain_key, incident_id), ('seq', p.sequence, seq),
                                             ('entry_hash', p.entry_hash, entry_hash),
                                             ('prev_hash', p.prev_hash, prev_hash)):
                    if entry.get(field) != value:
                        verifier.violation('column_mismatch', incident_id, seq, seq, entry.get(field), value,
                                           f'column {column} says {value!r} but the entry says {entry.get(field)!r}')
            verifier.add_record(entry)


def ledger_path(path: str, incident_ids: list[str] | None) -> str:
    """A ledger file, a directory holding ledger.jsonl, or incidents/ with one incident selected."""
    if os.path.isdir(path):
        candidates = [os.path.join(path, LEDGER_FILE)]
        if incident_ids and len(incident_ids) == 1:
            candidates.append(os.path.join(path, incident_ids[0], LEDGER_FILE))
        found = [candidate for candidate in candidates if os.path.exists(candidate)]
        if not found:
            raise LedgerFileError(f"directory {path} holds no {' or '.join(os.path.relpath(c, path) for c in candidates)}")
        path = found[0]
    require_readable_file(path, LedgerFileError, 'ledger file')
    return path


def _no_duplicate_keys(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _value in pairs]
        dup = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f'key "{dup}" appears twice in one entry')
    return obj


def read_ledger_file(path: str, verifier: ChainVerifier, incident_ids: list[str] | None, start: int | None,
                     end: int | None) -> None:
    """Stream a JSON-lines ledger; a line that is not a usable entry is ``malformed_entry``, not a crash."""
    p = verifier.profile
    wanted = set(incident_ids) if incident_ids else None
    try:
        # The settled lines: appends after this point are not this verification's.
        for number, raw in ledger_lines(path):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw.decode('utf-8'), object_pairs_hook=_no_duplicate_keys)
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
                verifier.malformed(f'not a JSON object: {exc}', line=number)
                continue
            if isinstance(entry, dict):
                key, seq = entry.get(p.chain_key), entry.get(p.sequence)
                if wanted is not None and key not in wanted:
                    continue
                if isinstance(seq, int) and start is not None and seq < start:
                    verifier.anchor(key, seq, entry.get(p.entry_hash))
                    continue
                if isinstance(seq, int) and end is not None and seq > end:
                    continue
            verifier.add_record(entry, line=number)
    except OSError as exc:
        raise LedgerFileError(f'cannot read ledger file {path}: {exc.strerror or exc}') from None
