"""playbooks/status.yml: where an incident stands, read only.

An incident opened with the incident module, a gate waiting in store mode for a vote on it; status.yml
prints the record, the pending request with the commands to vote, the update cadence, the next
escalation level and the time left - and writes nothing. The printed approve command, pasted into a
shell in another directory as another user, is the vote that lets the gate go on.

playbooks/status.yml shows the notification obligations of an incident with the time left.

An incident with a Security impact, detected ten hours ago: the regulator, the affected customers and
the insurance carrier must be told within 72 hours. The regulator notice is recorded with the incident
module's ``notified``; status.yml shows it met (who notified whom and when) and the others with the time
left, under the obligation table changed by the inventory variable.
"""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_approval import wait_for_request
from _itest_ledger import write_playbook
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STATUS = REPO_ROOT / "playbooks" / "status.yml"
UTC = datetime.timezone.utc


def flat(text):
    return " ".join(text.split())


def test_status_shows_the_record_the_pending_vote_and_what_is_due_next(ansible, tmp_path):
    incident = "INC-STATUS-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root), "AWX_USER_NAME": "alice", "ANSIBLE_STDOUT_CALLBACK": None,
           "PYTHONWARNINGS": "ignore:DSA is deprecated"}
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    detected = (datetime.datetime.now(UTC) - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    opened = ansible.run("incident", {"incident_id": incident, "title": "Queue stuck", "priority": "P1",
                                      "detected_at": detected}, extra_env=env)
    assert not opened.failed, opened.output

    gate = write_playbook(tmp_path / "gate.yml", [
        {"name": "Approval", "trdrhub.incident.approval": {
            "incident_id": incident, "action": "rollback", "priority": "P1", "summary": "roll back trdrhub-api",
            "evidence": {"revision": 41}, "mode": "store", "timeout": 120, "poll_interval": 0.3}}],
        vars_={"trdrhub_incident_id": incident})
    proc = ansible.start_playbook(gate, "-i", hosts, extra_env=env)
    try:
        rid = wait_for_request(root / incident / "approvals", proc)
        snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
        run = ansible.run_playbook(STATUS, "-i", hosts, "-e", f"trdrhub_incident_id={incident}", extra_env=env)
        assert run.rc == 0, run.output
        assert snapshot.new_or_changed() == [], "status.yml wrote something"
        assert run.output.strip().startswith("PLAY [")
        text = flat(run.output)
        assert f"[{incident}] P1 - investigating (open) - Queue stuck" in text
        assert f"detected: {detected}" in text and "commander: none assigned" in text
        assert "acknowledged: not by a person" in text
        left = re.search(r"deadline: \S+ - (\d+) min left to acknowledge", text)
        assert left and 8 <= int(left.group(1)) <= 10, text
        assert "updates: internal every 15 min, an update is DUE NOW" in text and "customers every 30 min" in text
        assert re.search(r"escalation: level 1 reached; next: level 2 at \S+Z", text), text
        assert "approvals: 1 pending" in text and f"{rid} rollback at P1: roll back trdrhub-api" in text
        [approve] = [line.split("to approve:", 1)[1].strip() for line in run.output.splitlines() if "to approve:" in line]
        [deny] = [line.split("to deny:", 1)[1].strip() for line in run.output.splitlines() if "to deny:" in line]
        assert f"request={rid}" in approve and "decision=approve" in approve and "decision=deny" in deny

        # The printed command works verbatim from another directory, as another person.
        other = tmp_path / "elsewhere"
        other.mkdir()
        vote = subprocess.run(approve, shell=True, cwd=other, capture_output=True, text=True, timeout=180, check=False,
                              env=ansible.env(dict(env, AWX_USER_NAME="bob")))
        assert vote.returncode == 0, vote.stdout + vote.stderr
        output = proc.communicate(timeout=120)[0]
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    again = ansible.run_playbook(STATUS, "-i", hosts, "-e", f"trdrhub_incident_id={incident}", extra_env=env)
    assert again.rc == 0 and "approvals: none pending" in flat(again.output), again.output

    typo = ansible.run_playbook(STATUS, "-i", hosts, "-e", f"trdrhub_incident_id={incident}X", extra_env=env)
    assert typo.rc != 0 and f"Did you mean {incident}?" in flat(typo.output), typo.output
    assert not (root / f"{incident}X").exists()


def test_status_shows_obligations_with_time_left_and_who_notified(ansible, tmp_path):
    incident = "INC-OBLIG-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root), "AWX_USER_NAME": "alice", "ANSIBLE_STDOUT_CALLBACK": None,
           "PYTHONWARNINGS": "ignore:DSA is deprecated"}
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    detected = (datetime.datetime.now(UTC) - datetime.timedelta(hours=10)).replace(microsecond=0)
    stamp = detected.strftime("%Y-%m-%dT%H:%M:%SZ")
    opened = ansible.run("incident", {"incident_id": incident, "title": "Suspicious export", "priority": "P1",
                                      "impact": ["security"], "detected_at": stamp}, extra_env=env)
    assert not opened.failed, opened.output
    notified = ansible.run("incident", {"incident_id": incident, "notified": {
        "obligation": "regulator", "to": "ICO, case 4711", "at": (detected + datetime.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")}},
        extra_env=env)
    assert not notified.failed, notified.output

    policy = {"insurance": None, "customers_breach": {"within_hours": 24}}
    run = ansible.run_playbook(STATUS, "-i", hosts, "-e", f"trdrhub_incident_id={incident}",
                               "-e", json.dumps({"trdrhub_notification_obligations": policy}), extra_env=env)
    assert run.rc == 0, run.output
    text = flat(run.output)
    regulator_due = (detected + datetime.timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    at = (detected + datetime.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.search(rf"Regulator \(data protection supervisory authority\) by {regulator_due}: notified ICO, case 4711 "
                     rf"at {at} by \S*alice \(impact security\)", text), text
    left = re.search(r"Affected customers \(breach notice\) by \S+: (\d+)h(\d\d)m left \(impact security\)", text)
    assert left and 13 <= int(left.group(1)) <= 14, text
    assert "Insurance carrier" not in text

    # communicate.yml reminds the obligations still owed (check mode: nothing is sent or recorded).
    reminder = ansible.run_playbook(REPO_ROOT / "playbooks" / "communicate.yml", "-i", hosts, "--check",
                                    "-e", f"trdrhub_incident_id={incident}",
                                    "-e", json.dumps({"trdrhub_notification_obligations": policy}), extra_env=env)
    assert reminder.rc == 0, reminder.output
    owed = flat(reminder.output)
    assert re.search(r"Notification owed - Affected customers \(breach notice\): due \S+Z", owed), owed
    assert "Regulator (data protection supervisory authority): due" not in owed   # already notified
