"""pg_restore_db against the harness PostgreSQL: real pg_dump backups restored, verified, refused."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid

import pytest
from _itest_backup import (
    AUDIT_ROWS,
    BACKUP_ID,
    databases,
    drop_database,
    dump,
    make_source,
    pg_bin,
    query,
    sha256,
    write_sidecar,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SOURCE = "itest_restore_src"
TAMPERED = "itest_restore_tampered"


@pytest.fixture(scope="module")
def backups(pg_server, trdrhub_db, tmp_path_factory):
    """A valid custom-format backup named like the application's, and one with a forged audit row."""
    root = tmp_path_factory.mktemp("backups")
    make_source(pg_server, SOURCE)
    make_source(pg_server, TAMPERED, tamper=True)
    made = {
        "good": dump(pg_server, SOURCE, root / "good" / f"{BACKUP_ID}.sql.gz"),
        "tampered": dump(pg_server, TAMPERED, root / "tampered" / f"{BACKUP_ID}.sql.gz"),
        "root": root,
    }
    yield made
    for name in (SOURCE, TAMPERED):
        drop_database(pg_server, name)


@pytest.fixture
def target(pg_server):
    """A recovery database name of this test; dropped afterwards."""
    name = "itest_rec_" + uuid.uuid4().hex[:8]
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def conn(pg_server):
    return {"login_host": pg_server.host, "login_port": pg_server.port, "login_user": pg_server.superuser,
            "login_password": pg_server.password, "login_db": "postgres"}


def test_restore_check_mode_then_apply_then_unchanged(ansible, pg_server, backups, conn, target):
    args = dict(conn, backup=str(backups["good"]), source_db=SOURCE, target_db=target)

    check = ansible.run("pg_restore_db", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check["changed"] and check["action"] == "create" and not check["created"]
    assert check["checksum"] == {"expected": sha256(backups["good"]), "actual": sha256(backups["good"]), "ok": True,
                                 "source": "sidecar"}
    assert check["backup"]["format"] == "custom" and not check["backup"]["compressed"]
    assert check["backup"]["timestamp"] == "2025-01-15T14:30:00+00:00"
    assert "public.audit_log_entries" in check["toc_tables"] and check["toc_entries"] > len(check["toc_tables"])
    assert target not in check["diff"]["before"]["databases"] and target in check["diff"]["after"]["databases"]
    assert target not in databases(pg_server)

    done = ansible.run("pg_restore_db", args)
    assert not done.failed, done.output
    assert done["changed"] and done["created"] and done["verified"]
    expected = {name: query(pg_server, SOURCE, f"SELECT count(*) FROM {name}")[0][0]
                for name in ("tenants", "lc_documents", "audit_log_entries", "alembic_version")}
    assert {k.split(".", 1)[1]: v["rows"] for k, v in done["row_counts"].items()} == expected
    assert all(v["exact"] for v in done["row_counts"].values())
    assert done["tables"]["missing"] == [] and done["tables"]["count"] == len(done["toc_tables"])
    chain = done["audit_chain"]
    assert chain["checked"] and chain["is_valid"] and chain["total_entries"] == AUDIT_ROWS and chain["violations"] == []
    assert done["provenance"]["sha256"] == sha256(backups["good"]) and done["provenance"]["status"] == "restored"
    restore_cmd = [c for c in done["commands"] if "--exit-on-error" in c][0]
    assert "--no-owner" in restore_cmd and str(backups["good"]) in restore_cmd
    assert pg_server.password not in done.output
    comment = query(pg_server, "postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                           "WHERE datname = %s", (target,))[0][0]
    assert json.loads(comment.split(" ", 1)[1])["backup_id"] == BACKUP_ID

    again = ansible.run("pg_restore_db", args)
    assert not again.failed, again.output
    assert not again["changed"] and again["action"] == "unchanged" and not again["created"]
    assert again["audit_chain"]["is_valid"] and again["row_counts"] == done["row_counts"]


def test_backup_id_and_dir_derive_the_target_name(ansible, pg_server, backups, conn):
    derived = f"{SOURCE}_recovery_20250115_143000"
    drop_database(pg_server, derived)
    try:
        run = ansible.run("pg_restore_db", dict(conn, backup_id=BACKUP_ID, backup_dir=str(backups["good"].parent)),
                          check=True)
        assert not run.failed, run.output
        # No source_db given: the database name recorded in the archive names the target.
        assert run["target_db"] == derived and run["source_db"] == SOURCE
        assert derived not in databases(pg_server)
    finally:
        drop_database(pg_server, derived)


def test_restoring_into_the_source_database_is_refused(ansible, pg_server, backups, conn):
    before = query(pg_server, SOURCE, "SELECT count(*) FROM audit_log_entries")[0][0]
    refused = ansible.run("pg_restore_db", dict(conn, backup=str(backups["good"]), target_db=SOURCE))
    assert refused.failed and "source (production) database" in refused["msg"] and "Nothing was created" in refused["msg"]
    assert query(pg_server, SOURCE, "SELECT count(*) FROM audit_log_entries")[0][0] == before


def test_an_existing_database_of_someone_else_is_left_alone(ansible, pg_server, backups, conn, target):
    admin = pg_server.connect()
    try:
        admin.cursor().execute(f"CREATE DATABASE {target}")
    finally:
        admin.close()
    run = ansible.run("pg_restore_db", dict(conn, backup=str(backups["good"]), target_db=target, replace_existing=True))
    assert run.failed and "was not created by this module" in run["msg"]
    assert query(pg_server, target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0] == 0


def _corrupt(src, dest):
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64
    dest.write_bytes(bytes(data))


def _truncate(src, dest):
    data = src.read_bytes()
    dest.write_bytes(data[:len(data) * 2 // 3])


def _restorer():
    """The module's worker, imported from the collection as ansible-playbook would load it."""
    import sys

    from _itest_ansible import collections_root
    if str(collections_root()) not in sys.path:
        sys.path.insert(0, str(collections_root()))
    from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgIncidentError
    from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.restore_run import Restorer
    return Restorer, PgIncidentError


def test_garbage_is_refused_through_ansible_with_one_message(ansible, pg_server, conn, target, tmp_path):
    path = tmp_path / f"{BACKUP_ID}.sql.gz"
    path.write_text("hello, this is not a database dump\njust some notes\n")
    write_sidecar(path)
    run = ansible.run("pg_restore_db", dict(conn, backup=str(path), target_db=target))
    assert run.failed and "is not a PostgreSQL dump" in run["msg"] and "\n" not in run["msg"]
    assert "Traceback" not in run.output and pg_server.password not in run.output
    assert target not in databases(pg_server)


@pytest.mark.parametrize("case, expected", [
    ("corrupt", "Nothing was created"),
    ("truncated", "truncated"),
    ("bad_checksum", "checksum mismatch"),
    ("no_checksum", "no checksum for"),
    ("empty", "is empty"),
])
def test_bad_backups_are_refused_before_anything_is_created(pg_server, backups, conn, target, tmp_path, case, expected):
    """The real pg_restore reads each file; the refusal comes before any connection, so nothing can be created."""
    restorer, error = _restorer()
    path = tmp_path / f"{BACKUP_ID}.sql.gz"
    params = dict(conn, backup=str(path), target_db=target, verify_archive=True,
                  pg_restore_path=pg_bin(pg_server, "pg_restore"))
    if case == "corrupt":
        _corrupt(backups["good"], path)
        write_sidecar(path)
    elif case == "truncated":
        _truncate(backups["good"], path)
        write_sidecar(path)
    elif case == "bad_checksum":
        path.write_bytes(backups["good"].read_bytes())
        params["sha256"] = "0" * 64
    elif case == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(backups["good"].read_bytes())

    def run_command(argv, environ):
        proc = subprocess.run(argv, env=dict(os.environ, **environ), capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    with pytest.raises(error) as refused:
        restorer(params, run_command)
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert target not in databases(pg_server)


def test_plain_sql_gzipped_backup_is_restored(ansible, pg_server, backups, conn, target, tmp_path):
    path = dump(pg_server, SOURCE, tmp_path / f"{BACKUP_ID}.sql.gz", fmt="plain", gzip_it=True)
    with gzip.open(path, "rt") as handle:
        assert "PostgreSQL database dump" in handle.read(200)
    run = ansible.run("pg_restore_db", dict(conn, backup=str(path), target_db=target, jobs=2))
    assert not run.failed, run.output
    assert run["backup"]["format"] == "plain" and run["backup"]["compressed"]
    assert any("psql" in c[0] and "ON_ERROR_STOP=1" in c for c in run["commands"])
    assert run["audit_chain"]["is_valid"] and run["tables"]["missing"] == []
    assert any("jobs applies to custom-format archives only" in w for w in run.get("warnings", []))


def test_a_failed_restore_drops_the_database_it_created(ansible, pg_server, backups, conn, target, tmp_path):
    # A plain script that is valid SQL up to a statement that fails on the server.
    path = tmp_path / f"{BACKUP_ID}.sql"
    path.write_text("CREATE TABLE public.ok (id int);\nINSERT INTO public.missing_table VALUES (1);\n")
    run = ansible.run("pg_restore_db", dict(conn, backup=str(path), target_db=target, verify_checksum=False))
    assert run.failed and "missing_table" in run["msg"] and f"half-restored database {target}" in run["msg"]
    assert "was dropped" in run["msg"]
    assert target not in databases(pg_server)


def test_a_tampered_audit_row_in_the_backup_is_reported(ansible, pg_server, backups, conn, target):
    run = ansible.run("pg_restore_db", dict(conn, backup=str(backups["tampered"]), target_db=target))
    assert not run.failed, run.output
    chain = run["audit_chain"]
    assert chain["checked"] and chain["is_valid"] is False and not run["verified"]
    assert {(v["kind"], v["sequence_number"]) for v in chain["violations"]} >= {("hash_mismatch", 17)}
    assert any("NOT valid" in w for w in run.get("warnings", []))
