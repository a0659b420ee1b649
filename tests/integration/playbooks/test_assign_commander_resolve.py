"""playbooks/assign_commander.yml and playbooks/resolve.yml: the record, the ticket and the status page.

An incident opened with the incident module and a Jira issue, a ServiceNow incident or none;
assign_commander.yml records the commander (ledger) and comments on the ticket; resolve.yml
resolves the record, the ticket and the Statuspage incident; re-runs change nothing; an unknown
incident id is refused and leaves no ledger behind.
"""
from __future__ import annotations

import json
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RESOLUTION = json.dumps({"resolution": "Workers restarted", "root_cause": "Stuck consumer"})
ASSIGN = REPO_ROOT / "playbooks" / "assign_commander.yml"
RESOLVE = REPO_ROOT / "playbooks" / "resolve.yml"


def flat(text):
    return " ".join(text.split())


@pytest.fixture
def setup(ansible, tmp_path):
    incident = "INC-RES-" + uuid.uuid4().hex[:6].upper()
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root), "ANSIBLE_STDOUT_CALLBACK": None, "PYTHONWARNINGS": "ignore:DSA is deprecated"}
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    opened = ansible.run("incident", {"incident_id": incident, "title": "Queue stuck", "priority": "P1"}, extra_env=env)
    assert not opened.failed, opened.output
    return incident, root, env, hosts


def records(root, incident):
    return [e["data"]["record"] for e in read_file_ledger(root / incident / "ledger.jsonl")
            if e["event"] == "incident" and "record" in e.get("data", {})]


def test_with_jira_and_statuspage(ansible, tmp_path, setup, jira_server, statuspage_server):
    incident, root, env, hosts = setup
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    page = statuspage_server.add_page({"API": "degraded_performance"})
    sp = ansible.run("statuspage_incident", {"api_url": statuspage_server.url, "page_id": page.id,
                                             "api_key": statuspage_server.api_key, "incident_id": incident,
                                             "name": "Queue stuck"})
    assert not sp.failed, sp.output
    inventory = {"trdrhub_ticket_system": "jira", "trdrhub_ticket_url": jira_server.url,
                 "trdrhub_ticket_username": email, "trdrhub_ticket_api_token": token, "trdrhub_ticket_project": project,
                 "trdrhub_statuspage_page_id": page.id, "trdrhub_statuspage_api_key": statuspage_server.api_key,
                 "trdrhub_statuspage_api_url": statuspage_server.url}
    varsfile = tmp_path / "vars.json"
    varsfile.write_text(json.dumps(inventory))
    common = ("-i", hosts, "-e", f"@{varsfile}", "-e", f"trdrhub_incident_id={incident}")

    # The ticket does not exist yet: assign_commander comments only on an existing issue, so open it first.
    opened = ansible.run("incident_ticket", {"system": "jira", "url": jira_server.url, "username": email,
                                             "api_token": token, "project": project, "incident_id": incident,
                                             "summary": "[P1] Queue stuck", "status": "investigating"})
    assert not opened.failed, opened.output
    key = opened["ticket"]["key"]

    check = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:maria", "--check", extra_env=env)
    assert check.rc == 0, check.output
    assert records(root, incident)[-1].get("commander") is None and jira_server.issue(key)["comments"] == []

    run = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:maria", extra_env=env)
    assert run.rc == 0, run.output
    assert records(root, incident)[-1]["commander"] == "ic:maria"
    assert records(root, incident)[-1]["references"]["ticket"] == key
    assert f"ticket: {key} {jira_server.url}/browse/{key}" in flat(run.output)
    assert "trdrhub.incident.resolve" in flat(run.output) and "root_cause=" in flat(run.output)
    assert len(jira_server.issue(key)["comments"]) == 1
    again = ansible.run_playbook(ASSIGN, *common, "-e", "commander=ic:maria", extra_env=env)
    assert again.rc == 0 and len(jira_server.issue(key)["comments"]) == 1, again.output

    done = ansible.run_playbook(RESOLVE, *common, "-e", RESOLUTION,
                                extra_env=env)
    assert done.rc == 0, done.output
    rec = records(root, incident)[-1]
    assert rec["state"] == "resolved" and rec["resolution"] == "Workers restarted" and rec["root_cause"] == "Stuck consumer"
    assert "root cause: Stuck consumer" in flat(done.output)
    issue = jira_server.issue(key)
    assert issue["fields"]["status"]["name"] == "Done" and len(issue["comments"]) == 2
    assert [i["status"] for i in statuspage_server.incidents(page.id)] == ["resolved"]
    assert "status page: incident resolved" in flat(done.output)
    count = len(read_file_ledger(root / incident / "ledger.jsonl"))
    rerun = ansible.run_playbook(RESOLVE, *common, "-e", RESOLUTION,
                                 extra_env=env)
    assert rerun.rc == 0, rerun.output
    assert len(jira_server.issue(key)["comments"]) == 2 and "status page: incident none" in flat(rerun.output)
    assert [r["state"] for r in records(root, incident)][-1] == "resolved" and len(read_file_ledger(
        root / incident / "ledger.jsonl")) >= count


def test_without_a_ticket_system_and_an_unknown_incident(ansible, setup):
    incident, root, env, hosts = setup
    run = ansible.run_playbook(ASSIGN, "-i", hosts, "-e", f"trdrhub_incident_id={incident}", "-e", "commander=ic:omar",
                               extra_env=env)
    assert run.rc == 0, run.output
    assert "ticket: none (no ticket system configured" in flat(run.output)
    assert records(root, incident)[-1]["commander"] == "ic:omar"

    missing = ansible.run_playbook(RESOLVE, "-i", hosts, "-e", f"trdrhub_incident_id={incident}", extra_env=env)
    assert missing.rc != 0 and "needs the resolution" in flat(missing.output)

    typo = incident[:-1] + ("X" if incident[-1] != "X" else "Y")
    refused = ansible.run_playbook(RESOLVE, "-i", hosts, "-e", f"trdrhub_incident_id={typo}", "-e", "resolution=x",
                                   extra_env=env)
    assert refused.rc != 0 and incident in refused.output, refused.output
    assert not (root / typo).exists()
