"""playbooks/assign_commander.yml and playbooks/resolve.yml with a ServiceNow ticket (Table API contract server).

The incident's ServiceNow record was opened by triage's ticket step (here: the incident_ticket module with
the incident id as correlation_id). assign_commander.yml adds the commander as a work note once, whatever
the re-runs; resolve.yml sets the record to Resolved with close code and close notes, and a re-run writes
nothing more. The login never appears in the output.
"""
from __future__ import annotations

import json
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import check_chain, read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ASSIGN = REPO_ROOT / "playbooks" / "assign_commander.yml"
RESOLVE = REPO_ROOT / "playbooks" / "resolve.yml"
RESOLUTION = json.dumps({"resolution": "Consumer restarted", "root_cause": "Stuck consumer"})


def flat(text):
    return " ".join(text.split())


def test_assign_commander_and_resolve_with_servicenow(ansible, tmp_path, servicenow_server):
    incident = "INC-SNR-" + uuid.uuid4().hex[:6].upper()
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root)}
    user, password = servicenow_server.add_user()
    opened = ansible.run("incident", {"incident_id": incident, "title": "Queue stuck", "priority": "P2"}, extra_env=env)
    assert not opened.failed, opened.output
    made = ansible.run("incident_ticket", {"system": "servicenow", "url": servicenow_server.url, "username": user,
                                           "api_token": password, "incident_id": incident, "summary": "[P2] Queue stuck",
                                           "priority": "P2", "status": "investigating"})
    assert not made.failed, made.output
    number, sys_id = made["ticket"]["key"], made["ticket"]["id"]

    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps({"trdrhub_ticket_system": "servicenow", "trdrhub_ticket_url": servicenow_server.url,
                                    "trdrhub_ticket_username": user, "trdrhub_ticket_api_token": password}))
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    common = ("-i", hosts, "-e", f"@{varsfile}", "-e", f"trdrhub_incident_id={incident}")

    writes = len(servicenow_server.writes())
    look = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:omar", "--check", extra_env=env)
    assert look.rc == 0, look.output
    assert len(servicenow_server.writes()) == writes and servicenow_server.work_notes(sys_id) == []

    run = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:omar", extra_env=env)
    assert run.rc == 0, run.output
    assert servicenow_server.work_notes(sys_id) == ["Incident commander: ic:omar"]
    assert f"ticket: {number} {servicenow_server.url}/nav_to.do?uri=incident.do?sys_id={sys_id}" in flat(run.output)
    again = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:omar", extra_env=env)
    assert again.rc == 0 and servicenow_server.work_notes(sys_id) == ["Incident commander: ic:omar"], again.output

    done = ansible.run_playbook(RESOLVE, *common, "-e", RESOLUTION,
                                extra_env=env)
    assert done.rc == 0, done.output
    [ticket] = servicenow_server.by_correlation(incident)
    assert ticket["state"] == "6" and ticket["close_code"] == "Solved (Permanently)"
    assert ticket["close_notes"].startswith("Consumer restarted")
    assert f"ticket: {number} resolved" in flat(done.output)
    assert "status page: none (no Statuspage page configured)" in flat(done.output)
    entries = read_file_ledger(root / incident / "ledger.jsonl")
    check_chain(entries, incident)
    record = [e for e in entries if e["event"] == "incident"][-1]["data"]["record"]
    assert record["state"] == "resolved" and record["commander"] == "ic:omar"
    assert record["references"]["ticket"] == number

    writes = len(servicenow_server.writes())
    rerun = ansible.run_playbook(RESOLVE, *common, "-e", RESOLUTION,
                                 extra_env=env)
    assert rerun.rc == 0, rerun.output
    assert len(servicenow_server.writes()) == writes
    for output in (run.output, done.output, rerun.output):
        assert password not in output
