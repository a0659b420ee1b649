"""playbooks/notified.yml closes a notification obligation: who notified whom and when, in the record and the ledger.

An incident with a Security impact owes the regulator, the affected customers and the insurance carrier a
notice. status.yml and communicate.yml print the notified.yml command for each obligation still owed; the
command pasted verbatim in another directory records it. Check mode records nothing, an unknown incident or
an obligation the incident does not have is refused, and the same notice again changes nothing.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

PLAYBOOK = REPO_ROOT / "playbooks" / "notified.yml"
COMMAND = re.compile(r"^\s*((?:[A-Z_]+=\S+ )*(?:\S*/)?ansible(?:-playbook)? \S.*)$")
UTC = datetime.timezone.utc


def flat(text):
    return " ".join(text.split())


def commands(output: str, needle: str) -> list[str]:
    return sorted({m[1].rstrip() for line in output.splitlines() if (m := COMMAND.match(line)) and needle in m[1]})


class Incident:
    def __init__(self, ansible, tmp_path):
        self.ansible, self.tmp = ansible, tmp_path
        self.id = "INC-NOTE-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice", "PYTHONWARNINGS": "ignore:DSA is deprecated"}
        self.hosts = tmp_path / "hosts.ini"
        self.hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        detected = (datetime.datetime.now(UTC) - datetime.timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        opened = ansible.run("incident", {"incident_id": self.id, "title": "Suspicious export", "priority": "P1",
                                          "impact": ["security"], "detected_at": detected}, extra_env=self.env)
        assert not opened.failed, opened.output

    def run(self, *extra, playbook=PLAYBOOK, **variables):
        return self.ansible.run_playbook(playbook, "-i", self.hosts, "-e", json.dumps(dict({"trdrhub_incident_id": self.id}, **variables)),
                                         *extra, extra_env=self.env)

    def ledger(self):
        return read_file_ledger(self.root / self.id / "ledger.jsonl")

    def record(self):
        return [e for e in self.ledger() if e["event"] == "incident"][-1]["data"]["record"]


@pytest.fixture
def incident(ansible, tmp_path):
    return Incident(ansible, tmp_path)


def test_check_mode_records_nothing_then_the_notice_is_recorded_once(incident):
    before = len(incident.ledger())
    snapshot = Snapshot(incident.root)
    look = incident.run("--check", obligation="regulator", notified_to="ICO, case 4711", notified_note="online form")
    assert look.rc == 0, look.output
    assert "check mode, nothing recorded" in flat(look.output)
    assert snapshot.new_or_changed() == [] and len(incident.ledger()) == before

    done = incident.run(obligation="regulator", notified_to="ICO, case 4711", notified_note="online form")
    assert done.rc == 0, done.output
    text = flat(done.output)
    assert re.search(r"Regulator \(data protection supervisory authority\): notified ICO, case 4711 at \S+Z by \S*alice \(recorded\)",
                     text), text
    assert "still owed: Affected customers (breach notice); Insurance carrier" in text
    assert f"-i {incident.hosts} trdrhub.incident.status -e trdrhub_incident_id={incident.id}" in text
    notice = incident.record()["notifications"]["regulator"]
    assert notice["to"] == "ICO, case 4711" and notice["note"] == "online form" and notice["by"].endswith("alice")
    entry = [e for e in incident.ledger() if e["event"] == "incident"][-1]
    assert "notifications" in entry["data"]["changes"], entry

    count = len(incident.ledger())
    again = incident.run(obligation="regulator", notified_to="ICO, case 4711", notified_note="online form")
    assert again.rc == 0, again.output
    assert "already recorded, unchanged" in flat(again.output)
    assert [e for e in incident.ledger()[count:] if e["event"] == "incident"] == []


def test_unknown_obligation_incident_or_missing_recipient_is_refused(incident):
    def changes():
        return [e for e in incident.ledger() if e["event"] == "incident"]
    before = changes()
    wrong = incident.run(obligation="partners", notified_to="Acme API team")
    assert wrong.rc != 0
    assert (f"Incident {incident.id} has no notification obligation 'partners': its obligations are regulator, "
            "customers_breach, insurance. Nothing was changed.") in flat(wrong.output)
    typo = incident.run(obligation="regulatr", notified_to="ICO")
    assert typo.rc != 0 and "no notification obligation 'regulatr'" in flat(typo.output)
    nobody = incident.run(obligation="regulator")
    assert nobody.rc != 0 and "needs the obligation (-e obligation=regulator" in flat(nobody.output)
    unknown = incident.ansible.run_playbook(PLAYBOOK, "-i", incident.hosts, "-e", "trdrhub_incident_id=INC-NOPE-1",
                                            "-e", "obligation=regulator", "-e", "notified_to=ICO", extra_env=incident.env)
    assert unknown.rc != 0 and "Incident INC-NOPE-1 has no record" in flat(unknown.output)
    assert not (incident.root / "INC-NOPE-1").exists()
    assert changes() == before and not incident.record().get("notifications")


def test_status_and_communicate_print_a_command_that_works_from_anywhere(incident, tmp_path):
    status = incident.run(playbook=REPO_ROOT / "playbooks" / "status.yml")
    assert status.rc == 0, status.output
    printed = commands(status.output, "trdrhub.incident.notified")
    assert len(printed) == 3, status.output   # regulator, customers_breach, insurance
    [regulator] = [c for c in printed if "obligation=regulator" in c]
    assert str(incident.hosts) in regulator and f"TRDRHUB_LEDGER_DIR={incident.root}" in regulator

    reminder = incident.run("--check", playbook=REPO_ROOT / "playbooks" / "communicate.yml")
    assert reminder.rc == 0, reminder.output
    assert commands(reminder.output, "trdrhub.incident.notified") == printed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = incident.ansible.env(incident.env)   # a shell of the same user: ansible-playbook on PATH
    env["PATH"] = f"{incident.ansible.bindir}{os.pathsep}{env.get('PATH', '')}"
    pasted = subprocess.run(["bash", "-c", regulator], cwd=str(elsewhere), env=env, capture_output=True, text=True,
                            timeout=240, check=False, stdin=subprocess.DEVNULL)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert incident.record()["notifications"]["regulator"]["to"] == "<whom>"
    assert not (elsewhere / "incidents").exists()

    status = incident.run(playbook=REPO_ROOT / "playbooks" / "status.yml")
    assert [c for c in commands(status.output, "trdrhub.incident.notified") if "obligation=regulator" in c] == []
    assert "notified <whom> at" in flat(status.output)
