"""A TRDR Hub-like database and a realistic database incident, for drills and tests.

``create_trdrhub_db(pg)`` builds a small copy of the application's schema and the two
roles containment cares about: ``trdrhub_app`` (what the API and workers log in as) and
``trdrhub_ops`` (least privilege for containment: ``pg_signal_backend`` and
``pg_read_all_stats``, never superuser).

``Incident(pg)`` holds real backend sessions open in daemon threads, each with a label and
its backend pid, so a drill can ask afterwards which of them the containment killed:

    with Incident(pg) as inc:
        inc.long_running(20)            # SELECT pg_sleep(..) as trdrhub_app, 'trdrhub-api'
        inc.idle_in_transaction(10)     # BEGIN; UPDATE ..; then idle, 'trdrhub-worker'
        inc.short_queries()             # must survive: quick queries in a loop
        inc.maintenance()               # must survive: a superuser's long query
        inc.protected()                 # must survive: 'pg_dump' (a protected application)
        inc.wait_ready()
        ...
        inc.alive()                     # pids still in pg_stat_activity

``pg`` is anything shaped like the harness's ``PostgresServer`` (``connect()``, ``host``,
``port``, ``superuser``); ``postgres_from_env()`` builds one from the ``TRDRHUB_PG_*``
variables for helpers that run under ``python -m trdrhub_harness run``.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Self

import psycopg2
from psycopg2 import sql

from .postgres import PostgresServer

APP_ROLE = "trdrhub_app"
OPS_ROLE = "trdrhub_ops"
# Drill-only passwords for a throwaway server; production passwords live in a vault.
DEFAULT_APP_PASSWORD = os.environ.get("TRDRHUB_PG_APP_PASSWORD", "trdrhub-app-drill")
DEFAULT_OPS_PASSWORD = os.environ.get("TRDRHUB_PG_OPS_PASSWORD", "trdrhub-ops-drill")
ALEMBIC_REVISION = "7c1f0e2a9b44"

# Labels whose sessions a correct containment kills, and those it must leave alone.
INCIDENT = "incident"
MUST_SURVIVE = "must-survive"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alembic_version (
    version_num varchar(32) PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS tenants (
    id varchar(64) PRIMARY KEY,
    name varchar(256) NOT NULL,
    plan varchar(32) NOT NULL DEFAULT 'standard',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS lc_documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id varchar(64) NOT NULL REFERENCES tenants (id),
    lc_number varchar(64) NOT NULL,
    status varchar(32) NOT NULL DEFAULT 'uploaded',
    amount numeric(18, 2),
    currency varchar(3),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_lc_documents_tenant_id ON lc_documents (tenant_id);
CREATE TABLE IF NOT EXISTS audit_log_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sequence_number integer NOT NULL UNIQUE,
    tenant_id varchar(64) NOT NULL,
    actor_id uuid,
    actor_role varchar(64),
    actor_ip varchar(45),
    actor_user_agent text,
    resource_type varchar(64) NOT NULL,
    resource_id varchar(128) NOT NULL,
    resource_name varchar(256),
    action varchar(32) NOT NULL,
    action_description text,
    severity varchar(16) NOT NULL DEFAULT 'medium',
    before_hash varchar(64),
    after_hash varchar(64),
    prev_entry_hash varchar(64),
    entry_hash varchar(64) NOT NULL,
    event_metadata jsonb,
    correlation_id uuid,
    created_at timestamptz DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_audit_log_entries_tenant_seq ON audit_log_entries (tenant_id, sequence_number);
"""

_SEED = """
INSERT INTO alembic_version (version_num)
    SELECT %(revision)s WHERE NOT EXISTS (SELECT 1 FROM alembic_version);
INSERT INTO tenants (id, name, plan)
    SELECT 'tenant-' || i, 'Tenant ' || i, CASE WHEN i %% 3 = 0 THEN 'enterprise' ELSE 'standard' END
    FROM generate_series(1, 5) AS i
    ON CONFLICT (id) DO NOTHING;
INSERT INTO lc_documents (tenant_id, lc_number, status, amount, currency)
    SELECT 'tenant-' || (1 + i %% 5), 'LC-' || lpad(i::text, 6, '0'),
           (ARRAY['uploaded', 'extracted', 'validated', 'approved'])[1 + i %% 4],
           (i * 1234.5)::numeric(18, 2), 'USD'
    FROM generate_series(1, 200) AS i
    WHERE NOT EXISTS (SELECT 1 FROM lc_documents);
"""


# pg_advisory_lock key of create_trdrhub_db (any constant no other code of the harness uses).
CREATE_LOCK = 0x7472_6472


def create_trdrhub_db(pg, dbname: str = "trdrhub", app_password: str = DEFAULT_APP_PASSWORD,
                      ops_password: str = DEFAULT_OPS_PASSWORD) -> dict[str, dict[str, str]]:
    """Create (or bring up to date) the database, its schema, seed rows and roles.

    Safe to call again: every statement is conditional, and callers in other processes (two xdist workers
    sharing one server) take turns on an advisory lock, so that neither sees the other's half-made database.
    Returns the role credentials, ``{"app": {"user", "password"}, "ops": {"user", "password"}, "dbname": ...}``.
    """
    admin = pg.connect(dbname="postgres")
    try:
        cur = admin.cursor()
        cur.execute("SELECT pg_advisory_lock(%s)", (CREATE_LOCK,))   # released when admin closes
        for role, password in ((APP_ROLE, app_password), (OPS_ROLE, ops_password)):
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # Passwords are literals (CREATE ROLE takes no bind parameters); sql.Literal quotes them.
            cur.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(role), sql.Literal(password)))
        cur.execute(sql.SQL("GRANT pg_signal_backend, pg_read_all_stats TO {}").format(sql.Identifier(OPS_ROLE)))
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
            sql.Identifier(dbname), sql.Identifier(APP_ROLE), sql.Identifier(OPS_ROLE)))

        db = pg.connect(dbname=dbname)
        try:
            cur = db.cursor()
            cur.execute(_SCHEMA)
            cur.execute(_SEED, {"revision": ALEMBIC_REVISION})
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(APP_ROLE)))
            cur.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(APP_ROLE)))
        finally:
            db.close()
    finally:
        admin.close()
    return {
        "dbname": dbname,
        "app": {"user": APP_ROLE, "password": app_password},
        "ops": {"user": OPS_ROLE, "password": ops_password},
    }


# --------------------------------------------------------------------------------------
# Sessions


@dataclass
class Session:
    """One backend held open by a worker thread."""

    label: str
    kind: str                   # INCIDENT or MUST_SURVIVE
    user: str
    application_name: str
    target_state: str           # what pg_stat_activity shows once the session is in place
    pid: int | None = None
    status: str = "starting"    # starting, running, finished, cancelled, killed, error
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    conn: object = field(default=None, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)


def _is_disconnect(exc: BaseException) -> bool:
    """A backend killed under us: AdminShutdown (57P01) or a dropped connection."""
    if isinstance(exc, psycopg2.errors.AdminShutdown):
        return True
    return isinstance(exc, psycopg2.OperationalError) and not isinstance(exc, psycopg2.errors.QueryCanceled)


class Incident:
    """Spawn and track the sessions of a database incident; always clean up on exit."""

    def __init__(self, pg, dbname: str = "trdrhub", app_password: str = DEFAULT_APP_PASSWORD,
                 max_seconds: float = 300.0) -> None:
        self.pg = pg
        self.dbname = dbname
        self.app_password = app_password
        self.max_seconds = max_seconds  # upper bound on every query and loop: nothing runs forever
        self.sessions: list[Session] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._monitor = None  # one superuser connection for pg_stat_activity look-ups

    # -- spawning --------------------------------------------------------------------
    def _app_conn(self, application_name: str):
        return self.pg.connect(dbname=self.dbname, user=APP_ROLE, password=self.app_password,
                               application_name=application_name, host=self.pg.host)

    def _spawn(self, label: str, kind: str, user: str, application_name: str, target_state: str,
               connect: Callable[[], object], work: Callable[[Session, object], None]) -> Session:
        sess = Session(label=label, kind=kind, user=user, application_name=application_name,
                       target_state=target_state)

        def run() -> None:
            try:
                conn = connect()
                sess.conn = conn
                cur = conn.cursor()
                cur.execute("SELECT pg_backend_pid()")
                sess.pid = cur.fetchone()[0]
                sess.status = "running"
                work(sess, conn)
                if sess.status == "running":
                    sess.status = "finished"
            except psycopg2.Error as exc:
                if sess.pid is not None and _is_disconnect(exc):
                    sess.status = "killed"
                elif isinstance(exc, psycopg2.errors.QueryCanceled):
                    # Our own cancel at shutdown, or a containment that only cancels queries.
                    sess.status = "finished" if self._stop.is_set() else "cancelled"
                else:
                    sess.status = "error"
                    sess.error = f"{type(exc).__name__}: {str(exc).strip()}"
            except Exception as exc:  # noqa: BLE001 - a worker must never die silently
                sess.status = "error"
                sess.error = f"{type(exc).__name__}: {exc}"
            finally:
                sess.ready.set()
                conn, sess.conn = sess.conn, None
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg2.Error:
                        pass

        sess.thread = threading.Thread(target=run, name=f"incident-{label}", daemon=True)
        with self._lock:
            self.sessions.append(sess)
        sess.thread.start()
        return sess

    def _sleep_query(self, seconds: float):
        seconds = min(float(seconds), self.max_seconds)

        def work(sess: Session, conn) -> None:
            cur = conn.cursor()
            sess.ready.set()
            cur.execute("SELECT pg_sleep(%s) /* trdrhub incident drill */", (seconds,))
        return work

    def long_running(self, count: int = 20, seconds: float = 120, label: str = "long-running-query",
                     application_name: str = "trdrhub-api") -> list[Session]:
        """Queries that run far too long (the incident): killed by containment."""
        return [self._spawn(label, INCIDENT, APP_ROLE, application_name, "active",
                            lambda: self._app_conn(application_name), self._sleep_query(seconds))
                for _i in range(count)]

    def idle_in_transaction(self, count: int = 10, label: str = "idle-in-transaction",
                            application_name: str = "trdrhub-worker") -> list[Session]:
        """Workers that opened a transaction, touched a row and went quiet, holding its lock."""
        def work(sess: Session, conn) -> None:
            conn.autocommit = False
            cur = conn.cursor()
            # SKIP LOCKED: each session locks a different document, so none waits on another.
            cur.execute("""UPDATE lc_documents SET updated_at = now()
                           WHERE id = (SELECT id FROM lc_documents ORDER BY lc_number
                                       FOR UPDATE SKIP LOCKED LIMIT 1)""")
            sess.ready.set()
            self._stop.wait(self.max_seconds)
            # Touching the connection tells us whether containment terminated it.
            conn.rollback()
            cur.execute("SELECT 1")

        return [self._spawn(label, INCIDENT, APP_ROLE, application_name, "idle in transaction",
                            lambda: self._app_conn(application_name), work)
                for _i in range(count)]

    def short_queries(self, count: int = 1, interval: float = 0.2, label: str = "short-queries",
                      application_name: str = "trdrhub-api") -> list[Session]:
        """Healthy traffic: quick queries in a loop, each far below any threshold."""
        def work(sess: Session, conn) -> None:
            cur = conn.cursor()
            sess.ready.set()
            deadline = time.monotonic() + self.max_seconds
            while not self._stop.is_set() and time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM lc_documents WHERE tenant_id = %s", ("tenant-1",))
                cur.fetchone()
                self._stop.wait(interval)

        return [self._spawn(label, MUST_SURVIVE, APP_ROLE, application_name, "idle",
                            lambda: self._app_conn(application_name), work)
                for _i in range(count)]

    def maintenance(self, seconds: float = 120, label: str = "superuser-maintenance",
                    application_name: str = "maintenance") -> Session:
        """A DBA's long query as the superuser: containment must never touch it."""
        return self._spawn(label, MUST_SURVIVE, self.pg.superuser, application_name, "active",
                           lambda: self.pg.connect(dbname=self.dbname, application_name=application_name),
                           self._sleep_query(seconds))

    def protected(self, seconds: float = 120, label: str = "pg_dump",
                  application_name: str = "pg_dump") -> Session:
        """A backup in progress (a protected application) as trdrhub_app: must survive."""
        return self._spawn(label, MUST_SURVIVE, APP_ROLE, application_name, "active",
                           lambda: self._app_conn(application_name), self._sleep_query(seconds))

    # -- observing -------------------------------------------------------------------
    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every session has its pid and pg_stat_activity shows its target state."""
        deadline = time.monotonic() + timeout
        for sess in list(self.sessions):
            if not sess.ready.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"session {sess.label} did not start within {timeout:.0f}s")
            if sess.status == "error":
                raise RuntimeError(f"session {sess.label} failed to start: {sess.error}")
        pending = {s.pid: s for s in self.sessions if s.pid is not None and s.target_state != "idle"}
        while pending:
            states = {row["pid"]: row["state"] for row in self.activity(pending)}
            pending = {pid: s for pid, s in pending.items() if states.get(pid) != s.target_state}
            if not pending:
                return
            if time.monotonic() > deadline:
                labels = ", ".join(sorted({s.label for s in pending.values()}))
                raise TimeoutError(f"sessions not in their target state after {timeout:.0f}s: {labels}")
            time.sleep(0.05)

    def pids(self, label: str | None = None, kind: str | None = None) -> list[int]:
        return [s.pid for s in self.sessions if s.pid is not None
                and (label is None or s.label == label) and (kind is None or s.kind == kind)]

    def activity(self, pids: Iterable[int] | None = None) -> list[dict]:
        """pg_stat_activity rows for the given pids (default: all of ours), seen by the superuser."""
        wanted = list(self.pids() if pids is None else pids)
        if not wanted:
            return []
        query = ("SELECT pid, usename, application_name, state,"
                 " EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(state_change, backend_start))::float"
                 " FROM pg_stat_activity WHERE pid = ANY(%s) ORDER BY pid")
        keys = ("pid", "usename", "application_name", "state", "state_age_s")
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._monitor is None or self._monitor.closed:
                        self._monitor = self.pg.connect(dbname="postgres", application_name="trdrhub-drill-monitor")
                    cur = self._monitor.cursor()
                    cur.execute(query, (wanted,))
                    return [dict(zip(keys, row)) for row in cur.fetchall()]
                except psycopg2.OperationalError:
                    self._close_monitor()
                    if attempt == 2:
                        raise
        return []

    def _close_monitor(self) -> None:
        conn, self._monitor = self._monitor, None
        if conn is not None:
            try:
                conn.close()
            except psycopg2.Error:
                pass

    def alive(self, pids: Iterable[int] | None = None) -> set:
        """The subset of ``pids`` (default: all of ours) whose backends still exist."""
        return {row["pid"] for row in self.activity(pids)}

    def wait_older_than(self, seconds: float, timeout: float = 60.0) -> None:
        """Wait until every incident session has been in its state for ``seconds``."""
        deadline = time.monotonic() + timeout
        incident = self.pids(kind=INCIDENT)
        while True:
            ages = [row["state_age_s"] for row in self.activity(incident)]
            if ages and min(ages) >= seconds:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"incident sessions not {seconds}s old after {timeout:.0f}s")
            time.sleep(0.1)

    def report(self) -> list[dict]:
        """One row per session: label, kind, pid, user, app, whether its backend is alive."""
        alive = self.alive()
        return [{"label": s.label, "kind": s.kind, "pid": s.pid, "user": s.user,
                 "application_name": s.application_name, "status": s.status,
                 "alive": s.pid in alive} for s in self.sessions]

    # -- teardown --------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker: wake the idle ones, cancel running queries, join threads."""
        self._stop.set()
        for sess in self.sessions:
            conn = sess.conn
            if conn is not None and sess.status == "running":
                try:
                    conn.cancel()  # thread-safe; only ever our own backend
                except (psycopg2.Error, AttributeError):
                    pass
        deadline = time.monotonic() + timeout
        for sess in self.sessions:
            if sess.thread is not None:
                sess.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._close_monitor()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def postgres_from_env(environ: dict | None = None) -> PostgresServer:
    """The harness PostgreSQL that ``python -m trdrhub_harness run`` started, from TRDRHUB_PG_*."""
    return PostgresServer.attach(environ)
