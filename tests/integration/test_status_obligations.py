"""playbooks/status.yml shows the notification obligations of an incident with the time left.

An incident with a Security impact, detected ten hours ago: the regulator, the affected customers and
the insurance carrier must be told within 72 hours. The regulator notice is recorded with the incident
module's ``notified``; status.yml shows it met (who notified whom and when) and the others with the time
left, under the obligation table changed by the inventory variable.
"""
from __future__ import annotations

import datetime
import json
import re
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STATUS = REPO_ROOT / "playbooks" / "status.yml"
UTC = datetime.timezone.utc


def flat(text):
    return " ".join(text.split())


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
