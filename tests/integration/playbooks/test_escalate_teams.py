"""playbooks/escalate.yml pages the specialist teams the impact calls for, once (Slack and PagerDuty contract servers).

An incident whose impact is data_integrity brings in the Database Administrator (team:dba), one whose impact
is security the Security Team (team:security_team): each is paged on PagerDuty (dedup key <incident>-<team>)
and named on Slack exactly once, whatever the re-runs; neither incident pages the other team. The incidents
were detected a minute ago and have a commander, so no level of the time ladder is due.
"""
from __future__ import annotations

import datetime
import json
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import check_chain, read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PLAYBOOK = REPO_ROOT / "playbooks" / "escalate.yml"


@pytest.fixture
def setup(tmp_path, slack_server, pagerduty_server):
    tag = uuid.uuid4().hex[:6].upper()
    keys = {"dba": pagerduty_server.add_routing_key(), "security_team": pagerduty_server.add_routing_key()}
    contacts = {
        "dba": {"name": "Ravi Patel", "secondary": "Mia Chen", "phone": "+1 555 0110", "slack": "U0DBA" + tag,
                "email": "dba@trdrhub.example", "pagerduty_routing_key": keys["dba"]},
        "security_team": {"name": "Jo Park", "secondary": "Alex Kim", "slack": "U0SEC" + tag,
                          "email": "security@trdrhub.example", "pagerduty_routing_key": keys["security_team"]},
    }
    # Legal and PR are due on a security impact as well: give them a Slack-only contact.
    external = {"legal": {"name": "Counsel on call"}, "pr": {"name": "Comms on call"}}
    hook = slack_server.add_webhook()
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "escalate_slack_webhook_url": hook, "escalate_pagerduty_api_url": pagerduty_server.url,
            "trdrhub_escalation_contacts": contacts, "trdrhub_escalation_external_contacts": external}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    return {"inventory": inventory, "hook": hook, "keys": keys, "tag": tag, "slack": slack_server, "pd": pagerduty_server}


def _open(ansible, incident, impact):
    detected = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = ansible.run("incident", {"incident_id": incident, "title": "Ledger totals disagree", "priority": "P2",
                                   "impact": impact, "detected_at": detected, "commander": "ic:maria"})
    assert not run.failed, run.output


def _teams(ansible, incident):
    path = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    entries = read_file_ledger(path)
    check_chain(entries, incident)
    return [(e["data"]["action"], e["data"]["escalation"]) for e in entries
            if e["event"] == "escalation" and str(e["data"].get("escalation", "")).startswith("team:")]


@pytest.mark.parametrize(("impact", "team", "other"), [("data_integrity", "dba", "security_team"),
                                                       ("security", "security_team", "dba")])
def test_impact_pages_the_team_once(ansible, setup, impact, team, other):
    s = setup
    incident = f"INC-ESCT-{impact[:3].upper()}-{s['tag']}"
    _open(ansible, incident, [impact])
    args = ("-i", s["inventory"], "-e", f"trdrhub_incident_id={incident}")
    slack_before = len(s["slack"].messages(s["hook"]))

    first = ansible.run_playbook(PLAYBOOK, *args)
    assert first.rc == 0, first.output
    [page] = s["pd"].events_for(s["keys"][team])
    assert page["dedup_key"] == f"{incident}-{team}" and page["event_action"] == "trigger"
    assert s["pd"].events_for(s["keys"][other]) == []
    team_messages = [m for m in s["slack"].messages(s["hook"])[slack_before:] if f"U0{team[:3].upper()}" in m["text"]]
    assert len(team_messages) == 1, team_messages
    assert _teams(ansible, incident) == [("escalate", f"team:{team}"), ("notified", f"team:{team}")]

    again = ansible.run_playbook(PLAYBOOK, *args)
    assert again.rc == 0, again.output
    assert len(s["pd"].events_for(s["keys"][team])) == 1 and s["pd"].events_for(s["keys"][other]) == []
    assert len([m for m in s["slack"].messages(s["hook"])[slack_before:] if f"U0{team[:3].upper()}" in m["text"]]) == 1
    assert _teams(ansible, incident) == [("escalate", f"team:{team}"), ("notified", f"team:{team}")]
    for key in s["keys"].values():
        assert key not in first.output and key not in again.output
