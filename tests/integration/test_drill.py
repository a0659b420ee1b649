"""The drill machinery (trdrhub_harness.drills) on one cheap scenario: db-down in its own sandbox.

Every scenario runs in `make drills` (its own CI lane); here one run checks what all of them rely on:
the priority read from the incident record (triage must say P1 for a database that is down), a
store-mode gate answered by a second identity (never the requester), the configured restart method
of recover_db.yml, the scorecard written beside the ledger with the playbooks' logs, and the table.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from trdrhub_harness import drills

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def test_db_down_drill_restarts_the_database_behind_a_second_persons_approval(tmp_path):
    lines = []
    card = drills.run("db-down", say=lines.append, state_root=tmp_path)
    output = "\n".join(lines)
    assert card["passed"], output
    assert [c["what"] for c in card["checks"] if not c["ok"]] == []

    # The priority is the incident record's, as triage assessed it: P1, with the reason.
    assert (card["priority"], card["assessed_priority"], card["expected_priority"]) == ("P1", "P1", "P1")
    assert any("reports database error" in r and r.endswith("-> P1") for r in card["priority_reasons"]), card
    assert card["response_target_seconds"] == 15 * 60 and card["within_target"] is True

    gates = card["gates"]
    assert len(gates) == 1 and gates[0]["action"] == "restart_db", gates
    assert gates[0]["requester"] == "awx:drill-commander"
    assert gates[0]["approvers"] == ["awx:drill-second"] and gates[0]["status"] == "approved"
    assert set(card["seconds"]) >= {"triaged", "acknowledged", "contained", "recovered"}
    assert card["seconds"]["triaged"] <= card["seconds"]["acknowledged"] <= card["seconds"]["recovered"]
    assert card["ledger"]["valid"] and card["ledger"]["head"]

    incident_dir = Path(card["path"]).parent
    stored = json.loads(Path(card["path"]).read_text(encoding="utf-8"))
    assert stored["incident"] == card["incident"] and stored["passed"] is True
    logs = sorted(p.name for p in (incident_dir / "logs").iterdir())
    assert logs == ["01-triage.yml.log", "02-verify.yml.log", "03-recover_db.yml.log", "04-verify.yml.log"]
    assert [Path(p["log"]).parent for p in stored["playbooks"]] == [incident_dir / "logs"] * 4
    restart_log = (incident_dir / "logs" / "03-recover_db.yml.log").read_text(encoding="utf-8")
    assert "postgresql-service restart" in restart_log and "RESTARTED" in restart_log

    table = []
    drills.print_table([card], table.append)
    header, row = table[0].split(), table[1].split()
    assert header == ["SCENARIO", "PRI", "TARGET", "TRIAGE", "ACK", "CONTAIN", "RECOVER", "IN-TGT", "GATES", "MSGS",
                      "LEDGER", "RESULT"]
    assert row[:3] == ["db-down", "P1", "15m"] and row[7:] == ["yes", "1", "0", "ok", "PASSED"], table
