"""PostgreSQL client sessions for the integration tests, spawned and always reaped.

The harness workload (``trdrhub_harness.workload``) spawns the standard incident mix;
these tests also need sessions with an exact application_name, login role, database and
transport (TCP vs unix socket), a lock blocker/waiter pair and a query that ignores
cancel requests, so a small asynchronous spawner lives here.  Asynchronous psycopg2
connections let one thread hold many sessions whose queries are still running.
"""
from __future__ import annotations

import select
import time
from collections.abc import Iterable

import psycopg2
import psycopg2.extensions as ext

LONG_SLEEP = "SELECT pg_sleep(600)"
# Catches query_canceled and carries on, so only pg_terminate_backend ends it.
IGNORES_CANCEL = (
    "DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(600); "
    "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$"
)


def wait_async(conn, timeout: float = 10.0) -> None:
    """Drive an asynchronous connection until its pending operation completes."""
    deadline = time.monotonic() + timeout
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("asynchronous PostgreSQL operation did not complete")
        if state == ext.POLL_READ:
            select.select([conn.fileno()], [], [], remaining)
        elif state == ext.POLL_WRITE:
            select.select([], [conn.fileno()], [], remaining)


class Session:
    """One spawned backend: its pid and what it was started as."""

    def __init__(self, conn, *, application_name: str, user: str, dbname: str, via: str) -> None:
        self.conn = conn
        self.pid: int = conn.get_backend_pid()
        self.application_name = application_name
        self.user = user
        self.dbname = dbname
        self.via = via
        self.cursor = None

    def start(self, sql: str) -> None:
        self.cursor = self.conn.cursor()
        self.cursor.execute(sql)

    def result(self, timeout: float = 10.0) -> str:
        """'ok' once the running statement finished, else the error class name (e.g. QueryCanceled)."""
        try:
            wait_async(self.conn, timeout)
        except psycopg2.Error as exc:
            return type(exc).__name__
        return "ok"

    def __repr__(self) -> str:
        return f"<Session pid={self.pid} app={self.application_name!r} user={self.user} db={self.dbname} {self.via}>"


class Monitor:
    """A superuser unix-socket session that looks at pg_stat_activity directly."""

    def __init__(self, pg) -> None:
        self.pg = pg
        self.conn = pg.connect(application_name="itest-monitor")

    def query(self, sql: str, params: tuple = ()) -> list:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def alive(self, pids: Iterable[int]) -> set:
        pids = [int(p) for p in pids]
        rows = self.query("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        return {r[0] for r in rows}

    def row(self, pid: int) -> dict | None:
        rows = self.query(
            "SELECT pid, state, wait_event_type, wait_event, query, usename, application_name, "
            "pg_blocking_pids(pid) FROM pg_stat_activity WHERE pid = %s", (pid,))
        if not rows:
            return None
        keys = ("pid", "state", "wait_event_type", "wait_event", "query", "usename", "application_name", "blocked_by")
        return dict(zip(keys, rows[0], strict=True))

    def wait_for(self, pid: int, state: str, wait_event_type: str | None = None, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        row = None
        while time.monotonic() < deadline:
            row = self.row(pid)
            if row and row["state"] == state and (wait_event_type is None or row["wait_event_type"] == wait_event_type):
                return row
            time.sleep(0.02)
        raise AssertionError(f"backend {pid} did not reach state={state!r} wait_event_type={wait_event_type!r}: {row}")

    def wait_gone(self, pids: Iterable[int], timeout: float = 10.0) -> set:
        """Remaining pids after waiting up to ``timeout`` for them to leave pg_stat_activity."""
        pids = list(pids)
        deadline = time.monotonic() + timeout
        left = self.alive(pids)
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = self.alive(pids)
        return left

    def assert_killed(self, killed: Iterable = (), alive: Iterable = ()) -> None:
        """Check pg_stat_activity itself: ``killed`` backends are gone, ``alive`` ones are not."""
        killed = {getattr(s, "pid", s) for s in killed}
        alive = {getattr(s, "pid", s) for s in alive}
        seen = self.alive(killed | alive)
        assert not (seen & killed), f"backends still in pg_stat_activity: {sorted(seen & killed)}"
        assert seen >= alive, f"backends that should have survived are gone: {sorted(alive - seen)}"

    def terminate(self, pids: Iterable[int]) -> None:
        pids = [int(p) for p in pids]
        if pids:
            self.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))

    def close(self) -> None:
        self.conn.close()


class SessionFactory:
    """Spawns sessions for one test and reaps every one of them in ``close()``.

    Sessions log in as ``default_user`` (the application role) over the unix socket
    unless told otherwise; ``tcp=True`` logs in over 127.0.0.1 with the role's password.
    """

    def __init__(self, pg, monitor: Monitor, passwords: dict, default_db: str, default_user: str) -> None:
        self.pg = pg
        self.monitor = monitor
        self.passwords = passwords
        self.default_db = default_db
        self.default_user = default_user
        self.sessions: list[Session] = []

    # -- connections ---------------------------------------------------------
    def connect(self, application_name: str, *, user: str | None = None, dbname: str | None = None,
                tcp: bool = False) -> Session:
        user = user or self.default_user
        dbname = dbname or self.default_db
        params = {"dbname": dbname, "user": user, "port": self.pg.port, "application_name": application_name,
                  "connect_timeout": 5}
        if tcp:
            params["host"] = self.pg.host
            params["password"] = self.pg.password if user == self.pg.superuser else self.passwords[user]
        else:
            params["host"] = self.pg.socket_dir
        conn = psycopg2.connect(async_=1, **params)
        try:
            wait_async(conn)
        except BaseException:
            conn.close()
            raise
        session = Session(conn, application_name=application_name, user=user, dbname=dbname,
                          via="tcp" if tcp else "socket")
        self.sessions.append(session)
        return session

    def _run(self, session: Session, sql: str, state: str, wait_event_type: str | None = None) -> Session:
        session.start(sql)
        self.monitor.wait_for(session.pid, state, wait_event_type)
        return session

    # -- the kinds of session the tests need ---------------------------------
    def active(self, application_name: str, sql: str = LONG_SLEEP, **kw) -> Session:
        """Running ``sql`` (default pg_sleep: wait_event_type Timeout / PgSleep)."""
        return self._run(self.connect(application_name, **kw), sql, "active",
                         "Timeout" if "pg_sleep" in sql else None)

    def idle_in_transaction(self, application_name: str, **kw) -> Session:
        return self._run(self.connect(application_name, **kw), "BEGIN; SELECT 1", "idle in transaction")

    def idle(self, application_name: str, **kw) -> Session:
        return self._run(self.connect(application_name, **kw), "SELECT 1", "idle")

    def stubborn(self, application_name: str, **kw) -> Session:
        """Active, and survives pg_cancel_backend: only terminate ends it."""
        return self._run(self.connect(application_name, **kw), IGNORES_CANCEL, "active", "Timeout")

    def lock_pair(self, application_name: str, table: str, waiters: int = 1, **kw) -> tuple:
        """(blocker, [waiters]): the blocker idles in a transaction holding an ACCESS EXCLUSIVE lock."""
        blocker = self._run(self.connect(application_name + "-blocker", **kw),
                            f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE", "idle in transaction")
        waiting = [self._run(self.connect(f"{application_name}-waiter{i}", **kw),
                             f"SELECT count(*) FROM {table}", "active", "Lock") for i in range(waiters)]
        return blocker, waiting

    def pids(self) -> list:
        return [s.pid for s in self.sessions]

    def close(self) -> None:
        pids = self.pids()
        try:
            self.monitor.terminate(pids)
            self.monitor.wait_gone(pids, timeout=10)
        finally:
            for session in self.sessions:
                session.conn.close()
            self.sessions.clear()
