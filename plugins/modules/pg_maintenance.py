# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_maintenance
short_description: VACUUM (ANALYZE) a PostgreSQL database or some of its tables, with progress
version_added: 1.0.0
description:
  - Runs C(VACUUM (ANALYZE)) - or C(ANALYZE) only, or C(VACUUM (FULL, ANALYZE)) when explicitly allowed - on every user
    table of the database the module connects to (O(login_db)), or on O(tables), one table per statement.
  - While a table is processed, its progress is sampled every O(poll_interval) seconds from a second connection
    (C(pg_stat_progress_vacuum); C(pg_stat_progress_analyze) for O(analyze_only); C(pg_stat_progress_cluster) for
    O(full)) and returned as a timeline (RV(progress)). A table done faster than one interval may have no sample.
  - C(n_dead_tup), C(n_live_tup), C(last_vacuum), C(last_analyze) and the other C(pg_stat_user_tables) counters are
    returned for each table before and after.
  - "Idempotency rule: VACUUM always does work, so a run reports RV(changed=true) whenever it processed a table. With
    O(skip_if_dead_below), tables with fewer dead tuples than that (for O(analyze_only), fewer rows changed since the last
    analyze, C(n_mod_since_analyze)) are skipped; a run that skips every table reports RV(changed=false). After a
    VACUUM the dead tuples are gone, so a second run with the same threshold skips the table."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  tables:
    description:
      - Tables to process, V(table) or V(schema.table) (case-sensitive; an unqualified name is looked up in the
        C(search_path)). A name that is not a user table fails the module before anything runs.
      - Omitted or empty means every user table of the database (C(pg_stat_user_tables)).
    type: list
    elements: str
  analyze_only:
    description:
      - Run C(ANALYZE) only (planner statistics), no VACUUM.
    type: bool
    default: false
  full:
    description:
      - Run C(VACUUM (FULL, ANALYZE)), which rewrites each table and returns its space to the operating system, under an
        C(ACCESS EXCLUSIVE) lock - the application can neither read nor write the table meanwhile.
      - Refused unless O(allow_full_lock=true).
    type: bool
    default: false
  allow_full_lock:
    description:
      - Accept the C(ACCESS EXCLUSIVE) lock of O(full=true).
    type: bool
    default: false
  verbose:
    description:
      - Add C(VERBOSE); the server's messages are returned per table in RV(tables[].messages).
    type: bool
    default: false
  skip_if_dead_below:
    description:
      - Skip tables with fewer dead tuples (C(n_dead_tup)) than this; with O(analyze_only), fewer rows changed since the
        last analyze (C(n_mod_since_analyze)). V(0) processes every selected table.
      - The counters come from the statistics system and may lag a second behind the latest writes.
    type: int
    default: 0
  max_tables:
    description:
      - Refuse to run when more tables than this are selected (a hard cap on one run); V(0) means no cap.
    type: int
    default: 500
  poll_interval:
    description:
      - Seconds between two progress samples.
    type: float
    default: 0.5
  cost_delay:
    description:
      - C(vacuum_cost_delay) in milliseconds for the maintenance session, to spare a busy server (cost-based vacuum
        delay). When omitted, the server's setting.
    type: float
  cost_limit:
    description:
      - C(vacuum_cost_limit) for the maintenance session. When omitted, the server's setting.
    type: int
  vacuum_timeout:
    description:
      - C(statement_timeout) in seconds of the maintenance session, per table; V(0) means no limit. O(statement_timeout)
        applies to the module's other, short queries.
    type: int
    default: 3600
extends_documentation_fragment:
  - trdrhub.incident.postgres
attributes:
  check_mode:
    details:
      - Reports the selected tables, their dead tuples and which would be processed or skipped; runs nothing.
notes:
  - The login role must own the tables (or be superuser, or from PostgreSQL 16 have C(MAINTAIN)); tables it may not
    vacuum are skipped by the server with a warning, which RV(tables[].messages) shows with O(verbose).
  - Two connections are used - the maintenance session and the progress monitor. Connect to the PostgreSQL server, not to
    PgBouncer (port C(6543)), or the progress rows cannot be matched to the maintenance session. A pooler is detected (the
    connection's backend pid is not the server's) and refused before anything is read or run, in check mode too.
  - VACUUM cannot run inside a transaction, so O(vacuum_timeout), O(cost_delay) and O(cost_limit) are startup settings
    (the libpq C(options) parameter) of the maintenance session's own connection and end with it; PgBouncer refuses
    that parameter, and the module then says to connect to the PostgreSQL server itself.
seealso:
  - module: trdrhub.incident.pg_restore_db
  - name: Routine vacuuming
    description: The PostgreSQL documentation of VACUUM and its progress view.
    link: https://www.postgresql.org/docs/current/routine-vacuuming.html
"""

EXAMPLES = r"""
- name: VACUUM ANALYZE the recovered database
  trdrhub.incident.pg_maintenance:
    login_host: db-primary.trdrhub.internal
    login_user: trdrhub_restore
    login_password: "{{ vault_pg_restore_password }}"
    login_db: lcopilot_recovery_20250115_020000
  register: maintenance

- name: Only tables with at least 10000 dead tuples, gently
  trdrhub.incident.pg_maintenance:
    dsn: "{{ vault_pg_ops_dsn }}"
    tables: [audit_log_entries, public.lc_documents]
    skip_if_dead_below: 10000
    cost_delay: 2
    poll_interval: 2

- name: Refresh planner statistics only
  trdrhub.incident.pg_maintenance:
    login_unix_socket: /var/run/postgresql
    login_db: lcopilot
    analyze_only: true
"""

RETURN = r"""
changed:
  description: Whether at least one table was (in check mode, would be) processed.
  returned: always
  type: bool
  sample: true
database:
  description: The database maintained.
  returned: always
  type: str
  sample: lcopilot_recovery_20250115_020000
mode:
  description: V(vacuum), V(vacuum_full) or V(analyze).
  returned: always
  type: str
  sample: vacuum
statement:
  description: The statement run per table, C({table}) standing for the table.
  returned: always
  type: str
  sample: VACUUM (ANALYZE) {table}
tables:
  description: Each selected table, in order.
  returned: always
  type: list
  elements: dict
  sample:
    - table: public.audit_log_entries
      action: done
      reason: null
      before: {n_dead_tup: 5000, n_live_tup: 100000, last_vacuum: null}
      after: {n_dead_tup: 0, n_live_tup: 100000, last_vacuum: "2025-01-15T14:31:02.417733+00:00"}
      elapsed_s: 1.42
      progress: [{phase: scanning heap, heap_blks_total: 1280, heap_blks_scanned: 640, elapsed_s: 0.5}]
      messages: []
  contains:
    table:
      description: V(schema.table).
      type: str
    action:
      description: V(done), V(would_run) (check mode) or V(skipped).
      type: str
    reason:
      description: Why the table was skipped; null otherwise.
      type: str
    before:
      description: C(pg_stat_user_tables) counters before (C(n_live_tup), C(n_dead_tup), C(n_mod_since_analyze),
        C(last_vacuum), C(last_autovacuum), C(last_analyze), C(last_autoanalyze), C(vacuum_count), C(analyze_count))
        and C(size_bytes).
      type: dict
    after:
      description: The same after processing; null when the table was not processed.
      type: dict
    elapsed_s:
      description: Seconds the statement took; null when not run.
      type: float
    progress:
      description: Progress samples of this table (see RV(progress)).
      type: list
    messages:
      description: The server's VERBOSE messages (with O(verbose)).
      type: list
processed:
  description: Tables processed (in check mode, that would be).
  returned: always
  type: int
  sample: 4
skipped_tables:
  description:
    - Tables skipped by O(skip_if_dead_below).
    - Not named C(skipped), which Ansible reads as "the task was skipped".
  returned: always
  type: int
  sample: 0
progress:
  description:
    - The progress timeline of the whole run - each sample that differs from the one before, with its table, C(phase),
      C(heap_blks_total), C(heap_blks_scanned), C(heap_blks_vacuumed), C(index_vacuum_count) and C(elapsed_s) since the
      table's statement started. For ANALYZE the block counts are the sample blocks.
  returned: always
  type: list
  elements: dict
  sample: [{table: public.audit_log_entries, phase: scanning heap, heap_blks_total: 1280, heap_blks_scanned: 640,
            heap_blks_vacuumed: 0, index_vacuum_count: 0, elapsed_s: 0.5}]
elapsed_s:
  description: Seconds the module spent after connecting.
  returned: always
  type: float
  sample: 3.2
queries:
  description: SQL statements the module ran, in order, without parameter values.
  returned: always
  type: list
  elements: str
  sample: ["VACUUM (ANALYZE) \"public\".\"audit_log_entries\""]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_MUTUALLY_EXCLUSIVE, PSYCOPG2, PgClient, postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.maintenance import Maintenance


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(
        tables={'type': 'list', 'elements': 'str'},
        analyze_only={'type': 'bool', 'default': False},
        full={'type': 'bool', 'default': False},
        allow_full_lock={'type': 'bool', 'default': False},
        verbose={'type': 'bool', 'default': False},
        skip_if_dead_below=bounded({'type': 'int', 'default': 0}, minimum=0),
        max_tables=bounded({'type': 'int', 'default': 500}, minimum=0),
        poll_interval=bounded({'type': 'float', 'default': 0.5}, above=0),
        cost_delay=bounded({'type': 'float'}, minimum=0),
        cost_limit=bounded({'type': 'int'}, minimum=0),
        vacuum_timeout=bounded({'type': 'int', 'default': 3600}, minimum=0),
    )


def main() -> None:
    run_module(argument_spec(), lambda module: Maintenance(module.params, check_mode=module.check_mode),
               lambda module, maintenance: PgClient(module.params), requires=[PSYCOPG2], mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
