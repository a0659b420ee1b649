"""statement_timeout never outlives the module's transaction, checked on a shared server connection.

Behind PgBouncer in transaction mode every client of a pool shares the server connection,
so a session-level setting one client leaves there applies to the next. The pooler here
has one server connection per pool: whatever a module leaves on the session, the next
client sees it. The modules run in-process through their entry point.
"""
from __future__ import annotations

import json
import shutil
import sys

import pytest
from _itest_ansible import collections_root
from ansible.module_utils.testing import patch_module_args
from trdrhub_harness.pgbouncer import PgBouncerServer

if str(collections_root()) not in sys.path:
    sys.path.insert(0, str(collections_root()))

from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import PgClient  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.modules import pg_activity_info, pg_migration_info  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pgbouncer(pg_server):
    if not shutil.which("pgbouncer") and not shutil.which("/usr/sbin/pgbouncer"):
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with PgBouncerServer(pg_server) as bouncer:
        yield bouncer.start()


def show_timeout(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW statement_timeout")
        return cur.fetchone()[0]


def run_module(module, args, capsys) -> dict:
    with patch_module_args(dict(args, _ansible_check_mode=False)), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def pooled_args(bouncer) -> dict:
    return {"login_host": bouncer.host, "login_port": bouncer.port, "login_user": bouncer.postgres.superuser,
            "login_db": "postgres", "statement_timeout": 7}


def test_the_pooler_shares_one_server_session(pgbouncer):
    """The premise: a session-level SET by one client is seen by the next one."""
    first, second = pgbouncer.connect(), pgbouncer.connect()
    try:
        with first.cursor() as cur:
            cur.execute("SET statement_timeout = '42s'")
        assert show_timeout(second) == "42s"
    finally:
        with first.cursor() as cur:
            cur.execute("RESET statement_timeout")
        first.close()
        second.close()
    assert show_timeout_fresh(pgbouncer) == "0"


def show_timeout_fresh(bouncer) -> str:
    conn = bouncer.connect()
    try:
        return show_timeout(conn)
    finally:
        conn.close()


@pytest.mark.parametrize("module", [pg_activity_info, pg_migration_info])
def test_a_module_leaves_no_statement_timeout_on_the_shared_session(pgbouncer, module, capsys):
    args = pooled_args(pgbouncer)
    if module is pg_migration_info:
        args["tables"] = ["pg_class"]
    result = run_module(module, args, capsys)
    assert not result.get("failed"), result.get("msg")
    assert show_timeout_fresh(pgbouncer) == "0"


def test_the_timeout_holds_inside_the_modules_transactions(pgbouncer):
    client = PgClient(pooled_args(pgbouncer))
    try:
        assert client.query("SHOW statement_timeout") == [{"statement_timeout": "7s"}]
        client.conn.autocommit = False   # a transaction of the caller's, as the ledger append opens one
        client.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert client.query("SHOW statement_timeout") == [{"statement_timeout": "7s"}]
        client.conn.commit()
        client.conn.autocommit = True
        assert show_timeout(client.conn) == "0"   # the session itself, outside any transaction
    finally:
        client.close()
    assert show_timeout_fresh(pgbouncer) == "0"


def test_the_timeout_cancels_a_long_statement_and_the_session_stays_clean(pgbouncer):
    client = PgClient(dict(pooled_args(pgbouncer), statement_timeout=1))
    try:
        with pytest.raises(Exception, match=r"statement_timeout is 1s"):
            client.query("SELECT pg_sleep(5)")
        assert client.query("SELECT 1 AS ok") == [{"ok": 1}]
    finally:
        client.close()
    assert show_timeout_fresh(pgbouncer) == "0"


def test_the_direct_connection_session_is_unchanged(pg_server):
    """Without a pooler: the module's own connection keeps the server default between statements."""
    client = PgClient({"dsn": pg_server.dsn(), "statement_timeout": 9})
    try:
        for _dummy in range(3):
            client.query("SELECT count(*) AS n FROM pg_stat_activity")
        assert show_timeout(client.conn) == "0"
    finally:
        client.close()


def test_vacuum_settings_are_startup_options_which_the_pooler_refuses(pgbouncer, pg_server):
    direct = PgClient({"dsn": pg_server.dsn(), "statement_timeout": 10},
                      startup_settings={"statement_timeout": "3600s", "vacuum_cost_delay": "2ms"})
    try:
        assert direct.query("SHOW statement_timeout") == [{"statement_timeout": "1h"}]
        direct.query("VACUUM pg_catalog.pg_class")
    finally:
        direct.close()
    with pytest.raises(Exception, match="not the pooler") as caught:
        PgClient(pooled_args(pgbouncer), startup_settings={"statement_timeout": "3600s"})
    assert pg_server.password not in str(caught.value)
