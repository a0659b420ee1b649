"""playbooks/escalate.yml through real ansible-playbook against the Slack and PagerDuty contract servers and a real
SMTP server.

A P1 incident detected 40 minutes ago and never acknowledged: check mode sends and records nothing; the first run
escalates to level 2 and level 3 (Slack with mentions, email, PagerDuty to each level's routing key) and records both;
a re-run sends nothing; an external escalation to legal notifies its contact and reports PagerDuty as skipped; a
resolved incident is never escalated, not even when a level is asked for.
"""
from __future__ import annotations

import datetime
import json
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PLAYBOOK = REPO_ROOT / "playbooks" / "escalate.yml"


@pytest.fixture
def setup(tmp_path, slack_server, pagerduty_server, smtp_server):
    tag = uuid.uuid4().hex[:8]
    keys = {"L2": pagerduty_server.add_routing_key(), "L3": pagerduty_server.add_routing_key(),
            "L4": pagerduty_server.add_routing_key()}
    contacts = {
        "team_lead": {"name": "Dana Lee", "slack": "U0DANA" + tag.upper()[:4], "email": f"dana-{tag}@trdrhub.example",
                      "pagerduty_routing_key": keys["L2"], "pagerduty_escalation_policy": "PTEAMLD"},
        "engineering_manager": {"name": "Sam Ortiz", "slack": "@sam", "email": f"sam-{tag}@trdrhub.example",
                                "pagerduty_routing_key": keys["L3"]},
        "executive": {"name": "Alex Kim", "email": f"alex-{tag}@trdrhub.example", "pagerduty_routing_key": keys["L4"]},
    }
    external = {"legal": {"name": "Counsel on call", "email": f"legal-{tag}@trdrhub.example"}}
    hook = slack_server.add_webhook()
    host_vars = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "escalate_slack_webhook_url": hook, "escalate_pagerduty_api_url": pagerduty_server.url,
        "escalate_email_host": smtp_server.host, "escalate_email_port": smtp_server.port,
        "escalate_email_ca_path": smtp_server.ca_path, "escalate_email_username": smtp_server.username,
        "escalate_email_password": smtp_server.password,
        "trdrhub_escalation_contacts": contacts, "trdrhub_escalation_external_contacts": external,
    }
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host_vars}}}))
    return {"inventory": inventory, "hook": hook, "keys": keys, "contacts": contacts, "external": external, "tag": tag,
            "slack": slack_server, "pd": pagerduty_server, "smtp": smtp_server}


def _open(ansible, incident, minutes_ago=40, **extra):
    detected = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = ansible.run("incident", {"incident_id": incident, "title": "API returns 503 on /health/ready", "priority": "P1",
                                   "impact": ["customer-facing"], "detected_at": detected, "commander": "ic:maria", **extra})
    assert not run.failed, run.output
    return run["incident"]


def _escalations(ansible, incident):
    path = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    return [e for e in read_file_ledger(path) if e["event"] == "escalation"] if path.exists() else []


def _emails(smtp, incident):
    return [m for m in smtp.messages if m["message"]["X-TRDRHub-Incident"] == incident]


def _sent(s, incident):
    return (len(s["slack"].messages(s["hook"])), sum(len(s["pd"].events_for(k)) for k in s["keys"].values()),
            len(_emails(s["smtp"], incident)))


def test_escalate_lifecycle(ansible, setup):
    s = setup
    incident = "INC-ESC-" + s["tag"]
    args = ("-i", s["inventory"], "-e", f"trdrhub_incident_id={incident}")
    _open(ansible, incident)

    # check mode: shows L2 and L3, sends and records nothing, writes no file
    snapshot = Snapshot(ansible.workdir / "incidents", s["inventory"].parent)
    check = ansible.run_playbook(PLAYBOOK, *args, "--check")
    assert check.rc == 0, check.output
    assert "CHECK MODE: nothing was sent or recorded; would escalate: L2, L3" in check.output
    assert "level 3 due, level 1 reached before this run" in check.output
    assert _sent(s, incident) == (0, 0, 0) and _escalations(ansible, incident) == []
    assert snapshot.new_or_changed() == []

    # first run: level 2 and level 3 notified on every channel, recorded in the ledger
    first = ansible.run_playbook(PLAYBOOK, *args)
    assert first.rc == 0, first.output
    assert "Escalated and notified: L2, L3" in first.output
    slack_l2, slack_l3 = s["slack"].messages(s["hook"])
    assert slack_l2["text"].startswith(f"<@{s['contacts']['team_lead']['slack']}> *Escalation to Dana Lee, Senior engineer")
    assert slack_l3["text"].startswith("@sam *Escalation to Sam Ortiz, Engineering manager")
    assert "not acknowledged 15 min after detection" in slack_l2["text"] and "commander: ic:maria" in slack_l2["text"]
    [page_l2] = s["pd"].events_for(s["keys"]["L2"])
    [page_l3] = s["pd"].events_for(s["keys"]["L3"])
    assert page_l2["dedup_key"] == f"{incident}-L2" and page_l3["dedup_key"] == f"{incident}-L3"
    assert page_l2["payload"]["severity"] == "critical" and page_l2["payload"]["custom_details"]["escalation_policy"] == "PTEAMLD"
    assert s["pd"].incident(s["keys"]["L3"], f"{incident}-L3")["status"] == "triggered"
    assert s["pd"].events_for(s["keys"]["L4"]) == []
    mails = {m["rcpt_tos"][0]: m for m in _emails(s["smtp"], incident)}
    assert sorted(mails) == sorted([s["contacts"]["team_lead"]["email"], s["contacts"]["engineering_manager"]["email"]])
    assert mails[s["contacts"]["team_lead"]["email"]]["message"]["Subject"].startswith("Escalation to Dana Lee")
    entries = _escalations(ansible, incident)
    assert [(e["data"]["action"], e["data"]["escalation"]) for e in entries] == [
        ("escalate", "L2"), ("escalate", "L3"), ("notified", "L2"), ("notified", "L3")]
    assert all(e["phase"] == "investigate" for e in entries)
    assert entries[0]["module"] == "trdrhub.incident.incident_escalate" and entries[0]["data"]["contact"]["pagerduty"] is True
    assert entries[2]["data"]["channels"] == ["slack", "email", "pagerduty"] and entries[2]["data"]["dedup_key"] == f"{incident}-L2"
    path = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    check_chain(read_file_ledger(path), incident)
    text = path.read_text()
    for secret in (*s["keys"].values(), s["hook"], s["smtp"].password):
        assert secret not in text and secret not in first.output

    # re-run: nothing new is due (level 4 falls due at 60 minutes)
    again = ansible.run_playbook(PLAYBOOK, *args)
    assert again.rc == 0, again.output
    assert "Nothing to escalate; nothing was sent." in again.output
    assert _sent(s, incident) == (2, 2, 2) and len(_escalations(ansible, incident)) == 4

    # external: legal on request; PagerDuty is skipped (no routing key) and reported
    legal = ansible.run_playbook(PLAYBOOK, *args, "-e", '{"escalate_external": ["legal"]}')
    assert legal.rc == 0, legal.output
    assert "external:legal: pagerduty skipped - no pagerduty_routing_key for legal" in legal.output
    assert _sent(s, incident) == (3, 2, 3)
    assert "Escalation to Counsel on call, Legal / compliance" in s["slack"].messages(s["hook"])[-1]["text"]
    assert _escalations(ansible, incident)[-1]["data"]["channels"] == ["slack", "email"]

    # resolved: never escalated, not even when level 4 is asked for
    ran = ansible.run("incident", {"incident_id": incident, "state": "resolved", "resolution": "Pool raised to 40"})
    assert not ran.failed, ran.output
    resolved = ansible.run_playbook(PLAYBOOK, *args, "-e", "escalate_level=4")
    assert resolved.rc == 0, resolved.output
    assert "Nothing to escalate; nothing was sent." in resolved.output and "never escalated" in resolved.output
    assert _sent(s, incident) == (3, 2, 3) and len(_escalations(ansible, incident)) == 6


def test_resolved_incident_is_never_escalated(ansible, setup):
    s = setup
    incident = "INC-ESC-R-" + s["tag"]
    _open(ansible, incident, minutes_ago=90)
    ran = ansible.run("incident", {"incident_id": incident, "state": "resolved", "resolution": "Restarted the workers"})
    assert not ran.failed, ran.output
    run = ansible.run_playbook(PLAYBOOK, "-i", s["inventory"], "-e", f"trdrhub_incident_id={incident}")
    assert run.rc == 0, run.output
    assert "Nothing to escalate; nothing was sent." in run.output
    assert _sent(s, incident) == (0, 0, 0) and _escalations(ansible, incident) == []
