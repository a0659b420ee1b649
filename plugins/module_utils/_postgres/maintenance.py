# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""VACUUM (ANALYZE) table by table, with progress read from a second connection while it runs.

VACUUM cannot run inside a transaction block and blocks its session until it is done, so it
runs on a connection of its own in a thread, while the module's first connection samples
``pg_stat_progress_vacuum`` (``_analyze`` for ANALYZE, ``_cluster`` for VACUUM FULL) for that
backend. Statistics before and after come from ``pg_stat_user_tables``.
"""

from __future__ import annotations

import threading
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_sources import (
    split_table,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgIncidentError,
    PgInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PgClient,
)

try:
    from psycopg2 import sql
except ImportError:  # the module reports the missing library first
    sql = None

STATS_SQL = """
SELECT s.relid::bigint AS oid, s.schemaname AS schema, s.relname AS name, s.n_live_tup, s.n_dead_tup,
       s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       s.vacuum_count, s.analyze_count, pg_total_relation_size(s.relid) AS size_bytes, current_database() AS database
FROM pg_stat_user_tables AS s ORDER BY s.schemaname, s.relname
"""
RESOLVE_SQL = """
SELECT c.oid::bigint AS oid, c.relkind AS kind FROM pg_class AS c
WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s)
                          ELSE quote_ident(%(schema)s) || '.' || quote_ident(%(name)s) END)
"""
PROGRESS_SQL = {
    'vacuum': 'SELECT phase, heap_blks_total, heap_blks_scanned, heap_blks_vacuumed, index_vacuum_count '
              'FROM pg_stat_progress_vacuum WHERE pid = %s',
    'vacuum_full': 'SELECT phase, heap_blks_total, heap_blks_scanned, NULL::bigint AS heap_blks_vacuumed, '
                   'NULL::bigint AS index_vacuum_count FROM pg_stat_progress_cluster WHERE pid = %s',
    'analyze': 'SELECT phase, sample_blks_total AS heap_blks_total, sample_blks_scanned AS heap_blks_scanned, '
               'NULL::bigint AS heap_blks_vacuumed, NULL::bigint AS index_vacuum_count '
               'FROM pg_stat_progress_analyze WHERE pid = %s',
}
STAT_KEYS = ('n_live_tup', 'n_dead_tup', 'n_mod_since_analyze', 'last_vacuum', 'last_autovacuum', 'last_analyze',
             'last_autoanalyze', 'vacuum_count', 'analyze_count', 'size_bytes')
SAMPLE_KEYS = ('phase', 'heap_blks_total', 'heap_blks_scanned', 'heap_blks_vacuumed', 'index_vacuum_count')


def stats_view(row: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: (row[key].isoformat() if hasattr(row.get(key), 'isoformat') else row.get(key)) for key in STAT_KEYS}


def statement_for(mode: str, verbose: bool) -> str:
    """The statement run per table, ``{table}`` standing for the quoted name."""
    options = ['VERBOSE'] if verbose else []
    if mode == 'analyze':
        return f"ANALYZE {'(VERBOSE) ' if verbose else ''}{{table}}"
    if mode == 'vacuum_full':
        options.append('FULL')
    options.append('ANALYZE')
    return f"VACUUM ({', '.join(options)}) {{table}}"


def skip_reason(mode: str, row: dict[str, t.Any], threshold: int) -> str | None:
    """Why a table is left alone: fewer dead tuples (or, for ANALYZE, changed rows) than the threshold."""
    if threshold <= 0:
        return None
    if mode == 'analyze':
        changed = row.get('n_mod_since_analyze') or 0
        return f'{changed} row(s) changed since the last analyze, below skip_if_dead_below ({threshold})' \
            if changed < threshold else None
    dead = row.get('n_dead_tup') or 0
    return f'{dead} dead tuple(s), below skip_if_dead_below ({threshold})' if dead < threshold else None


class Maintenance(Worker):
    """Options are checked when built; ``run`` plans, then vacuums table by table."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False) -> None:
        super().__init__(params, check_mode)
        self.done: list[str] = []
        if params.get('full') and params.get('analyze_only'):
            raise PgInputError('full and analyze_only exclude each other: ANALYZE has no FULL form')
        if params.get('full') and not params.get('allow_full_lock'):
            raise PgGuardError('VACUUM FULL rewrites every table under an ACCESS EXCLUSIVE lock: reads and writes wait '
                               'until it is done. Set allow_full_lock: true to accept that (in a maintenance window). '
                               'Nothing was run.')
        self.mode = 'analyze' if params.get('analyze_only') else 'vacuum_full' if params.get('full') else 'vacuum'
        self.tables = [(name, self._split(name)) for name in params.get('tables') or []]
        self.statement = statement_for(self.mode, bool(params.get('verbose')))

    @staticmethod
    def _split(name: t.Any) -> tuple[str | None, str]:
        try:
            return split_table(str(name or '').strip())
        except PgInputError as exc:
            raise PgInputError(f'tables: {exc}') from None

    def select(self, client: PgClient) -> list[dict[str, t.Any]]:
        rows = client.query(STATS_SQL)
        if not self.tables:
            return rows
        by_oid = {r['oid']: r for r in rows}
        chosen: list[dict[str, t.Any]] = []
        for given, (schema, name) in self.tables:
            found = client.query(RESOLVE_SQL, {'schema': schema, 'name': name})
            if not found:
                raise PgInputError(f'table {given} does not exist in the database. Nothing was run.')
            if found[0]['oid'] not in by_oid:
                raise PgInputError(f'{given} is not a user table (VACUUM works on tables and materialized views only). '
                                   'Nothing was run.')
            if by_oid[found[0]['oid']] not in chosen:
                chosen.append(by_oid[found[0]['oid']])
        return chosen

    def run(self, client: PgClient) -> dict[str, t.Any]:
        started = time.monotonic()
        # Through a pooler the progress rows cannot be matched to the maintenance session, and in check
        # mode the evidence would come from a connection the real run cannot make: refuse both alike.
        pooler = client.pooler_warning()
        if pooler:
            raise PgGuardError(f'Refusing to maintain through a connection pooler: {pooler}. Nothing was run.')
        rows = self.select(client)
        cap = self.params.get('max_tables')
        if cap and len(rows) > cap:
            raise PgGuardError(f'{len(rows)} tables selected, more than max_tables ({cap}); list the tables to maintain '
                               'or raise max_tables. Nothing was run.')
        threshold = self.params.get('skip_if_dead_below') or 0
        database = rows[0]['database'] if rows else client.query('SELECT current_database() AS database')[0]['database']
        entries = []
        for row in rows:
            reason = skip_reason(self.mode, row, threshold)
            action = 'skipped' if reason else ('would_run' if self.check_mode else 'pending')
            entries.append({'table': f"{row['schema']}.{row['name']}", 'action': action, 'reason': reason,
                            'before': stats_view(row), 'after': None, 'elapsed_s': None, 'progress': [], 'messages': [],
                            '_row': row})
        todo = [e for e in entries if e['action'] == 'pending']
        if todo:
            self._run_all(client, todo)
            after = {r['oid']: r for r in client.query(STATS_SQL)}
            for entry in todo:
                fresh = after.get(entry['_row']['oid'])
                entry['after'] = stats_view(fresh) if fresh else None
        for entry in entries:
            entry.pop('_row')
        ran = [e for e in entries if e['action'] in ('done', 'would_run')]
        return {
            'changed': bool(ran), 'database': database, 'mode': self.mode, 'statement': self.statement,
            'tables': entries, 'processed': len(ran), 'skipped_tables': len(entries) - len(ran),
            'progress': [dict(sample, table=e['table']) for e in entries for sample in e['progress']],
            'elapsed_s': round(time.monotonic() - started, 3), 'queries': client.queries,
        }

    def _runner(self) -> PgClient:
        # VACUUM cannot run in a transaction, so its settings cannot be SET LOCAL: they are
        # startup settings of this dedicated connection and end with it.
        settings = {'statement_timeout': f"{self.params.get('vacuum_timeout') or 0}s"}
        if self.params.get('cost_delay'):
            settings['vacuum_cost_delay'] = f"{self.params['cost_delay']}ms"
        if self.params.get('cost_limit'):
            settings['vacuum_cost_limit'] = str(self.params['cost_limit'])
        return PgClient(self.params, startup_settings=settings)

    def _run_all(self, client: PgClient, todo: list[dict[str, t.Any]]) -> None:
        runner = self._runner()
        try:
            pid = runner.conn.get_backend_pid()
            for entry in todo:
                self._run_one(client, runner, pid, entry)
        finally:
            client.queries.extend(q for q in runner.queries if q not in client.queries)
            runner.close()

    def _run_one(self, client: PgClient, runner: PgClient, pid: int, entry: dict[str, t.Any]) -> None:
        row = entry['_row']
        statement = sql.SQL(self.statement).format(table=sql.Identifier(row['schema'], row['name']))
        outcome: dict[str, t.Any] = {}

        def work() -> None:
            try:
                runner.query(statement)
            except PgIncidentError as exc:
                outcome['error'] = exc

        del runner.conn.notices[:]
        started = time.monotonic()
        thread = threading.Thread(target=work, name='trdrhub-vacuum', daemon=True)
        thread.start()
        last = None
        while thread.is_alive():
            for sample in client.query(PROGRESS_SQL[self.mode], (pid,)):
                view = {key: sample.get(key) for key in SAMPLE_KEYS}
                if view != last:
                    entry['progress'].append(dict(view, elapsed_s=round(time.monotonic() - started, 3)))
                    last = view
            thread.join(self.params.get('poll_interval') or 0.5)
        entry['elapsed_s'] = round(time.monotonic() - started, 3)
        entry['messages'] = [' '.join(n.split()) for n in runner.conn.notices] if self.params.get('verbose') else []
        if 'error' in outcome:
            done = ', '.join(self.done) or 'none'
            raise type(outcome['error'])(f"{entry['table']}: {outcome['error']} (tables already processed: {done})",
                                         tables_done=list(self.done))
        entry['action'] = 'done'
        self.done.append(entry['table'])
