# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_migration_info
short_description: Report the migration state of the TRDR Hub database - Alembic revision, size and key tables
version_added: 1.0.0
description:
  - Reads the Alembic version table of the application database (C(alembic_version), one C(version_num) row per applied
    head) and compares it with the revision(s) the deployed release expects, so an investigator sees at once whether
    the schema is behind, ahead or on another branch than the code.
  - Also returns the server version, the database size and, for a list of key tables, whether each exists, its row
    estimate and its size on disk.
  - A database without the version table is not an error - it is reported as RV(initialized=false) (no migration has
    ever run, or the application uses another schema or table name, see O(version_table)).
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  version_table:
    description:
      - The Alembic version table, V(table) or V(schema.table); names are case-sensitive and an unqualified name is
        looked up in the C(search_path).
      - Alembic's C(version_table) and C(version_table_schema) settings change it; TRDR Hub uses the default.
    type: str
    default: alembic_version
  expected_revision:
    description:
      - The revision the deployed application expects (the output of C(alembic heads)), or a list of them when the
        migration history has several heads.
      - When given, RV(up_to_date) tells whether the database holds exactly these revisions and RV(pending) explains
        any difference. When omitted, RV(up_to_date) and RV(pending) are null.
    type: list
    elements: str
  tables:
    description:
      - Key tables to report in RV(tables), V(table) or V(schema.table). A table that does not exist is reported with
        RV(tables.exists=false), not as an error.
      - V([]) reports none.
    type: list
    elements: str
    default: [audit_log_entries, secret_rotation_logs]
extends_documentation_fragment:
  - trdrhub.incident.postgres
notes:
  - The login role needs C(SELECT) on the version table (C(GRANT SELECT ON alembic_version TO trdrhub_ops)); without
    it the module fails and names the statement. Row estimates and sizes need no privilege on the tables.
  - Row estimates come from the planner statistics (C(pg_class.reltuples)), or from the statistics collector's live-row
    count for a table that was never analysed; they are estimates, not C(count(*)), so the module stays cheap on a
    large table under load.
  - Alembic cannot tell from the database alone whether a differing revision is older or newer than the expected one;
    compare with C(alembic history) of the deployed release.
  - Works through PgBouncer (port C(6543)) too; it signals no session.
seealso:
  - module: trdrhub.incident.pg_activity_info
  - name: Alembic - working with branches and multiple heads
    description: Why the version table may hold more than one row.
    link: https://alembic.sqlalchemy.org/en/latest/branches.html
"""

EXAMPLES = r"""
- name: Migration state of the TRDR Hub database
  trdrhub.incident.pg_migration_info:
    login_host: db-primary.trdrhub.internal
    login_user: trdrhub_ops
    login_password: "{{ vault_pg_ops_password }}"
    login_db: lcopilot
  register: migrations

- name: Is the schema what release 1.4.2 expects?
  trdrhub.incident.pg_migration_info:
    dsn: "{{ vault_pg_ops_dsn }}"
    expected_revision: 7c1f0e2a9b44
  register: schema

- name: Say what is pending
  ansible.builtin.debug:
    msg: "{{ schema.pending }}"
  when: not schema.up_to_date

- name: Two heads, and row estimates of the document tables
  trdrhub.incident.pg_migration_info:
    login_unix_socket: /var/run/postgresql
    login_db: lcopilot
    expected_revision: [7c1f0e2a9b44, 9d3e5f7a1b2c]
    tables: [audit_log_entries, lc_documents, public.tenants]
"""

RETURN = r"""
database:
  description: Name of the database inspected (the one connected to).
  returned: always
  type: str
  sample: lcopilot
server_version:
  description: The server's C(server_version) setting.
  returned: always
  type: str
  sample: "15.20 (Debian 15.20-0+deb12u1)"
server_version_num:
  description: The server's C(server_version_num) setting, for comparisons.
  returned: always
  type: int
  sample: 150020
database_size_bytes:
  description: Size of the database on disk, in bytes (C(pg_database_size)).
  returned: always
  type: int
  sample: 8437891
database_size:
  description: The same, human readable (C(pg_size_pretty)).
  returned: always
  type: str
  sample: 8241 kB
version_table:
  description: The version table read, schema-qualified when it exists, else as given in O(version_table).
  returned: always
  type: str
  sample: public.alembic_version
initialized:
  description: Whether the version table exists. V(false) means no Alembic migration has run in this database.
  returned: always
  type: bool
  sample: true
revisions:
  description: The revisions recorded in the version table (C(version_num)), sorted; V([]) when it is absent or empty.
  returned: always
  type: list
  elements: str
  sample: [7c1f0e2a9b44]
revision:
  description: The single recorded revision; null when there is none or more than one (see RV(revisions)).
  returned: always
  type: str
  sample: 7c1f0e2a9b44
expected_revisions:
  description: O(expected_revision) as a sorted list without duplicates; V([]) when not given.
  returned: always
  type: list
  elements: str
  sample: [7c1f0e2a9b44]
up_to_date:
  description:
    - V(true) when the version table holds exactly RV(expected_revisions); null when O(expected_revision) is not given.
  returned: always
  type: bool
  sample: false
missing_revisions:
  description: Expected revisions the database does not have (migrations not applied, or another branch).
  returned: always
  type: list
  elements: str
  sample: [9d3e5f7a1b2c]
unexpected_revisions:
  description: Recorded revisions the release does not expect (older, newer, or of another branch).
  returned: always
  type: list
  elements: str
  sample: [7c1f0e2a9b44]
pending:
  description: One sentence explaining why the database is not up to date; null when it is, or when nothing is expected.
  returned: always
  type: str
  sample: "database lcopilot is at revision 7c1f0e2a9b44, the release expects 9d3e5f7a1b2c: ..."
tables:
  description: Each table of O(tables), as given, to what is known about it.
  returned: always
  type: dict
  sample:
    audit_log_entries: {exists: true, table: public.audit_log_entries, row_estimate: 1048576, estimate_source: reltuples,
                        size_bytes: 402653184, last_analyzed: "2025-01-15T02:00:11.000000+00:00"}
    secret_rotation_logs: {exists: false, table: secret_rotation_logs, row_estimate: null, estimate_source: null,
                           size_bytes: null, last_analyzed: null}
  contains:
    exists:
      description: Whether the table exists.
      type: bool
    table:
      description: Schema-qualified name when it exists, else the name as given.
      type: str
    row_estimate:
      description: Estimated number of rows; null when the table does not exist.
      type: int
    estimate_source:
      description: V(reltuples) (planner statistics) or V(n_live_tup) (statistics collector, table never analysed).
      type: str
    size_bytes:
      description: Size of the table with its indexes and TOAST data (C(pg_total_relation_size)).
      type: int
    last_analyzed:
      description: When the table's statistics were last gathered (ISO 8601), null if never.
      type: str
queries:
  description: SQL statements the module ran, in order, without parameter values.
  returned: always
  type: list
  elements: str
  sample:
    - "SELECT pg_backend_pid() AS pid"
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_sources import split_table
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_CONSTRAINTS, PSYCOPG2, PgClient, postgres_spec

try:
    from psycopg2 import sql
except ImportError:
    sql = None

DEFAULT_TABLES = ['audit_log_entries', 'secret_rotation_logs']
SERVER_SQL = """
SELECT current_database() AS database, current_setting('server_version') AS server_version,
       current_setting('server_version_num')::integer AS server_version_num,
       pg_database_size(current_database()) AS size_bytes, pg_size_pretty(pg_database_size(current_database())) AS size
"""
# to_regclass needs no privilege and returns NULL for a missing table instead of failing.
TABLE_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.reltuples::bigint AS reltuples, s.n_live_tup,
       pg_total_relation_size(c.oid) AS size_bytes, GREATEST(s.last_analyze, s.last_autoanalyze) AS last_analyzed
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables AS s ON s.relid = c.oid
WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s)
                          ELSE quote_ident(%(schema)s) || '.' || quote_ident(%(name)s) END)
"""
VERSIONS_SQL = 'SELECT version_num FROM {table} ORDER BY version_num'


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(
        version_table={'type': 'str', 'default': 'alembic_version'},
        expected_revision={'type': 'list', 'elements': 'str'},
        tables={'type': 'list', 'elements': 'str', 'default': list(DEFAULT_TABLES)},
    )


def expected_revisions(values: t.Iterable[t.Any] | None) -> list[str]:
    """The expected heads, trimmed, sorted and unique; blanks are a mistake worth refusing."""
    result = set()
    for value in values or []:
        text = '' if value is None else str(value).strip()
        if not text or any(ch.isspace() for ch in text):
            raise PgInputError(f'expected_revision: {value!r} is not an Alembic revision id '
                               '(give the ids "alembic heads" prints, for example 7c1f0e2a9b44)')
        result.add(text)
    return sorted(result)


def table_view(given: str, row: dict[str, t.Any] | None) -> dict[str, t.Any]:
    if row is None:
        return {'exists': False, 'table': given, 'row_estimate': None, 'estimate_source': None, 'size_bytes': None,
                'last_analyzed': None}
    # reltuples is -1 (PostgreSQL 14+) or 0 (before) until the first ANALYZE; the live-row count is better then.
    reltuples, live = row.get('reltuples'), row.get('n_live_tup')
    if reltuples is not None and (reltuples > 0 or (reltuples == 0 and not live)):
        estimate, source = int(reltuples), 'reltuples'
    else:
        estimate, source = (int(live) if live is not None else None), 'n_live_tup'
    analyzed = row.get('last_analyzed')
    return {'exists': True, 'table': f"{row['schema']}.{row['name']}", 'row_estimate': estimate, 'estimate_source': source,
            'size_bytes': row.get('size_bytes'), 'last_analyzed': analyzed.isoformat() if analyzed is not None else None}


def explain(database: str, table: str, initialized: bool, current: list[str], expected: list[str]) -> str | None:
    """One sentence an investigator can paste into the incident channel."""
    if not expected or current == expected:
        return None
    want = ', '.join(expected)
    if not initialized:
        return (f'{table} does not exist in database {database}: no Alembic migration has run there, '
                f'the release expects {want}')
    if not current:
        return f'{table} in database {database} is empty: no revision is recorded, the release expects {want}'
    have = ', '.join(current)
    missing = ', '.join(sorted(set(expected) - set(current))) or 'none'
    extra = ', '.join(sorted(set(current) - set(expected))) or 'none'
    return (f'database {database} is at revision {have}, the release expects {want} (missing: {missing}; '
            f'not expected: {extra}). Either migrations are pending (run alembic upgrade heads with the release) or '
            'the database is ahead of or on another branch than the deployed code; compare with alembic history')


def _split(option: str, name: t.Any) -> tuple[str | None, str]:
    try:
        return split_table(str(name or '').strip())
    except PgInputError as exc:
        raise PgInputError(f'{option}: {exc}') from None


class MigrationReport:
    """Reads the version table and the key tables in a handful of catalog queries."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.version_table = (params.get('version_table') or '').strip()
        if not self.version_table:
            raise PgInputError('version_table must name a table, for example alembic_version')
        self.version_parts = _split('version_table', self.version_table)
        self.expected = expected_revisions(params.get('expected_revision'))
        self.tables = [(name, _split('tables', name)) for name in params.get('tables') or []]

    def run(self, client: PgClient) -> dict[str, t.Any]:
        server = client.query(SERVER_SQL)[0]
        version = self.relation(client, self.version_parts)
        current: list[str] = []
        if version is not None:
            ident = sql.Identifier(version['schema'], version['name'])
            rows = client.query(sql.SQL(VERSIONS_SQL).format(table=ident))
            current = sorted({str(r['version_num']) for r in rows if r.get('version_num') is not None})
        table = f"{version['schema']}.{version['name']}" if version else self.version_table
        result = dict(
            changed=False,
            database=server['database'],
            server_version=server['server_version'],
            server_version_num=server['server_version_num'],
            database_size_bytes=server['size_bytes'],
            database_size=server['size'],
            version_table=table,
            initialized=version is not None,
            revisions=current,
            revision=current[0] if len(current) == 1 else None,
            expected_revisions=self.expected,
            up_to_date=(current == self.expected) if self.expected else None,
            missing_revisions=sorted(set(self.expected) - set(current)),
            unexpected_revisions=sorted(set(current) - set(self.expected)) if self.expected else [],
            pending=explain(server['database'], table, version is not None, current, self.expected),
            tables={name: table_view(name, self.relation(client, parts)) for name, parts in self.tables},
        )
        result['queries'] = client.queries
        return result

    @staticmethod
    def relation(client: PgClient, parts: tuple[str | None, str]) -> dict[str, t.Any] | None:
        rows = client.query(TABLE_SQL, {'schema': parts[0], 'name': parts[1]})
        return rows[0] if rows else None


def main() -> None:
    run_module(argument_spec(), lambda mod: MigrationReport(mod.params), lambda mod, _: PgClient(mod.params), requires=[PSYCOPG2], **POSTGRES_CONSTRAINTS)


if __name__ == '__main__':
    main()
