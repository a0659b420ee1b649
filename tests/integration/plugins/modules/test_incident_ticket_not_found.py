"""incident_ticket when the ticket system answers 404: an unknown Jira link target, a ServiceNow record deleted.

Jira: linking the incident's issue to an issue that does not exist answers 404 from POST /issueLink; the
module fails with one line naming the request and Jira's message, the issue itself is left as it was,
and the link is not reported as made. ServiceNow: the incident record is deleted between the module's
lookup (by correlation_id) and its update (someone deleted it in the UI meanwhile); the PATCH answers
404 "No Record found" and the module fails with that, without creating a second record. A later run
finds no record for the incident id and says what it needs to open a new one.
"""
from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def inc_id():
    return f"INC-NF-{uuid.uuid4().hex[:6].upper()}"


def test_jira_link_to_an_unknown_issue(ansible, jira_server):
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    base = {"system": "jira", "url": jira_server.url, "username": email, "api_token": token, "project": project,
            "retry_delay": 0.1, "incident_id": inc_id()}
    made = ansible.run("incident_ticket", dict(base, summary="Queue lag", status="investigating"))
    assert not made.failed, made.output
    key = made["ticket"]["key"]
    missing = f"{project}-999"

    linked = ansible.run("incident_ticket", dict(base, links=[{"key": missing}]))
    assert linked.failed
    msg = linked["msg"]
    assert "404" in msg and "/rest/api/3/issueLink" in msg and missing in msg, msg
    assert "\n" not in msg and "Traceback" not in linked.output and token not in linked.output
    assert linked["requests"][-1] == "POST /rest/api/3/issueLink"
    issue = jira_server.issue(key)
    assert issue["fields"].get("issuelinks", []) == [] and issue["comments"] == []


def test_servicenow_record_deleted_before_the_update(ansible, servicenow_server):
    user, password = servicenow_server.add_user()
    iid = inc_id()
    base = {"system": "servicenow", "url": servicenow_server.url, "username": user, "api_token": password,
            "retry_delay": 0.1, "incident_id": iid}
    made = ansible.run("incident_ticket", dict(base, summary="Queue lag", status="investigating"))
    assert not made.failed, made.output
    sys_id = made["ticket"]["id"]

    # The record disappears right after the module found it (its work notes are read in between).
    journal = servicenow_server._journal

    def delete_then_answer(query):
        servicenow_server.records.pop(sys_id, None)
        return journal(query)

    servicenow_server._journal = delete_then_answer
    try:
        noted = ansible.run("incident_ticket", dict(base, comment="Incident commander: ic:maria"))
    finally:
        servicenow_server._journal = journal
    assert noted.failed
    msg = noted["msg"]
    assert "404" in msg and f"/api/now/table/incident/{sys_id}" in msg and "No Record found" in msg, msg
    assert "\n" not in msg and password not in noted.output
    assert noted["requests"][-1] == f"PATCH /api/now/table/incident/{sys_id}"
    assert servicenow_server.by_correlation(iid) == []   # no second record was created

    again = ansible.run("incident_ticket", dict(base, comment="Incident commander: ic:maria"))
    assert again.failed and "summary is required" in again["msg"], again["msg"]
    assert servicenow_server.by_correlation(iid) == []
