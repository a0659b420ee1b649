# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbouncer_info
short_description: Report PgBouncer pools for incident triage - waiting clients, max wait, pool saturation
version_added: 1.1.0
description:
  - Reads C(SHOW DATABASES), C(SHOW POOLS), C(SHOW STATS) and C(SHOW CLIENTS) on PgBouncer's admin console (the
    virtual database C(pgbouncer)) and returns the runbook's phase 3.2 view of the pooler - how many clients wait for a
    server connection and for how long, how full each pool is (active server connections against the pool size), and
    which databases are paused or disabled.
  - Headline sentences are in RV(findings).
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  login_db:
    description:
      - The admin console's virtual database. Only change it if PgBouncer is built with another name.
    type: str
    default: pgbouncer
    aliases: [db]
  statement_timeout:
    description:
      - Not used. The admin console runs no SQL and has no statement timeout; the option is accepted because it is one
        of the shared connection options.
    type: int
    default: 10
  max_wait_threshold:
    description:
      - A pool whose longest current wait (RV(pools[].maxwait_s)) is at least this many seconds is reported in
        RV(findings) even when no client waits any more. V(0) reports only pools with waiting clients.
    type: float
    default: 1
  saturation_threshold:
    description:
      - A pool whose active server connections reach this fraction of its pool size is reported in RV(findings).
    type: float
    default: 0.9
  clients_limit:
    description:
      - At most this many waiting clients (longest wait first) are returned in RV(waiting_clients).
    type: int
    default: 50
extends_documentation_fragment:
  - trdrhub.incident.postgres.connection
notes:
  - Not in C(group/trdrhub.incident.postgresql) - the pooler is a different server from the PostgreSQL the other
    modules reach, with its own user.
  - Log in as a user listed in C(admin_users) or C(stats_users) of C(pgbouncer.ini); C(stats_users) is enough.
  - The connection is autocommit and uses the simple query protocol (PgBouncer's console runs no transactions and no
    prepared statements).
  - RV(pools[].pool_size) is the database's C(pool_size) from C(SHOW DATABASES); a per-user C(pool_size) in
    C(pgbouncer.ini) is not reported by the console and is not taken into account.
seealso:
  - module: trdrhub.incident.pg_activity_info
  - name: PgBouncer admin console
    description: Meaning of every column of SHOW POOLS, STATS, CLIENTS and DATABASES.
    link: https://www.pgbouncer.org/usage.html#admin-console
"""

EXAMPLES = r"""
- name: Read the pooler of TRDR Hub production
  trdrhub.incident.pgbouncer_info:
    login_host: pgbouncer.trdrhub.internal
    login_port: 6543
    login_user: pgbouncer_stats
    login_password: "{{ vault_pgbouncer_stats_password }}"
  register: pooler

- name: Show the findings
  ansible.builtin.debug:
    msg: "{{ pooler.findings }}"
  when: pooler.summary.clients_waiting > 0
"""

RETURN = r"""
summary:
  description: The headline figures, over every pool except the admin console's own.
  returned: always
  type: dict
  contains:
    clients_active:
      description: Clients linked to a server connection or idle (C(cl_active)).
      type: int
      sample: 12
    clients_waiting:
      description: Clients waiting for a server connection (C(cl_waiting)).
      type: int
      sample: 3
    max_wait_s:
      description: Longest current wait of a client, in seconds.
      type: float
      sample: 4.21
    servers_active:
      description: Server connections linked to a client (C(sv_active)).
      type: int
      sample: 20
    max_saturation:
      description: Highest RV(pools[].saturation), null when no pool size is known.
      type: float
      sample: 1.0
    paused_databases:
      description: Databases paused on the pooler.
      type: list
      elements: str
      sample: []
findings:
  description: Headline sentences - clients waiting, a wait over O(max_wait_threshold), a pool over O(saturation_threshold),
    a paused or disabled database.
  returned: always
  type: list
  elements: str
  sample: ["pool lcopilot/trdrhub: 3 client(s) waiting for a server connection, the longest for 4.21 s"]
pools:
  description: One entry per pool (database and user) from C(SHOW POOLS).
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: Database name.
      type: str
    user:
      description: User name.
      type: str
    pool_mode:
      description: C(session), C(transaction) or C(statement).
      type: str
    cl_active:
      description: Active clients.
      type: int
    cl_waiting:
      description: Waiting clients.
      type: int
    sv_active:
      description: Server connections linked to a client.
      type: int
    sv_idle:
      description: Idle server connections.
      type: int
    sv_used:
      description: Server connections idle long enough to need a check.
      type: int
    sv_tested:
      description: Server connections being tested or reset.
      type: int
    sv_login:
      description: Server connections logging in.
      type: int
    maxwait_s:
      description: Longest current wait in the pool, in seconds (C(maxwait) plus C(maxwait_us)).
      type: float
    pool_size:
      description: The database's pool size, null when unknown.
      type: int
    saturation:
      description: RV(pools[].sv_active) divided by RV(pools[].pool_size), null when the pool size is unknown.
      type: float
databases:
  description: One entry per database from C(SHOW DATABASES).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name clients connect to.
      type: str
    host:
      description: Server host.
      type: str
    port:
      description: Server port.
      type: int
    database:
      description: Database name on the server.
      type: str
    pool_size:
      description: Maximum server connections per user.
      type: int
    pool_mode:
      description: Pool mode override, null for the default.
      type: str
    max_connections:
      description: Maximum server connections for the database (C(0) is unlimited).
      type: int
    current_connections:
      description: Server connections open now.
      type: int
    paused:
      description: Whether the database is paused.
      type: bool
    disabled:
      description: Whether new client connections are refused.
      type: bool
stats:
  description: Per-database counters from C(SHOW STATS) (times in microseconds, averages over the last period).
  returned: always
  type: list
  elements: dict
  contains:
    database:
      description: Database name.
      type: str
    total_xact_count:
      description: Transactions pooled since start.
      type: int
    total_query_count:
      description: Queries pooled since start.
      type: int
    total_wait_time:
      description: Microseconds clients spent waiting for a server.
      type: int
    avg_xact_time:
      description: Average transaction duration.
      type: int
    avg_query_time:
      description: Average query duration.
      type: int
    avg_wait_time:
      description: Average wait for a server.
      type: int
clients_total:
  description: Client connections the pooler holds (the module's own included).
  returned: always
  type: int
  sample: 15
waiting_clients:
  description: Clients waiting for a server connection, longest wait first, at most O(clients_limit).
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: Login user.
      type: str
    database:
      description: Database.
      type: str
    state:
      description: Client state (C(waiting)).
      type: str
    addr:
      description: Client address.
      type: str
    port:
      description: Client port.
      type: int
    application_name:
      description: The client's C(application_name).
      type: str
    connect_time:
      description: When the client connected.
      type: str
    wait_s:
      description: How long it has waited, in seconds.
      type: float
queries:
  description: The admin console commands run, in order.
  returned: always
  type: list
  elements: str
  sample: [SHOW DATABASES, SHOW POOLS, SHOW STATS, SHOW CLIENTS]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_COMMON_ARGS, POSTGRES_CONSTRAINTS, PSYCOPG2, postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.pgbouncer import ADMIN_DB, AdminConsole, PgBouncerReport


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(
        login_db=dict(POSTGRES_COMMON_ARGS['login_db'], default=ADMIN_DB),
        max_wait_threshold=bounded({'type': 'float', 'default': 1}, minimum=0),
        saturation_threshold=bounded({'type': 'float', 'default': 0.9}, above=0),
        clients_limit=bounded({'type': 'int', 'default': 50}, minimum=0),
    )


def main() -> None:
    run_module(argument_spec(), lambda mod: PgBouncerReport(mod.params), lambda mod, _: AdminConsole(mod.params), requires=[PSYCOPG2], **POSTGRES_CONSTRAINTS)


if __name__ == '__main__':
    main()
