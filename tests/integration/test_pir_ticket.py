"""playbooks/pir.yml links the incident's ticket: the Summary's Ticket row (Markdown and HTML).

A Jira issue opened for the incident on the Jira contract server (incident_ticket), its key and link
recorded in the incident record as the ticket role records them (references.ticket, ticket_url), the
incident resolved: the review's Summary shows the key and the link; an incident without a ticket
shows "none".
"""
from __future__ import annotations

import json
import re
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLAYBOOK = REPO_ROOT / "playbooks" / "pir.yml"


def ticket_row(md):
    rows = [line for line in md.splitlines() if re.match(r"^\|\s*Ticket\s*\|", line)]
    assert len(rows) == 1, rows
    return rows[0]


def test_pir_links_the_ticket(ansible, tmp_path, jira_server):
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    with_ticket, without = ("INC-PIRT-" + uuid.uuid4().hex[:6].upper() for _number in range(2))
    for incident in (with_ticket, without):
        opened = ansible.run("incident", {"incident_id": incident, "title": "Reports slow", "priority": "P3"})
        assert not opened.failed, opened.output

    made = ansible.run("incident_ticket", {"system": "jira", "url": jira_server.url, "username": email, "api_token": token,
                                           "project": project, "incident_id": with_ticket, "summary": "[P3] Reports slow",
                                           "status": "investigating"})
    assert not made.failed, made.output
    key, url = made["ticket"]["key"], made["ticket"]["url"]
    linked = ansible.run("incident", {"incident_id": with_ticket, "references": {"ticket": key, "ticket_url": url}})
    assert not linked.failed, linked.output
    for incident in (with_ticket, without):
        done = ansible.run("incident", {"incident_id": incident, "state": "resolved", "resolution": "Cache warmed"})
        assert not done.failed, done.output

    run = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={with_ticket}")
    assert run.rc == 0, run.output
    out = ansible.workdir / "incidents" / with_ticket / "pir"
    md, page = (out / "pir.md").read_text(), (out / "pir.html").read_text()
    row = ticket_row(md)
    assert key in row and url in row, row
    assert key in page and url in page

    bare = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={without}")
    assert bare.rc == 0, bare.output
    row = ticket_row((ansible.workdir / "incidents" / without / "pir" / "pir.md").read_text())
    assert re.match(r"^\|\s*Ticket\s*\|\s*none\s*\|$", row), row
