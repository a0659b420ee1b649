"""playbooks/pir.yml through real ansible-playbook on a realistic incident ledger.

The ledger is written here, entry by entry, in the format docs/ledger.md documents and hashed
with hashlib (not the collection's code): triage opens a P1 detected at 14:30, the commander
acknowledges at 14:36 (a note carrying a <script>), messages go out, sessions are terminated, a
restart fails, the cause is found and the incident is resolved at 15:12:40. A tampered copy
stops the play, or is rendered marked INVALID when asked to.
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
    ident = dict(ack, status="identified")
    resolved = dict(ident, state="resolved", status="resolved", resolution="Runaway sessions terminated; pool raised to 40",
                    resolved_at=DAY + "15:12:40Z", duration_seconds=2560)

    def inc(action, record, changes, note=None):
        data = {"action": action, "actions": [action] if action != "assign_commander" else ["assign_commander", "acknowledge"],
                "changes": changes, "record": _record(incident, **record), "run": "r1"}
        if note:
            data["note"] = note
        return {"event": "incident", "phase": "triage", "module": "trdrhub.incident.incident", "data": data}

    def task(name, status, run, module="ansible.builtin.command", **data):
        return {"event": "task", "task": name, "host": "bastion-1", "module": module, "changed": status == "changed",
                "failed": status == "failed", "data": {"status": status, "run": run, **data}}

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
        ("14:50:00", task("Terminate runaway sessions", "changed", "r3", module="trdrhub.incident.pg_terminate_sessions")),
        ("14:52:00", task("Restart trdrhub-worker", "failed", "r3", msg="deployment not found")),
        ("14:55:00", {"event": "finding", "phase": "investigate", "data": {"run": "r4", "message": "PgBouncer pool saturated"}}),
        ("14:56:00", inc("status", ident, {"status": {"before": "investigating", "after": "identified"}})),
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


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "pir_root_cause": "A stuck consumer held connections open; the pool was too small to absorb it.",
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
    rows = [line for line in md.splitlines() if line.startswith("| 2025-01-15")]
    actions = [row.split(" | ")[1] for row in rows]
    assert actions == [
        "Ran triage.yml (2 tasks, 1 changed, 0 failed)",
        "Incident opened: API returns 503 on /health/ready (P1)",
        "Incident commander: ic:maria; Acknowledged; note: Maria took command &lt;script&gt;alert('pir')&lt;/script&gt;",
        "Decision: Triage: P1 (Critical)",
        "Communication (initial): slack, statuspage",
        "Changed: Terminate runaway sessions on bastion-1",
        "FAILED: Restart trdrhub-worker on bastion-1: deployment not found",
        "Finding: PgBouncer pool saturated",
        "Status investigating \u2192 identified",
        "Resolved: Runaway sessions terminated; pool raised to 40",
        "Communication (resolved): slack",
    ]
    assert "| 2025-01-15 14:36:10 UTC |" in md and "| awx:maria |" in md
    assert "| Verdict | MET - acknowledged at 2025-01-15T14:36:10Z, 6 min after detection; within the P1 target |" in md
    assert "| Time to resolve | 42 min |" in md and "| Time to acknowledge | 6 min |" in md
    assert "| Alert on pool saturation | team-db | 2025-02-01 | OPS-17 |" in md
    assert "A stuck consumer held connections open" in md and "PIR meeting checklist" in md
    assert "- [ ] Meeting scheduled within 48 hours" in md

    # no ledger- or inventory-derived text reaches a page unescaped
    for text in (md, page, svg):
        assert "<script>" not in text
    assert "Maria took command &lt;script&gt;alert(&#x27;pir&#x27;)&lt;/script&gt;" in page
    assert "Fast acknowledgement &lt;script&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and 'class="verdict-met"' in page and "<svg" in page
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) == len(rows)

    # a second run does not put the first PIR run into the timeline
    again = ansible.run_playbook(PLAYBOOK, "-i", inventory, "-e", f"trdrhub_incident_id={incident}")
    assert again.rc == 0, again.output
    assert [line for line in (out / "pir.md").read_text().splitlines() if line.startswith("| 2025-01-15")] == rows


def test_pir_refuses_a_tampered_ledger(ansible, inventory):
    incident = "INC-PIR-" + uuid.uuid4().hex[:6]
    ledger = ansible.workdir / "incidents" / incident / "ledger.jsonl"
    write_ledger(ledger, incident)
    lines = ledger.read_text().splitlines()
    entry = json.loads(lines[13])
    entry["data"]["record"]["resolution"] = "Nothing happened"   # edited, hash not recomputed
    lines[13] = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
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
