"""Triage keeps the incident's ticket: playbooks/triage.yml against the Jira and ServiceNow contract servers.

The first run opens the ticket (a Jira issue labelled with the incident id, a ServiceNow incident whose
correlation_id is the incident id) and records its key in the incident record; check mode sends nothing;
a re-run with a new impact (P4 -> P1) updates the same ticket - never a second one - and a further
re-run sends nothing.
"""
from __future__ import annotations

import json
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TRIAGE = REPO_ROOT / "playbooks" / "triage.yml"
SECURITY = json.dumps({"triage_impact": ["security"]})


def flat(text):
    return " ".join(text.split())


def inventory(tmp_path, ticket):
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "trdrhub_base_url": "",
            "trdrhub_alertmanager_url": "", "triage_acknowledge": False, **ticket}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    return path


def record(ansible, incident):
    entries = read_file_ledger(ansible.workdir / "incidents" / incident / "ledger.jsonl")
    return [e for e in entries if e["event"] == "incident"][-1]["data"]["record"]


def test_triage_opens_then_updates_the_jira_issue(ansible, tmp_path, jira_server):
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    inv = inventory(tmp_path, {"trdrhub_ticket_system": "jira", "trdrhub_ticket_url": jira_server.url,
                               "trdrhub_ticket_username": email, "trdrhub_ticket_api_token": token,
                               "trdrhub_ticket_project": project})
    incident = "INC-TTJ-" + uuid.uuid4().hex[:6].upper()
    args = ("-i", inv, "-e", f"trdrhub_incident_id={incident}")

    writes = len(jira_server.writes())
    look = ansible.run_playbook(TRIAGE, *args, "--check")
    assert look.rc == 0, look.output
    assert "Ticket: would be created or updated in jira (check mode)" in flat(look.output)
    assert jira_server.by_label(incident) == [] and len(jira_server.writes()) == writes

    first = ansible.run_playbook(TRIAGE, *args)
    assert first.rc == 0, first.output
    [issue] = jira_server.by_label(incident)
    key = issue["key"]
    assert issue["fields"]["summary"].startswith("[P4] ") and issue["fields"]["status"]["name"] == "In Progress"
    assert record(ansible, incident)["references"] == {"ticket": key, "ticket_url": f"{jira_server.url}/browse/{key}"}
    assert f"Ticket: {key} {jira_server.url}/browse/{key} (created)" in flat(first.output)

    raised = ansible.run_playbook(TRIAGE, *args, "-e", SECURITY)
    assert raised.rc == 0, raised.output
    assert [i["key"] for i in jira_server.by_label(incident)] == [key]   # the same issue, found by its label
    assert jira_server.issue(key)["fields"]["summary"].startswith("[P1] ")
    assert record(ansible, incident)["priority"] == "P1"
    assert f"Ticket: {key} {jira_server.url}/browse/{key} (updated)" in flat(raised.output)

    writes = len(jira_server.writes())
    again = ansible.run_playbook(TRIAGE, *args, "-e", SECURITY)
    assert again.rc == 0, again.output
    assert f"Ticket: {key} {jira_server.url}/browse/{key} (none)" in flat(again.output)
    assert len(jira_server.writes()) == writes and len(jira_server.by_label(incident)) == 1


def test_triage_opens_then_updates_the_servicenow_incident(ansible, tmp_path, servicenow_server):
    user, password = servicenow_server.add_user()
    inv = inventory(tmp_path, {"trdrhub_ticket_system": "servicenow", "trdrhub_ticket_url": servicenow_server.url,
                               "trdrhub_ticket_username": user, "trdrhub_ticket_api_token": password,
                               "trdrhub_ticket_assignment_group": "Platform SRE"})
    incident = "INC-TTS-" + uuid.uuid4().hex[:6].upper()
    args = ("-i", inv, "-e", f"trdrhub_incident_id={incident}")

    first = ansible.run_playbook(TRIAGE, *args)
    assert first.rc == 0, first.output
    [made] = servicenow_server.by_correlation(incident)
    assert made["short_description"].startswith("[P4] ") and made["state"] == "2"
    assert made["assignment_group"] == "Platform SRE" and (made["impact"], made["urgency"]) == ("2", "3")
    assert record(ansible, incident)["references"]["ticket"] == made["number"]
    assert f"Ticket: {made['number']} " in flat(first.output) and "(created)" in flat(first.output)
    assert password not in first.output

    raised = ansible.run_playbook(TRIAGE, *args, "-e", SECURITY)
    assert raised.rc == 0, raised.output
    [updated] = servicenow_server.by_correlation(incident)   # the same record, found by its correlation_id
    assert updated["sys_id"] == made["sys_id"] and updated["short_description"].startswith("[P1] ")
    assert (updated["impact"], updated["urgency"]) == ("1", "1")
    assert "(updated)" in flat(raised.output)

    writes = len(servicenow_server.writes())
    again = ansible.run_playbook(TRIAGE, *args, "-e", SECURITY)
    assert again.rc == 0, again.output
    assert f"Ticket: {made['number']} " in flat(again.output) and "(none)" in flat(again.output)
    assert len(servicenow_server.writes()) == writes and len(servicenow_server.by_correlation(incident)) == 1
