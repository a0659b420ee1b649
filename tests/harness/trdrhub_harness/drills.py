"""Scored drills: each scenario injects its fault into a fresh sandbox, runs the runbook's procedure
unattended and checks the outcome from the outside.

Approval gates run in ``store`` mode and are answered by a simulated second person: a separate
``playbooks/approve.yml`` run under another identity (``AWX_USER_NAME``, the way AWX tells who
runs a job; docs/approvals.md), never by the requester. A gate that needs two approvers gets a
third identity's vote as well.

    python scripts/drill.py --scenario bad-deploy      # make drill SCENARIO=bad-deploy
    python scripts/drill.py --scenario all             # every scenario, one table

Each run writes its scorecard as ``scorecard.json`` in the incident's directory, beside the
playbooks' logs (``logs/``). The priority is the one triage recorded in the incident record (read
from the ledger), and the scorecard measures against that priority's response target; each
scenario also says which priority it expects, and why, and checks that triage agreed.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .netns import Netns
from .sandbox import ATTACKER_BRUTE, ATTACKER_SQLI, CUSTOMER_EMAIL, DEPLOYMENT, Sandbox
from .workload import INCIDENT, MUST_SURVIVE, Incident

ROOT = Path(__file__).resolve().parents[3]
UTC = datetime.timezone.utc
REQUESTER = "drill-commander"
APPROVERS = ("drill-second", "drill-third")
# The runbook's response targets (docs/targets.md): time to resolve per priority, in seconds.
TARGETS = {"P1": 15 * 60, "P2": 60 * 60, "P3": 4 * 3600, "P4": 24 * 3600}


def ansible_playbook() -> str:
    candidate = Path(sys.executable).parent / "ansible-playbook"
    return str(candidate) if candidate.exists() else "ansible-playbook"


def ledger_entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def verify_ledger(path: Path) -> dict:
    """Recompute the incident ledger's chain (docs/ledger.md) independently of the collection's code."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        if line.strip():
            entries.append(json.loads(line))
    prev = None
    for number, entry in enumerate(entries, start=1):
        if entry.get("seq") != number or entry.get("prev_hash") != prev or ledger_entry_hash(entry) != entry.get("hash"):
            return {"valid": False, "entries": len(entries), "broken_at": number, "head": None}
        prev = entry["hash"]
    head = entries[-1] if entries else {}
    return {"valid": bool(entries), "entries": len(entries), "head_seq": head.get("seq"), "head": head.get("hash")}


class Drill:
    """One scenario run: the playbooks, the simulated second person, the marks and the checks."""

    def __init__(self, scenario: str, box: Sandbox, expected: str, say: Callable[[str], None], verbose: int = 0) -> None:
        self.scenario = scenario
        self.box = box
        self.expected = expected      # what the scenario expects triage to say
        self.priority: Optional[str] = None   # what triage recorded (the incident record), once it ran
        self.assessment: dict = {}
        self.say = say
        self.verbose = verbose
        self.incident = f"DRILL-{scenario.upper()}-{datetime.datetime.now(UTC).strftime('%H%M%S')}"
        self.dir = box.incidents_dir / self.incident
        self.env = {**os.environ, **box.env(), "AWX_USER_NAME": REQUESTER, "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
        self.t0 = time.monotonic()
        self.marks: Dict[str, float] = {}
        self.gates: List[dict] = []
        self.plays: List[dict] = []
        self.checks: List[dict] = []
        self.seen_requests: set = set()
        self.notes: List[str] = []
        self.logs = Path(tempfile.mkdtemp(prefix=f"trdrhub-drill-{scenario}-"))

    # -- running playbooks ---------------------------------------------------
    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic() - self.t0)

    def marks_from_ledger(self, t0_wall: float) -> None:
        """Phase marks of one long playbook from its ledger: when the last entry of each phase was written."""
        last: Dict[str, float] = {}
        for entry in self.ledger():
            phase = entry.get("phase") or (entry.get("data") or {}).get("phase")
            if phase and entry.get("ts"):
                when = datetime.datetime.fromisoformat(entry["ts"]).timestamp() - t0_wall
                last[phase] = max(last.get(phase, when), when)
        for phase, name in (("triage", "triaged"), ("contain", "contained"), ("recover", "recovered"),
                            ("verify", "recovered")):
            if phase in last:
                self.marks[name] = max(self.marks.get(name, 0.0), last[phase]) if name == "recovered" else last[phase]

    def base_vars(self) -> dict:
        variables = {"trdrhub_incident_id": self.incident, "trdrhub_approval_policy": {}}
        if self.priority:
            variables["trdrhub_priority"] = self.priority   # the gates' priority: the recorded one
        return variables

    def play(self, playbook: str, extra: Optional[dict] = None, *, timeout: float = 300, flags=(), prefix=()) -> dict:
        variables = {**self.base_vars(), **(extra or {})}
        argv = [*prefix, ansible_playbook(), f"playbooks/{playbook}", "-i", "inventories/sandbox", "-e",
                json.dumps(variables), *flags]
        if self.verbose > 1:
            argv.append("-" + "v" * (self.verbose - 1))
        log_path = self.logs / f"{len(self.plays) + 1:02d}-{playbook.replace('/', '_')}.log"
        self.say(f"  $ {' '.join(prefix) + ' ' if prefix else ''}ansible-playbook playbooks/{playbook} "
                 "-i inventories/sandbox -e '...'")
        started = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(argv, cwd=str(ROOT), env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
            voter = _Voter(self, proc)
            voter.start()
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
                self.check(False, f"{playbook} finished within {timeout:.0f}s")
            voter.stop()
        output = log_path.read_text(encoding="utf-8", errors="replace")
        record = {"playbook": playbook, "rc": rc, "seconds": round(time.monotonic() - started, 1), "log": str(log_path)}
        self.plays.append(record)
        self.say(f"    -> rc {rc} in {record['seconds']}s (log {log_path})")
        if self.verbose:
            for line in output.splitlines():
                self.say("    | " + line)
        record["output"] = output
        return record

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        self.checks.append({"ok": bool(ok), "what": what, "detail": detail})
        self.say(f"    [{'ok' if ok else 'FAIL'}] {what}{(' - ' + detail) if detail and not ok else ''}")
        return bool(ok)

    def expect_play(self, record: dict, what: str, rc: int = 0) -> bool:
        ok = record["rc"] == rc
        detail = "" if ok else "\n".join(record["output"].splitlines()[-25:])
        return self.check(ok, what, detail)

    # -- reading the outcome -------------------------------------------------
    def ledger(self) -> List[dict]:
        path = self.dir / "ledger.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def record(self) -> dict:
        """The incident record as the ledger last wrote it (event incident, data.record)."""
        record: dict = {}
        for entry in self.ledger():
            data = entry.get("data") or {}
            if entry.get("event") == "incident" and isinstance(data.get("record"), dict):
                record = data["record"]
        return record

    def triage(self, extra: Optional[dict] = None, why: str = "") -> dict:
        """Run triage.yml; the priority is then the incident record's, checked against the scenario's."""
        res = self.play("triage.yml", extra)
        self.expect_play(res, "triage opened the incident")
        self.mark("triaged")
        self.priority = self.record().get("priority")
        decisions = [e.get("data") or {} for e in self.ledger() if e.get("event") == "decision"
                     and (e.get("data") or {}).get("assessed_priority")]
        self.assessment = decisions[-1] if decisions else {}
        assessed = self.assessment.get("assessed_priority")
        self.check(self.priority == self.expected,
                   f"triage recorded {self.expected} in the incident record{(' (' + why + ')') if why else ''}",
                   f"the record says {self.priority} (assessed {assessed}): "
                   + "; ".join(self.assessment.get("reasons") or []))
        return res

    def messages(self) -> Dict[str, int]:
        box = self.box
        with box.smtp.lock:
            mails = len(box.smtp.messages)
        pd = len(box.pagerduty.events_for(box.routing_key))
        return {"slack": len(box.slack.messages(box.webhook)), "pagerduty": pd,
                "statuspage": len(box.statuspage.writes(box.page.id)), "email": mails}

    def scorecard(self) -> dict:
        verification = verify_ledger(self.dir / "ledger.jsonl")
        pir = sorted(str(p) for p in (self.dir / "pir").glob("*.md")) if (self.dir / "pir").is_dir() else []
        target = TARGETS.get(self.priority or "")
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for play in self.plays:   # the playbooks' logs beside the scorecard
            source = Path(play["log"])
            if source.exists() and source.parent != logs:
                play["log"] = str(shutil.copy2(source, logs / source.name))
        if self.logs != logs:
            shutil.rmtree(self.logs, ignore_errors=True)
            self.logs = logs
        card = {
            "scenario": self.scenario, "incident": self.incident, "priority": self.priority,
            "expected_priority": self.expected, "assessed_priority": self.assessment.get("assessed_priority"),
            "priority_reasons": self.assessment.get("reasons") or [],
            "started_at": datetime.datetime.now(UTC).isoformat(),
            "response_target_seconds": target,
            "seconds": {k: round(v, 1) for k, v in self.marks.items()},
            "within_target": all(v <= target for v in self.marks.values()) if target else None,
            "gates": self.gates, "messages": self.messages(), "ledger": verification, "pir": pir,
            "playbooks": [{k: v for k, v in p.items() if k != "output"} for p in self.plays],
            "notes": self.notes, "checks": self.checks, "passed": bool(self.checks) and all(c["ok"] for c in self.checks),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "scorecard.json").write_text(json.dumps(card, indent=1))
        card["path"] = str(self.dir / "scorecard.json")
        return card


class _Voter:
    """The simulated second person: votes on every request the gated playbook files, from other identities."""

    def __init__(self, drill: Drill, proc: subprocess.Popen) -> None:
        self.drill = drill
        self.proc = proc
        self.seen = drill.seen_requests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="drill-voter")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _requests(self) -> List[Path]:
        approvals = self.drill.dir / "approvals"
        if not approvals.is_dir():
            return []
        return sorted(p for p in approvals.glob("req-*.json") if ".vote." not in p.name)

    def _run(self) -> None:
        while not self._stop.is_set() and self.proc.poll() is None:
            for path in self._requests():
                rid = path.name[:-len(".json")]
                if rid in self.seen:
                    continue
                self.seen.add(rid)
                self._answer(rid, path)
            self._stop.wait(0.3)

    def _status(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _answer(self, rid: str, path: Path) -> None:
        drill = self.drill
        request = self._status(path)
        if request.get("status", "pending") != "pending":
            return
        gate = {"request": rid, "action": request.get("action"), "requester": request.get("requester"),
                "required": request.get("required"),
                "requested_at_s": round(time.monotonic() - drill.t0, 1), "approvers": []}
        drill.gates.append(gate)
        drill.mark("acknowledged")
        for approver in APPROVERS:
            if self.proc.poll() is not None:
                break
            argv = [ansible_playbook(), "playbooks/approve.yml", "-i", "inventories/sandbox", "-e", f"request={rid}",
                    "-e", "decision=approve", "-e", f"incident={drill.incident}",
                    "-e", "comment=drill: reviewed the evidence"]
            res = subprocess.run(argv, cwd=str(ROOT), env={**drill.env, "AWX_USER_NAME": approver},
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)
            if res.returncode == 0:
                gate["approvers"].append(f"awx:{approver}")
            else:
                gate.setdefault("refused", []).append(approver)
            # A gate needing one approver proceeds now; give it time to notice before a second vote.
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and self.proc.poll() is None:
                status = str(self._status(path).get("status", "pending"))
                if status != "pending":
                    break
                time.sleep(0.3)
            status = str(self._status(path).get("status", "pending"))
            gate["status"] = status
            if status != "pending":
                break
        gate["decided_at_s"] = round(time.monotonic() - drill.t0, 1)


# -----------------------------------------------------------------------------------------
# Scenarios


def _gate(drill: Drill, action: str) -> Optional[dict]:
    return next((g for g in drill.gates if g.get("action") == action), None)


def _check_gate(drill: Drill, action: str, what: str) -> None:
    """The gate was answered by as many other identities as its policy required, never by the requester."""
    gate = _gate(drill, action)
    approvers = (gate or {}).get("approvers") or []
    ok = (gate is not None and gate.get("status") == "approved" and len(approvers) >= int(gate.get("required") or 1)
          and gate.get("requester") not in approvers)
    drill.check(ok, f"the {what} gate ({action}) was approved by {len(approvers)} other person(s)",
                json.dumps(drill.gates))


def scenario_db_runaway(drill: Drill) -> None:
    """Runaway queries and idle-in-transaction sessions: contained, protected sessions alive."""
    box = drill.box
    with Incident(box.pg, max_seconds=240) as inc:
        inc.long_running(8, seconds=240)
        inc.idle_in_transaction(4)
        inc.short_queries(2)
        inc.maintenance(seconds=240)
        inc.protected(seconds=240)
        inc.wait_ready()
        inc.wait_older_than(3.5, timeout=30)
        drill.t0 = time.monotonic()
        drill.say("  injected: 8 long-running queries, 4 idle-in-transaction sessions, must-survive traffic")
        # The database still answers, so the signals alone say P2 (customer-facing); the commander's
        # override - recorded with its reason - makes it P1, as the runbook's first procedure is practised.
        drill.triage({"triage_impact": ["customer-facing"],
                      "triage_override": {"priority": "P1", "reason": "drill: runaway sessions exhaust the database"}},
                     "the commander's recorded override")
        res = drill.play("contain_db.yml", {"contain_db_approval_mode": "store", "contain_db_approval_poll_interval": 0.3,
                                            "contain_db_approval_timeout": 240, "contain_db_priority": drill.priority})
        drill.expect_play(res, "contain_db.yml succeeded")
        drill.mark("contained")
        alive = inc.alive()
        left = [s for s in inc.sessions if s.kind == INCIDENT and s.pid in alive]
        lost = [s for s in inc.sessions if s.kind == MUST_SURVIVE and s.pid not in alive]
        drill.check(not left, "every runaway session terminated", f"{len(left)} still alive")
        drill.check(not lost, "every protected session alive (superuser maintenance, pg_dump, short queries)",
                    ", ".join(sorted({s.label for s in lost})))
        _check_gate(drill, "terminate_sessions", "terminate")
    verify = drill.play("verify.yml")
    drill.expect_play(verify, "verify.yml passes after containment")
    drill.mark("recovered")


def scenario_bad_deploy(drill: Drill) -> None:
    """A rollout of trdrhub-api that crash-loops: P1 (every health route fails), rollback, healthy.

    The sandbox's crash-looping rollout takes the API down - every health endpoint answers 503 - and
    a complete outage is P1 by the runbook's matrix, whatever impact the responder names; a bad deploy
    that leaves the old pods serving would be P2 (a failing readiness check, customer-facing).
    """
    box = drill.box
    before = box.deployment_image()
    box.bad_deploy()
    drill.t0 = time.monotonic()
    drill.say(f"  injected: a rollout of {DEPLOYMENT} from {before} to {box.deployment_image()} whose pods crash-loop")
    drill.triage({"triage_impact": ["customer-facing"]}, "every health endpoint fails: a complete outage")
    res = drill.play("rollback.yml", {"app_control_approval_mode": "store", "app_control_approval_poll_interval": 0.3,
                                      "app_control_approval_timeout": 240, "app_control_timeout": 60})
    drill.expect_play(res, "rollback.yml succeeded")
    drill.mark("contained")
    drill.check(box.deployment_image() == before, f"{DEPLOYMENT} runs {before} again", box.deployment_image())
    deadline = time.monotonic() + 30
    while box.rollout_problem() and time.monotonic() < deadline:
        time.sleep(0.5)
    drill.check(box.rollout_problem() is None, "the application answers /healthz again", str(box.rollout_problem()))
    verify = drill.play("verify.yml")
    drill.expect_play(verify, "verify.yml passes after the rollback")
    drill.mark("recovered")
    _check_gate(drill, "rollback", "rollback")


def _audit_resource_id(box: Sandbox, dbname: str, sequence_number: int) -> Optional[str]:
    conn = box.pg.connect(dbname=dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT resource_id FROM audit_log_entries WHERE sequence_number = %s", (sequence_number,))
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def scenario_data_corruption(drill: Drill) -> None:
    """A tampered audit row: verify_audit detects it; restore the backup into a recovery database whose chain verifies.

    P2 by the matrix (impact data_integrity): the service runs and nothing is lost - the backup holds the
    original row - so it is not the P1 of data loss.
    """
    box = drill.box
    box.tamper_audit_row(17)
    drill.t0 = time.monotonic()
    drill.say("  injected: audit_log_entries row 17 edited in place (resource_id)")
    drill.triage({"triage_impact": ["data_integrity"]}, "data integrity at risk, nothing lost")
    audit = drill.play("verify_audit.yml")
    drill.check(audit["rc"] != 0 and "17" in audit["output"], "verify_audit.yml detects the tampered row",
                f"rc {audit['rc']}")
    drill.mark("detected")
    target = "trdrhub_recovery_" + datetime.datetime.now(UTC).strftime("%H%M%S")
    res = drill.play("recover_db.yml", {"recover_db_target_db": target, "recover_db_approval_mode": "store",
                                        "recover_db_approval_poll_interval": 0.3, "recover_db_approval_timeout": 240,
                                        "recover_db_priority": drill.priority, "recover_db_service_command": []})
    drill.expect_play(res, f"recover_db.yml restored the backup into {target}")
    drill.mark("recovered")
    conn = box.pg.connect(dbname="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,))
            exists = cur.fetchone() is not None
    finally:
        conn.close()
    drill.check(exists, f"the recovery database {target} exists")
    drill.check(_audit_resource_id(box, "trdrhub", 17) == "LC-FORGED",
                "production is untouched: trdrhub still holds the tampered row 17 (the evidence)")
    drill.check(exists and _audit_resource_id(box, target, 17) not in (None, "LC-FORGED"),
                f"{target} holds the original row 17")
    recheck = drill.play("verify_audit.yml", {"verify_audit_login_db": target, "verify_audit_login_user": "postgres",
                                              "verify_audit_login_password": box.pg.password})
    drill.expect_play(recheck, f"the audit chain of {target} verifies")
    _check_gate(drill, "restore_db", "restore")


def scenario_full_p1(drill: Drill) -> None:
    """From a firing P1 alert to the resolved incident and its PIR, with messages on every channel."""
    box = drill.box
    with Incident(box.pg, max_seconds=300) as inc:
        inc.long_running(4, seconds=300, application_name="trdrhub-api")
        inc.idle_in_transaction(2, application_name="trdrhub-worker")
        inc.protected(seconds=300)
        inc.wait_ready()
        inc.wait_older_than(3.5, timeout=30)
        box.fire_alert("AllWorkersDown", "P1")
        drill.t0, t0_wall = time.monotonic(), time.time()
        drill.say("  injected: P1 alert AllWorkersDown firing, runaway sessions in trdrhub")
        res = drill.play("respond_p1.yml", {
            "contain_db_approval_mode": "store", "contain_db_approval_poll_interval": 0.3,
            "contain_db_approval_timeout": 240, "respond_contain": ["db"], "verify_queue_timeout": 20,
            "communicate_email_to": [CUSTOMER_EMAIL]}, timeout=600)
        drill.expect_play(res, "respond_p1.yml ran from the alert to the review")
        drill.marks_from_ledger(t0_wall)
        record = drill.record()
        drill.priority = record.get("priority")
        decisions = [e.get("data") or {} for e in drill.ledger() if e.get("event") == "decision"
                     and (e.get("data") or {}).get("assessed_priority")]
        drill.assessment = decisions[0] if decisions else {}
        drill.check(drill.priority == "P1" and drill.assessment.get("assessed_priority") == "P1",
                    "triage assessed P1 from the firing alert (incident record)",
                    f"record {drill.priority}, assessed {drill.assessment.get('assessed_priority')}")
        alive = inc.alive()
        drill.check(not [s for s in inc.sessions if s.kind == INCIDENT and s.pid in alive],
                    "the runaway sessions were terminated")
    before = drill.messages()
    for channel, count in before.items():
        drill.check(count > 0, f"messages on {channel}: {count}")
    drill.check(bool(box.statuspage.incidents(box.page.id)), "the public status page shows the incident")
    pir = list((drill.dir / "pir").glob("*.md")) if (drill.dir / "pir").is_dir() else []
    drill.check(bool(pir), "the post-incident review was written", str(drill.dir / "pir"))
    # Resolved: the record, then every channel told (communicate sends the resolution when the record is resolved).
    res = drill.play("resolve.yml", {"resolution": "drill: runaway sessions terminated, workers back",
                                     "root_cause": "drill: a stuck batch held the database"})
    drill.expect_play(res, "resolve.yml resolved the incident")
    res = drill.play("communicate.yml", {"communicate_email_to": [CUSTOMER_EMAIL]})
    drill.expect_play(res, "communicate.yml sent the resolution")
    drill.mark("resolved")
    drill.check(drill.record().get("state") == "resolved", "the incident record is resolved",
                str(drill.record().get("state")))
    page = box.statuspage.incidents(box.page.id)
    drill.check(bool(page) and all(i.get("status") == "resolved" for i in page),
                "the status page incident is resolved", json.dumps([i.get("status") for i in page]))
    pd = box.pagerduty.incident(box.routing_key, drill.incident) or {}
    drill.check(pd.get("status") == "resolved", "the PagerDuty incident is resolved", json.dumps(pd)[:300])
    after = drill.messages()
    with box.smtp.lock:
        mails = [str(m) for m in box.smtp.messages]
    slack = [json.dumps(m) for m in box.slack.messages(box.webhook)]
    drill.check(after["slack"] > before["slack"] and "resolved" in slack[-1].lower(),
                "a resolution update went to Slack", slack[-1][:300] if slack else "none")
    drill.check(after["email"] > before["email"] and "resolved" in mails[-1].lower(),
                "a resolution email went to the customers", mails[-1][:300] if mails else "none")


def scenario_db_down(drill: Drill) -> None:
    """PostgreSQL stopped: P1 by triage, the configured restart behind a gate, verify passes."""
    box = drill.box
    box.stop_postgres()
    drill.t0 = time.monotonic()
    drill.say("  injected: PostgreSQL stopped (fast shutdown)")
    drill.triage(why="/health/ready reports the database down: the application cannot serve")
    failing = drill.play("verify.yml")
    drill.check(failing["rc"] != 0, "verify.yml fails while the database is down")
    # The configured restart method (the sandbox inventory's recover_db_service_command: the sandbox's
    # service manager), behind the gate for action restart_db, answered by the second person.
    res = drill.play("recover_db.yml", {"recover_db_restore": False, "recover_db_approval_mode": "store",
                                        "recover_db_approval_poll_interval": 0.3, "recover_db_approval_timeout": 240,
                                        "recover_db_priority": drill.priority, "recover_db_service_wait": 30})
    drill.expect_play(res, "recover_db.yml restarted PostgreSQL (recover_db_restore=false)")
    drill.mark("contained")
    drill.check(box.services.actions == ["restart"] and box.postgres_running(),
                "the database service was restarted once, through the configured method",
                f"service actions {box.services.actions}, running {box.postgres_running()}")
    _check_gate(drill, "restart_db", "restart")
    verify = drill.play("verify.yml")
    drill.expect_play(verify, "verify.yml passes after the restart")
    drill.mark("recovered")


def scenario_attack(drill: Drill) -> None:
    """SQL injection and brute force in the access log, anomalous audit entries: scan, review, block, rotate.

    The block runs for real in a network namespace of its own when the kernel lets us make one (root,
    iproute2, iptables); otherwise in check mode, and the scorecard says so.
    """
    box = drill.box
    box.access_log.attack()
    box.anomalous_audit_entries()
    drill.t0 = time.monotonic()
    drill.say(f"  injected: SQL injection from {ATTACKER_SQLI}, brute force from {ATTACKER_BRUTE}, bulk exports in the audit log")
    drill.triage({"triage_impact": ["security"]}, "a security breach")
    netns = Netns()
    refused = netns.create()
    try:
        scan = {"contain_security_hosts": "localhost", "contain_security_become": False,
                "contain_security_since": "1h", "contain_security_block": True,
                "contain_security_priority": drill.priority}
        if refused is None:
            # Inside the namespace 127.0.0.1 is its own: PostgreSQL through its unix socket.
            scan.update({"contain_security_login_unix_socket": box.pg.socket_dir, "contain_security_login_host": None,
                         "contain_security_approval_mode": "store", "contain_security_approval_poll_interval": 0.3,
                         "contain_security_approval_timeout": 240, "contain_security_block_expire_after": "2h"})
            res = drill.play("contain_security.yml", scan, prefix=("ip", "netns", "exec", netns.name))
            drill.expect_play(res, f"contain_security.yml blocked the attackers (network namespace {netns.name})")
            drill.mark("contained")
            blocked = {source.split("/")[0] for source in netns.sources()}
            for address in (ATTACKER_SQLI, ATTACKER_BRUTE):
                drill.check(address in blocked, f"{address} is blocked in the namespace's firewall", str(sorted(blocked)))
            _check_gate(drill, "block_ips", "block")
            drill.notes.append(f"the block ran for real in the network namespace {netns.name} (deleted afterwards)")
        else:
            res = drill.play("contain_security.yml", scan, flags=("--check",))
            drill.expect_play(res, "contain_security.yml scanned and reviewed (check mode: nothing blocked)")
            for address in (ATTACKER_SQLI, ATTACKER_BRUTE):
                drill.check(address in res["output"], f"{address} found as an attacker")
            drill.notes.append(f"the block ran in check mode, nothing was blocked: {refused}")
    finally:
        netns.delete()
    # The leaked secret: the reporting service's database password, rotated behind the gate (two approvers).
    secret_file = box.leaked_secret_file
    old_password = _env_value(secret_file, "DATABASE_PASSWORD")
    rotate = drill.play("rotate_secrets.yml", {
        "rotate_secrets_login_host": box.pg.host, "rotate_secrets_login_port": box.pg.port,
        "rotate_secrets_login_user": box.pg.superuser, "rotate_secrets_login_password": box.pg.password,
        "rotate_secrets_login_db": "trdrhub", "rotate_secrets_ssl_mode": "disable",
        "rotate_secrets_role": "trdrhub_reports", "rotate_secrets_environment": "sandbox",
        "rotate_secrets_path": str(secret_file), "rotate_secrets_key": "DATABASE_PASSWORD",
        "rotate_secrets_force": True, "rotate_secrets_approval_mode": "store",
        "rotate_secrets_approval_poll_interval": 0.3, "rotate_secrets_approval_timeout": 240})
    drill.expect_play(rotate, "rotate_secrets.yml rotated the leaked password")
    drill.mark("contained")
    new_password = _env_value(secret_file, "DATABASE_PASSWORD")
    drill.check(new_password and new_password != old_password, "the secret file holds a new password")
    drill.check(_logs_in(box, "trdrhub_reports", new_password), "the new password logs in")
    drill.check(not _logs_in(box, "trdrhub_reports", old_password), "the leaked password no longer logs in")
    _check_gate(drill, "rotate_secrets", "rotation")


def _env_value(path: Path, key: str) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    return ""


def _logs_in(box: Sandbox, user: str, password: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=box.pg.host, port=box.pg.port, dbname="trdrhub", user=user, password=password,
                         connect_timeout=5).close()
        return True
    except psycopg2.OperationalError:
        return False


# The priority each scenario expects triage to record (the reasons are in the scenarios' docstrings).
SCENARIOS = {
    "db-runaway": ("P1", scenario_db_runaway),
    "db-down": ("P1", scenario_db_down),
    "bad-deploy": ("P1", scenario_bad_deploy),
    "attack": ("P1", scenario_attack),
    "data-corruption": ("P2", scenario_data_corruption),
    "full-p1": ("P1", scenario_full_p1),
}


def run(scenario: str, say: Callable[[str], None] = print, verbose: int = 0, state_root: Optional[Path] = None) -> dict:
    """Run one scenario in its own sandbox; the scorecard (also written as scorecard.json)."""
    expected, func = SCENARIOS[scenario]
    root = Path(state_root or (ROOT / "build" / "drills"))
    state_dir = root / f"{scenario}-{datetime.datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    say(f"== drill {scenario} (expects {expected}) " + "=" * max(0, 52 - len(scenario)))
    started = time.monotonic()
    with Sandbox(state_dir, dashboard=False) as box:
        drill = Drill(scenario, box, expected, say, verbose)
        try:
            func(drill)
        except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, with the reason
            drill.check(False, "the drill ran to its end", f"{type(exc).__name__}: {exc}")
        card = drill.scorecard()
    card["wall_seconds"] = round(time.monotonic() - started, 1)
    print_scorecard(card, say)
    return card


def print_scorecard(card: dict, say: Callable[[str], None] = print) -> None:
    target = card["response_target_seconds"]
    say(f"-- scorecard {card['scenario']} [{card['incident']}] {card['priority'] or 'no priority'} as triage recorded it "
        f"(assessed {card.get('assessed_priority') or '-'}, expected {card.get('expected_priority')}; "
        f"response target {target // 60 if target else '-'} min)")
    for reason in card.get("priority_reasons") or []:
        say(f"   why: {reason}")
    for name, secs in sorted(card["seconds"].items(), key=lambda item: item[1]):
        say(f"   time to {name:<13} {secs:7.1f}s {'within target' if target and secs <= target else ''}")
    for gate in card["gates"]:
        say(f"   gate {gate.get('action')} {gate['request']}: requested by {gate.get('requester')}, "
            f"approved by {', '.join(gate['approvers']) or 'nobody'} ({gate.get('status', '?')})")
    if not card["gates"]:
        say("   gates: none")
    say("   messages: " + ", ".join(f"{k} {v}" for k, v in card["messages"].items()))
    led = card["ledger"]
    say(f"   ledger: {'verified' if led['valid'] else 'NOT VERIFIED'}, {led['entries']} entries, "
        f"head seq {led.get('head_seq')} {str(led.get('head'))[:16]}")
    say(f"   PIR: {', '.join(card['pir']) or 'none'}")
    for note in card.get("notes", []):
        say(f"   note: {note}")
    say(f"   scorecard: {card['path']} (playbook logs in {Path(card['path']).parent / 'logs'})")
    say(f"   {'PASSED' if card['passed'] else 'FAILED'}: {sum(c['ok'] for c in card['checks'])} of "
        f"{len(card['checks'])} checks passed")


def print_table(cards: List[dict], say: Callable[[str], None] = print) -> None:
    fmt = "  {:<16} {:<3} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>5} {:>4} {:<6} {}"
    say(fmt.format("SCENARIO", "PRI", "TARGET", "TRIAGE", "ACK", "CONTAIN", "RECOVER", "IN-TGT", "GATES", "MSGS",
                   "LEDGER", "RESULT"))

    def sec(card, key):
        value = card["seconds"].get(key)
        return f"{value:.1f}s" if value is not None else "-"

    for card in cards:
        target = card["response_target_seconds"]
        within = card.get("within_target")
        say(fmt.format(card["scenario"], card["priority"] or "-", f"{target // 60}m" if target else "-",
                       sec(card, "triaged"), sec(card, "acknowledged"), sec(card, "contained"),
                       sec(card, "recovered"), "-" if within is None else ("yes" if within else "NO"),
                       len(card["gates"]), sum(card["messages"].values()),
                       "ok" if card["ledger"]["valid"] else "BROKEN", "PASSED" if card["passed"] else "FAILED"))
