"""playbooks/verify_audit.yml (runbook phase 2.3) against the harness PostgreSQL and a file ledger.

A valid audit log passes and pins its heads; a truncated log fails against the pinned heads;
a tampered incident ledger fails too. Every verdict is recorded in the ledger.
"""
from __future__ import annotations

import json
import uuid

import pytest
from _itest_audit import audit_rows, copy_rows, create_audit_table
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def audit_table(pg_server, trdrhub_db):
    """30 valid entries of three tenants in a table of their own, readable by trdrhub_app."""
    name = "itest_va_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname="trdrhub")
    try:
        create_audit_table(conn, name)
        copy_rows(conn, name, audit_rows(30))
        conn.cursor().execute(f"GRANT SELECT ON {name} TO {trdrhub_db['app']['user']}")
        yield name, conn
        conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture
def verify(ansible, pg_server, trdrhub_db, audit_table, tmp_path):
    incident = "INC-VA-" + uuid.uuid4().hex[:6]
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"], "TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")}
    # verify_audit.yml acts on an existing incident (an unknown id is refused): give it a ledger first.
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"}, extra_env=env)
    assert not opened.failed, opened.output

    def run(*args):
        return ansible.run_playbook("playbooks/verify_audit.yml", "-i", "inventories/sandbox",
                                    "-e", f"trdrhub_incident_id={incident}", "-e", f"verify_audit_table={audit_table[0]}",
                                    *args, extra_env=env)
    run.incident = incident
    run.dir = tmp_path / "incidents" / incident
    return run


def verdicts(incident_dir):
    entries = read_file_ledger(incident_dir / "ledger.jsonl")
    return entries, [e for e in entries if e["event"] == "verification"]


def test_a_valid_audit_log_passes_and_its_heads_are_pinned(verify, trdrhub_db, ansible):
    run = verify()
    flat = " ".join(run.output.split())
    assert run.rc == 0, run.output
    assert f"[{verify.incident}] Audit trail verification: PASSED" in flat
    assert "application audit log: VALID - 30 entries in 3 tenant chain(s)" in flat
    assert "recorded heads: none yet (first verification)" in flat
    heads = json.loads((verify.dir / "audit_heads.json").read_text())
    assert sorted(heads) == ["tenant-a", "tenant-b", "tenant-c"]
    assert heads["tenant-c"]["head"]["sequence_number"] == 30
    entries, (verdict,) = verdicts(verify.dir)
    check_chain(entries, verify.incident)
    assert verdict["phase"] == "verify" and verdict["data"]["passed"] is True
    assert verdict["data"]["audit"]["heads"]["tenant-c"] == heads["tenant-c"]["head"]
    assert verdict["data"]["ledger"]["state"] == "valid"
    assert trdrhub_db["app"]["password"] not in (verify.dir / "ledger.jsonl").read_text()

    # check mode verifies again and writes nothing: no verdict, no new pinned heads
    snapshot = Snapshot(verify.dir.parent.parent, ansible.workdir / "incidents")
    look = verify("--check")
    assert look.rc == 0, look.output
    assert f"[{verify.incident}] Audit trail verification: PASSED" in " ".join(look.output.split())
    assert snapshot.new_or_changed() == []


def test_a_truncated_audit_log_fails_against_the_pinned_heads(verify, audit_table):
    assert verify().rc == 0
    pinned = (verify.dir / "audit_heads.json").read_text()
    name, conn = audit_table
    conn.cursor().execute(f"DELETE FROM {name} WHERE sequence_number = 30")   # tenant-c's last entry

    run = verify()
    flat = " ".join(run.output.split())
    assert run.rc != 0
    assert "Audit trail verification: FAILED" in flat and "truncated" in flat
    assert "recorded heads: compared with" in flat
    assert (verify.dir / "audit_heads.json").read_text() == pinned   # a broken chain is no new baseline
    entries, (first, second) = verdicts(verify.dir)
    check_chain(entries, verify.incident)
    assert (first["data"]["passed"], second["data"]["passed"]) == (True, False)
    assert second["data"]["audit"]["violation_counts"] == {"truncated": 1}


def test_a_tampered_incident_ledger_fails(verify):
    assert verify().rc == 0
    path = verify.dir / "ledger.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["actor"] = "local:someone-else"   # rewritten after the fact, hash left as it was
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")

    run = verify()
    flat = " ".join(run.output.split())
    assert run.rc != 0
    assert "incident ledger: BROKEN" in flat and "hash_mismatch" in flat
