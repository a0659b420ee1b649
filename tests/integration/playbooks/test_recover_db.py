"""playbooks/recover_db.yml end to end: evidence, the approval gate voted on by other processes, restore, verify."""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from _itest_approval import vote, wait_for_request
from _itest_backup import BACKUP_ID, databases, drop_database, dump, make_source, query
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

SOURCE = "itest_recplay_src"
PLAYBOOK = "playbooks/recover_db.yml"


@pytest.fixture(scope="module")
def backup(pg_server, trdrhub_db, tmp_path_factory):
    make_source(pg_server, SOURCE)
    path = dump(pg_server, SOURCE, tmp_path_factory.mktemp("recplay") / f"{BACKUP_ID}.sql.gz")
    yield path
    drop_database(pg_server, SOURCE)


class Recovery:
    """One incident: its ledger root, the playbook's variables, the gate process and the votes."""

    def __init__(self, ansible, pg_server, backup, tmp_path):
        self.ansible, self.tmp = ansible, tmp_path
        self.incident = "INC-REC-" + uuid.uuid4().hex[:6]
        self.target = "itest_recplay_" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.hosts = tmp_path / "hosts.ini"
        self.hosts.write_text(f"[db_controllers]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice"}
        self.vars = {
            "trdrhub_incident_id": self.incident,
            "recover_db_login_host": pg_server.host, "recover_db_login_port": pg_server.port,
            "recover_db_login_user": pg_server.superuser, "recover_db_login_password": pg_server.password,
            "recover_db_backup": str(backup), "recover_db_target_db": self.target, "recover_db_source_db": SOURCE,
            "recover_db_approval_poll_interval": 0.3,
        }
        self.proc = None

    def argv(self, *extra, **overrides):
        return [PLAYBOOK, "-i", self.hosts, "-e", json.dumps(dict(self.vars, **overrides)), *extra]

    def run(self, *extra, **overrides):
        return self.ansible.run_playbook(*self.argv(*extra, **overrides), extra_env=self.env, timeout=240)

    def start(self, **overrides):
        self.proc = self.ansible.start_playbook(*self.argv(**overrides), extra_env=self.env)

    def finish(self):
        output = self.proc.communicate(timeout=240)[0]
        return self.proc.returncode, output

    def request_id(self, timeout=90):
        return wait_for_request(self.root / self.incident / "approvals", self.proc, timeout)

    def vote(self, rid, decision, user):
        return vote(self.ansible, self.hosts, self.env, rid, decision, user)

    def ledger(self):
        return read_file_ledger(self.root / self.incident / "ledger.jsonl")

    def records(self, event):
        return [e for e in self.ledger() if e["event"] == event]


@pytest.fixture
def recovery(ansible, pg_server, backup, tmp_path):
    made = []

    def make():
        made.append(Recovery(ansible, pg_server, backup, tmp_path))
        return made[-1]

    yield make
    for rec in made:
        if rec.proc is not None and rec.proc.poll() is None:
            rec.proc.kill()
            rec.proc.communicate()
        drop_database(pg_server, rec.target)


def flat(text):
    return " ".join(text.split())


def test_check_mode_shows_the_evidence_creates_nothing_and_checks_the_service(recovery, pg_server):
    rec = recovery()
    snapshot = Snapshot(rec.tmp, Path(rec.vars["recover_db_backup"]).parent)
    run = rec.run("--check", recover_db_service_name="postgresql", recover_db_service_become=False)
    assert run.rc == 0, run.output
    out = flat(run.output)
    assert "Database recovery evidence" in out and f"target database: {rec.target} (create)" in out
    assert "matches the sidecar checksum" in out and "CHECK MODE, nothing was created" in out
    assert "Restart the PostgreSQL service through the service manager" in out
    assert "service restart: service postgresql restarted on localhost" in out   # the evidence names it
    assert "service restart: service postgresql restarted on localhost (check mode, not run)" in out
    assert rec.target not in databases(pg_server)
    assert pg_server.password not in run.output
    assert snapshot.new_or_changed() == []


def test_store_mode_approved_by_two_others_restores_and_a_rerun_is_unchanged(recovery, pg_server):
    rec = recovery()
    rec.start(recover_db_approval_mode="store", recover_db_maintenance=True)
    rid = rec.request_id()
    assert rec.target not in databases(pg_server)   # nothing before the approval
    request = json.loads((rec.root / rec.incident / "approvals" / f"{rid}.json").read_text())
    assert request["action"] == "restore_db" and request["evidence"]["target_db"] == rec.target
    assert request["evidence"]["checksum"]["ok"] is True
    for approver in ("bob", "carol"):   # restore_db at P1 needs two approvers by default
        vote = rec.vote(rid, "approve", approver)
        assert vote.rc == 0, vote.output
    rc, output = rec.finish()
    assert rc == 0, output
    out = flat(output)
    assert f"RESTORED into the new database {rec.target}" in out and "audit chain: valid" in out
    assert "NEXT MANUAL STEP (this playbook never does it)" in out
    assert "Service restart skipped: recover_db_service_name and recover_db_service_command are empty (not configured)" in out
    assert rec.target in databases(pg_server)
    assert query(pg_server, rec.target, "SELECT count(*) FROM audit_log_entries") == \
        query(pg_server, SOURCE, "SELECT count(*) FROM audit_log_entries")
    assert query(pg_server, rec.target, "SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NULL")[0][0] == 0
    decision = rec.records("decision")[-1]["data"]
    assert decision["confirmed"] is True and sorted(decision["approval"]["approvers"]) == ["awx:bob", "awx:carol"]
    verification = rec.records("verification")[-1]["data"]
    assert verification["verified"] is True and verification["audit_chain"]["is_valid"] is True
    assert pg_server.password not in output + (rec.root / rec.incident / "ledger.jsonl").read_text()

    again = rec.run(recover_db_confirm=True)
    assert again.rc == 0, again.output
    assert f"ALREADY RESTORED, {rec.target} holds this backup" in flat(again.output)
    assert len(rec.records("decision")) == 1   # nothing to approve the second time


def test_store_mode_denied_restores_nothing(recovery, pg_server):
    rec = recovery()
    rec.start(recover_db_approval_mode="store")
    rid = rec.request_id()
    vote = rec.vote(rid, "deny", "bob")
    assert vote.rc == 0, vote.output
    rc, output = rec.finish()
    assert rc != 0
    assert "Not approved, nothing was created" in flat(output)
    assert rec.target not in databases(pg_server)
    decision = rec.records("decision")[-1]["data"]
    assert decision["confirmed"] is False


def test_restart_only_refuses_without_a_method_and_leaves_an_answering_server_alone(recovery, pg_server):
    rec = recovery()
    run = rec.run(recover_db_restore=False, recover_db_backup=None)
    assert run.rc != 0
    assert "recover_db_restore=false restarts the PostgreSQL service and nothing is configured to do it" in flat(run.output)
    marker = rec.tmp / "restarted"
    run = rec.run(recover_db_restore=False, recover_db_backup=None, recover_db_approval_mode="store",
                  recover_db_service_command=["touch", str(marker)], recover_db_service_become=False)
    assert run.rc == 0, run.output
    out = flat(run.output)
    assert "answers: yes, PostgreSQL" in out and "UNCHANGED" in out and "nothing was restarted" in out
    assert not marker.exists() and not (rec.root / rec.incident / "approvals").exists()   # no gate, no restart
    assert rec.target not in databases(pg_server)


def test_restart_only_asks_the_gate_runs_the_command_and_fails_when_the_server_stays_down(recovery, tmp_path):
    rec = recovery()
    marker = tmp_path / "restarted"
    dead = {"recover_db_login_host": "127.0.0.1", "recover_db_login_port": 9, "recover_db_connect_timeout": 2}
    check = rec.run("--check", recover_db_restore=False, recover_db_backup=None,
                    recover_db_service_command=["touch", str(marker)], recover_db_service_become=False, **dead)
    assert check.rc == 0, check.output
    assert "CHECK MODE, nothing was restarted (would restart with command touch" in flat(check.output)
    assert not marker.exists()
    rec.start(recover_db_restore=False, recover_db_backup=None, recover_db_approval_mode="store",
              recover_db_service_command=["touch", str(marker)], recover_db_service_become=False,
              recover_db_service_wait=2, **dead)
    rid = rec.request_id()
    assert not marker.exists()   # nothing before the approval
    request = json.loads((rec.root / rec.incident / "approvals" / f"{rid}.json").read_text())
    assert request["action"] == "restart_db" and request["required"] == 1
    assert request["evidence"]["method"] == f"command touch {marker} on localhost"
    vote = rec.vote(rid, "approve", "bob")
    assert vote.rc == 0, vote.output
    rc, output = rec.finish()
    assert rc != 0 and marker.exists()
    out = flat(output)
    assert "NOT RECOVERED, 127.0.0.1:9 still does not answer" in out
    verdicts = [e for e in rec.records("verification") if (e.get("data") or {}).get("method")]
    assert verdicts and verdicts[-1]["data"]["answering"] is False
