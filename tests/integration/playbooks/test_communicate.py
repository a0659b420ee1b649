"""playbooks/communicate.yml through real ansible-playbook against the Slack, PagerDuty and Statuspage
contract servers and a real SMTP server.

A P1 incident opened with the incident module: check mode sends nothing; the first run sends the
initial messages on every channel and records them; a re-run sends nothing (within the cadence);
a status change to monitoring sends updates; resolving sends the resolution, resolves the Statuspage
and PagerDuty incidents. A channel without configuration is skipped and says so.
"""
from __future__ import annotations

import json
import re
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PLAYBOOK = REPO_ROOT / "playbooks" / "communicate.yml"


@pytest.fixture
def channels(slack_server, pagerduty_server, statuspage_server, smtp_server):
    page = statuspage_server.add_page({"API": "operational", "Reports": "operational"})
    customer = f"ops-{uuid.uuid4().hex[:8]}@customer.example"
    return {
        "slack": slack_server.add_webhook(), "routing_key": pagerduty_server.add_routing_key(), "page": page,
        "customer": customer, "sp": statuspage_server, "pd": pagerduty_server, "smtp": smtp_server,
        "slack_server": slack_server,
    }


def _inventory(tmp_path, ch, **extra):
    smtp, sp = ch["smtp"], ch["sp"]
    host_vars = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "communicate_slack_webhook_url": ch["slack"],
        "communicate_pagerduty_routing_key": ch["routing_key"], "communicate_pagerduty_api_url": ch["pd"].url,
        "communicate_statuspage_page_id": ch["page"].id, "communicate_statuspage_api_key": sp.api_key,
        "communicate_statuspage_api_url": sp.url,
        "communicate_statuspage_components": {ch["page"].component_id("API"): "major_outage"},
        "communicate_email_host": smtp.host, "communicate_email_port": smtp.port, "communicate_email_ca_path": smtp.ca_path,
        "communicate_email_username": smtp.username, "communicate_email_password": smtp.password,
        "communicate_email_to": [ch["customer"]],
        "communicate_public_title": "Delayed document processing",
        **extra,
    }
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": host_vars}}}))
    return path


def _incident(ansible, incident, **args):
    run = ansible.run("incident", {"incident_id": incident, **args})
    assert not run.failed, run.output
    return run["incident"]


def _communications(ledger):
    return [e for e in read_file_ledger(ledger) if e["event"] == "communication"]


def _emails(smtp, incident):
    return [m for m in smtp.messages if m["message"]["X-TRDRHub-Incident"] == incident]


def _sp_incidents(ch, incident):
    return [i for i in ch["sp"].incidents(ch["page"].id) if f"[{incident}]" in i["name"]]


def test_communicate_lifecycle(ansible, tmp_path, channels):
    ch = channels
    incident = "INC-COMM-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    inventory = _inventory(tmp_path, ch)
    args = ("-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    _incident(ansible, incident, title="API returns 503 on /health/ready", priority="P1", impact=["customer-facing"],
              commander="ic:maria")

    # check mode: shows every channel, sends and records nothing, writes no file
    snapshot = Snapshot(ansible.workdir / "incidents", tmp_path)
    check = ansible.run_playbook(PLAYBOOK, *args, "--check")
    assert check.rc == 0, check.output
    for line in ("slack: would send initial", "pagerduty: would send trigger", "statuspage: would send initial",
                 "email: would send initial", "CHECK MODE: nothing was sent or recorded."):
        assert line in check.output
    assert ch["slack_server"].messages(ch["slack"]) == [] and ch["pd"].events_for(ch["routing_key"]) == []
    assert _sp_incidents(ch, incident) == [] and _emails(ch["smtp"], incident) == []
    assert _communications(ledger) == [] and snapshot.new_or_changed() == []

    # first run: the initial messages on all four channels
    first = ansible.run_playbook(PLAYBOOK, *args)
    assert first.rc == 0, first.output
    [slack] = ch["slack_server"].messages(ch["slack"])
    assert f"P1 incident {incident}*" in slack["text"] and "*Incident commander:* ic:maria" in slack["text"]
    assert "*Impact:* customer-facing" in slack["text"] and "*Next update:* 20" in slack["text"]
    assert ch["pd"].incident(ch["routing_key"], incident)["status"] == "triggered"
    [trigger] = ch["pd"].events_for(ch["routing_key"])
    assert trigger["payload"]["severity"] == "critical" and incident in trigger["payload"]["summary"]
    [public] = _sp_incidents(ch, incident)
    assert public["status"] == "investigating" and public["impact_override"] == "critical"
    assert public["name"] == f"Delayed document processing [{incident}]"
    assert ch["sp"].components(ch["page"].id)["API"] == "major_outage"
    [mail] = _emails(ch["smtp"], incident)
    assert mail["rcpt_tos"] == [ch["customer"]] and mail["tls"] is True
    assert mail["message"]["Subject"] == f"[{incident}] Service disruption: Delayed document processing"
    assert f"Reference: {incident}" in mail["message"].get_body(("plain",)).get_content()
    sent = _communications(ledger)
    assert sorted((e["data"]["channel"], e["data"]["kind"]) for e in sent) == [
        ("email", "initial"), ("pagerduty", "initial"), ("slack", "initial"), ("statuspage", "initial")]
    for entry in sent:
        assert entry["phase"] == "communicate" and entry["data"]["recipients"] == 1
        assert len(entry["data"]["message_sha256"]) == 64 and entry["data"]["status"] == "investigating"
    record = [e for e in read_file_ledger(ledger) if e["event"] == "incident"][-1]["data"]["record"]
    assert record["references"] == {"statuspage_incident_id": public["id"], "pagerduty_dedup_key": incident}
    text = ledger.read_text()
    for secret in (ch["slack"], ch["routing_key"], ch["sp"].api_key, ch["smtp"].password):
        assert secret not in text and secret not in first.output

    # re-run at once: nothing is due within the cadence
    again = ansible.run_playbook(PLAYBOOK, *args)
    assert again.rc == 0, again.output
    assert "Nothing was due; nothing was sent." in again.output and "changed=0" in again.output
    assert len(ch["slack_server"].messages(ch["slack"])) == 1 and len(ch["pd"].events_for(ch["routing_key"])) == 1
    assert len(_emails(ch["smtp"], incident)) == 1 and len(_communications(ledger)) == 4

    # acknowledged and monitoring: updates, and PagerDuty acknowledge
    _incident(ansible, incident, status="monitoring", acknowledged=True)
    update = ansible.run_playbook(PLAYBOOK, *args)
    assert update.rc == 0, update.output
    assert len(ch["slack_server"].messages(ch["slack"])) == 2
    assert "Update on P1 incident" in ch["slack_server"].messages(ch["slack"])[-1]["text"]
    assert ch["pd"].incident(ch["routing_key"], incident)["status"] == "acknowledged"
    assert _sp_incidents(ch, incident)[0]["status"] == "monitoring"
    emails = _emails(ch["smtp"], incident)
    assert len(emails) == 2 and emails[-1]["message"]["Subject"].startswith(f"[{incident}] Update:")
    assert {e["data"]["kind"] for e in _communications(ledger)[4:]} == {"update"}

    # resolved: resolution messages, Statuspage and PagerDuty resolved
    _incident(ansible, incident, state="resolved", resolution="Runaway sessions terminated; pool raised to 40")
    resolved = ansible.run_playbook(PLAYBOOK, *args)
    assert resolved.rc == 0, resolved.output
    assert ch["slack_server"].messages(ch["slack"])[-1]["text"].count("Resolved") == 1
    assert ch["pd"].incident(ch["routing_key"], incident)["status"] == "resolved"
    assert _sp_incidents(ch, incident)[0]["status"] == "resolved"
    assert ch["sp"].components(ch["page"].id)["API"] == "operational"
    assert _emails(ch["smtp"], incident)[-1]["message"]["Subject"].startswith(f"[{incident}] Resolved:")
    kinds = [(e["data"]["channel"], e["data"]["kind"]) for e in _communications(ledger)]
    assert sorted(kinds[-4:]) == [("email", "resolved"), ("pagerduty", "resolved"), ("slack", "resolved"),
                                  ("statuspage", "resolved")]

    # and once resolved, nothing more
    final = ansible.run_playbook(PLAYBOOK, *args)
    assert final.rc == 0 and "Nothing was due; nothing was sent." in final.output, final.output
    check_chain(read_file_ledger(ledger), incident)

    # the review's timeline shows each run's messages as one row (docs/pir.md), not a row per send task
    review = ansible.run_playbook(REPO_ROOT / "playbooks" / "pir.yml", *args)
    assert review.rc == 0, review.output
    md = (ledger.parent / "pir" / "pir.md").read_text()
    actions = [line.split(" | ")[1] for line in md.splitlines() if re.match(r"\| \d{4}-\d{2}-\d{2} ", line)]
    messages = [a for a in actions if a.startswith("Communication")]
    assert messages[0] == "Communication (initial): slack, pagerduty trigger, statuspage, email", actions
    assert len(messages) == 3 and messages[1].startswith("Communication (update): slack, pagerduty")
    assert messages[2].startswith("Communication (resolved): slack, pagerduty"), actions
    changed_rows = ("Changed: Slack", "Changed: PagerDuty", "Changed: Statuspage", "Changed: Email")
    assert not [a for a in actions if a.startswith(changed_rows)], actions


def test_unconfigured_channel_is_skipped_and_reported(ansible, tmp_path, channels):
    ch = channels
    incident = "INC-COMM-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    inventory = _inventory(tmp_path, ch, communicate_slack_webhook_url="", communicate_email_to=[])
    _incident(ansible, incident, title="Notifications delayed", priority="P2", impact=["customer-facing"])
    run = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    assert run.rc == 0, run.output
    assert "slack: nothing to send - disabled: no webhook (communicate_slack_webhook_url)" in run.output
    assert "email: nothing to send - not notified at P2" in run.output
    assert ch["slack_server"].messages(ch["slack"]) == []
    assert sorted(e["data"]["channel"] for e in _communications(ledger)) == ["pagerduty", "statuspage"]
    assert _sp_incidents(ch, incident)[0]["impact_override"] == "major"
