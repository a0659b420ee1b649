"""The response procedure keeps the ticket and the status page in step, and verifies with a POST probe.

respond_p3.yml on the controller alone (no database, no alerts), with the Jira and Statuspage contract
servers and the runbook's key-functionality endpoint (POST {"test": true}, the contract of
_itest_http.KeyFunctionalityContract) as the only probe: triage opens the Jira issue, the verify phase POSTs the JSON body, the
status moves to monitoring on the record and the ticket and, with respond_resolve, the procedure resolves the record,
the issue and the Statuspage incident in one place
(roles/respond/tasks/status.yml). verify.yml in check mode sends no POST; a re-run whose status does
not move sends nothing to the ticket.
"""
from __future__ import annotations

import json
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_http import KeyFunctionalityContract
from _itest_ledger import check_chain, read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

P3 = REPO_ROOT / "playbooks" / "respond_p3.yml"
VERIFY = REPO_ROOT / "playbooks" / "verify.yml"


def flat(text):
    return " ".join(text.split())


def test_p3_procedure_ticket_status_page_and_post_probe(ansible, tmp_path, pg_server, trdrhub_db, jira_server,
                                                        statuspage_server):
    incident = "INC-RTK-" + uuid.uuid4().hex[:6].upper()
    email, token = jira_server.add_account()
    project = jira_server.add_project()
    page = statuspage_server.add_page({"API": "degraded_performance"})
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root), "TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_OPS_PASSWORD": trdrhub_db["ops"]["password"],
           "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"],
           "TRDRHUB_BASE_URL": None, "TRDRHUB_ALERTMANAGER_URL": None, "TRDRHUB_REDIS_URL": None,
           "TRDRHUB_STATUSPAGE_URL": statuspage_server.url, "TRDRHUB_STATUSPAGE_PAGE_ID": page.id,
           "TRDRHUB_STATUSPAGE_API_KEY": statuspage_server.api_key,
           "TRDRHUB_STATUSPAGE_COMPONENT_API": page.component_id("API")}
    with KeyFunctionalityContract() as api:
        variables = {
            "trdrhub_incident_id": incident,
            "trdrhub_ticket_system": "jira", "trdrhub_ticket_url": jira_server.url, "trdrhub_ticket_username": email,
            "trdrhub_ticket_api_token": token, "trdrhub_ticket_project": project,
            "verify_probes": [{"name": "key functionality", "base_url": api.url, "path": "/api/v1/test",
                               "method": "POST", "json_body": {"test": True}, "expect_status": 200,
                               "json_checks": [{"path": "status", "equals": "ok"}, {"path": "test", "equals": True}]}],
            "respond_resolution": "Cache warmed",
        }
        varsfile = tmp_path / "vars.json"
        varsfile.write_text(json.dumps(variables))
        args = ("-i", "inventories/sandbox", "-e", f"@{varsfile}")

        # The public incident is open (as communicate would have opened it on an earlier run).
        opened = ansible.run("statuspage_incident", {"api_url": statuspage_server.url, "page_id": page.id,
                                                     "api_key": statuspage_server.api_key, "incident_id": incident,
                                                     "name": "Reports slow"})
        assert not opened.failed, opened.output

        # First run: verified, not resolved - the record and the ticket say monitoring.
        run = ansible.run_playbook(P3, *args, extra_env=env, timeout=400)
        assert run.rc == 0, run.output
        text = flat(run.output)
        assert api.accepted == [{"test": True}]   # the verify role sent the runbook's body once

        entries = read_file_ledger(root / incident / "ledger.jsonl")
        check_chain(entries, incident)
        [verification] = [e for e in entries if e["event"] == "verification"]
        checks = {c["name"]: c for c in verification["data"]["checks"]}
        assert verification["data"]["verdict"] == "passed"
        assert checks["probe key functionality"]["status"] == "passed"
        assert checks["probe key functionality"]["detail"].startswith("POST /api/v1/test: HTTP 200")
        assert record(root, incident)["status"] == "monitoring"
        [issue] = jira_server.by_label(incident)
        key = issue["key"]
        assert record(root, incident)["references"]["ticket"] == key
        stored = jira_server.issue(key)
        assert stored["fields"]["status"]["name"] == "In Progress"
        assert comments(jira_server, key) == ["Status monitoring: Verification passed (P3 response procedure)"]
        assert [i["status"] for i in statuspage_server.incidents(page.id)] != ["resolved"]
        assert f"ticket: {key} {jira_server.url}/browse/{key}" in text
        assert f"status changes: monitoring (ticket: {key} updated)" in text

        # verify.yml alone, in check mode: the POST is not sent.
        look = ansible.run_playbook(VERIFY, *args, "--check", extra_env=env)
        assert "Verification (runbook 4.2)" in look.output, look.output
        assert api.accepted == [{"test": True}]

        # A re-run: the status does not move, so the ticket gets nothing new.
        writes = len(jira_server.writes())
        again = ansible.run_playbook(P3, *args, extra_env=env, timeout=400)
        assert again.rc == 0, again.output
        assert "status changes: none by this run" in flat(again.output)
        assert len(jira_server.writes()) == writes and len(comments(jira_server, key)) == 1
        assert len(api.accepted) == 2   # the verification runs again: it POSTs the test body, nothing else

        # Resolved by the procedure: the record, the issue and the Statuspage incident, in one step.
        done = ansible.run_playbook(P3, *args, "-e", '{"respond_resolve": true}', extra_env=env, timeout=400)
        assert done.rc == 0, done.output
        rec = record(root, incident)
        assert rec["state"] == "resolved" and rec["resolution"] == "Cache warmed"
        assert jira_server.issue(key)["fields"]["status"]["name"] == "Done"
        notes = comments(jira_server, key)
        assert "Status resolved: Verification passed (P3 response procedure)" in notes
        assert any("Cache warmed" in n for n in notes), notes
        assert [i["status"] for i in statuspage_server.incidents(page.id)] == ["resolved"]
        assert f"status changes: resolved (ticket: {key} resolved, status page: incident resolved)" in flat(done.output)
        check_chain(read_file_ledger(root / incident / "ledger.jsonl"), incident)


def record(root, incident):
    entries = read_file_ledger(root / incident / "ledger.jsonl")
    return [e for e in entries if e["event"] == "incident"][-1]["data"]["record"]


def comments(jira_server, key):
    """The issue's comments as plain text (Atlassian Document Format flattened)."""
    def text(node):
        if isinstance(node, dict):
            return node.get("text", "") + "".join(text(c) for c in node.get("content", []))
        return "".join(text(c) for c in node) if isinstance(node, list) else ""
    return [text(c.get("body", c)).strip() for c in jira_server.issue(key)["comments"]]
