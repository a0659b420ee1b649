"""pg_migration_info through real ansible-playbook against the harness PostgreSQL.

Each test reads a version table of its own (``version_table``), so the shared trdrhub
database's ``alembic_version`` stays as the workload seeded it.
"""
from __future__ import annotations

import uuid

import pytest
from trdrhub_harness import workload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REVISION = "a1b2c3d4e5f6"


@pytest.fixture
def version_table(pg_server, trdrhub_db):
    """A fresh Alembic version table holding REVISION, readable by trdrhub_app; dropped afterwards."""
    name = "itest_alembic_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname="trdrhub")
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {name} (version_num varchar(32) PRIMARY KEY)")
        cur.execute(f"INSERT INTO {name} VALUES (%s)", (REVISION,))
        cur.execute(f"GRANT SELECT ON {name} TO {trdrhub_db['app']['user']}")
        yield name, conn
        cur.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture
def app_login(pg_server, trdrhub_db):
    return {"login_host": pg_server.host, "login_port": pg_server.port, "login_db": "trdrhub",
            "login_user": trdrhub_db["app"]["user"], "login_password": trdrhub_db["app"]["password"]}


def test_known_revision_is_up_to_date_and_check_mode_is_identical(ansible, app_login, version_table, trdrhub_db):
    args = {**app_login, "version_table": version_table[0], "expected_revision": REVISION,
            "tables": ["audit_log_entries", "lc_documents", "public.tenants", "itest_no_such_table"]}
    res = ansible.run("pg_migration_info", args)
    checked = ansible.run("pg_migration_info", args, check=True)

    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["initialized"] is True and res["version_table"] == f"public.{version_table[0]}"
    assert res["revisions"] == [REVISION] and res["revision"] == REVISION
    assert res["up_to_date"] is True and res["pending"] is None
    assert res["missing_revisions"] == [] and res["unexpected_revisions"] == []
    assert res["database"] == "trdrhub" and res["server_version_num"] >= 100000
    assert res["database_size_bytes"] > 0 and res["database_size"]
    tables = res["tables"]
    assert tables["lc_documents"]["exists"] is True and tables["lc_documents"]["row_estimate"] >= 1
    assert tables["public.tenants"]["table"] == "public.tenants"
    assert tables["itest_no_such_table"] == {"exists": False, "table": "itest_no_such_table", "row_estimate": None,
                                             "estimate_source": None, "size_bytes": None, "last_analyzed": None}
    strip = ("invocation", "database_size_bytes", "database_size", "tables")
    assert {k: v for k, v in checked.result.items() if k not in strip} == {k: v for k, v in res.result.items() if k not in strip}
    assert trdrhub_db["app"]["password"] not in res.output


def test_the_seeded_alembic_version_table(ansible, app_login, pg_server):
    conn = pg_server.connect(dbname="trdrhub")
    try:   # other tests (secret rotation) create secret_rotation_logs; report what is really there
        cur = conn.cursor()
        cur.execute("SELECT to_regclass('public.secret_rotation_logs') IS NOT NULL")
        logs_exist = cur.fetchone()[0]
    finally:
        conn.close()
    res = ansible.run("pg_migration_info", app_login)
    assert not res.failed, res.output
    assert res["version_table"] == "public.alembic_version"
    assert res["revisions"] == [workload.ALEMBIC_REVISION]
    assert res["up_to_date"] is None and res["pending"] is None and res["expected_revisions"] == []
    assert set(res["tables"]) == {"audit_log_entries", "secret_rotation_logs"}
    assert res["tables"]["audit_log_entries"]["exists"] is True
    assert res["tables"]["secret_rotation_logs"]["exists"] is logs_exist


def test_expected_mismatch_explains_what_is_pending(ansible, app_login, version_table):
    res = ansible.run("pg_migration_info", {**app_login, "version_table": version_table[0],
                                            "expected_revision": ["ffff00001111", REVISION]})
    assert not res.failed, res.output
    assert res["up_to_date"] is False
    assert res["missing_revisions"] == ["ffff00001111"] and res["unexpected_revisions"] == []
    assert "missing: ffff00001111" in res["pending"] and "alembic upgrade heads" in res["pending"]


def test_absent_version_table_is_not_an_error(ansible, app_login):
    res = ansible.run("pg_migration_info", {**app_login, "version_table": "itest_never_migrated",
                                            "expected_revision": REVISION})
    assert not res.failed, res.output
    assert res["initialized"] is False and res["revisions"] == [] and res["revision"] is None
    assert res["version_table"] == "itest_never_migrated"
    assert res["up_to_date"] is False
    assert res["pending"].startswith("itest_never_migrated does not exist in database trdrhub")


def test_empty_version_table(ansible, app_login, version_table):
    name, conn = version_table
    conn.cursor().execute(f"DELETE FROM {name}")
    res = ansible.run("pg_migration_info", {**app_login, "version_table": name, "expected_revision": REVISION})
    assert not res.failed, res.output
    assert res["initialized"] is True and res["revisions"] == [] and res["up_to_date"] is False
    assert "is empty" in res["pending"]


@pytest.mark.parametrize("args, message", [
    ({"expected_revision": [" "]}, "expected_revision: ' ' is not an Alembic revision id"),
    ({"version_table": "public."}, 'version_table: table must be "table" or "schema.table", got "public."'),
    ({"tables": [""]}, 'tables: table must be "table" or "schema.table", got ""'),
    ({"statement_timeout": -1}, "statement_timeout must be at least 0, got -1"),
])
def test_bad_input_fails_cleanly(ansible, app_login, args, message):
    res = ansible.run("pg_migration_info", {**app_login, **args})
    assert res.failed and res["msg"].startswith(message)
    assert "Traceback" not in res.output


def test_permission_and_connection_errors_name_the_problem(ansible, app_login, pg_server, version_table, trdrhub_db):
    name, conn = version_table
    conn.cursor().execute(f"REVOKE SELECT ON {name} FROM {trdrhub_db['app']['user']}")
    denied = ansible.run("pg_migration_info", {**app_login, "version_table": name})
    assert denied.failed
    assert denied["msg"].startswith(f"Query failed: SELECT version_num FROM \"public\".\"{name}\" ORDER BY version_num -- "
                                    f"server said: permission denied for table {name}")

    wrong = ansible.run("pg_migration_info", {**app_login, "login_password": "wrong-" + trdrhub_db["app"]["password"]})
    assert wrong.failed and wrong["msg"].startswith(f"Cannot connect to PostgreSQL at {pg_server.host}:{pg_server.port}")
    assert trdrhub_db["app"]["password"] not in wrong.output and "Traceback" not in wrong.output
