# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_activity_info
short_description: Report PostgreSQL activity for incident triage - connections, long runners, blockers
version_added: 1.0.0
description:
  - Reads C(pg_stat_activity), C(pg_stat_database) and the connection settings of a PostgreSQL server and returns what
    an incident responder looks at first - connection saturation by state, long-running statements, sessions idle in a
    transaction, lock blockers, and the database's counters.
  - Accepts the same session filters as M(trdrhub.incident.pg_terminate_sessions), so a triage step can show exactly
    the sessions a later containment step would select.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  long_running_threshold:
    description:
      - An V(active) session is reported in RV(long_running) when its current statement has run for at least this many
        seconds. Must be V(0) or more.
    type: float
    default: 60
extends_documentation_fragment:
  - trdrhub.incident.postgres
  - trdrhub.incident.postgres.session_filters
notes:
  - The filters narrow RV(sessions), RV(long_running), RV(idle_in_transaction) and RV(blockers). RV(connections) always
    counts every client backend of the server and RV(stats) always covers the connected database.
  - The module's own session is counted in RV(connections) but never listed.
  - To see other roles' states, timestamps and query texts the login role needs C(pg_read_all_stats) or C(pg_monitor)
    (C(GRANT pg_monitor TO role)); without it those sessions show no state, duration or query.
  - Through a pooler the figures describe the pooler's server connections, not the application's clients; the module
    warns when it detects one.
seealso:
  - module: trdrhub.incident.pg_terminate_sessions
  - name: The cumulative statistics system
    description: PostgreSQL documentation of pg_stat_activity and pg_stat_database.
    link: https://www.postgresql.org/docs/current/monitoring-stats.html
"""

EXAMPLES = r"""
- name: Triage the TRDR Hub database
  trdrhub.incident.pg_activity_info:
    login_host: db-primary.trdrhub.internal
    login_port: 5432
    login_user: trdrhub_monitor
    login_password: "{{ vault_pg_monitor_password }}"
    login_db: trdrhub
  register: pg

- name: Page if connections are nearly exhausted
  ansible.builtin.debug:
    msg: "{{ pg.connections.total }}/{{ pg.connections.max_connections }} connections in use"
  when: pg.connections.saturation > 0.9

- name: Show API sessions idle in a transaction for more than five minutes
  trdrhub.incident.pg_activity_info:
    login_unix_socket: /var/run/postgresql
    login_user: postgres
    login_db: trdrhub
    users: [trdrhub_app]
    applications: ["trdrhub-api*"]
    states: [idle in transaction, idle in transaction (aborted)]
    min_duration: 300
  register: stuck

- name: List lock blockers, with their full query text
  trdrhub.incident.pg_activity_info:
    dsn: "{{ vault_pg_monitor_dsn }}"
    blockers_only: true
    query_max_length: 0
  register: blockers
"""

RETURN = r"""
database:
  description: Name of the database inspected (the one connected to).
  returned: always
  type: str
  sample: trdrhub
ping:
  description:
    - Liveness of the database as a client sees it - a fresh connection answering C(SELECT 1).
    - The runbook's first verification step after containment.
  returned: always
  type: dict
  contains:
    ok:
      description: V(true) when C(SELECT 1) returned 1.
      type: bool
      sample: true
    latency_ms:
      description: Round-trip time of the C(SELECT 1), in milliseconds.
      type: float
      sample: 0.412
server_version:
  description: The server's C(server_version) setting.
  returned: always
  type: str
  sample: "15.20 (Debian 15.20-0+deb12u1)"
stats:
  description: Counters from C(pg_stat_database) for RV(database) since RV(stats.stats_reset).
  returned: always
  type: dict
  contains:
    numbackends:
      description: Backends currently connected to this database.
      type: int
      sample: 37
    xact_commit:
      description: Transactions committed.
      type: int
      sample: 18822310
    xact_rollback:
      description: Transactions rolled back.
      type: int
      sample: 1204
    tup_returned:
      description: Rows returned by sequential scans and index entries returned by index scans.
      type: int
      sample: 9812200311
    tup_fetched:
      description: Rows fetched by index scans.
      type: int
      sample: 120032111
    tup_inserted:
      description: Rows inserted.
      type: int
      sample: 2200311
    tup_updated:
      description: Rows updated.
      type: int
      sample: 801233
    tup_deleted:
      description: Rows deleted.
      type: int
      sample: 10021
    deadlocks:
      description: Deadlocks detected.
      type: int
      sample: 0
    blks_hit:
      description: Disk blocks found in shared buffers.
      type: int
      sample: 998877665
    blks_read:
      description: Disk blocks read.
      type: int
      sample: 1234567
    cache_hit_ratio:
      description: C(blks_hit) divided by the sum of C(blks_hit) and C(blks_read), between 0 and 1, rounded to 4 decimals; null before any block
        was read.
      type: float
      sample: 0.9988
    conflicts:
      description: Queries cancelled by recovery conflicts (standbys only).
      type: int
      sample: 0
    temp_files:
      description: Temporary files created by queries.
      type: int
      sample: 12
    temp_bytes:
      description: Bytes written to temporary files.
      type: int
      sample: 104857600
    stats_reset:
      description: When these counters were last reset (ISO 8601), null if never.
      type: str
      sample: "2025-01-01T00:00:00.000000+00:00"
connections:
  description: Client backends of the whole server.
  returned: always
  type: dict
  contains:
    total:
      description: Client backends connected, this module's own session included.
      type: int
      sample: 42
    by_state:
      description: State -> number of client backends; C(unknown) for sessions whose state the login role may not see.
      type: dict
      sample: {"active": 5, "idle": 35, "idle in transaction": 2}
    max_connections:
      description: The server's C(max_connections).
      type: int
      sample: 100
    reserved:
      description: The server's C(superuser_reserved_connections).
      type: int
      sample: 3
    saturation:
      description: RV(connections.total) / RV(connections.max_connections), between 0 and 1, rounded to 4 decimals.
      type: float
      sample: 0.42
sessions:
  description: Client sessions matching the filters, longest-running first.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Backend process id.
      type: int
      sample: 48213
    datname:
      description: Database the session is connected to.
      type: str
      sample: trdrhub
    usename:
      description: Login role of the session.
      type: str
      sample: trdrhub_app
    application_name:
      description: Application name the client set.
      type: str
      sample: trdrhub-api
    client_addr:
      description: Client IP address; null for Unix-socket sessions.
      type: str
      sample: 10.42.3.17
    state:
      description: C(pg_stat_activity.state); null if the login role may not see it.
      type: str
      sample: active
    backend_start:
      description: When the connection was opened (ISO 8601).
      type: str
      sample: "2025-01-15T14:02:11.203311+00:00"
    query_start:
      description: When the current or last statement started (ISO 8601).
      type: str
      sample: "2025-01-15T14:25:40.118102+00:00"
    xact_start:
      description: When the current transaction started (ISO 8601), null outside a transaction.
      type: str
      sample: "2025-01-15T14:25:40.118097+00:00"
    state_change:
      description: When the state last changed (ISO 8601).
      type: str
      sample: "2025-01-15T14:25:40.118105+00:00"
    duration_s:
      description: Seconds in the current situation, as defined for O(min_duration); null if not visible.
      type: float
      sample: 95.21
    wait_event_type:
      description: Type of the event the session waits for, if any.
      type: str
      sample: Lock
    wait_event:
      description: Event the session waits for, if any.
      type: str
      sample: transactionid
    blocking:
      description: Number of other sessions waiting for a lock this session holds.
      type: int
      sample: 0
    query:
      description: Current or last query text, truncated to O(query_max_length), password literals masked.
      type: str
      sample: "SELECT * FROM lc_documents WHERE tenant_id = $1"
long_running:
  description:
    - Matching V(active) sessions whose statement has run for at least O(long_running_threshold) seconds, longest
      first. Same elements as RV(sessions).
  returned: always
  type: list
  elements: dict
  sample: []
idle_in_transaction:
  description:
    - Matching sessions idle in a transaction (V(idle in transaction), aborted or not), longest idle first.
    - Same elements as RV(sessions).
  returned: always
  type: list
  elements: dict
  sample: []
blockers:
  description: Matching sessions that hold locks other sessions wait for, most blocking first.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Backend process id of the blocker.
      type: int
      sample: 48177
    usename:
      description: Login role of the blocker.
      type: str
      sample: trdrhub_app
    application_name:
      description: Application name of the blocker.
      type: str
      sample: trdrhub-worker
    state:
      description: State of the blocker, often V(idle in transaction).
      type: str
      sample: idle in transaction
    duration_s:
      description: Seconds in its current situation, as defined for O(min_duration).
      type: float
      sample: 611.5
    query:
      description: Its current or last query text, truncated to O(query_max_length).
      type: str
      sample: "UPDATE lc_sessions SET status = $1 WHERE id = $2"
    blocks:
      description: Number of sessions waiting for it.
      type: int
      sample: 4
    blocked_pids:
      description: Pids of the sessions waiting for it.
      type: list
      elements: int
      sample: [48213, 48214, 48290, 48301]
hidden:
  description:
    - Client sessions whose details the server hid from the login role.
    - Without C(pg_read_all_stats) (included in C(pg_monitor)) a role sees other roles' sessions with their user,
      database and application, but without state, query, timings, wait event or client address. Filters on those
      fields cannot match such a session, so "no session matched" would be a guess; the module says so here and in
      a warning.
  returned: always
  type: dict
  contains:
    sessions:
      description: Number of client sessions whose details are hidden.
      type: int
      sample: 12
    undecided:
      description:
        - Hidden sessions that pass the filters on database, user, application and pid but could not be checked against
          the filters on state, duration, query, wait event, client address or blocking.
        - They are never selected; any number above 0 means the result may miss the sessions sought.
      type: int
      sample: 12
    users:
      description: Login roles of the hidden sessions.
      type: list
      elements: str
      sample: [trdrhub_app]
    privilege:
      description: The privilege the login role lacks (V(pg_read_all_stats)), null when nothing is hidden.
      type: str
      sample: pg_read_all_stats
    msg:
      description: The warning, naming the counts, the login role and the GRANT that fixes it; null when nothing is hidden.
      type: str
queries:
  description:
    - SQL statements the module ran, in order, without parameter values.
    - A statement repeated back to back (polling) is listed once.
  returned: always
  type: list
  elements: str
  sample:
    - "SELECT pg_backend_pid() AS pid"
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.activity import ActivityReport, activity_argument_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_CONSTRAINTS, PSYCOPG2, PgClient


def argument_spec() -> dict[str, t.Any]:
    return activity_argument_spec()


def main() -> None:
    run_module(argument_spec(), lambda mod: ActivityReport(mod.params), lambda mod, _: PgClient(mod.params), requires=[PSYCOPG2], **POSTGRES_CONSTRAINTS)


if __name__ == '__main__':
    main()
