"""The drill machinery (trdrhub_harness.drills) on one cheap scenario: db-down in its own sandbox.

Every scenario runs in `make drills`; in make test the drills lane writes their scorecards
(scripts/drill.py --cards) and this test, run after it with TRDRHUB_DRILL_CARDS, reads the db-down one
instead of running the drill a second time. Alone, it runs the drill itself. One run checks what all of them rely on:
the priority read from the incident record (triage must say P1 for a database that is down), a
store-mode gate answered by a second identity (never the requester), the configured restart method
of recover_db.yml, the scorecard written beside the ledger with the playbooks' logs, and the table.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from trdrhub_harness import drills

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def db_down_card(tmp_path):
    """The db-down scorecard: run the drill here, or - in make test, whose drills lane has just run every
    scenario (scripts/drill.py --cards) - read the scorecard that run wrote, instead of running it twice."""
    cards_file = os.environ.get("TRDRHUB_DRILL_CARDS")
    if cards_file:
        cards = [c for c in json.loads(Path(cards_file).read_text(encoding="utf-8")) if c["scenario"] == "db-down"]
        assert len(cards) == 1, f"{cards_file} holds {len(cards)} db-down scorecards"
        return cards[0], f"(the scorecard of {cards_file}; the drill's log: make drills)"
    lines = []
    card = drills.run("db-down", say=lines.append, state_root=tmp_path)
    return card, "\n".join(lines)


def test_db_down_drill_restarts_the_database_behind_a_second_persons_approval(tmp_path):
    card, output = db_down_card(tmp_path)
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
