"""playbooks/contain_security.yml end to end on localhost.

Access logs with known attacks (trdrhub_harness.accesslog), an audit table in the harness
PostgreSQL with one actor exporting for the first time, and the playbook run for real inside a
throwaway network namespace (its iptables is nobody else's): check mode blocks nothing; a denial
at the store-mode gate blocks nothing and the ledger says so; a pre-approved run blocks the
attackers (not the allowlisted one, not the normal clients) and the ledger holds every step.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import sys
import uuid

import _itest_audit as audit
import pytest
from _itest_ansible import REPO_ROOT
from _itest_approval import vote, wait_for_request
from _itest_ledger import check_chain
from _itest_netns import Netns
from _itest_rotate import RotationRole, create_log_table
from _itest_snapshot import Snapshot
from trdrhub_harness.accesslog import SCANNERS, AccessLogGenerator, Attack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

UTC = datetime.timezone.utc
CHAIN = "TRDRHUB-BLOCK"
ALLOWLIST = ["10.20.0.0/16"]
ATTACKS = [
    Attack("203.0.113.10", "sql_injection", count=60, start=10),
    Attack("203.0.113.13", "scanner", count=200, start=30, agent=SCANNERS[1]),
    Attack("203.0.113.14", "brute_force", count=400, start=50),
    Attack("10.20.0.9", "sql_injection", count=40, start=70),      # from the office: allowlisted, never blocked
]
ATTACKERS = {"203.0.113.10", "203.0.113.13", "203.0.113.14"}
NORMAL_ACTOR, EXPORTER = (str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{n}.security.itest")) for n in ("normal", "exporter"))
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def audit_story(now: datetime.datetime) -> list[dict]:
    """A week of reads by both actors, then today the exporter exports: the review must flag only it."""
    rows = []

    def add(when, actor, action):
        seq = len(rows) + 1
        rows.append({
            "id": str(uuid.uuid4()), "sequence_number": seq, "tenant_id": "tenant-a", "actor_id": actor,
            "actor_role": "analyst", "actor_ip": "10.0.0.1" if actor == NORMAL_ACTOR else "198.51.100.77",
            "actor_user_agent": "itest", "resource_type": "lc_document", "resource_id": f"LC-{seq:06d}",
            "resource_name": None, "action": action, "action_description": None, "severity": "medium",
            "before_hash": None, "after_hash": None, "prev_entry_hash": None,
            "entry_hash": hashlib.sha256(str(seq).encode()).hexdigest(), "event_metadata": "{}",
            "correlation_id": None, "created_at": when,
        })

    for day in range(1, 8):
        for hour in range(0, 24, 4):
            at = now - datetime.timedelta(days=day, hours=hour)
            add(at, NORMAL_ACTOR, "read")
            add(at, EXPORTER, "read")
    for hour in range(1, 6):
        add(now - datetime.timedelta(hours=hour), NORMAL_ACTOR, "read")
    for minute in range(3):
        add(now - datetime.timedelta(minutes=30 + minute), EXPORTER, "export")
    return rows


@pytest.fixture(scope="module")
def scenario(pg_server, trdrhub_db, login, tmp_path_factory):
    """The logs on disk, the audit table in PostgreSQL, and the variables every run shares."""
    now = datetime.datetime.now(UTC)
    logs = tmp_path_factory.mktemp("nginx")
    gen = AccessLogGenerator(start=now - datetime.timedelta(minutes=20), rate=50)
    log = gen.write(logs / "access.log", lines=6000, attacks=ATTACKS)
    assert set(log.expected()) == ATTACKERS | {"10.20.0.9"}

    dbname = audit.ensure_audit_db(pg_server)
    table = "itest_security_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=dbname)
    audit.create_audit_table(conn, table)
    audit.copy_rows(conn, table, audit_story(now))
    variables = {
        "contain_security_hosts": "edge",
        "contain_security_log_paths": [str(logs / "access.log*")],
        "contain_security_allowlist": ALLOWLIST,
        "contain_security_audit_table": table,
        "contain_security_review_options": {"business_hours": "00:00-00:00", "business_days": ALL_DAYS},
        # The unix socket: the play runs in its own network namespace, where 127.0.0.1 is not the harness's.
        **{f"contain_security_{k}": v for k, v in login["super_socket"].items()},
        "contain_security_login_db": dbname,
        "contain_security_block_expire_after": "2h",
    }
    yield {"vars": variables, "log": log}
    conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    conn.close()


class Run:
    """One incident: the inventory, the ledger, the playbook process (inside the namespace when there is one)."""

    def __init__(self, ansible, tmp_path, netns: Netns | None, variables: dict) -> None:
        self.ansible, self.netns = ansible, netns
        self.incident = "INC-SEC-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.hosts = tmp_path / "hosts.ini"
        self.hosts.write_text("[edge]\n"
                              f"localhost ansible_connection=local ansible_python_interpreter={sys.executable} "
                              "ansible_become=false\n")
        self.vars = {**variables, "trdrhub_incident_id": self.incident}
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice"}
        self.proc = None

    def start(self, *args, **extra):
        argv = self.ansible.playbook_argv(REPO_ROOT / "playbooks" / "contain_security.yml", "-i", self.hosts,
                                          "-e", json.dumps({**self.vars, **extra}), *args)
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns.name, *argv]
        self.proc = subprocess.Popen(argv, cwd=str(REPO_ROOT), env=self.ansible.env(self.env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self.proc

    def finish(self, timeout=300):
        try:
            output = self.proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"contain_security.yml still running after {timeout}s:\n{self.proc.communicate()[0]}") from None
        return self.proc.returncode, output

    def run(self, *args, **extra):
        self.start(*args, **extra)
        return self.finish()

    def request_id(self, timeout=120):
        return wait_for_request(self.root / self.incident / "approvals", self.proc, timeout)

    def vote(self, rid, decision, user):
        return vote(self.ansible, self.hosts, self.env, rid, decision, user)

    def ledger(self) -> list:
        path = self.root / self.incident / "ledger.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
        check_chain(entries, self.incident)
        return entries

    def steps(self) -> dict:
        """{data.step: [entries]} of the entries this role wrote."""
        out: dict = {}
        for entry in self.ledger():
            step = (entry.get("data") or {}).get("step") if isinstance(entry.get("data"), dict) else None
            if step:
                out.setdefault(step, []).append(entry)
        return out

    def blocked(self) -> dict:
        return self.netns.sources(CHAIN) if self.netns is not None else {}


@pytest.fixture
def netns(request):
    ns = Netns()
    request.addfinalizer(ns.delete)
    reason = ns.create()
    if reason:
        pytest.skip(f"a network namespace with iptables is needed to run the blocking for real: {reason}")
    return ns


@pytest.fixture
def run(ansible, tmp_path, netns, scenario):
    made = []

    def make():
        made.append(Run(ansible, tmp_path, netns, scenario["vars"]))
        return made[-1]

    yield make
    for r in made:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.kill()
            r.proc.communicate()


def flat(text: str) -> str:
    return " ".join(text.split())


def test_check_mode_scans_reviews_and_blocks_nothing(run):
    r = run()
    snapshot = Snapshot(r.root.parent)
    rc, output = r.run("--check", contain_security_confirm=True)
    assert rc == 0, output
    text = flat(output)
    for ip in ATTACKERS:
        assert ip in text
    assert EXPORTER in text and "sensitive actions: export x3" in text, output
    assert NORMAL_ACTOR not in text
    assert "would block 3" in text and "10.20.0.9/32: overlaps the allowlisted range 10.20.0.0/16" in text
    assert "CHECK MODE, nothing was blocked or rotated" in text
    assert not r.blocked()
    assert r.steps() == {}             # check mode records no finding, decision or block
    assert snapshot.new_or_changed() == []   # nor any other file


def test_denied_at_the_store_gate_blocks_nothing_and_the_ledger_says_so(run):
    r = run()
    r.start(contain_security_approval_mode="store", contain_security_approval_timeout=120,
            contain_security_approval_poll_interval=0.3)
    rid = r.request_id()
    request = json.loads((r.root / r.incident / "approvals" / f"{rid}.json").read_text())
    assert request["action"] == "block_ips"
    vote = r.vote(rid, "deny", "bob")
    assert vote.rc == 0, vote.output
    rc, output = r.finish()
    assert rc != 0
    assert "Not confirmed, nothing was blocked or rotated" in flat(output)
    assert not r.blocked()

    steps = r.steps()
    assert set(steps) >= {"scan", "review", "decision", "summary"} and "block" not in steps
    scan = steps["scan"][0]["data"]
    assert ATTACKERS <= set(scan["suspicious_ips"]) and "10.20.0.9" in scan["suspicious_ips"]
    review = steps["review"][0]["data"]
    assert [a["actor_id"] for a in review["flagged"]] == [EXPORTER]
    decision = steps["decision"][-1]["data"]
    assert decision["confirmed"] is False and set(decision["to_block"]) >= ATTACKERS
    assert "NOT APPROVED" in steps["summary"][-1]["data"]["message"]


def test_preapproved_blocks_the_attackers_and_records_every_step(run, scenario):
    r = run()
    rc, output = r.run(contain_security_confirm=True)
    assert rc == 0, output
    blocked = r.blocked()
    assert {src.split("/")[0] for src in blocked} == ATTACKERS
    assert all(r.incident in (comment or "") for comment in blocked.values())
    assert not any(src.startswith("10.20.") for src in blocked)
    assert not ({src.split("/")[0] for src in blocked} & scenario["log"].normal_ips)

    steps = r.steps()
    assert set(steps) >= {"scan", "review", "decision", "block", "summary"}
    assert steps["decision"][-1]["data"]["confirmed"] is True
    assert steps["decision"][-1]["data"]["confirmed_by"] == "variable contain_security_confirm"
    block = steps["block"][-1]["data"]
    assert block["blocked"] == 3 and block["failed_hosts"] == []
    refused = block["hosts"]["localhost"]["refused"]
    assert len(refused) == 1 and "10.20.0.9" in json.dumps(refused), refused
    assert "CONTAINED: 3 address(es) blocked on 1 host(s)" in steps["summary"][-1]["data"]["message"]
    # block_ips recorded its own decision (pre-approved by this play) after the play's gate.
    decisions = [e for e in r.ledger() if e["event"] == "decision"]
    assert len(decisions) >= 2 and decisions[0]["data"].get("step") == "decision"

    again_rc, again = r.run(contain_security_confirm=True)
    assert again_rc == 0, again
    assert r.blocked().keys() == blocked.keys()       # re-running blocks nothing twice


def test_rotation_is_approved_as_rotate_secrets_and_recorded(ansible, tmp_path, scenario, pg_server, trdrhub_db, login):
    """With blocking off no firewall is touched, so this runs without a namespace; the rotation is real."""
    create_log_table(pg_server)
    target = RotationRole(pg_server, "itest_secrot_", "itest-sec-")
    store = tmp_path / "api.env"
    store.write_text(f"APP_ENV=test\nDATABASE_PASSWORD={target.old}\n")
    store.chmod(0o640)
    try:
        r = Run(ansible, tmp_path, None, scenario["vars"])
        rotation = {f"rotate_secrets_{k}": v for k, v in login["super_tcp"].items()}
        rotation.update(rotate_secrets_role=target.role, rotate_secrets_path=str(store), rotate_secrets_min_age="0",
                        rotate_secrets_environment=target.environment)
        rc, output = r.run(contain_security_block=False, contain_security_rotate_secrets=True,
                           contain_security_confirm=True, **rotation)
        assert rc == 0, output
        new = store.read_text().split("DATABASE_PASSWORD=")[1].strip()
        assert new != target.old and target.can_login(new) and not target.can_login(target.old)
        assert "secrets rotated" in flat(output)
        for secret in (new, target.old, pg_server.password):
            assert secret not in output and secret not in json.dumps(r.ledger())

        steps = r.steps()
        decision = steps["decision"][-1]["data"]
        assert decision["confirmed"] is True and decision["rotate_secrets"] is True and decision["to_block"] == []
        approvals = [e for e in r.ledger() if e["event"] == "approval"]
        assert approvals and all(e["data"].get("action", "rotate_secrets") == "rotate_secrets" for e in approvals)
        rotated = [e for e in r.ledger() if e["module"] == "trdrhub.incident.ledger_record"
                   and (e.get("data") or {}).get("status") == "completed"]
        assert rotated, "rotate_secrets recorded no completed rotation"
        assert "block" not in steps and steps["summary"][-1]["data"]["rotated"] == "completed"
    finally:
        target.drop()
