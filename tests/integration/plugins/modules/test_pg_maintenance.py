"""pg_maintenance against the harness PostgreSQL: check mode, VACUUM with progress, the skip rule, refusals."""
from __future__ import annotations

import time

import pytest
from _itest_backup import drop_database, query

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DB = "itest_maint"
TABLE = "churn"


def dead_tuples(pg_server) -> int:
    rows = query(pg_server, DB, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", (TABLE,))
    return rows[0][0] if rows else 0


@pytest.fixture(scope="module")
def churned(pg_server):
    """A table with many dead tuples (half of its rows deleted), autovacuum off so they stay."""
    drop_database(pg_server, DB)
    admin = pg_server.connect()
    try:
        admin.cursor().execute(f"CREATE DATABASE {DB}")
    finally:
        admin.close()
    conn = pg_server.connect(dbname=DB)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)")
        cur.execute("CREATE TABLE quiet (id int) WITH (autovacuum_enabled = false)")
        cur.execute(f"INSERT INTO {TABLE} SELECT i, repeat('x', 200) FROM generate_series(1, 20000) AS i")
        cur.execute(f"DELETE FROM {TABLE} WHERE id % 2 = 0")
    finally:
        conn.close()
    deadline = time.monotonic() + 15
    while dead_tuples(pg_server) < 10000 and time.monotonic() < deadline:   # the statistics flush lags a little
        time.sleep(0.2)
    assert dead_tuples(pg_server) >= 10000
    yield DB
    drop_database(pg_server, DB)


@pytest.fixture
def conn(pg_server):
    return {"login_host": pg_server.host, "login_port": pg_server.port, "login_user": pg_server.superuser,
            "login_password": pg_server.password, "login_db": DB}


def test_check_mode_then_vacuum_with_progress_then_skip(ansible, pg_server, churned, conn):
    check = ansible.run("pg_maintenance", dict(conn, skip_if_dead_below=100), check=True)
    assert not check.failed, check.output
    by_table = {t["table"]: t for t in check["tables"]}
    assert by_table[f"public.{TABLE}"]["action"] == "would_run"
    assert by_table[f"public.{TABLE}"]["before"]["n_dead_tup"] >= 10000
    assert by_table["public.quiet"]["action"] == "skipped" and "below skip_if_dead_below" in by_table["public.quiet"]["reason"]
    assert check["changed"] and check["progress"] == []
    assert dead_tuples(pg_server) >= 10000   # nothing ran

    # A cost delay slows the VACUUM down so the monitor sees it at work.
    done = ansible.run("pg_maintenance", dict(conn, tables=[TABLE], cost_delay=2, cost_limit=20, poll_interval=0.05,
                                              verbose=True))
    assert not done.failed, done.output
    assert done["changed"] and done["processed"] == 1 and done["statement"] == "VACUUM (VERBOSE, ANALYZE) {table}"
    entry = done["tables"][0]
    assert entry["action"] == "done" and entry["before"]["n_dead_tup"] >= 10000
    assert entry["after"]["n_dead_tup"] < entry["before"]["n_dead_tup"]
    assert entry["after"]["last_vacuum"] and entry["after"]["last_analyze"]
    assert entry["after"]["vacuum_count"] == entry["before"]["vacuum_count"] + 1
    assert entry["messages"], "VERBOSE messages are returned"
    samples = done["progress"]
    assert samples and all(s["table"] == f"public.{TABLE}" for s in samples)
    assert any(s["heap_blks_total"] and s["heap_blks_total"] > 0 for s in samples)
    assert {s["phase"] for s in samples} & {"scanning heap", "vacuuming indexes", "vacuuming heap", "cleaning up indexes",
                                            "truncating heap", "performing final cleanup", "initializing"}
    scanned = [s["heap_blks_scanned"] for s in samples if s["heap_blks_scanned"] is not None]
    assert scanned == sorted(scanned)

    again = ansible.run("pg_maintenance", dict(conn, tables=[TABLE], skip_if_dead_below=100))
    assert not again.failed, again.output
    assert not again["changed"] and again["tables"][0]["action"] == "skipped" and again["skipped_tables"] == 1


def test_refusals(ansible, pg_server, churned, conn):
    full = ansible.run("pg_maintenance", dict(conn, full=True))
    assert full.failed and "ACCESS EXCLUSIVE" in full["msg"] and "allow_full_lock" in full["msg"]
    missing = ansible.run("pg_maintenance", dict(conn, tables=[TABLE, "no_such_table"]))
    assert missing.failed and "no_such_table does not exist" in missing["msg"] and "Nothing was run" in missing["msg"]
    assert pg_server.password not in full.output + missing.output
