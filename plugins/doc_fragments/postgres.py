# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import family


class ModuleDocFragment:
    """Documentation of the option specs in module_utils/_postgres/client.py and session_filter.py."""

    # Connection options: POSTGRES_COMMON_ARGS in module_utils/_postgres/client.py.
    OPTIONS = r"""
options:
  login_host:
    description:
      - Host name or IP address of the PostgreSQL server.
      - A value starting with C(/) is a Unix socket directory.
      - When omitted (or empty), the server must be named by O(login_unix_socket), O(dsn), a C(host), C(hostaddr) or
        C(service) in O(connect_params), or E(PGHOST), E(PGHOSTADDR) or E(PGSERVICE); with none of them the module fails
        before connecting. libpq's default Unix socket is never used implicitly.
    type: str
  login_port:
    description:
      - TCP port of the PostgreSQL server.
      - When omitted, libpq uses E(PGPORT) or C(5432).
      - In TRDR Hub production C(6543) is PgBouncer, not PostgreSQL; session modules must use the server port C(5432).
    type: int
  login_user:
    description:
      - Role to log in as.
      - When omitted, libpq uses E(PGUSER) or the operating-system user name.
    type: str
  login_password:
    description:
      - Password of O(login_user).
      - When omitted, libpq uses E(PGPASSWORD), E(PGPASSFILE) or C(~/.pgpass).
      - Never shown in results or error messages.
    type: str
  login_db:
    description:
      - Database to connect to.
      - When omitted, libpq uses E(PGDATABASE) or a database named like the login role.
    type: str
    aliases: [db]
  login_unix_socket:
    description:
      - Directory of the server's Unix socket, for example V(/var/run/postgresql).
      - Takes precedence over O(login_host).
      - Set it to use the local server on purpose; the module never falls back to the local socket by itself.
    type: str
  ssl_mode:
    description:
      - Whether and how to use SSL, see the libpq C(sslmode) documentation.
      - When omitted, libpq uses E(PGSSLMODE) or V(prefer).
    type: str
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description:
      - File with the certificate authorities used to verify the server certificate (libpq C(sslrootcert)).
      - When omitted, libpq uses E(PGSSLROOTCERT) or C(~/.postgresql/root.crt).
    type: str
    aliases: [ssl_rootcert]
  connect_timeout:
    description:
      - Seconds to wait for the connection to be established; V(0) waits indefinitely.
    type: int
    default: 10
  connect_params:
    description:
      - Extra libpq connection parameters, for example C(target_session_attrs) or C(sslcert).
      - The dedicated options above take precedence over the same keys here.
      - C(application_name) is always V(trdrhub.incident) and cannot be overridden.
    type: dict
    default: {}
  dsn:
    description:
      - A complete libpq connection string (C(host=... dbname=...)) or URL (C(postgresql://user:pass@host:5432/db)).
      - Alternative to O(login_host), O(login_port), O(login_user), O(login_password) and O(login_unix_socket), which
        cannot be combined with it. O(login_db), O(ssl_mode), O(ca_cert) and O(connect_params) override the same keys of
        the dsn.
      - Treated as a secret; a password in it never appears in results or error messages.
    type: str
  statement_timeout:
    description:
      - Seconds after which the server cancels any statement this module runs; V(0) disables the limit.
      - Keeps the module from hanging on a server that is already overloaded.
      - Set with C(SET LOCAL statement_timeout) at the start of each of the module's transactions (a single statement
        runs as its own C(BEGIN ... COMMIT)), never for the session, so behind a pooler in transaction mode (PgBouncer)
        it does not outlive the module's transaction on the shared server connection.
    type: int
    default: 10
notes:
  - The module's own session always uses C(application_name=trdrhub.incident).
  - All connection parameters that are not set are left to libpq, so the standard E(PGHOST), E(PGPORT), E(PGUSER),
    E(PGPASSWORD), E(PGDATABASE), E(PGSSLMODE) and E(PGSERVICE) environment variables and C(~/.pgpass) apply.
  - The server itself is never left to chance. Unless O(login_host), O(login_unix_socket), a host or service in O(dsn)
    or O(connect_params), or E(PGHOST), E(PGHOSTADDR) or E(PGSERVICE) in the module's environment names it, the module
    fails with C(No PostgreSQL server given) and makes no connection attempt.
  - TRDR Hub production reaches PostgreSQL through PgBouncer (port C(6543)). Inspecting and signalling sessions needs a
    direct connection to the PostgreSQL server (port C(5432)); through a pooler the module cannot tell its own backend
    apart and a signal may hit a pooled connection shared by other clients.
requirements:
  - psycopg2 (or psycopg2-binary) on the host that runs the module
"""

    # A module of the postgresql module-defaults group (C(group/trdrhub.incident.postgresql)), and one with the
    # connection options outside the group (pgbouncer_info).
    DOCUMENTATION, CONNECTION = family(OPTIONS, 'postgresql', 'the connection options')

    # Session selection options: SESSION_FILTER_ARGS in module_utils/_postgres/session_filter.py.
    SESSION_FILTERS = r"""
options:
  databases:
    description:
      - Only sessions connected to one of these databases. Omitted or empty means any database.
    type: list
    elements: str
  states:
    description:
      - Only sessions in one of these C(pg_stat_activity.state) values. Omitted or empty means any state.
    type: list
    elements: str
    choices: [active, idle, idle in transaction, idle in transaction (aborted), fastpath function call, disabled]
  min_duration:
    description:
      - Only sessions that have been in their current situation for at least this many seconds. Must be V(0) or more;
        V(0) disables the filter.
      - For V(active) and V(fastpath function call) sessions it is the time since C(query_start), how long the current
        statement has been running.
      - For sessions idle in a transaction (V(idle in transaction), aborted or not) it is the time since
        C(state_change), how long the open transaction has sat idle.
      - For V(idle) sessions it is the time since C(state_change), how long the connection has been idle.
      - For V(disabled) or unknown states it is the time since C(backend_start), the age of the connection.
      - Sessions whose timestamps the login role cannot see never match a V(min_duration) above V(0).
    type: float
    default: 0
  users:
    description:
      - Only sessions of these roles (exact names). Omitted or empty means any role.
    type: list
    elements: str
  exclude_users:
    description:
      - Skip sessions of these roles (exact names).
    type: list
    elements: str
  applications:
    description:
      - Only sessions whose C(application_name) matches one of these shell-style globs (case-sensitive), for example
        V(trdrhub-*). Omitted or empty means any application.
    type: list
    elements: str
  exclude_applications:
    description:
      - Skip sessions whose C(application_name) matches one of these shell-style globs (case-sensitive).
    type: list
    elements: str
  client_addrs:
    description:
      - Only sessions whose client address is inside one of these networks, in CIDR notation (V(10.42.0.0/16)) or as
        single addresses. IPv4 and IPv6 are supported.
      - Sessions connected over a Unix socket have no client address and never match this filter.
    type: list
    elements: str
  query_pattern:
    description:
      - Only sessions whose current or last query text matches this Python regular expression (C(re.search), so it
        may match anywhere in the text; start it with the inline flag C(?i) in parentheses to ignore case).
    type: str
  wait_event_types:
    description:
      - Only sessions currently waiting on one of these C(wait_event_type) values, for example V(Lock) or V(IO).
    type: list
    elements: str
  blockers_only:
    description:
      - Only sessions that hold a lock other sessions are waiting for (they appear in another session's
        C(pg_blocking_pids) result).
    type: bool
    default: false
  pids:
    description:
      - Only these backend process ids, and only while they still match every other filter.
      - Pins a termination to the sessions an operator approved from a check-mode run, so a session
        that crossed a threshold after the evidence was shown is not signalled without being seen.
      - Unlike the other list filters, an empty list selects no session at all.
    type: list
    elements: int
  query_max_length:
    description:
      - Query texts in the results are truncated to this many characters (followed by C(...)); V(0) returns them in
        full.
      - Password literals (C(PASSWORD '...'), C(password=...)) are always masked.
    type: int
    default: 200
"""
