"""Impact categories in triage: from the firing alerts' impact/category labels, from a failing health
check (record only), or the operator's -e triage_impact; stored in the record and shown in the summary.
"""
from __future__ import annotations

import datetime
import json
import sys
import time
import uuid

import pytest
import requests
from _itest_ansible import REPO_ROOT
from _itest_http import StubServer, TrdrHubHealth, expire_all
from _itest_ledger import read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

UTC = datetime.timezone.utc
TRIAGE = REPO_ROOT / "playbooks" / "triage.yml"


@pytest.fixture
def labelled(alertmanager_server):
    url, run = alertmanager_server.url, "itest-" + uuid.uuid4().hex[:10]
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    body = [{"labels": {"alertname": "AuditWriteFailures", "severity": "P3", "component": "governance",
                        "impact": "Data Integrity, Compliance", "itest_run": run},
             "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(hours=1)).isoformat()}]
    requests.post(url + "/api/v2/alerts", json=body, timeout=10).raise_for_status()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = requests.get(url + "/api/v2/alerts", params={"filter": f'itest_run="{run}"'}, timeout=10).json()
        if found and found[0]["status"]["state"] == "active":
            break
        time.sleep(0.2)
    yield url, run
    expire_all(url, run)


def inventory(tmp_path, am_url, run, health_url):
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "trdrhub_base_url": health_url,
            "trdrhub_alertmanager_url": am_url, "triage_alert_filter": [f'itest_run="{run}"'], "triage_acknowledge": False}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    return path


def record(ansible, incident):
    entries = read_file_ledger(ansible.workdir / "incidents" / incident / "ledger.jsonl")
    return [e for e in entries if e["event"] == "incident"][-1]["data"]["record"]


def test_labels_and_the_operator_set_the_impact(ansible, tmp_path, labelled):
    am_url, run = labelled
    with StubServer(TrdrHubHealth().routes()) as health:
        inv = inventory(tmp_path, am_url, run, health.url())
        incident = "INC-IMPACT-" + uuid.uuid4().hex[:6]
        first = ansible.run_playbook(TRIAGE, "-i", inv, "-e", f"trdrhub_incident_id={incident}")
        assert first.rc == 0, first.output
        rec = record(ansible, incident)
        assert rec["impact"] == ["data_integrity", "compliance"] or sorted(rec["impact"]) == ["compliance", "data_integrity"]
        assert rec["priority"] == "P2"   # data integrity and compliance are P2 in the default policy, above the P3 alert
        assert "Impact: " in first.output and "data_integrity" in first.output
        assert "Ticket: none (no ticket system configured" in first.output

        chosen = ansible.run_playbook(TRIAGE, "-i", inv, "-e", f"trdrhub_incident_id={incident}",
                                      "-e", json.dumps({"triage_impact": ["security"]}))
        assert chosen.rc == 0, chosen.output
        assert record(ansible, incident)["impact"] == ["security"] and record(ansible, incident)["priority"] == "P1"

        wrong = ansible.run_playbook(TRIAGE, "-i", inv, "-e", f"trdrhub_incident_id={incident}",
                                     "-e", json.dumps({"triage_impact": ["Everything"]}))
        assert wrong.rc != 0 and "Everything" in wrong.output and "is not one of" in wrong.output
