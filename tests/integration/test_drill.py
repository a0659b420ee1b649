"""One scored drill end to end (trdrhub_harness.drills): bad-deploy in its own sandbox.

The crash-looping rollout of trdrhub-api is triaged, rolled back behind a store-mode approval gate that a
second identity answers (never the requester), and verified; the scorecard is written beside the ledger.
"""
from __future__ import annotations

import json

import pytest
from trdrhub_harness import drills

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def test_bad_deploy_drill_rolls_back_with_a_second_persons_approval(tmp_path):
    lines = []
    card = drills.run("bad-deploy", say=lines.append, state_root=tmp_path)
    output = "\n".join(lines)
    assert card["passed"], output
    assert card["priority"] == "P2"
    assert [c["what"] for c in card["checks"] if not c["ok"]] == []
    gates = card["gates"]
    assert len(gates) == 1 and gates[0]["action"] == "rollback", gates
    assert gates[0]["requester"] == "awx:drill-commander"
    assert gates[0]["approvers"] == ["awx:drill-second"] and gates[0]["status"] == "approved"
    assert set(card["seconds"]) >= {"triaged", "acknowledged", "contained", "recovered"}
    assert card["seconds"]["triaged"] <= card["seconds"]["acknowledged"] <= card["seconds"]["contained"]
    assert card["ledger"]["valid"] and card["ledger"]["head"]
    stored = json.loads(open(card["path"], encoding="utf-8").read())
    assert stored["incident"] == card["incident"] and stored["passed"] is True
    assert "PASSED" in output and "gate rollback" in output
