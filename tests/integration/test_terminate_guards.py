"""pg_terminate_sessions guard rails and signalling modes."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MODULE = "pg_terminate_sessions"


@pytest.fixture
def base(login, app):
    return {**login["super_socket"], "applications": [app + "*"]}


def test_own_backend_never_signalled(ansible, login):
    """Even with every guard lowered, the module's own backend is only ever excluded."""
    res = ansible.run(MODULE, {
        **login["super_socket"], "applications": ["trdrhub.incident"], "users": ["postgres"],
        "allow_superuser": True, "protected_applications": [], "max_sessions": 1,
    })

    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["matched"] == 0 and res["sessions"] == []
    reasons = [e["reason"] for e in res["excluded"] if e["application_name"] == "trdrhub.incident"]
    assert any(r.startswith("own session") for r in reasons), res["excluded"]


def test_superuser_excluded_unless_allowed(ansible, sessions, monitor, base, app):
    su = sessions.active(app + "-dba", user="postgres")
    normal = sessions.active(app + "-api")

    res = ansible.run(MODULE, base)
    assert not res.failed, res.output
    assert res.outcomes() == {normal.pid: "terminated"}
    assert "superuser" in res.excluded()[su.pid]
    monitor.assert_killed(killed=[normal], alive=[su])

    res = ansible.run(MODULE, {**base, "allow_superuser": True})
    assert not res.failed, res.output
    assert res.outcomes() == {su.pid: "terminated"}
    monitor.assert_killed(killed=[su])


def test_protected_applications_and_users(ansible, sessions, monitor, base, app):
    backup = sessions.active(app + "-backup")
    ops = sessions.active(app + "-ops", user="trdrhub_ops")
    dump = sessions.active("pg_dump")              # protected by the default list
    victim = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**base, "applications": [app + "*", "pg_dump"],
                               "protected_applications": ["pg_dump", app + "-back*"],
                               "protected_users": ["trdrhub_ops"]})

    assert not res.failed, res.output
    assert res.outcomes() == {victim.pid: "terminated"}
    excluded = res.excluded()
    assert "protected application" in excluded[backup.pid]
    assert "protected application" in excluded[dump.pid]
    assert "protected user" in excluded[ops.pid]
    monitor.assert_killed(killed=[victim], alive=[backup, ops, dump])


def test_default_protected_applications(ansible, sessions, monitor, base, app):
    dump = sessions.active("pg_dump")
    restore = sessions.active("pg_restore")

    res = ansible.run(MODULE, {**base, "applications": ["pg_dump", "pg_restore"]})

    assert not res.failed, res.output
    assert res["matched"] == 0 and res["changed"] is False
    assert {dump.pid, restore.pid} <= set(res.excluded())
    monitor.assert_killed(alive=[dump, restore])


def test_max_sessions_refuses_and_kills_nothing(ansible, sessions, monitor, base, app):
    spawned = [sessions.active(f"{app}-{i}") for i in range(4)]

    res = ansible.run(MODULE, {**base, "max_sessions": 3})

    assert res.failed
    assert "4 sessions match" in res["msg"] and "max_sessions (3)" in res["msg"], res["msg"]
    assert "nothing was signalled" in res["msg"]
    assert "Traceback" not in res.output
    monitor.assert_killed(alive=spawned)


def test_mode_cancel(ansible, sessions, monitor, base, app):
    running = sessions.active(app + "-api")

    # With states=[active] a cancelled statement (session now idle) stops matching: "cancelled".
    res = ansible.run(MODULE, {**base, "states": ["active"], "mode": "cancel", "grace": 3})

    assert not res.failed, res.output
    assert res["changed"] is True
    assert res.outcomes() == {running.pid: "cancelled"}
    assert res.by_pid()[running.pid]["signal"] == "cancel"
    # The backend lives on; only its statement was cancelled.
    monitor.assert_killed(alive=[running])
    assert running.result() == "QueryCanceled"
    monitor.wait_for(running.pid, "idle")


def test_mode_cancel_then_terminate(ansible, sessions, monitor, base, app):
    """A cancellable statement stops at the cancel; one that ignores cancels is terminated after grace."""
    polite = sessions.active(app + "-polite")
    stubborn = sessions.stubborn(app + "-stubborn")

    res = ansible.run(MODULE, {**base, "states": ["active"], "mode": "cancel_then_terminate", "grace": 1})

    assert not res.failed, res.output
    assert res.outcomes() == {polite.pid: "cancelled", stubborn.pid: "terminated"}, res["sessions"]
    monitor.assert_killed(killed=[stubborn], alive=[polite])
    assert polite.result() == "QueryCanceled"
    assert res["elapsed_s"] >= 1 * 0.9


def test_cancel_with_only_an_application_filter_counts_the_ended_statement(ansible, sessions, monitor, base, app):
    """The session still matches the application filter after its cancel, yet the cancel worked."""
    running = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**base, "mode": "cancel_then_terminate", "grace": 3})

    assert not res.failed, res.output
    assert res.outcomes() == {running.pid: "cancelled"}, res["sessions"]
    assert res["survivors"] == []
    assert res["elapsed_s"] < 3
    monitor.assert_killed(alive=[running])
    assert running.result() == "QueryCanceled"


def test_pids_pin_the_termination_to_approved_sessions(ansible, sessions, monitor, base, app):
    approved = sessions.active(app + "-api")
    unseen = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**base, "pids": [approved.pid]})
    assert not res.failed, res.output
    assert res.outcomes() == {approved.pid: "terminated"}
    monitor.assert_killed(killed=[approved], alive=[unseen])

    res = ansible.run(MODULE, {**base, "pids": []})
    assert not res.failed, res.output
    assert res["changed"] is False and res["matched"] == 0
    monitor.assert_killed(alive=[unseen])
