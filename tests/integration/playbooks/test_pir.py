"""playbooks/pir.yml through real ansible-playbook on a realistic incident ledger.

The ledger is written here, entry by entry, in the format docs/ledger.md documents and hashed
with hashlib (not the collection's code): triage opens a P1 detected at 14:30, the commander
acknowledges at 14:36 (a note carrying a <script>), messages go out, customers are notified
(the partners never are), an investigation reads the application logs and writes a diagnostics
bundle, sessions are terminated, a restart fails, the cause is found and recorded, the workers
are scaled, the verification passes and the incident is resolved at 15:12:40. A tampered copy
stops the play, or is rendered marked INVALID when asked to.

playbooks/pir.yml links the incident's ticket: the Summary's Ticket row (Markdown and HTML).

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
import xml.etree.ElementTree as ET

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import entry_hash
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLAYBOOK = REPO_ROOT / "playbooks" / "pir.yml"
DAY = "2025-01-15T"
SCRIPT = "<script>alert('pir')</script>"
ROOT_CAUSE = "A stuck consumer held connections open; the pool was too small to absorb it."
BUNDLE_SHA, SUMMARY_SHA = "ab" * 32, "cd" * 32


def _record(incident, **kw):
    base = {"incident_id": incident, "state": "open", "status": "investigating", "title": "API returns 503 on /health/ready",
            "summary": None, "priority": "P1", "response_deadline": DAY + "14:45:00Z", "impact": ["customer-facing"],
            "commander": None, "acknowledged": False, "acknowledged_at": None, "detected_at": DAY + "14:30:00Z",
            "opened_at": DAY + "14:33:02Z", "opened_by": "awx:alice", "references": {}, "resolution": None,
            "resolved_at": None, "duration_seconds": None}
    base.update(kw)
    return base


def scenario(incident):
    """(ts, fields) of a P1 from detection to resolution, as the callback and the modules write it."""
    ack = {"commander": "ic:maria", "acknowledged": True, "acknowledged_at": DAY + "14:36:10Z"}
    told = dict(ack, notifications={"customers_impact": {"at": DAY + "14:40:30Z", "by": "awx:maria",
                                                         "to": "status page and customer notice", "note": None}})
    ident = dict(told, status="identified", root_cause=ROOT_CAUSE)
    resolved = dict(ident, state="resolved", status="resolved", resolution="Runaway sessions terminated; pool raised to 40",
                    resolved_at=DAY + "15:12:40Z", resolved_by="awx:maria", duration_seconds=2560)

    def inc(action, record, changes, note=None):
        data = {"action": action, "actions": [action] if action != "assign_commander" else ["assign_commander", "acknowledge"],
                "changes": changes, "record": _record(incident, **record), "run": "r1"}
        if note:
            data["note"] = note
        return {"event": "incident", "phase": "triage", "module": "trdrhub.incident.incident", "data": data}

    def task(name, status, run, module="ansible.builtin.command", phase=None, **data):
        return {"event": "task", "task": name, "host": "bastion-1", "module": module, "changed": status == "changed",
                "failed": status == "failed", "phase": phase, "data": {"status": status, "run": run, **data}}

    return [
        ("14:33:00", {"event": "playbook_start", "data": {"run": "r1", "playbook": "/ops/playbooks/triage.yml"}}),
        ("14:33:01", task("Record | Open or update the incident record", "changed", "r1", module="trdrhub.incident.incident")),
        ("14:33:02", inc("open", {}, {"state": {"before": None, "after": "open"}})),
        ("14:33:05", task("Health | Probe", "ok", "r1")),
        ("14:36:10", inc("assign_commander", ack, {"commander": {"before": None, "after": "ic:maria"}},
                         note=f"Maria took command {SCRIPT}")),
        ("14:37:00", {"event": "decision", "phase": "triage", "data": {"run": "r1", "message": "Triage: P1 (Critical)"}}),
        ("14:37:01", {"event": "playbook_end", "data": {"run": "r1"}}),
        ("14:38:00", {"event": "communication", "phase": "communicate",
                      "data": {"run": "r2", "channel": "slack", "kind": "initial", "sent": True}}),
        ("14:38:01", {"event": "communication", "phase": "communicate",
                      "data": {"run": "r2", "channel": "statuspage", "kind": "initial", "sent": True}}),
        ("14:40:00", {"event": "playbook_start", "phase": "investigate",
                      "data": {"run": "r6", "playbook": "/ops/playbooks/investigate.yml"}}),
        ("14:40:30", inc("update", told, {"notifications": {"before": None, "after": told["notifications"]}})),
        ("14:41:00", task("Logs | Read the application logs", "ok", "r6", module="trdrhub.incident.app_logs_info",
                          phase="investigate")),
        ("14:41:05", task("Logs | Read the application logs", "ok", "r6", module="trdrhub.incident.app_logs_info",
                          phase="investigate", check_mode=True)),
        ("14:44:00", {"event": "finding", "phase": "investigate", "data": {
            "run": "r6", "message": "Diagnostics collected: 1 finding(s). PgBouncer pool saturation",
            "bundle_dir": "/srv/incidents/diagnostics/20250115T144000Z", "bundle_sha256": BUNDLE_SHA,
            "summary_sha256": SUMMARY_SHA, "written": True}}),
        ("14:44:01", {"event": "playbook_end", "phase": "investigate", "data": {"run": "r6"}}),
        ("14:50:00", task("Terminate runaway sessions", "changed", "r3", module="trdrhub.incident.pg_terminate_sessions",
                          phase="contain")),
        ("14:52:00", task("Restart trdrhub-worker", "failed", "r3", msg="deployment not found", phase="contain")),
        ("14:55:00", {"event": "finding", "phase": "investigate", "data": {"run": "r4", "message": "PgBouncer pool saturated"}}),
        ("14:56:00", inc("status", ident, {"status": {"before": "investigating", "after": "identified"},
                                           "root_cause": {"before": None, "after": ROOT_CAUSE}})),
        ("15:05:00", task("Scale trdrhub-worker to 4 replicas", "changed", "r7", module="trdrhub.incident.k8s_rollout",
                          phase="recover")),
        ("15:10:00", {"event": "verification", "phase": "verify", "data": {
            "run": "r8", "verdict": "passed", "message": "Verification PASSED: 3 passed, 0 failed, 0 skipped"}}),
        ("15:12:40", inc("resolve", resolved, {"state": {"before": "open", "after": "resolved"}})),
        ("15:13:00", {"event": "communication", "phase": "communicate",
                      "data": {"run": "r5", "channel": "slack", "kind": "resolved", "sent": True}}),
    ]


def write_ledger(path, incident):
    path.parent.mkdir(parents=True, exist_ok=True)
    prev, lines = None, []
    for seq, (clock, fields) in enumerate(scenario(incident), start=1):
        entry = {"v": 1, "seq": seq, "incident_id": incident, "ts": f"{DAY}{clock}.000000+00:00", "event": "note",
                 "phase": None, "actor": "awx:alice", "host": None, "play": None, "task": None, "module": None,
                 "changed": None, "failed": None, "args": {}, "data": {}}
        entry.update(fields)
        if entry["event"] == "incident" and "commander" in str(entry["data"].get("changes")):
            entry["actor"] = "awx:maria"
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(entry)
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def section(md, title):
    """The text of one "## title" section of the review."""
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table(text):
    """The cells of the Markdown table rows of ``text`` that start with a value (not the header or the rule)."""
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith(("| Time", "| Obligation", "| Evidence", "| |"))]


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "trdrhub_holidays": ["2025-01-17"],
        "pir_action_items": [{"item": "Alert on pool saturation", "owner": "team-db", "due": "2025-02-01", "ticket": "OPS-17"}],
        "pir_went_well": [f"Fast acknowledgement {SCRIPT}"],
    }}}}))
    return path


def test_pir_renders_markdown_html_svg(ansible, inventory):
    incident = "INC-PIR-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    count = write_ledger(ledger, incident)
    out = ledger.parent / "pir"

    snapshot = Snapshot(ansible.workdir / "incidents")
    check = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}", "--check")
    assert check.rc == 0, check.output
    assert "CHECK MODE: nothing was written" in check.output and not out.exists()
    assert snapshot.new_or_changed() == []
    assert "Review: final (the incident is resolved)" in check.output and "DRAFT" not in check.output

    run = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    assert run.rc == 0, run.output
    assert "Response: MET" in run.output
    md, page, svg = ((out / name).read_text() for name in ("pir.md", "pir.html", "timeline.svg"))

    # the chain was verified (the entries of the check-mode run above were appended by the callback since)
    verified = re.search(r"Ledger verification: \*\*VALID - (\d+) entries, head seq (\d+) hash [0-9a-f]{64}", md)
    assert verified and int(verified[1]) >= count and int(verified[2]) == int(verified[1])
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings == ["Summary", "Impact", "Response-time compliance", "Key events", "Root cause", "Resolution",
                        "What went well", "What could be improved", "Action items", "Compliance", "PIR meeting checklist",
                        "Appendix: full timeline"]
    assert re.findall(r"^### (.+)$", md, re.M) == ["Notification obligations", "Data accessed during the response",
                                                   "Evidence preserved"]

    # the summary: date and time, duration, impact, root cause (the record's), resolution
    summary = section(md, "Summary")
    for row in ("| Detected | 2025-01-15 14:30:00 UTC |", "| Resolved | 2025-01-15 15:12:40 UTC |", "| Duration | 42 min |",
                "| Impact | customer-facing |", f"| Root cause | {ROOT_CAUSE} |",
                "| Resolution | Runaway sessions terminated; pool raised to 40 |"):
        assert row in summary, row
    assert section(md, "Root cause").strip().startswith(ROOT_CAUSE) and "Recorded in the incident record" not in md

    # the key events: Time | Action | Person, only those that happened
    assert table(section(md, "Key events")) == [
        ["2025-01-15 14:30:00 UTC", "Detected: API returns 503 on /health/ready, P1 (record opened at 14:33:02)", "awx:alice"],
        ["2025-01-15 14:40:00 UTC", "Investigation started: ran investigate.yml", "awx:alice"],
        ["2025-01-15 14:50:00 UTC", "Containment: Terminate runaway sessions on bastion-1", "awx:alice"],
        ["2025-01-15 14:56:00 UTC", f"Root cause identified: {ROOT_CAUSE}", "awx:alice"],
        ["2025-01-15 15:05:00 UTC", "Fix implemented: Scale trdrhub-worker to 4 replicas on bastion-1", "awx:alice"],
        ["2025-01-15 15:10:00 UTC", "Service restored - Verification PASSED: 3 passed, 0 failed, 0 skipped", "awx:alice"],
        ["2025-01-15 15:12:40 UTC", "Resolved: Runaway sessions terminated; pool raised to 40", "awx:maria"],
    ]

    # the full timeline is the appendix
    rows = [line for line in section(md, "Appendix: full timeline").splitlines() if line.startswith("| 2025-01-15")]
    actions = [row.split(" | ")[1] for row in rows]
    assert actions == [
        "Ran triage.yml (2 tasks, 1 changed, 0 failed)",
        "Incident opened: API returns 503 on /health/ready (P1)",
        "Incident commander: ic:maria; Acknowledged; note: Maria took command &lt;script&gt;alert('pir')&lt;/script&gt;",
        "Decision: Triage: P1 (Critical)",
        "Communication (initial): slack, statuspage",
        "Ran investigate.yml (2 tasks, 0 changed, 0 failed)",
        "Record updated (notifications)",
        "Finding: Diagnostics collected: 1 finding(s). PgBouncer pool saturation",
        "Changed: Terminate runaway sessions on bastion-1",
        "FAILED: Restart trdrhub-worker on bastion-1: deployment not found",
        "Finding: PgBouncer pool saturated",
        f"Status investigating \u2192 identified; Root cause: {ROOT_CAUSE}",
        "Changed: Scale trdrhub-worker to 4 replicas on bastion-1",
        "Verification: Verification PASSED: 3 passed, 0 failed, 0 skipped",
        "Resolved: Runaway sessions terminated; pool raised to 40",
        "Communication (resolved): slack",
    ]
    assert f"The full timeline ({len(rows)} rows, the ledger collapsed) is in the appendix." in md
    assert "| 2025-01-15 14:36:10 UTC |" in md and "| awx:maria |" in md

    # compliance: obligations met or missed, data accessed, evidence preserved
    compliance = section(md, "Compliance")
    assert "2 obligation(s): 1 met, 0 met late, 1 missed, 0 still open." in compliance
    obligations = {row[0]: row[1:] for row in table(compliance) if row[0].startswith(("Customers", "Integration"))}
    assert obligations["Customers (significant service impact)"][:2] == ["2025-01-15 15:30:00 UTC", "MET"]
    assert obligations["Customers (significant service impact)"][2].startswith(
        "status page and customer notice notified at 2025-01-15T14:40:30Z by awx:maria")
    assert obligations["Integration partners"][:2] == ["2025-01-15 18:30:00 UTC", "MISSED"]
    accessed = [row for row in table(compliance) if row[1] in ("Application logs", "Diagnostics bundle")]
    assert accessed == [
        ["2025-01-15 14:41:00 UTC", "Application logs", "Logs \\| Read the application logs on bastion-1", "awx:alice"],
        ["2025-01-15 14:44:00 UTC", "Diagnostics bundle", "/srv/incidents/diagnostics/20250115T144000Z: Diagnostics "
         "collected: 1 finding(s). PgBouncer pool saturation", "awx:alice"],
    ]
    assert re.search(rf"\| Incident ledger head \| seq {verified[2]} hash [0-9a-f]{{64}} \(verified at ", compliance)
    assert (f"| Diagnostics bundle /srv/incidents/diagnostics/20250115T144000Z | bundle.json sha256 {BUNDLE_SHA}, "
            f"summary.md sha256 {SUMMARY_SHA} (ledger seq 14) |") in compliance

    # the meeting: 2 business days after Wednesday's resolution, the inventory's holiday (Friday) skipped
    checklist = section(md, "PIR meeting checklist").strip().splitlines()
    assert checklist[0].startswith("- [ ] PIR meeting held by Monday 2025-01-20 (2 business days after the resolution on "
                                   "Wednesday 2025-01-15, weekends and the listed holidays skipped)")
    assert checklist[-1].startswith("- [ ] Follow-up review scheduled on Wednesday 2025-02-19 (30 days after the meeting)")
    shown = " ".join(run.output.split())   # the output callback folds long lines
    assert "PIR meeting: by 2025-01-20, follow-up review on 2025-02-19" in shown
    assert "Notification obligations: 2 obligation(s): 1 met, 0 met late, 1 missed, 0 still open." in shown
    assert "Data accessed: 2 record(s) (Application logs, Diagnostics bundle)" in shown
    assert "Key events: detected, investigation, containment, root_cause, fix, verified, resolved" in shown
    assert "| Verdict | MET - acknowledged at 2025-01-15T14:36:10Z, 6 min after detection; within the P1 target |" in md
    assert "| Time to resolve | 42 min |" in md and "| Time to acknowledge | 6 min |" in md
    assert "| Alert on pool saturation | team-db | 2025-02-01 | OPS-17 |" in md

    # no ledger- or inventory-derived text reaches a page unescaped
    for text in (md, page, svg):
        assert "<script>" not in text
    assert "Maria took command &lt;script&gt;alert(&#x27;pir&#x27;)&lt;/script&gt;" in page
    assert "Fast acknowledgement &lt;script&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and 'class="verdict-met"' in page and "<svg" in page
    assert re.findall(r"<h2>([^<]+)</h2>", page) == [h.replace("&", "&amp;") for h in headings]
    assert "<td>Containment: Terminate runaway sessions on bastion-1</td><td>awx:alice</td>" in page
    assert "<td>Integration partners</td><td>2025-01-15 18:30:00 UTC</td><td>MISSED</td>" in page
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) == len(rows)

    # a second run does not put the first PIR run into the timeline
    again = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    assert again.rc == 0, again.output
    assert [line for line in section((out / "pir.md").read_text(), "Appendix: full timeline").splitlines()
            if line.startswith("| 2025-01-15")] == rows


def test_pir_refuses_a_tampered_ledger(ansible, inventory):
    incident = "INC-PIR-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    write_ledger(ledger, incident)
    lines = ledger.read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if json.loads(line)["data"].get("action") == "resolve")
    entry = json.loads(lines[number])
    entry["data"]["record"]["resolution"] = "Nothing happened"   # edited, hash not recomputed
    lines[number] = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    ledger.write_text("\n".join(lines) + "\n")
    out = ledger.parent / "pir"

    refused = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    assert refused.rc != 0
    assert f"[{incident}] The incident ledger {ledger} does NOT verify" in refused.output
    assert "hash_mismatch" in refused.output and "No review was written" in refused.output
    assert "Traceback" not in refused.output and not out.exists()

    marked = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}",
                                  "-e", "pir_require_valid_ledger=false")
    assert marked.rc == 0, marked.output
    md, page = (out / "pir.md").read_text(), (out / "pir.html").read_text()
    assert "Ledger verification: **INVALID - " in md and "WARNING: the incident ledger does not verify" in md
    assert '<div class="invalid"><strong>INVALID - ' in page


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
