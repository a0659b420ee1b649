"""audit_chain_verify options against the harness PostgreSQL: defaults, ranges, filters, check mode,
fail_on_violation, the ledger sources, and bad input that must fail with one clear message.

The module has an action plugin, but it only does work of its own for a ledger file on the controller
(``source: ledger_file`` over a local connection); for every other source it runs the module as is.
So the ledger-file runs and one database run (the defaults) go through ansible-playbook, and the
other database runs call the module's entry point directly (``run_db``), which is the same code.
"""
from __future__ import annotations

import json
import os
import uuid

import _itest_audit as audit
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MODULE = "audit_chain_verify"
COUNT = 60   # tenants a, b, c take turns: tenant-b has 2, 5, 8 ... 59


@pytest.fixture(scope="module")
def audit_db(pg_server, trdrhub_db):
    return audit.ensure_audit_db(pg_server)


@pytest.fixture
def audit_login(login, audit_db):
    return {**login["super_tcp"], "login_db": audit_db}


@pytest.fixture(scope="module")
def app_table(pg_server, audit_db):
    """The application's own audit_log_entries (default table name) with a valid chain."""
    conn = pg_server.connect(dbname=audit_db)
    conn.cursor().execute("TRUNCATE audit_log_entries")
    rows = list(audit.audit_rows(COUNT))
    audit.copy_rows(conn, "audit_log_entries", rows)
    yield rows
    conn.close()


@pytest.fixture
def scratch(pg_server, audit_db):
    """A private copy of the table; ``scratch.sql`` tampers with it."""
    name = "itest_opts_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=audit_db)
    audit.create_audit_table(conn, name)
    rows = list(audit.audit_rows(COUNT))
    audit.copy_rows(conn, name, rows)

    class Scratch:
        table = name

        @staticmethod
        def sql(statement):
            conn.cursor().execute(statement.replace("{t}", name))

        @staticmethod
        def id(seq):
            return rows[seq - 1]["id"]

    yield Scratch
    conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def run_db(ansible, args, check=False):
    """A run the action plugin would hand to the module unchanged: the module's own entry point."""
    return ansible.run(MODULE, args, check=check, via_playbook=False)


def ok(res):
    assert "Traceback" not in res.output
    assert not res.failed, res.output
    return res.result


def kinds(result):
    return sorted((v["kind"], v["tenant_id"], v["sequence_number"]) for v in result["violations"])


def test_defaults_read_the_applications_table(ansible, audit_login, app_table):
    result = ok(ansible.run(MODULE, audit_login))
    assert result["is_valid"] is True and result["total_entries"] == COUNT and result["tenants"] == 3
    assert '"public"."audit_log_entries"' in result["queries"][-1]
    assert set(result) >= {"is_valid", "total_entries", "violations", "verified_at", "violation_count",
                           "violation_counts", "violations_truncated", "chains", "tenants", "profile", "source",
                           "elapsed_s", "queries", "notes", "sequence_scope"}


def test_session_time_zone_does_not_matter(ansible, audit_login, app_table):
    """created_at is hashed in UTC; a session in another zone must verify the same."""
    args = {**audit_login, "connect_params": {"options": "-c TimeZone=Asia/Kolkata"}}
    assert ok(run_db(ansible, args))["is_valid"] is True


def test_schema_qualified_table_and_renamed_columns(ansible, audit_login, scratch):
    scratch.sql("CREATE SCHEMA IF NOT EXISTS forensics; ALTER TABLE {t} SET SCHEMA forensics")
    scratch.sql("ALTER TABLE forensics.{t} RENAME COLUMN sequence_number TO seq_no;"
                "ALTER TABLE forensics.{t} RENAME COLUMN entry_hash TO hash")
    try:
        result = ok(run_db(ansible, {**audit_login, "table": f"forensics.{scratch.table}",
                                     "columns": {"sequence_number": "seq_no", "entry_hash": "hash"}}))
        assert result["is_valid"] is True and result["total_entries"] == COUNT
    finally:
        scratch.sql("DROP TABLE forensics.{t}")


def test_range_is_anchored_to_the_entry_before_it(ansible, audit_login, scratch):
    args = {**audit_login, "table": scratch.table, "start_sequence": 20, "end_sequence": 40}
    result = ok(run_db(ansible, args))
    assert result["is_valid"] is True and result["total_entries"] == 21
    assert result["chains"]["tenant-b"]["first_sequence"] == 20
    scratch.sql("DELETE FROM {t} WHERE sequence_number = 17")   # tenant-b, before the range
    result = ok(run_db(ansible, args))
    # tenant-b's first entry in range still names 17's hash; its anchor is now 14
    assert kinds(result) == [("broken_link", "tenant-b", 20)]
    scratch.sql("UPDATE {t} SET action = 'delete' WHERE sequence_number IN (5, 50)")   # outside the range
    assert kinds(ok(run_db(ansible, args))) == [("broken_link", "tenant-b", 20)]


def test_tenant_filter(ansible, audit_login, scratch):
    scratch.sql("UPDATE {t} SET action = 'delete' WHERE sequence_number = 29")   # tenant-b
    base = {**audit_login, "table": scratch.table}
    only_a = ok(run_db(ansible, {**base, "tenant_id": "tenant-a"}))
    assert only_a["is_valid"] is True and list(only_a["chains"]) == ["tenant-a"] and only_a["total_entries"] == 20
    b_and_c = ok(run_db(ansible, {**base, "tenant_id": ["tenant-b", "tenant-c"]}))
    assert kinds(b_and_c) == [("hash_mismatch", "tenant-b", 29)] and b_and_c["tenants"] == 2
    assert any("sequence gaps were not checked" in n for n in b_and_c["notes"])


def test_check_mode_is_identical(ansible, audit_login, scratch):
    scratch.sql("UPDATE {t} SET resource_id = 'x' WHERE sequence_number = 31")
    args = {**audit_login, "table": scratch.table}
    normal, checked = ok(run_db(ansible, args)), ok(run_db(ansible, args, check=True))
    for result in (normal, checked):
        for volatile in ("verified_at", "elapsed_s"):
            result.pop(volatile)
    assert normal == checked and normal["changed"] is False


def test_fail_on_violation(ansible, audit_login, app_table, scratch):
    scratch.sql("UPDATE {t} SET resource_id = 'x' WHERE sequence_number IN (31, 32);"
                "DELETE FROM {t} WHERE sequence_number = 44")
    res = run_db(ansible, {**audit_login, "table": scratch.table, "fail_on_violation": True})
    assert res.failed and "Traceback" not in res.output
    assert res["msg"].startswith("audit chain verification failed: 4 violation(s) in 59 entries "
                                 "(1 broken_link, 2 hash_mismatch, 1 sequence_gap); first: tenant_id ")
    assert res["violation_count"] == 4 and len(res["violations"]) == 4 and res["chains"]
    clean = ok(run_db(ansible, {**audit_login, "fail_on_violation": True}))
    assert clean["is_valid"] is True


def test_max_violations(ansible, audit_login, scratch):
    scratch.sql("UPDATE {t} SET action = 'rotate'")  # no generated row has it
    result = ok(run_db(ansible, {**audit_login, "table": scratch.table, "max_violations": 5}))
    assert len(result["violations"]) == 5 and result["violation_count"] == COUNT
    assert result["violations_truncated"] is True and result["violation_counts"] == {"hash_mismatch": COUNT}


def test_expected_heads_round_trip(ansible, audit_login, scratch):
    args = {**audit_login, "table": scratch.table}
    first = ok(run_db(ansible, args))
    heads = {key: chain["head"] for key, chain in first["chains"].items()}
    heads["tenant-gone"] = {"sequence_number": 3, "entry_hash": "f" * 64}
    result = ok(run_db(ansible, {**args, "expected_heads": heads}))
    assert kinds(result) == [("missing_chain", "tenant-gone", 3)]


@pytest.fixture
def ledger_table(pg_server, audit_db):
    """The incident ledger kept in PostgreSQL, two incidents."""
    conn = pg_server.connect(dbname=audit_db)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS trdrhub_incident_ledger")
    cur.execute("CREATE TABLE trdrhub_incident_ledger (incident_id text NOT NULL, seq integer NOT NULL, "
                "entry jsonb NOT NULL, entry_hash text NOT NULL, prev_hash text, recorded_at timestamptz DEFAULT now(), "
                "PRIMARY KEY (incident_id, seq))")
    for incident, count in (("INC-2025-0042", 8), ("INC-2025-0043", 3)):
        for entry in audit.ledger_entries(incident, count):
            cur.execute("INSERT INTO trdrhub_incident_ledger (incident_id, seq, entry, entry_hash, prev_hash) "
                        "VALUES (%s, %s, %s, %s, %s)", (incident, entry["seq"], json.dumps(entry), entry["hash"],
                                                        entry["prev_hash"]))
    yield cur
    cur.execute("DROP TABLE IF EXISTS trdrhub_incident_ledger")
    conn.close()


def test_ledger_table(ansible, audit_login, ledger_table):
    args = {**audit_login, "source": "ledger_table"}
    result = ok(run_db(ansible, args))
    assert result["is_valid"] is True and result["total_entries"] == 11 and result["profile"] == "ledger"
    assert result["sequence_scope"] == "chain" and set(result["chains"]) == {"INC-2025-0042", "INC-2025-0043"}
    ledger_table.execute("UPDATE trdrhub_incident_ledger SET entry = jsonb_set(entry, '{data,note}', '\"edited\"') "
                         "WHERE incident_id = 'INC-2025-0042' AND seq = 3")
    ledger_table.execute("UPDATE trdrhub_incident_ledger SET entry_hash = repeat('0', 64) "
                         "WHERE incident_id = 'INC-2025-0042' AND seq = 5")
    ledger_table.execute("DELETE FROM trdrhub_incident_ledger WHERE incident_id = 'INC-2025-0042' AND seq = 7")
    result = ok(run_db(ansible, {**args, "incident_id": "INC-2025-0042"}))
    assert kinds(result) == [("broken_link", "INC-2025-0042", 8), ("column_mismatch", "INC-2025-0042", 5),
                             ("hash_mismatch", "INC-2025-0042", 3), ("sequence_gap", "INC-2025-0042", 8)]
    assert all(v["incident_id"] == "INC-2025-0042" for v in result["violations"])
    ranged = ok(run_db(ansible, {**args, "incident_id": "INC-2025-0042", "start_sequence": 4, "end_sequence": 6}))
    assert kinds(ranged) == [("column_mismatch", "INC-2025-0042", 5)]


def test_ledger_file(ansible, tmp_path):
    path = tmp_path / "incidents" / "INC-2025-0042" / "ledger.jsonl"
    entries = audit.ledger_entries("INC-2025-0042", 6)
    audit.write_ledger(path, entries)
    result = ok(ansible.run(MODULE, {"source": "ledger_file", "path": str(path.parent)}))
    assert result["is_valid"] is True and result["total_entries"] == 6 and result["ledger_path"] == str(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"v": 1, "seq": 7, "incident_id": "INC-2025-0042", "ev')   # a write cut short
    result = ok(ansible.run(MODULE, {"source": "ledger_file", "path": str(path)}, check=True))
    (violation,) = result["violations"]
    assert violation["kind"] == "malformed_entry" and violation["line"] == 7


BAD = {
    "missing-table": ({"table": "public.audit_log_entriez"}, ["table public.audit_log_entriez does not exist"]),
    "missing-table-unqualified": ({"table": "nope"}, ["table nope (searched in search_path) does not exist"]),
    "wrong-columns": ({"columns": {"sequence_number": "seq_no", "entry_hash": "hash"}},
                      ["table public.audit_log_entries has no column seq_no (columns.sequence_number), "
                       "hash (columns.entry_hash)", "its columns are: id, sequence_number"]),
    "unknown-column-field": ({"columns": {"sequence": "seq_no"}}, ["columns: unknown field(s) sequence"]),
    "text-sequence-column": ({"columns": {"sequence_number": "tenant_id"}},
                             ["column tenant_id of table public.audit_log_entries is character varying"]),
    "start-after-end": ({"start_sequence": 9, "end_sequence": 3},
                        ["start_sequence (9) is greater than end_sequence (3)"]),
    "profile-source": ({"source": "ledger_table", "profile": "trdrhub"},
                       ["profile trdrhub cannot verify source ledger_table"]),
    "missing-ledger-table": ({"source": "ledger_table", "table": "no_ledger_here"},
                             ["table no_ledger_here (searched in search_path) does not exist"]),
    "missing-ledger-file": ({"source": "ledger_file", "path": "/nonexistent/INC-1/ledger.jsonl"},
                            ["ledger file /nonexistent/INC-1/ledger.jsonl does not exist"]),
    "ledger-directory-without-ledger": ({"source": "ledger_file", "path": "{tmp}/ledger.jsonl"},
                                        ["directory {tmp}/ledger.jsonl holds no ledger.jsonl"]),
}


@pytest.mark.parametrize("args, needles", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_clear_message(ansible, audit_login, app_table, tmp_path, args, needles):
    (tmp_path / "ledger.jsonl").mkdir()
    args = {k: v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v for k, v in args.items()}
    # a ledger file is read by the action plugin on the controller; anything else by the module
    res = ansible.run(MODULE, {**audit_login, **args}, via_playbook=args.get("source") == "ledger_file")
    assert res.failed and "Traceback" not in res.output
    for needle in needles:
        assert needle.replace("{tmp}", str(tmp_path)) in res["msg"], res["msg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_ledger_file(ansible, tmp_path):
    path = tmp_path / "ledger.jsonl"
    audit.write_ledger(path, audit.ledger_entries("INC-1", 2))
    path.chmod(0)
    res = ansible.run(MODULE, {"source": "ledger_file", "path": str(path)})
    assert res.failed and "is not readable" in res["msg"] and "Traceback" not in res.output


def test_role_without_select_is_told_what_to_grant(ansible, login, audit_db, app_table):
    res = run_db(ansible, {**login["ops"], "login_db": audit_db})
    assert res.failed and "Traceback" not in res.output
    assert "role trdrhub_ops may not read column(s)" in res["msg"]
    assert "GRANT SELECT ON public.audit_log_entries TO trdrhub_ops" in res["msg"]
