"""Check mode writes nothing: a ``--check`` run of any playbook leaves every directory it could write as it was.

Each playbook's check-mode run is snapshotted where that playbook is already set up against the harness
(``_itest_snapshot.Snapshot``: the ledger directory, the incident directories, the work and output
directories, before and after). ``COVERED`` names that test file for every playbook, so a new playbook
without such a test fails here. contain_db.yml, whose own tests run for real, is snapshotted here:
against an incident that already has a ledger and sessions that would be signalled; so is status.yml.
"""
from __future__ import annotations

import json
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot, recap
from trdrhub_harness.workload import INCIDENT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

HERE = REPO_ROOT / "tests" / "integration"
# playbook -> the test file (under tests/integration) that snapshots its --check run
COVERED = {
    "approve.yml": "plugins/modules/test_approval.py",
    "assign_commander.yml": "test_check_mode_writes_nothing.py",
    "block_ips.yml": "playbooks/test_block_ips_unblock_ips.py",
    "communicate.yml": "playbooks/test_communicate.py",
    "config_rollback.yml": "playbooks/test_config_rollback.py",
    "contain_app.yml": "playbooks/test_contain_app_recover_app_rollback.py",
    "contain_db.yml": "test_check_mode_writes_nothing.py",
    "contain_security.yml": "playbooks/test_contain_security.py",
    "escalate.yml": "playbooks/test_escalate.py",
    "investigate.yml": "playbooks/test_investigate.py",
    "maintain_db.yml": "playbooks/test_maintain_db.py",
    "notified.yml": "playbooks/test_notified.py",
    "pir.yml": "playbooks/test_pir.py",
    "recover_app.yml": "playbooks/test_contain_app_recover_app_rollback.py",
    "recover_db.yml": "playbooks/test_recover_db.py",
    "resolve.yml": "test_check_mode_writes_nothing.py",
    "respond.yml": "playbooks/test_respond.py",
    "respond_p1.yml": "playbooks/test_respond_p1.py",
    "respond_p2.yml": "playbooks/test_respond.py",
    "respond_p3.yml": "playbooks/test_respond.py",
    "respond_p4.yml": "playbooks/test_respond.py",
    "rollback.yml": "playbooks/test_contain_app_recover_app_rollback.py",
    "rotate_secrets.yml": "plugins/modules/test_rotate_secrets.py",
    "status.yml": "test_check_mode_writes_nothing.py",
    "triage.yml": "playbooks/test_triage.py",
    "unblock_ips.yml": "playbooks/test_block_ips_unblock_ips.py",
    "use_pooler.yml": "playbooks/test_use_pooler.py",
    "verify.yml": "playbooks/test_verify.py",
    "verify_audit.yml": "playbooks/test_verify_audit.py",
}


def test_every_playbook_has_a_check_mode_snapshot():
    playbooks = sorted(p.name for p in (REPO_ROOT / "playbooks").glob("*.yml"))
    missing = [p for p in playbooks if p not in COVERED]
    assert not missing, f"no check-mode snapshot test for {missing}: add one (_itest_snapshot.Snapshot) and list it in COVERED"
    for playbook, test_file in COVERED.items():
        text = (HERE / test_file).read_text()
        assert "Snapshot(" in text and ("--check" in text or "check=True" in text), f"{test_file} snapshots no --check run"
        assert playbook.removesuffix(".yml") in text, f"{test_file} does not run {playbook}"


def test_contain_db_in_check_mode_signals_and_writes_nothing(ansible, pg_server, trdrhub_db, incident, app, tmp_path):
    inc = incident()
    inc.long_running(2, seconds=240, application_name=app + "-api")
    inc.wait_ready()
    inc.wait_older_than(1.5, timeout=30)
    victims = inc.pids(kind=INCIDENT)
    incident_id = "INC-CHECK-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_OPS_PASSWORD": trdrhub_db["ops"]["password"], "TRDRHUB_LEDGER_DIR": str(root)}
    opened = ansible.run("ledger_record", {"incident_id": incident_id, "event": "note", "msg": "opened for the test"},
                         extra_env=env)
    assert not opened.failed, opened.output
    before = read_file_ledger(root / incident_id / "ledger.jsonl")

    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    variables = {"trdrhub_incident_id": incident_id, "contain_db_applications": [app + "*"], "contain_db_min_duration": 1,
                 "contain_db_approval_mode": "store", "trdrhub_approval_policy": {}}
    run = ansible.run_playbook(REPO_ROOT / "playbooks" / "contain_db.yml", "-i", "inventories/sandbox",
                               "-e", json.dumps(variables), "--check", extra_env=env)
    assert run.rc == 0, run.output
    text = " ".join(run.output.split())
    assert f"{len(victims)} session(s) match and would be signalled" in text
    assert "INCIDENT LEDGER: check mode - nothing recorded" in text
    assert inc.alive(victims) == set(victims)
    assert snapshot.new_or_changed() == [] and read_file_ledger(root / incident_id / "ledger.jsonl") == before
    assert not (root / incident_id / "approvals").exists()
    assert recap(run.output), run.output


def test_status_in_check_mode_writes_nothing(ansible, tmp_path):
    incident_id = "INC-CHECK-" + uuid.uuid4().hex[:6]
    env = {"TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")}
    opened = ansible.run("incident", {"incident_id": incident_id, "title": "Queue stuck", "priority": "P2"}, extra_env=env)
    assert not opened.failed, opened.output
    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    run = ansible.run_playbook(REPO_ROOT / "playbooks" / "status.yml", "-i", "inventories/sandbox",
                               "-e", f"trdrhub_incident_id={incident_id}", "--check", extra_env=env)
    assert run.rc == 0, run.output
    assert incident_id in run.output and snapshot.new_or_changed() == []
    assert all(r["changed"] == 0 for r in recap(run.output).values()), run.output


@pytest.mark.parametrize("playbook, extra", [
    ("assign_commander", ["-e", "commander=ic:maria"]),
    ("resolve", ["-e", "resolution=Pool raised to 40", "-e", "root_cause=Pool too small for the batch job"]),
])
def test_commander_and_resolve_in_check_mode_write_nothing(ansible, tmp_path, playbook, extra):
    incident_id = "INC-CHECK-" + uuid.uuid4().hex[:6]
    env = {"TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")}
    opened = ansible.run("incident", {"incident_id": incident_id, "title": "Queue stuck", "priority": "P2"}, extra_env=env)
    assert not opened.failed, opened.output
    ledger = tmp_path / "incidents" / incident_id / "ledger.jsonl"
    before = read_file_ledger(ledger)
    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    run = ansible.run_playbook(REPO_ROOT / "playbooks" / f"{playbook}.yml", "-i", "inventories/sandbox",
                               "-e", f"trdrhub_incident_id={incident_id}", *extra, "--check", extra_env=env)
    assert run.rc == 0, run.output
    assert snapshot.new_or_changed() == [] and read_file_ledger(ledger) == before
