"""extensions/eda through the real ansible-rulebook (from .venv-eda) and a real Alertmanager.

The shipped rulebook runs with the collection on ANSIBLE_COLLECTIONS_PATH: Alertmanager
delivers its webhook with bearer credentials (``http_config.authorization``) to the
``trdrhub.incident.alertmanager`` source, and the rules run the collection's own playbooks
and modules, which leave their traces in the incident ledger. What did not happen is
checked only after something that was sent later did happen: there the rulebook runs
its actions one after another (``execution_strategy: sequential`` in a copy of the
shipped rulebook), so a later action's ledger entry means every earlier action ended.
"""
from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from _itest_ansible import REPO_ROOT, collections_root
from _itest_ledger import check_chain, read_file_ledger
from trdrhub_harness._common import free_port
from trdrhub_harness.alertmanager import AlertmanagerServer, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

EDA_VENV = Path(os.environ.get("TRDRHUB_EDA_VENV", REPO_ROOT / ".venv-eda"))
RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "trdrhub_alerts.yml"
UTC = datetime.timezone.utc

if not (EDA_VENV / "bin" / "ansible-rulebook").exists():
    pytest.skip(f"no ansible-rulebook in {EDA_VENV} (create it with tests/requirements-eda.txt)", allow_module_level=True)


def wait_until(what, probe, timeout=120.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"ansible-rulebook exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def eda_env(tmp: Path) -> dict:
    """The environment ansible-rulebook and the playbooks it starts run in."""
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "AWX_USER_NAME", "TOWER_USER_NAME", "RD_JOB_USERNAME"):
        env.pop(key, None)
    env.update({
        "PATH": f"{EDA_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(collections_root()),
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "TRDRHUB_LEDGER_DIR": str(tmp / "incidents"),
        "TMPDIR": str(tmp),
    })
    return env


class Rulebook:
    """ansible-rulebook running ``rulebook`` on a free port; ``output()`` after ``stop()``."""

    def __init__(self, tmp: Path, rulebook: Path, inventory: dict) -> None:
        self.tmp, self.token = tmp, "eda-itest-" + uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.ledger_root = tmp / "incidents"
        self.inventory = inventory   # written at start: a test may complete it first
        self.log = tmp / "ansible-rulebook.log"
        self.argv = [str(EDA_VENV / "bin" / "ansible-rulebook"), "-r", str(rulebook), "-i", str(tmp / "inventory.yml"),
                     "-e", str(tmp / "vars.yml"), "-v"]
        self.env = {**eda_env(tmp), "TRDRHUB_EDA_TOKEN": self.token}   # the rulebook's token_env
        self.proc = None

    def __enter__(self):
        for _attempt in range(3):
            if self._start():
                return self
            # The free port was taken between choosing it and binding it: choose another one.
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}/alerts"
        raise AssertionError(f"the event source never got a free port:\n{self.output()}")

    def _start(self) -> bool:
        (self.tmp / "inventory.yml").write_text(yaml.safe_dump(self.inventory))
        (self.tmp / "vars.yml").write_text(yaml.safe_dump({"trdrhub_eda_host": "127.0.0.1", "trdrhub_eda_port": self.port}))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, cwd=str(self.tmp), env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        health = self.url.rsplit("/", 1)[0] + "/healthz"

        def up():
            try:   # the event loop may be busy for a moment while the rules engine starts
                return requests.get(health, timeout=5).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until("the event source to listen", up, timeout=90, proc=self.proc)
        except BaseException as exc:
            self.stop()
            if "address already in use" in self.output():
                return False
            raise AssertionError(f"{exc}:\n{self.output()}") from None
        return True

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # its own session: the playbooks it started too
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def post(self, body, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.url, json=body, headers=headers, timeout=10)

    def ledger(self, incident: str) -> list:
        path = self.ledger_root / incident / "ledger.jsonl"
        return read_file_ledger(path) if path.exists() else []

    def notes(self, incident: str) -> list:
        return [e for e in self.ledger(incident) if e["event"] == "note" and e["module"] == "trdrhub.incident.ledger_record"]


def base_inventory(**host_vars) -> dict:
    return {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                            "ansible_python_interpreter": str(EDA_VENV / "bin" / "python"),
                                            **host_vars}}}}


def sequential_copy(tmp: Path) -> Path:
    """The shipped rulebook, its actions run one after another."""
    rulesets = yaml.safe_load(RULEBOOK.read_text())
    for ruleset in rulesets:
        ruleset["execution_strategy"] = "sequential"
    path = tmp / "trdrhub_alerts_sequential.yml"
    path.write_text(yaml.safe_dump(rulesets, sort_keys=False))
    return path


def webhook_payload(*alerts, status):
    return {"version": "4", "groupKey": "{}:{}", "status": status, "receiver": "itest", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager.invalid", "alerts": list(alerts)}


def resolved_alert(name, fingerprint, severity="P3"):
    return {"status": "resolved", "fingerprint": fingerprint, "startsAt": "2025-01-15T14:30:00Z",
            "endsAt": "2025-01-15T14:45:00Z", "generatorURL": "http://prometheus.invalid/graph",
            "labels": {"alertname": name, "severity": severity, "component": "reports", "service": "lcpilot"},
            "annotations": {"runbook_url": "https://runbooks.trdrhub.example/reports"}}


def webhook_failures(am) -> float:
    text = requests.get(am.url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("alertmanager_notifications_failed_total") and 'integration="webhook"' in line)


# -- the rulebook itself ------------------------------------------------------------------
VALIDATE = r"""
import json, sys, yaml
from ansible_rulebook.validators import Validate
from ansible_rulebook import rules_parser
from ansible_rulebook.json_generator import generate_dict_rulesets
from ansible_rulebook.collection import has_source
assert has_source("trdrhub.incident", "alertmanager"), "trdrhub.incident.alertmanager not found"
data = yaml.safe_load(open(sys.argv[1]))
Validate.rulebook(data)
rulesets = rules_parser.parse_rule_sets(data, {})
ast = generate_dict_rulesets(rulesets, {})
print(json.dumps([[r["Rule"]["name"] for r in rs["RuleSet"]["rules"]] for rs in ast]))
"""


def validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(EDA_VENV / "bin" / "python"), "-c", VALIDATE, str(path)], capture_output=True, text=True,
                          env=eda_env(path.parent), timeout=120, check=False)


def test_shipped_rulebook_passes_ansible_rulebook_validation(tmp_path):
    ok = validate(RULEBOOK)
    assert ok.returncode == 0, ok.stderr
    [rules] = json.loads(ok.stdout)
    assert rules == ["Triage a P1 queue alert and request approval to contain the database",
                     "Triage a firing TRDR Hub alert", "Record a resolved TRDR Hub alert in its incident ledger"]

    # The same check refuses a broken rulebook: a misspelt throttle key and a broken condition.
    for breakage in (("once_within:", "once_whithin:"), ('event.severity == "P1"', 'event.severity === "P1"')):
        broken = tmp_path / "broken.yml"   # same directory: same environment
        broken.write_text(RULEBOOK.read_text().replace(*breakage, 1))
        bad = validate(broken)
        assert bad.returncode != 0, f"{breakage} was accepted"


# -- auth and throttling through the real engine ---------------------------------------------
def test_only_authenticated_alerts_trigger_and_a_repeated_alert_runs_once(tmp_path):
    with Rulebook(tmp_path, sequential_copy(tmp_path), base_inventory()) as eda:
        repeated, later, stranger = (uuid.uuid4().hex[:16] for _unused in range(3))

        # A stranger (no token, wrong token, token in another scheme) is refused.
        body = webhook_payload(resolved_alert("ReportGenerationSlow", stranger), status="resolved")
        for token, auth in ((None, None), ("wrong-" + eda.token, None), (None, f"Basic {eda.token}")):
            headers = {"Authorization": auth} if auth else {}
            resp = (eda.post(body, token) if auth is None else requests.post(eda.url, json=body, headers=headers, timeout=10))
            assert resp.status_code == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")

        # An Alertmanager holding the wrong credentials is refused too.
        with AlertmanagerServer(webhooks=[webhook_receiver(eda.url, bearer_token="not-the-token")]) as bad_am:
            bad_am.start()
            now = datetime.datetime.now(UTC)
            requests.post(bad_am.url + "/api/v2/alerts", timeout=10, json=[{
                "labels": {"alertname": "ReportQueueStuck", "severity": "P3", "component": "reports", "service": "lcpilot"},
                "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(hours=1)).isoformat()}]).raise_for_status()
            wait_until("Alertmanager's refused webhook delivery", lambda: webhook_failures(bad_am) >= 1, timeout=60)

        # The same resolved alert three times: the rule fires once (throttle once_within).
        for _repeat in range(3):
            assert eda.post(webhook_payload(resolved_alert("ReportGenerationSlow", repeated), status="resolved"),
                            eda.token).status_code == 202
        assert eda.post(webhook_payload(resolved_alert("BulkImportSlow", later), status="resolved"), eda.token).status_code == 202
        wait_until("the later alert's ledger entry", lambda: eda.notes(f"INC-AM-{later}"), timeout=120, proc=eda.proc)

        [note] = eda.notes(f"INC-AM-{repeated}")
        assert note["data"]["alertname"] == "ReportGenerationSlow" and note["data"]["fingerprint"] == repeated
        assert note["phase"] == "verify" and "resolved at 2025-01-15T14:45:00Z" in note["data"]["message"]
        assert sorted(p.name for p in eda.ledger_root.iterdir()) == sorted([f"INC-AM-{repeated}", f"INC-AM-{later}"])
        assert eda.token not in eda.output()


# -- Alertmanager -> triage and gated containment -------------------------------------------
def test_p1_from_alertmanager_triages_and_containment_waits_for_approval(
        tmp_path, ansible, pg_server, trdrhub_db, sessions, monitor, app):
    victim = sessions.active(app + "-worker")
    started = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=3)).replace(microsecond=0)
    eda = Rulebook(tmp_path, RULEBOOK, base_inventory())
    with AlertmanagerServer(webhooks=[webhook_receiver(eda.url, bearer_token=eda.token)], group_wait="1s") as am:
        am.start()
        eda.inventory["all"]["vars"] = {"trdrhub_alertmanager_url": am.url}
        eda.inventory["all"]["children"] = {"db_controllers": {"hosts": {"localhost": {}}, "vars": {
            "contain_db_login_host": pg_server.host, "contain_db_login_port": pg_server.port,
            "contain_db_login_user": trdrhub_db["ops"]["user"], "contain_db_login_password": trdrhub_db["ops"]["password"],
            "contain_db_login_db": "trdrhub", "contain_db_ssl_mode": "disable",
            "contain_db_applications": [app + "*"], "contain_db_min_duration": 1,
            "contain_db_approval_poll_interval": 0.5, "trdrhub_approval_policy": {}}}}

        with eda:
            if eda.url not in am.config_text():   # the source had to move to another port
                am.reload(webhooks=[webhook_receiver(eda.url, bearer_token=eda.token)])
            alert = {"labels": {"alertname": "AllWorkersDown", "severity": "P1", "component": "queue", "service": "lcpilot"},
                     "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"},
                     "startsAt": started.isoformat(), "endsAt": (started + datetime.timedelta(hours=2)).isoformat()}
            requests.post(am.url + "/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
            [shown] = wait_until("the alert in Alertmanager", lambda: requests.get(am.url + "/api/v2/alerts", timeout=10).json())
            incident = f"INC-AM-{shown['fingerprint']}"

            # Triage opened the incident record, correlated by the alert's fingerprint, priority from the alert.
            def opened():
                return [e for e in eda.ledger(incident) if e["event"] == "incident"]
            record = wait_until("the triage incident record", opened, timeout=180, proc=eda.proc)[-1]["data"]["record"]
            assert record["priority"] == "P1" and record["title"].startswith("P1")
            assert "AllWorkersDown" in record["title"]
            assert record["detected_at"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert requests.get(am.url + "/api/v2/silences", timeout=10).json() == []   # the page stays unacknowledged

            # Containment stopped at the approval gate: a pending request naming the session, which is alive.
            approvals = eda.ledger_root / incident / "approvals"

            def request_file():
                found = [p for p in approvals.glob("req-*.json") if ".vote." not in p.name] if approvals.exists() else []
                return found[0] if found else None
            path = wait_until("the containment approval request", request_file, timeout=180, proc=eda.proc)
            pending = json.loads(path.read_text())
            assert pending["status"] == "pending" and pending["action"] == "terminate_sessions"
            assert pending["priority"] == "P1" and pending["evidence"]["pids"] == [victim.pid]
            monitor.assert_killed(alive=[victim])

            # A second person approves: exactly the reviewed session is terminated.
            hosts = tmp_path / "approver.ini"
            hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
            rid = path.name[:-len(".json")]
            vote = ansible.run_playbook("playbooks/approve.yml", "-i", hosts, "-e", f"request={rid}", "-e", "decision=approve",
                                        extra_env={"TRDRHUB_LEDGER_DIR": str(eda.ledger_root), "AWX_USER_NAME": "bob"})
            assert vote.rc == 0, vote.output
            assert not monitor.wait_gone([victim.pid], timeout=120), eda.output()[-4000:]

            def decided():
                return [e for e in eda.ledger(incident) if e["event"] == "decision" and e["data"].get("confirmed")]
            decision = wait_until("the containment decision", decided, timeout=120, proc=eda.proc)[-1]["data"]
            assert decision["confirmed_by"] == f"approval {rid} (store)"
            assert decision["approval"]["approvers"] == ["awx:bob"]

            # Alertmanager resolves the alert: the resolution is a ledger note of the same incident.
            now = datetime.datetime.now(UTC)
            requests.post(am.url + "/api/v2/alerts", timeout=10,
                          json=[{**alert, "endsAt": (now - datetime.timedelta(seconds=1)).isoformat()}]).raise_for_status()
            [note] = wait_until("the resolution note", lambda: eda.notes(incident), timeout=120, proc=eda.proc)
            assert note["data"]["alertname"] == "AllWorkersDown" and note["data"]["severity"] == "P1"
            check_chain(eda.ledger(incident), incident)
            assert eda.token not in eda.output()
