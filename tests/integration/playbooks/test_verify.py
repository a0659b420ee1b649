"""playbooks/verify.yml alone (runbook phase 4.2) against the harness PostgreSQL and a TRDR Hub health stub.

verify.yml alone fails on an application that is not ready and reports the checks it could not run as skipped.
"""
from __future__ import annotations

import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_http import StubServer, TrdrHubHealth
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot, recap

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def flat(text):
    return " ".join(text.split())


def test_verify_fails_on_an_unready_application_and_reports_what_it_skipped(ansible, tmp_path, pg_server, trdrhub_db):
    unready = TrdrHubHealth()
    unready.database = "error"
    incident = "INC-VERIFY-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root), "TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"], "TRDRHUB_REDIS_URL": None}
    # verify.yml acts on an existing incident (an unknown id is refused): give it a ledger first.
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"}, extra_env=env)
    assert not opened.failed, opened.output
    with StubServer(unready.routes()) as server:
        env["TRDRHUB_BASE_URL"] = server.url()
        snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
        look = ansible.run_playbook(REPO_ROOT / "playbooks" / "verify.yml", "-i", "inventories/sandbox", "--check",
                                    "-e", f"trdrhub_incident_id={incident}", "-e", "verify_http_retries=0", extra_env=env)
        assert "Verification (runbook 4.2): FAILED" in flat(look.output)
        assert snapshot.new_or_changed() == [] and all(r["changed"] == 0 for r in recap(look.output).values())
        run = ansible.run_playbook(REPO_ROOT / "playbooks" / "verify.yml", "-i", "inventories/sandbox",
                                   "-e", f"trdrhub_incident_id={incident}", "-e", "verify_http_retries=0", extra_env=env)
    assert run.rc != 0
    text = flat(run.output)
    assert "Verification (runbook 4.2): FAILED - 1 passed, 1 failed, 3 skipped" in text
    assert "/health/ready: HTTP status 503, expected 200" in text
    assert "SKIPPED queue: no Redis configured" in text and "SKIPPED functionality: no probes configured" in text
    entries = read_file_ledger(root / incident / "ledger.jsonl")
    check_chain(entries, incident)
    [verification] = [e for e in entries if e["event"] == "verification"]
    checks = {c["name"]: c["status"] for c in verification["data"]["checks"]}
    assert verification["data"]["verdict"] == "failed"
    assert checks == {"health": "failed", "functionality": "skipped", "database": "passed", "queue": "skipped",
                      "audit chain": "skipped"}
