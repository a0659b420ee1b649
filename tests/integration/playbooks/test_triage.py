"""playbooks/triage.yml through real ansible-playbook: a real Alertmanager with a firing P1, a TRDR Hub health stub.

Check mode first (nothing written, no silence), then the real run (incident opened with P1,
deadline 15 minutes after the alert started, the alert silenced with the incident id), then
a re-run that changes nothing. Foreign alerts of a shared Alertmanager (kube-prometheus'
Watchdog, warning and unknown severities) go through the severity table and never stop triage.
"""
from __future__ import annotations

import datetime
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from _itest_ansible import REPO_ROOT
from _itest_http import StubServer, TrdrHubHealth, expire_all, live_silences
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot
from trdrhub_harness._common import free_port
from trdrhub_harness.alertmanager import AlertmanagerServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

UTC = datetime.timezone.utc
STARTED = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=5)).replace(microsecond=0)
STARTED_AT = STARTED.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def run_label():
    return "itest-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def firing_p1(alertmanager_server, run_label):
    url = alertmanager_server.url
    body = [{"labels": {"alertname": "AllWorkersDown", "severity": "P1", "component": "queue", "service": "lcpilot",
                        "itest_run": run_label},
             "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"},
             "startsAt": STARTED.isoformat(), "endsAt": (STARTED + datetime.timedelta(hours=2)).isoformat()}]
    requests.post(url + "/api/v2/alerts", json=body, timeout=10).raise_for_status()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = requests.get(url + "/api/v2/alerts", params={"filter": f'itest_run="{run_label}"'}, timeout=10).json()
        if found and found[0]["status"]["state"] == "active":
            break
        time.sleep(0.2)
    else:
        raise AssertionError("Alertmanager never showed the alert as active")
    yield url
    expire_all(url, run_label)


@pytest.fixture(scope="module")
def health():
    with StubServer(TrdrHubHealth().routes()) as server:
        yield server


@pytest.fixture
def inventory(tmp_path, firing_p1, health, run_label):
    host_vars = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "trdrhub_base_url": health.url(), "trdrhub_alertmanager_url": firing_p1,
        "triage_alert_filter": [f'itest_run="{run_label}"'],
        "triage_silence_labels": ["alertname", "component", "service", "itest_run"],
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": host_vars}}}))
    return path


def incident_events(ledger):
    return [e for e in read_file_ledger(ledger) if e["event"] == "incident"] if ledger.exists() else []


def test_triage_check_apply_rerun(ansible, inventory, firing_p1, run_label):
    incident = "INC-TRIAGE-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    playbook = REPO_ROOT / "playbooks" / "triage.yml"
    args = ("-i", inventory, "-e", f"trdrhub_incident_id={incident}")

    snapshot = Snapshot(ansible.workdir / "incidents")
    check = ansible.run_playbook(playbook, *args, "--check")
    assert check.rc == 0, check.output
    assert snapshot.new_or_changed() == [] and live_silences(firing_p1, run_label) == []
    assert f"[{incident}] P1 Critical" in check.output and "would be opened/updated (check mode)" in check.output

    first = ansible.run_playbook(playbook, *args)
    assert first.rc == 0, first.output
    [opened, acknowledged] = incident_events(ledger)
    record = acknowledged["data"]["record"]
    assert opened["data"]["action"] == "open" and acknowledged["data"]["action"] == "auto_acknowledge"
    assert (record["priority"], record["detected_at"], record["state"]) == ("P1", STARTED_AT, "open")
    assert record["response_deadline"] == (STARTED + datetime.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record["title"].startswith("P1 Critical: alert AllWorkersDown")
    # the silences are an automatic acknowledgement; a person's is still to come
    assert record["acknowledged"] is False and record["auto_acknowledged_at"] is not None
    [silence] = live_silences(firing_p1, run_label)
    assert record["references"] == {"silence_ids": [silence["id"]]}
    assert silence["createdBy"] == f"trdrhub.incident/{incident}"
    assert silence["comment"].startswith(f"[{incident}]")
    assert f"respond by {record['response_deadline']}" in first.output

    again = ansible.run_playbook(playbook, *args)
    assert again.rc == 0, again.output
    assert incident_events(ledger) == [opened, acknowledged]
    assert [s["id"] for s in live_silences(firing_p1, run_label)] == [silence["id"]]
    assert "changed=0" in again.output and f"[{incident}] P1 Critical" in again.output

    entries = read_file_ledger(ledger)
    check_chain(entries, incident)
    decisions = [e for e in entries if e["event"] == "decision"]
    assert len(decisions) == 2 and decisions[-1]["data"]["priority"] == "P1"
    assert decisions[-1]["data"]["silence_ids"] == [silence["id"]]


@pytest.fixture(scope="module")
def shared_alertmanager():
    """An Alertmanager of its own: the default alert filter reads every alert, as on a shared cluster."""
    with AlertmanagerServer() as server:
        yield server.start()


def _post(url, name, severity, started, **labels):
    alert = {"labels": {"alertname": name, **({"severity": severity} if severity else {}), **labels},
             "startsAt": started.isoformat(), "endsAt": (datetime.datetime.now(UTC) + datetime.timedelta(hours=2)).isoformat()}
    requests.post(url + "/api/v2/alerts", json=[alert], timeout=10).raise_for_status()


def test_foreign_alerts_never_stop_triage(ansible, tmp_path, shared_alertmanager, health):
    """kube-prometheus' Watchdog (severity none), a warning and an unknown severity beside a firing P1."""
    url = shared_alertmanager.url
    long_ago = STARTED - datetime.timedelta(days=3)
    _post(url, "Watchdog", "none", long_ago, namespace="monitoring")
    _post(url, "AllWorkersDown", "P1", STARTED, component="queue", service="lcpilot")
    _post(url, "KubePodCrashLooping", "warning", STARTED + datetime.timedelta(minutes=2), namespace="trdrhub-system")
    _post(url, "DiskAlmostFull", "page", long_ago)
    deadline = time.monotonic() + 20
    while len(requests.get(url + "/api/v2/alerts", timeout=10).json()) < 4:
        assert time.monotonic() < deadline, "Alertmanager never showed the four alerts"
        time.sleep(0.2)

    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "trdrhub_base_url": health.url(), "trdrhub_alertmanager_url": url}}}}))   # the default alert filter
    incident = "INC-TRIAGE-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    run = ansible.run_playbook(REPO_ROOT / "playbooks" / "triage.yml", "-i", inventory,
                               "-e", f"trdrhub_incident_id={incident}")
    assert run.rc == 0, run.output
    assert "failed=0" in run.output

    # the record is opened at P1, detected when the P1 started (not when the Watchdog did); the counted
    # alerts are acknowledged with silences, the foreign ones are left alone
    record = incident_events(ledger)[-1]["data"]["record"]
    assert (record["priority"], record["detected_at"]) == ("P1", STARTED_AT)
    silences = [s for s in requests.get(url + "/api/v2/silences", timeout=10).json() if s["status"]["state"] == "active"]
    names = sorted(m["value"] for s in silences for m in s["matchers"] if m["name"] == "alertname")
    assert names == ["AllWorkersDown", "KubePodCrashLooping"]
    assert sorted(record["references"]["silence_ids"]) == sorted(s["id"] for s in silences)
    states = {a["labels"]["alertname"]: a["status"]["state"] for a in requests.get(url + "/api/v2/alerts", timeout=10).json()}
    assert states["Watchdog"] == states["DiskAlmostFull"] == "active", "foreign alerts are not silenced"

    # the decision and the summary name what counted, what was ignored and what could not be classified
    [decision] = [e for e in read_file_ledger(ledger) if e["event"] == "decision"]
    data = decision["data"]
    assert data["priority"] == "P1" and sorted(data["firing"]) == ["AllWorkersDown", "KubePodCrashLooping"]
    assert data["reasons"] == ["alert AllWorkersDown (severity P1, component queue) is firing -> P1",
                               "alert KubePodCrashLooping (severity warning) is firing -> P3"]
    assert data["ignored"] == ["alert Watchdog (severity none) is ignored by policy.severity_map: not counted"]
    assert data["findings"] == ["alert DiskAlmostFull is firing with severity label 'page', which policy.severity_map "
                                "does not classify: not counted (map it to a priority or to ignore)"]
    assert "Findings (not assessed): alert DiskAlmostFull" in run.output
    assert "Ignored: alert Watchdog (severity none)" in run.output


class VanishingAlertmanager:
    """A pass-through to a real Alertmanager that goes away at the first silence request (that request dies
    unanswered, later ones are refused), as if Alertmanager stopped between triage reading the alerts and
    creating the silence. ``restore()`` brings it back on the same port."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.server = None
        self.vanish = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "VanishingAlertmanager":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                if proxy.vanish and self.path.startswith("/api/v2/silence"):
                    threading.Thread(target=proxy.stop, daemon=True).start()   # gone: refused from now on
                    self.close_connection = True   # and this request dies unanswered
                    return
                answer = requests.request(self.command, proxy.upstream + self.path, data=body, timeout=10,
                                          headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def restore(self) -> None:
        self.vanish = False
        self.start()


def test_alertmanager_gone_before_the_silence_keeps_the_record_and_a_rerun_acknowledges_once(
        ansible, tmp_path, inventory, firing_p1):
    run_label = "itest-" + uuid.uuid4().hex[:10]   # an alert of its own, silenced by no other test
    _post(firing_p1, "AllWorkersDown", "P1", STARTED, itest_run=run_label, component="queue", service="lcpilot")
    deadline = time.monotonic() + 20
    query = {"filter": f'itest_run="{run_label}"', "silenced": "false"}
    while not requests.get(firing_p1 + "/api/v2/alerts", params=query, timeout=10).json():
        assert time.monotonic() < deadline, "Alertmanager never showed the alert"
        time.sleep(0.2)
    proxy = VanishingAlertmanager(firing_p1).start()
    try:
        inventory_data = json.loads(inventory.read_text())
        inventory_data["all"]["hosts"]["localhost"].update(trdrhub_alertmanager_url=proxy.url,
                                                           triage_alert_filter=[f'itest_run="{run_label}"'])
        inventory.write_text(json.dumps(inventory_data))
        incident = "INC-AMGONE-" + uuid.uuid4().hex[:6]
        ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
        args = ("-i", inventory, "-e", f"trdrhub_incident_id={incident}")
        playbook = REPO_ROOT / "playbooks" / "triage.yml"

        broken = ansible.run_playbook(playbook, *args)
        assert broken.rc == 0, broken.output   # triage finishes: priority, record and deadline stand
        assert "Acknowledged: FAILED - 1 of 1 silence(s) not created" in broken.output, broken.output
        [opened] = incident_events(ledger)
        assert opened["data"]["action"] == "open" and opened["data"]["record"]["auto_acknowledged_at"] is None
        [decision] = [e for e in read_file_ledger(ledger) if e["event"] == "decision"]
        assert len(decision["data"]["acknowledgement_failed"]) == 1 and decision["data"]["silence_ids"] == []
        assert live_silences(firing_p1, run_label) == []

        proxy.restore()
        rerun = ansible.run_playbook(playbook, *args)
        assert rerun.rc == 0, rerun.output
        [silence] = live_silences(firing_p1, run_label)
        assert "firing alert(s) silenced for" in rerun.output and silence["id"] in rerun.output
        [_opened, acknowledged] = incident_events(ledger)
        assert acknowledged["data"]["action"] == "auto_acknowledge"
        assert acknowledged["data"]["record"]["references"] == {"silence_ids": [silence["id"]]}

        third = ansible.run_playbook(playbook, *args)
        assert third.rc == 0, third.output
        assert [s["id"] for s in live_silences(firing_p1, run_label)] == [silence["id"]]
        check_chain(read_file_ledger(ledger), incident)
    finally:
        proxy.stop()
        expire_all(firing_p1, run_label)
