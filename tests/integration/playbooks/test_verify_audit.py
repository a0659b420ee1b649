"""playbooks/verify_audit.yml (runbook phase 2.3) against the harness PostgreSQL and a file ledger.

A valid audit log passes and pins its heads; a truncated log fails against the pinned heads;
a tampered incident ledger fails too. Every verdict is recorded in the ledger.

One incident goes through all of it, as an operator's would (``scenario``): a first run that passes,
a check-mode run, a run after the last entry of the audit log was deleted, and - with that entry put
back - a run after an entry of the incident ledger was rewritten. Each test checks one part of it.
"""
from __future__ import annotations

import json
import shutil
import uuid
from types import SimpleNamespace

import pytest
from _itest_audit import audit_rows, copy_rows, create_audit_table
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot

# The first test sets up the whole scenario (five ansible-playbook runs).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]


@pytest.fixture(scope="module")
def audit_table(pg_server, trdrhub_db):
    """30 valid entries of three tenants in a table of their own, readable by trdrhub_app."""
    name = "itest_va_" + uuid.uuid4().hex[:8]
    rows = list(audit_rows(30))
    conn = pg_server.connect(dbname="trdrhub")
    try:
        create_audit_table(conn, name)
        copy_rows(conn, name, rows)
        conn.cursor().execute(f"GRANT SELECT ON {name} TO {trdrhub_db['app']['user']}")
        yield SimpleNamespace(name=name, conn=conn, rows=rows)
        conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def verify(ansible, pg_server, trdrhub_db, audit_table, tmp_path_factory):
    home = tmp_path_factory.mktemp("verify_audit")
    incident = "INC-VA-" + uuid.uuid4().hex[:6]
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"], "TRDRHUB_LEDGER_DIR": str(home / "incidents")}
    # verify_audit.yml acts on an existing incident (an unknown id is refused): give it a ledger first.
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"}, extra_env=env)
    assert not opened.failed, opened.output

    def run(*args):
        return ansible.run_playbook("playbooks/verify_audit.yml", "-i", "inventories/sandbox",
                                    "-e", f"trdrhub_incident_id={incident}", "-e", f"verify_audit_table={audit_table.name}",
                                    *args, extra_env=env)
    run.incident = incident
    run.home = home
    run.dir = home / "incidents" / incident
    return run


@pytest.fixture(scope="module")
def scenario(verify, audit_table, ansible):
    """The runs of one incident, in order, with what each left behind."""
    heads, ledger = verify.dir / "audit_heads.json", verify.dir / "ledger.jsonl"
    out = SimpleNamespace()

    out.passed = verify()
    assert out.passed.rc == 0, out.passed.output   # every later step builds on this run
    out.heads_after_pass, out.ledger_after_pass = heads.read_text(), keep(ledger, verify.home / "ledger.after_pass.jsonl")

    snapshot = Snapshot(verify.home, ansible.workdir / "incidents")
    out.checked = verify("--check")
    out.written_in_check_mode = snapshot.new_or_changed()

    audit_table.conn.cursor().execute(f"DELETE FROM {audit_table.name} WHERE sequence_number = 30")   # tenant-c's last entry
    out.truncated = verify()
    out.heads_after_truncation, out.ledger_after_truncation = heads.read_text(), keep(ledger, verify.home / "ledger.after_truncation.jsonl")

    copy_rows(audit_table.conn, audit_table.name, [audit_table.rows[29]])   # the audit log is whole again
    lines = ledger.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["actor"] = "local:someone-else"   # rewritten after the fact, hash left as it was
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    ledger.write_text("\n".join(lines) + "\n")
    out.tampered = verify()
    return out


def keep(ledger, copy):
    """A copy of the ledger as it is now (outside the incidents home), for the tests to read after later runs."""
    shutil.copyfile(ledger, copy)
    return copy


def verdicts(ledger):
    entries = read_file_ledger(ledger)
    return entries, [e for e in entries if e["event"] == "verification"]


def test_a_valid_audit_log_passes_and_its_heads_are_pinned(scenario, verify, trdrhub_db):
    run = scenario.passed
    flat = " ".join(run.output.split())
    assert run.rc == 0, run.output
    assert f"[{verify.incident}] Audit trail verification: PASSED" in flat
    assert "application audit log: VALID - 30 entries in 3 tenant chain(s)" in flat
    assert "recorded heads: none yet (first verification)" in flat
    heads = json.loads(scenario.heads_after_pass)
    assert sorted(heads) == ["tenant-a", "tenant-b", "tenant-c"]
    assert heads["tenant-c"]["head"]["sequence_number"] == 30
    entries, (verdict,) = verdicts(scenario.ledger_after_pass)
    check_chain(entries, verify.incident)
    assert verdict["phase"] == "verify" and verdict["data"]["passed"] is True
    assert verdict["data"]["audit"]["heads"]["tenant-c"] == heads["tenant-c"]["head"]
    assert verdict["data"]["ledger"]["state"] == "valid"
    assert trdrhub_db["app"]["password"] not in scenario.ledger_after_pass.read_text()

    # check mode verifies again and writes nothing: no verdict, no new pinned heads
    look = scenario.checked
    assert look.rc == 0, look.output
    assert f"[{verify.incident}] Audit trail verification: PASSED" in " ".join(look.output.split())
    assert scenario.written_in_check_mode == []


def test_a_truncated_audit_log_fails_against_the_pinned_heads(scenario, verify):
    assert scenario.passed.rc == 0
    run = scenario.truncated
    flat = " ".join(run.output.split())
    assert run.rc != 0
    assert "Audit trail verification: FAILED" in flat and "truncated" in flat
    assert "recorded heads: compared with" in flat
    assert scenario.heads_after_truncation == scenario.heads_after_pass   # a broken chain is no new baseline
    entries, (first, second) = verdicts(scenario.ledger_after_truncation)
    check_chain(entries, verify.incident)
    assert (first["data"]["passed"], second["data"]["passed"]) == (True, False)
    assert second["data"]["audit"]["violation_counts"] == {"truncated": 1}


def test_a_tampered_incident_ledger_fails(scenario):
    assert scenario.passed.rc == 0
    run = scenario.tampered
    flat = " ".join(run.output.split())
    assert run.rc != 0
    assert "incident ledger: BROKEN" in flat and "hash_mismatch" in flat
    # the ledger alone fails this run: the audit log, whole again, matches the heads pinned by the first run
    assert "application audit log: VALID - 30 entries in 3 tenant chain(s)" in flat and "recorded heads: compared with" in flat
