"""The approval gate through real ansible-playbook runs: a gate waits while other processes vote.

The requester is the AWX user of the gate's run (AWX_USER_NAME=alice); approvers are other
processes running as other AWX users: ansible-playbook with playbooks/approve.yml where the vote
as an approver casts it is tested (its options, its output, its check mode, concurrent runs), the
approval_vote module's entry point where a rule of the vote is (``Drill.cast``). What ran after
the gate is told by a marker file the task after it writes.
"""
from __future__ import annotations

import json
import sys
import time
import uuid

import pytest
from _itest_approval import cast, vote, vote_argv, wait_for_request
from _itest_ledger import check_chain, read_file_ledger, write_playbook
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def hosts(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


class Drill:
    """One incident: its ledger root, the gate playbook, votes."""

    def __init__(self, ansible, hosts, tmp_path, **env):
        self.ansible, self.hosts, self.tmp = ansible, hosts, tmp_path
        self.incident = "INC-APR-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.marker = tmp_path / "marker.json"
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice", **env}
        self.gate_proc = None

    def playbook(self, **gate):
        args = {"incident_id": self.incident, "action": "terminate_sessions", "priority": "P1", "summary": "terminate 2 sessions",
                "evidence": {"pids": [101, 102], "login_password": "itest-hunter2"}, "timeout": 60, "poll_interval": 0.3, **gate}
        return write_playbook(self.tmp / "gate.yml", [
            {"name": "Approval", "trdrhub.incident.approval": args, "register": "gate"},
            {"name": "Destructive step",
             "ansible.builtin.copy": {"content": "{{ gate | to_json }}", "dest": str(self.marker), "mode": "0600"}},
        ], vars_={"trdrhub_incident_id": self.incident})

    def start(self, *args, **gate):
        self.gate_proc = self.ansible.start_playbook(self.playbook(**gate), "-i", self.hosts, *args, extra_env=self.env)
        return self.gate_proc

    def run(self, *args, **gate):
        return self.ansible.run_playbook(self.playbook(**gate), "-i", self.hosts, *args, extra_env=self.env)

    def finish(self, timeout=120):
        output = self.gate_proc.communicate(timeout=timeout)[0]
        return self.gate_proc.returncode, output

    def request_id(self, timeout=60):
        return wait_for_request(self.root / self.incident / "approvals", self.gate_proc, timeout)

    def request_file(self, rid):
        return self.root / self.incident / "approvals" / f"{rid}.json"

    def vote_argv(self, rid, decision, *extra):
        return vote_argv(self.hosts, rid, decision, *extra)

    def vote(self, rid, decision, user, *extra, env=None):
        """A vote from ansible-playbook playbooks/approve.yml (``extra``: its -e options)."""
        return vote(self.ansible, self.hosts, self.env, rid, decision, user, *extra, more_env=env)

    def cast(self, rid, decision, user, env=None, **params):
        """A vote from the approval_vote module's entry point (``params``: its options)."""
        return cast(self.ansible, self.env, rid, decision, user, more_env=env, **params)

    def ledger(self):
        entries = read_file_ledger(self.root / self.incident / "ledger.jsonl")
        check_chain(entries, self.incident)
        return entries

    def approvals(self):
        return [e for e in self.ledger() if e["event"] == "approval"]

    def result(self):
        return json.loads(self.marker.read_text())


def flat(text):
    return " ".join(text.split())


@pytest.fixture
def drill(ansible, hosts, tmp_path):
    made = []

    def make(**env):
        made.append(Drill(ansible, hosts, tmp_path, **env))
        return made[-1]

    yield make
    for d in made:
        if d.gate_proc is not None and d.gate_proc.poll() is None:
            d.gate_proc.kill()
            d.gate_proc.communicate()


def test_approved_by_a_second_person_while_the_gate_polls(drill, ansible):
    d = drill()
    d.start()
    rid = d.request_id()
    stored = json.loads(d.request_file(rid).read_text())
    assert stored["status"] == "pending" and stored["requester"] == "awx:alice" and stored["required"] == 1
    assert stored["evidence"] == {"pids": [101, 102], "login_password": "<redacted>"}

    # a vote in check mode is shown, not cast: no vote file, no ledger entry (the gate only reads while it polls)
    snapshot = Snapshot(d.root, ansible.workdir / "incidents")
    look = d.vote(rid, "approve", "bob", "--check")
    assert look.rc == 0, look.output
    assert f"Check mode: awx:bob would vote approve on {rid}. Nothing was stored or recorded" in flat(look.output)
    assert snapshot.new_or_changed() == []

    vote = d.vote(rid, "approve", "bob")
    assert vote.rc == 0, vote.output
    assert "quorum reached" in flat(vote.output)
    rc, output = d.finish()
    assert rc == 0, output
    result = d.result()
    assert result["approved"] is True and result["approvers"] == ["awx:bob"] and result["status"] == "approved"
    assert json.loads(d.request_file(rid).read_text())["status"] == "approved"
    kinds = [(e["data"]["approval"], e["actor"]) for e in d.approvals()]
    assert kinds == [("request", "awx:alice"), ("vote", "awx:bob"), ("outcome", "awx:alice")]
    assert "itest-hunter2" not in (d.root / d.incident / "ledger.jsonl").read_text() + output + vote.output
    verified = ansible.run("audit_chain_verify", {"source": "ledger_file", "path": str(d.root / d.incident)}, via_playbook=False)
    assert verified["is_valid"] is True, verified.result


def test_one_denial_denies_and_nothing_after_the_gate_runs(drill):
    d = drill()
    d.start()
    rid = d.request_id()
    vote = d.vote(rid, "deny", "bob", "-e", "comment=wrong sessions")
    assert vote.rc == 0, vote.output
    rc, output = d.finish()
    assert rc != 0
    assert f"DENIED {rid} by awx:bob" in flat(output)
    assert not d.marker.exists()
    outcome = d.approvals()[-1]
    assert outcome["data"]["approval"] == "outcome" and outcome["data"]["status"] == "denied"
    late = d.cast(rid, "approve", "carol")
    assert late.rc != 0 and "is denied, not pending" in flat(late.output)


def test_a_timeout_is_a_denial(drill):
    d = drill()
    d.start(timeout=3)
    rid = d.request_id()
    rc, output = d.finish()
    assert rc != 0
    assert f"NOT approved: {rid} timed out after 3s" in flat(output)
    assert "Traceback" not in output
    assert not d.marker.exists()
    assert json.loads(d.request_file(rid).read_text())["status"] == "expired"
    assert d.approvals()[-1]["data"]["status"] == "expired"
    late = d.cast(rid, "approve", "bob")
    assert late.rc != 0 and "votes are closed" in flat(late.output)


def test_the_requester_cannot_approve_their_own_request(drill):
    d = drill()
    d.start()
    rid = d.request_id()
    own = d.cast(rid, "approve", "alice")
    assert own.rc != 0
    assert "awx:alice requested" in flat(own.output) and "two-person rule" in flat(own.output)
    laundered = d.vote(rid, "approve", "alice", "-e", "approver=mallory")   # the name given to the playbook
    assert laundered.rc != 0 and "two-person rule" in flat(laundered.output)
    named = d.cast(rid, "approve", "bob", approver="local:ALICE")
    assert named.rc != 0 and "two-person rule" in flat(named.output)
    assert not list((d.root / d.incident / "approvals").glob("*.vote.*"))
    assert d.cast(rid, "deny", "bob").rc == 0
    rc, _output = d.finish()
    assert rc != 0 and not d.marker.exists()


def test_two_approvers_one_is_not_enough_and_one_person_counts_once(drill):
    d = drill()
    d.start(action="rotate_secrets")
    rid = d.request_id()
    assert d.vote(rid, "approve", "bob").rc == 0
    voted = time.monotonic()
    again = d.cast(rid, "approve", "bob")
    assert again.rc != 0 and "one account counts once" in flat(again.output), again.output
    time.sleep(max(0.0, voted + 1.5 - time.monotonic()))   # the gate polls every 0.3 s
    assert d.gate_proc.poll() is None, "one approval completed a two-approver request"
    assert d.cast(rid, "approve", "carol").rc == 0
    rc, output = d.finish()
    assert rc == 0, output
    assert sorted(d.result()["approvers"]) == ["awx:bob", "awx:carol"]
    assert [e["data"]["approval"] for e in d.approvals()] == ["request", "vote", "vote", "outcome"]


def test_claimed_names_from_the_requesters_os_account_do_not_count(drill):
    """Outside AWX and Rundeck the two-person rule counts OS accounts, not names given with -e approver=."""
    d = drill(AWX_USER_NAME=None)   # the requester is this OS account
    # The gate times out: its timeout only has to outlast the three votes (module runs, about 0.7 s of CPU each).
    d.start(action="rotate_secrets", timeout=30)
    rid = d.request_id()
    stored = json.loads(d.request_file(rid).read_text())
    assert stored["requester_principal"].startswith("os:") and stored["required"] == 2
    for name in ("bob", "carol"):
        claimed = d.cast(rid, "approve", None, approver=name)
        text = flat(claimed.output)
        assert claimed.rc != 0 and "would not count" in text and "the requester's own account" in text, text
    assert not list((d.root / d.incident / "approvals").glob(f"{rid}.vote.*.json"))
    other = d.cast(rid, "approve", None, env={"RD_JOB_USERNAME": "carol", "RD_JOB_EXECID": "77"})
    assert other.rc == 0, other.output
    # a vote file written past the vote command (by hand) from the requester's account is shown, not counted
    slipped = {"v": 1, "request_id": rid, "approver": "mallory", "identity": "mallory", "decision": "approve",
               "evidence_hash": stored["evidence_hash"], "comment": None, "recorded_by": "local:root",
               "actor_source": "local", "principal": stored["requester_principal"], "ts": stored["created_at"]}
    (d.root / d.incident / "approvals" / f"{rid}.vote.mallory.json").write_text(json.dumps(slipped))
    rc, output = d.finish()
    text = flat(output)
    assert rc != 0 and "timed out" in text and "1 of 2 approval(s)" in text, text
    assert f"Vote of mallory on {rid} does NOT count: cast from {stored['requester_principal']}" in text
    assert "Votes that did not count: mallory" in text
    outcome = [e for e in d.approvals() if e["data"]["approval"] == "outcome"][0]["data"]
    assert outcome["approvers"] == ["rundeck:carol"] and outcome["ignored"][0]["approver"] == "mallory"


def test_concurrent_votes_from_two_processes_are_both_recorded(drill, ansible):
    d = drill()
    d.start(action="restore_db", priority="P4")
    rid = d.request_id()
    procs = [ansible.start_playbook(*d.vote_argv(rid, "approve"), extra_env=dict(d.env, AWX_USER_NAME=user))
             for user in ("bob", "carol")]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rc, output = d.finish()
    assert rc == 0, output
    votes = sorted(p.name for p in (d.root / d.incident / "approvals").glob(f"{rid}.vote.*.json"))
    assert votes == [f"{rid}.vote.bob.json", f"{rid}.vote.carol.json"]
    assert sorted(e["actor"] for e in d.approvals() if e["data"]["approval"] == "vote") == ["awx:bob", "awx:carol"]


def test_a_vote_on_other_evidence_and_an_altered_request_are_refused(drill):
    d = drill()
    d.start()
    rid = d.request_id()
    stale = d.vote(rid, "approve", "bob", "-e", "evidence_hash=0123456789abcdef")
    assert stale.rc != 0 and "the evidence changed since it was reviewed" in flat(stale.output)
    path = d.request_file(rid)
    request = json.loads(path.read_text())
    request["evidence"]["pids"].append(999)
    path.write_text(json.dumps(request))
    altered = d.cast(rid, "approve", "bob")
    assert altered.rc != 0 and "the request was altered after it was made" in flat(altered.output)
    rc, output = d.finish()
    assert rc != 0 and "the request was altered" in flat(output)
    assert not d.marker.exists()


def test_preapproved_by_an_awx_workflow(drill):
    d = drill()
    run = d.run("-e", "awx_job_id=4711", "-e", "awx_workflow_job_id=4700", "-e", "tower_user_name=alice", mode="preapproved")
    assert run.rc == 0, run.output
    result = d.result()
    assert result["approved"] is True and "AWX workflow job 4700 (job 4711)" in result["msg"]
    outcome = d.approvals()[-1]["data"]
    assert outcome["preapproval"]["awx"]["job_id"] == "4711" and outcome["preapproval"]["awx"]["workflow_job_id"] == "4700"
    assert outcome["preapproval"]["awx"]["variables"]["tower_user_name"] == "alice"


def test_preapproved_without_the_awx_workflow_fails_clearly(drill):
    d = drill()
    run = d.run("-e", "awx_job_id=4711", mode="preapproved")
    assert run.rc != 0
    assert "awx_workflow_job_id not set" in flat(run.output) and "Traceback" not in run.output
    assert not d.marker.exists()


def test_check_mode_reports_the_request_without_waiting(drill):
    d = drill()
    started = time.monotonic()
    run = d.run("--check")
    assert run.rc == 0, run.output
    assert time.monotonic() - started < 60
    assert "Check mode: would ask for approval" in flat(run.output)
    assert not (d.root / d.incident / "approvals").exists()


def test_prompt_mode_without_a_terminal_points_to_store_mode(drill):
    d = drill()
    run = d.run(mode="prompt")
    assert run.rc != 0
    assert "needs an interactive terminal" in flat(run.output) and "Use mode store" in flat(run.output)
    assert not d.marker.exists()


def test_postgres_store(drill, pg_server, trdrhub_db):
    table = "itest_approvals_" + uuid.uuid4().hex[:8]
    d = drill(TRDRHUB_LEDGER_DSN=pg_server.dsn("trdrhub"))
    d.start(store_backend="postgres", store_table=table)
    conn = pg_server.connect(dbname="trdrhub")
    try:
        deadline, rid = time.monotonic() + 60, None
        while rid is None and time.monotonic() < deadline:
            cur = conn.cursor()
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            if cur.fetchone()[0]:
                cur.execute(f"SELECT request_id FROM {table}")
                row = cur.fetchone()
                rid = row[0] if row else None
            time.sleep(0.3)
        assert rid, "no request row"
        extra = ("-e", "store_backend=postgres", "-e", f"store_table={table}")
        assert d.cast(rid, "approve", "alice", store_backend="postgres", store_table=table).rc != 0
        vote = d.vote(rid, "approve", "bob", *extra)
        assert vote.rc == 0, vote.output
        rc, output = d.finish()
        assert rc == 0, output
        cur = conn.cursor()
        cur.execute(f"SELECT status FROM {table} WHERE request_id = %s", (rid,))
        assert cur.fetchone()[0] == "approved"
        cur.execute(f"SELECT approver FROM {table}_votes WHERE request_id = %s", (rid,))
        assert [r[0] for r in cur.fetchall()] == ["bob"]
        assert [e["data"]["approval"] for e in d.approvals()] == ["request", "vote", "outcome"]
    finally:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {table}_votes, {table}")
        conn.close()


def test_contain_db_waits_for_an_approval_before_terminating(ansible, drill, pg_server, trdrhub_db, sessions, monitor, app):
    victim = sessions.active(app + "-api")
    time.sleep(1.2)
    d = drill(TRDRHUB_PG_HOST=pg_server.host, TRDRHUB_PG_PORT=str(pg_server.port),
              TRDRHUB_PG_OPS_PASSWORD=trdrhub_db["ops"]["password"])
    d.gate_proc = ansible.start_playbook(
        "playbooks/contain_db.yml", "-i", "inventories/sandbox", "-e", f"trdrhub_incident_id={d.incident}",
        "-e", json.dumps({"contain_db_applications": [app + "*"], "contain_db_min_duration": 1, "contain_db_approval_mode": "store",
                          "contain_db_approval_poll_interval": 0.3, "trdrhub_approval_policy": {}}),
        extra_env=d.env)
    rid = d.request_id()
    monitor.assert_killed(alive=[victim])
    request = json.loads(d.request_file(rid).read_text())
    assert request["evidence"]["pids"] == [victim.pid]
    assert d.cast(rid, "approve", "bob").rc == 0
    rc, output = d.finish(timeout=180)
    assert rc == 0, output
    monitor.assert_killed(killed=[victim])
    decision = [e for e in d.ledger() if e["event"] == "decision"][-1]["data"]
    assert decision["confirmed"] is True and decision["confirmed_by"] == f"approval {rid} (store)"
    assert decision["approval"]["approvers"] == ["awx:bob"]
