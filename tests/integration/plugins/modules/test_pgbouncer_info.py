"""pgbouncer_info against a real PgBouncer (transaction pooling, one server connection per pool).

A client holding an open transaction keeps the only server connection of its pool; a
second client of the same pool then waits for it. The module runs in-process through
its entry point, as the stats user (stats_users) and as an admin user.
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time

import pytest
from _itest_ansible import collections_root
from ansible.module_utils.testing import patch_module_args
from trdrhub_harness.pgbouncer import PgBouncerServer

if str(collections_root()) not in sys.path:
    sys.path.insert(0, str(collections_root()))

from ansible_collections.trdrhub.incident.plugins.modules import pgbouncer_info  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pgbouncer(pg_server):
    if not shutil.which("pgbouncer") and not shutil.which("/usr/sbin/pgbouncer"):
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with PgBouncerServer(pg_server) as bouncer:
        yield bouncer.start()


def run_module(args, capsys, check_mode=False) -> dict:
    with patch_module_args(dict(args, _ansible_check_mode=check_mode)), pytest.raises(SystemExit):
        pgbouncer_info.main()
    return json.loads(capsys.readouterr().out)


def console_args(bouncer, user=None) -> dict:
    return {"login_host": bouncer.host, "login_port": bouncer.port, "login_user": user or bouncer.stats_user}


def pool(result, database):
    return [p for p in result["pools"] if p["database"] == database]


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_idle_pooler_has_no_findings(pgbouncer, capsys, check_mode):
    client = pgbouncer.connect()    # the postgres pool exists once a client used it
    with client.cursor() as cur:
        cur.execute("SELECT 1")
    client.close()
    result = run_module(console_args(pgbouncer), capsys, check_mode)
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["queries"] == ["SHOW DATABASES", "SHOW POOLS", "SHOW STATS", "SHOW CLIENTS"]
    assert result["findings"] == []
    assert result["summary"]["clients_waiting"] == 0
    (postgres,) = pool(result, "postgres")
    assert postgres["pool_mode"] == "transaction"
    assert postgres["pool_size"] == 1 and postgres["cl_waiting"] == 0 and postgres["sv_active"] == 0
    assert "pgbouncer" in [d["name"] for d in result["databases"]]
    assert any(s["database"] == "postgres" and s["total_xact_count"] >= 1 for s in result["stats"])


def test_a_waiting_client_and_a_saturated_pool_are_findings(pgbouncer, capsys):
    holder = pgbouncer.connect(autocommit=False)
    waiter = pgbouncer.connect()
    done = threading.Event()

    def wait_for_server():
        with waiter.cursor() as cur:
            cur.execute("SELECT 1")
        done.set()

    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1")         # the transaction now owns the pool's only server connection
        thread = threading.Thread(target=wait_for_server, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while True:
            result = run_module(console_args(pgbouncer, user=pgbouncer.postgres.superuser), capsys)
            if result["summary"]["clients_waiting"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not done.is_set()
        (postgres,) = pool(result, "postgres")
        assert postgres["cl_waiting"] == 1
        assert postgres["sv_active"] == 1 and postgres["saturation"] == 1.0
        assert result["summary"]["max_saturation"] == 1.0
        assert [c["database"] for c in result["waiting_clients"]] == ["postgres"]
        assert any(f.startswith("pool postgres/") and "1 client(s) waiting" in f for f in result["findings"])
        assert any("1 of 1 server connections active (100 % of the pool)" in f for f in result["findings"])
        limited = run_module(dict(console_args(pgbouncer), clients_limit=0), capsys)
        assert limited["waiting_clients"] == [] and limited["summary"]["clients_waiting"] == 1
    finally:
        holder.rollback()
        assert done.wait(10)
        holder.close()
        waiter.close()
    after = run_module(console_args(pgbouncer), capsys)
    assert after["summary"]["clients_waiting"] == 0


def test_a_paused_database_is_a_finding(pgbouncer, capsys):
    admin = pgbouncer.connect(dbname="pgbouncer", user=pgbouncer.postgres.superuser)
    try:
        with admin.cursor() as cur:
            cur.execute("PAUSE postgres")
        result = run_module(console_args(pgbouncer), capsys)
        assert result["summary"]["paused_databases"] == ["postgres"]
        assert "database postgres is PAUSED on the pooler (RESUME postgres lifts it)" in result["findings"]
    finally:
        with admin.cursor() as cur:
            cur.execute("RESUME postgres")
        admin.close()


def test_postgresql_itself_is_not_the_admin_console(pgbouncer, capsys):
    pg = pgbouncer.postgres
    result = run_module({"login_host": pg.host, "login_port": pg.port, "login_user": pg.superuser,
                         "login_password": pg.password, "login_db": "postgres"}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("SHOW DATABASES failed on the PgBouncer admin console -- PgBouncer said: ")
    assert pg.password not in result["msg"]
