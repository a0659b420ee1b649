"""incident_ticket against the Jira and ServiceNow contract servers.

Each system: check mode -> create -> idempotent re-run -> status, comment, link -> resolve -> re-run;
then the failures an operator meets: wrong credentials, unknown project, a workflow without the
status, rate limiting.
"""
from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def inc_id():
    return f"INC-ITEST-{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def jira(jira_server):
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    return {"system": "jira", "url": jira_server.url, "username": email, "api_token": token, "project": project,
            "retry_delay": 0.1}


@pytest.fixture
def snow(servicenow_server):
    user, password = servicenow_server.add_user()
    return {"system": "servicenow", "url": servicenow_server.url, "username": user, "api_token": password,
            "retry_delay": 0.1}


def test_jira_lifecycle(ansible, jira_server, jira):
    iid = inc_id()
    args = dict(jira, incident_id=iid, summary="P1: API returns 503", description="Readiness fails.\n\nSince 14:30.",
                status="investigating")
    writes = len(jira_server.writes())

    check = ansible.run("incident_ticket", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check["changed"] is True and check["action"] == "created"
    assert check["ticket"]["key"] is None and check["ticket"]["status"] == "In Progress"
    assert check["diff"]["before"] == {} and check["diff"]["after"]["summary"] == "P1: API returns 503"
    assert jira_server.by_label(iid) == [] and len(jira_server.writes()) == writes

    created = ansible.run("incident_ticket", args, diff=True)
    assert not created.failed, created.output
    assert created["action"] == "created" and created["changes"][1] == "move to In Progress"
    key = created["ticket"]["key"]
    stored = jira_server.issue(key)
    assert stored["fields"]["labels"] == [iid] and stored["fields"]["status"]["name"] == "In Progress"
    assert stored["fields"]["description"]["type"] == "doc" and len(stored["fields"]["description"]["content"]) == 2
    assert created["ticket"]["url"] == f"{jira_server.url}/browse/{key}"
    assert created["requests"][0] == "GET /rest/api/3/search/jql"

    again = ansible.run("incident_ticket", args)
    assert not again.failed, again.output
    assert again["changed"] is False and again["action"] == "none" and again["ticket"]["key"] == key
    assert len(jira_server.writes()) == writes + 2

    other = jira_server.add_issue(jira["project"], "Database capacity review")
    note = dict(jira, incident_id=iid, comment="Incident commander: ic:maria", links=[{"key": other}])
    noted = ansible.run("incident_ticket", note)
    assert noted["changed"] is True and noted["action"] == "updated", noted.output
    assert noted["ticket"]["links"] == [{"key": other, "type": "Relates"}]
    assert len(jira_server.issue(key)["comments"]) == 1
    assert ansible.run("incident_ticket", note)["changed"] is False

    resolve = dict(jira, incident_id=iid, state="resolved", resolution="Pool size raised to 40")
    done = ansible.run("incident_ticket", resolve, diff=True)
    assert not done.failed, done.output
    assert done["action"] == "resolved" and done["ticket"]["status"] == "Done"
    assert done["diff"]["before"]["status"] == "In Progress"
    issue = jira_server.issue(key)
    assert issue["transitions"] == ["In Progress", "Done"] and len(issue["comments"]) == 2
    assert ansible.run("incident_ticket", resolve)["changed"] is False


def test_jira_failures(ansible, jira_server, jira):
    iid = inc_id()
    base = dict(jira, incident_id=iid, summary="Queue lag", status="investigating")
    wrong = ansible.run("incident_ticket", dict(base, api_token="ATATTwrongtoken0000"))
    assert wrong.failed and "401" in wrong["msg"] and "api_token" in wrong["msg"]
    assert "ATATTwrongtoken0000" not in wrong.output

    unknown = ansible.run("incident_ticket", dict(base, project="NOPE"))
    assert unknown.failed and "400" in unknown["msg"] and "NOPE" in unknown["msg"], unknown["msg"]

    no_project = ansible.run("incident_ticket", {k: v for k, v in base.items() if k != "project"})
    assert no_project.failed and "project" in no_project["msg"] and not jira_server.by_label(iid)

    odd = ansible.run("incident_ticket", dict(base, jira_statuses={"investigating": "Triage"}))
    assert odd.failed and "no transition to the status 'Triage'" in odd["msg"], odd["msg"]
    assert "Done" in odd["msg"] and "jira_statuses" in odd["msg"]

    jira_server.fail_next(jira["project"], 429, count=1, retry_after="0")
    limited = ansible.run("incident_ticket", dict(base, comment="Still looking"))
    assert not limited.failed, limited.output
    jira_server.fail_next(jira["project"], 429, count=5, retry_after="0")
    gave_up = ansible.run("incident_ticket", dict(base, comment="Another note", retries=1))
    assert gave_up.failed and "429" in gave_up["msg"] and "rate limited" in gave_up["msg"]
    while jira_server.injected(jira["project"]):   # leave no injected answer behind
        pass


def test_servicenow_lifecycle(ansible, servicenow_server, snow):
    iid = inc_id()
    args = dict(snow, incident_id=iid, summary="P1: API returns 503", priority="P1", status="investigating",
                assignment_group="Platform SRE")
    writes = len(servicenow_server.writes())

    check = ansible.run("incident_ticket", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check["action"] == "created" and check["ticket"]["state"] == "2" and check["ticket"]["url"] is None
    assert servicenow_server.by_correlation(iid) == [] and len(servicenow_server.writes()) == writes

    created = ansible.run("incident_ticket", args)
    assert not created.failed, created.output
    (record,) = servicenow_server.by_correlation(iid)
    assert record["impact"] == "1" and record["urgency"] == "1" and record["state"] == "2"
    assert created["ticket"]["key"] == record["number"] and created["ticket"]["status"] == "In Progress"

    assert ansible.run("incident_ticket", args)["changed"] is False

    noted = ansible.run("incident_ticket", dict(snow, incident_id=iid, comment="Incident commander: ic:maria"))
    assert noted["changed"] is True and noted["action"] == "updated", noted.output
    assert servicenow_server.work_notes(record["sys_id"]) == ["Incident commander: ic:maria"]
    assert ansible.run("incident_ticket", dict(snow, incident_id=iid, comment="Incident commander: ic:maria"))["changed"] is False

    resolve = dict(snow, incident_id=iid, state="resolved", resolution="Pool size raised to 40")
    done = ansible.run("incident_ticket", resolve, diff=True)
    assert not done.failed, done.output
    assert done["action"] == "resolved" and done["ticket"]["status"] == "Resolved"
    (record,) = servicenow_server.by_correlation(iid)
    assert record["state"] == "6" and record["close_notes"] == "Pool size raised to 40"
    assert record["close_code"] == "Solved (Permanently)"
    assert ansible.run("incident_ticket", resolve)["changed"] is False


def test_servicenow_failures(ansible, servicenow_server, snow):
    iid = inc_id()
    base = dict(snow, incident_id=iid, summary="Queue lag")
    wrong = ansible.run("incident_ticket", dict(base, api_token="not-the-password"))
    assert wrong.failed and "401" in wrong["msg"] and "User Not Authenticated" in wrong["msg"]
    assert "not-the-password" not in wrong.output

    token = servicenow_server.add_token()
    bearer = {k: v for k, v in base.items() if k not in ("username", "api_token")}
    made = ansible.run("incident_ticket", dict(bearer, bearer_token=token))
    assert not made.failed and made["action"] == "created", made.output

    bad_code = ansible.run("incident_ticket", dict(base, state="resolved", close_code="Fixed it"))
    assert bad_code.failed and "close_code" in bad_code["msg"] and "400" in bad_code["msg"], bad_code["msg"]

    servicenow_server.fail_next(iid, 429, count=1, retry_after="0")
    limited = ansible.run("incident_ticket", dict(base, comment="Still looking"))
    assert not limited.failed, limited.output
    servicenow_server.fail_next(iid, 500, count=5)
    broken = ansible.run("incident_ticket", dict(base, comment="Another", retries=1))
    assert broken.failed and "500" in broken["msg"] and "\n" not in broken["msg"]
    while servicenow_server.injected(iid):
        pass

    none = ansible.run("incident_ticket", dict(snow, incident_id=inc_id(), comment="x"))
    assert none.failed and "summary is required" in none["msg"]
