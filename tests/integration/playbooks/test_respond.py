"""respond.yml, the procedure of the priority triage assesses, end to end against the harness services.

On a P3 alert it follows the P3 procedure (no containment unless asked); in check mode it, respond_p2.yml and
respond_p4.yml write nothing. The services, fixtures and the Response driver are test_respond_p1.py's.
"""
from __future__ import annotations

import pytest
from _itest_ledger import check_chain
from _itest_snapshot import Snapshot
from trdrhub_harness.workload import INCIDENT

from .test_respond_p1 import DISPATCH, P2, P4, alert, flat, health, queue, response, runaway  # noqa: F401 pylint: disable=unused-import

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_respond_dispatches_a_p3_alert_to_the_p3_procedure(response, alert, queue, runaway, app):  # noqa: F811
    resp = response()
    label = alert("ReportGenerationSlow", "P3")
    victims = runaway.pids(kind=INCIDENT)
    run = resp.run(*resp.argv(DISPATCH, label, app, queue))
    assert run.rc == 0, run.output
    text = flat(run.output)
    assert f"[{resp.incident}] P3 Medium procedure (assessed by triage)" in text
    assert "Phases: triage -> investigate -> verify -> communicate" in text
    assert "Not part of this procedure: contain, recover, review" in text
    assert "of the 4 h response target" in text
    assert runaway.alive(victims) == set(victims)
    assert not (resp.dir / "approvals").exists() and not (resp.dir / "pir").exists()
    entries = resp.ledger()
    check_chain(entries, resp.incident)
    assert resp.record()["priority"] == "P3" and resp.record()["status"] == "monitoring"
    assert not [e for e in entries if e["phase"] == "contain" and e["event"] in ("decision", "approval")]


# respond.yml on a P3 alert is the P3 procedure: respond_p3.yml is the same role with respond_priority P3 set
# instead of assessed, so its check mode is this run's (its real runs are in test_respond_p3.py).
@pytest.mark.parametrize(("playbook", "severity"), [(DISPATCH, "P3"), (P2, "P2"), (P4, "P4")],
                         ids=["respond+respond_p3", "respond_p2", "respond_p4"])
def test_check_mode_of_every_procedure_writes_nothing(response, alert, queue, app, playbook, severity):  # noqa: F811
    resp = response()
    label = alert("ReportGenerationSlow", severity)
    snapshot = Snapshot(resp.root.parent, resp.ansible.workdir / "incidents")
    run = resp.run(*resp.argv(playbook, label, app, queue, respond_contain=[]), "--check")
    assert run.rc == 0, run.output
    assert "CHECK MODE: nothing was changed" in flat(run.output)
    assert snapshot.new_or_changed() == []
