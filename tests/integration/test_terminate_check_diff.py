"""Check mode, diff mode and the idempotent re-run of pg_terminate_sessions.

Follows the shape of kubernetes.core's integration targets: check mode -> apply ->
re-run, asserting the database after each step.
"""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MODULE = "pg_terminate_sessions"


def drop(diff: dict) -> dict:
    """How many client sessions per state the run removed (diff counts every client session)."""
    before, after = diff["before"], diff["after"]
    out = {state: before.get(state, 0) - after.get(state, 0) for state in set(before) | set(after)}
    return {state: n for state, n in out.items() if n}


def test_check_apply_rerun(ansible, sessions, monitor, login, app):
    targets = [sessions.active(f"{app}-api-{i}") for i in range(3)]
    iit = sessions.idle_in_transaction(app + "-worker")
    keep = sessions.active(app + "-keep")
    args = {**login["super_tcp"], "applications": [app + "-api-*", app + "-worker"]}
    expected = {s.pid for s in targets + [iit]}

    # 1. check mode: predicts exactly the targets, signals nothing.
    res = ansible.run(MODULE, args, check=True, diff=True)
    assert not res.failed, res.output
    assert res["changed"] is True
    assert res["matched"] == 4
    assert res.outcomes() == {pid: "would_signal" for pid in expected}
    assert drop(res["diff"]) == {"active": 3, "idle in transaction": 1}
    monitor.assert_killed(alive=targets + [iit, keep])

    # 2. apply with --diff
    res = ansible.run(MODULE, args, diff=True)
    assert not res.failed, res.output
    assert res["changed"] is True
    assert res["matched"] == 4
    assert res.outcomes() == {pid: "terminated" for pid in expected}
    assert res["survivors"] == []
    assert drop(res["diff"]) == {"active": 3, "idle in transaction": 1}
    assert res["queries"] and any("pg_terminate_backend" in q for q in res["queries"])
    monitor.assert_killed(killed=targets + [iit], alive=[keep])

    # 3. idempotent re-run
    res = ansible.run(MODULE, args)
    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["matched"] == 0
    assert res["sessions"] == []
    monitor.assert_killed(alive=[keep])


@pytest.mark.smoke
def test_check_mode_sends_no_signal(ansible, sessions, monitor, login, app):
    """Check mode must not run pg_*_backend at all (a signal cannot be rolled back)."""
    target = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**login["super_socket"], "applications": [app + "*"],
                               "mode": "cancel_then_terminate", "grace": 1}, check=True)

    assert not res.failed, res.output
    assert res.outcomes() == {target.pid: "would_signal"}
    assert not any("pg_terminate_backend" in q or "pg_cancel_backend" in q for q in res["queries"]), res["queries"]
    monitor.assert_killed(alive=[target])
    row = monitor.row(target.pid)
    assert row["state"] == "active"        # not even cancelled
