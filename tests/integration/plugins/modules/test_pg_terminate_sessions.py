"""pg_terminate_sessions against a real PostgreSQL: check mode, diff and the idempotent re-run;
each filter checked against pg_stat_activity itself; the guard rails and signalling modes.

Check mode -> apply -> re-run follows the shape of kubernetes.core's integration targets,
asserting the database after each step. Every filter test spawns sessions under its own
application_name prefix (``app``) and restricts the module to ``app*`` as well, so the filter
under test is the only thing that separates the sessions that die from those that must live.
"""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MODULE = "pg_terminate_sessions"


@pytest.fixture
def base(login, app):
    """Superuser over the unix socket, limited to this test's sessions."""
    return {**login["super_socket"], "applications": [app + "*"]}


# Check mode, diff mode and the idempotent re-run.

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


def test_evidence_with_activity_and_termination_with_verification(ansible, sessions, monitor, login, app):
    """report_activity: the server's picture beside the evidence; verify: after the signals, over a fresh
    connection, the picture again and what the filters select now (pids aside) - one call each."""
    targets = [sessions.active(f"{app}-api-{i}") for i in range(2)]
    keep = sessions.active(app + "-keep")
    args = {**login["super_tcp"], "applications": [app + "-api-*"], "long_running_threshold": 0}

    evidence = ansible.run(MODULE, {**args, "report_activity": True}, check=True)
    assert not evidence.failed, evidence.output
    activity = evidence["activity"]
    listed = {s["pid"] for s in activity["sessions"]}
    assert {s.pid for s in targets + [keep]} <= listed          # no filter: the whole server
    assert {s.pid for s in targets} <= {s["pid"] for s in activity["long_running"]}
    assert activity["ping"]["ok"] is True and activity["connections"]["total"] >= 3
    assert activity["database"] and activity["server_version"]
    assert "after" not in evidence.result and "remaining" not in evidence.result   # nothing verified in check mode
    monitor.assert_killed(alive=targets + [keep])

    # A session that starts matching after the evidence is not signalled (pids) but is reported as remaining.
    late = sessions.active(f"{app}-api-late")
    pids = [s["pid"] for s in evidence["sessions"]]
    done = ansible.run(MODULE, {**args, "pids": pids, "verify": True})
    assert not done.failed, done.output
    assert done.outcomes() == {s.pid: "terminated" for s in targets}
    assert done["after"]["ping"]["ok"] is True
    after_pids = {s["pid"] for s in done["after"]["sessions"]}
    assert not after_pids & {s.pid for s in targets} and keep.pid in after_pids
    assert [s["pid"] for s in done["remaining"]] == [late.pid]
    monitor.assert_killed(killed=targets, alive=[keep, late])


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


# Filters.
def test_databases(ansible, sessions, monitor, base, app):
    here = sessions.active(app + "-main")
    there = sessions.active(app + "-other", dbname="itest_other")

    res = ansible.run(MODULE, {**base, "databases": ["itest_other"]})

    assert not res.failed, res.output
    assert res["changed"] is True
    assert res.outcomes() == {there.pid: "terminated"}
    assert res.by_pid()[there.pid]["datname"] == "itest_other"
    monitor.assert_killed(killed=[there], alive=[here])


@pytest.mark.parametrize("state", ["active", "idle in transaction", "idle"])
def test_states(ansible, sessions, monitor, base, app, state):
    spawned = {
        "active": sessions.active(app + "-active"),
        "idle in transaction": sessions.idle_in_transaction(app + "-iit"),
        "idle": sessions.idle(app + "-idle"),
    }
    target = spawned.pop(state)

    res = ansible.run(MODULE, {**base, "states": [state]})

    assert not res.failed, res.output
    assert res.outcomes() == {target.pid: "terminated"}
    assert res.by_pid()[target.pid]["state"] == state
    monitor.assert_killed(killed=[target], alive=spawned.values())


def test_min_duration(ansible, incident, sessions, monitor, base, app):
    """A 3 s-old statement and transaction match min_duration 2; a session that runs a
    0.1 s query every 0.05 s (active: query_start, idle: state_change always fresh) does not."""
    old_active = sessions.active(app + "-old-active")
    old_iit = sessions.idle_in_transaction(app + "-old-iit")
    inc = incident()
    young = inc.short_queries(count=1, interval=0.05, application_name=app + "-young")
    inc.wait_ready()
    time.sleep(3.0)

    res = ansible.run(MODULE, {**base, "min_duration": 2})

    assert not res.failed, res.output
    assert res.outcomes() == {old_active.pid: "terminated", old_iit.pid: "terminated"}
    assert all(s["duration_s"] >= 2 for s in res["sessions"]), res["sessions"]
    monitor.assert_killed(killed=[old_active, old_iit], alive=[young[0].pid])


def test_users_and_exclude_users(ansible, sessions, monitor, base, app):
    as_app = sessions.active(app + "-app")
    as_ops = sessions.active(app + "-ops", user="trdrhub_ops")
    as_other = sessions.active(app + "-nosignal", user="itest_nosignal")

    res = ansible.run(MODULE, {**base, "users": ["trdrhub_ops"]})
    assert not res.failed, res.output
    assert res.outcomes() == {as_ops.pid: "terminated"}
    monitor.assert_killed(killed=[as_ops], alive=[as_app, as_other])

    res = ansible.run(MODULE, {**base, "exclude_users": ["trdrhub_app"]})
    assert not res.failed, res.output
    assert res.outcomes() == {as_other.pid: "terminated"}
    monitor.assert_killed(killed=[as_other], alive=[as_app])


@pytest.mark.parametrize("globs, expect", [
    ({"applications": ["{app}-api-*"]}, {"api-1", "api-2"}),
    ({"applications": ["{app}-*"], "exclude_applications": ["{app}-api-?"]}, {"worker"}),
    ({"applications": ["{app}-api-[2-9]", "{app}-work*"]}, {"api-2", "worker"}),
], ids=["include", "exclude", "char-class"])
def test_application_globs(ansible, sessions, monitor, login, app, globs, expect):
    spawned = {suffix: sessions.active(f"{app}-{suffix}") for suffix in ("api-1", "api-2", "worker")}
    args = {key: [g.format(app=app) for g in value] for key, value in globs.items()}

    res = ansible.run(MODULE, {**login["super_socket"], **args})

    assert not res.failed, res.output
    assert set(res.outcomes()) == {spawned[s].pid for s in expect}
    monitor.assert_killed(killed=[spawned[s] for s in expect],
                          alive=[v for k, v in spawned.items() if k not in expect])


def test_client_addrs(ansible, sessions, monitor, base, app):
    over_tcp = sessions.active(app + "-tcp", tcp=True)
    over_socket = sessions.active(app + "-socket")

    res = ansible.run(MODULE, {**base, "client_addrs": ["10.0.0.0/8"]})
    assert not res.failed, res.output
    assert res["changed"] is False and res["matched"] == 0
    monitor.assert_killed(alive=[over_tcp, over_socket])

    # A unix-socket session has no client address: it never matches a network, not even ::/0.
    res = ansible.run(MODULE, {**base, "client_addrs": ["127.0.0.0/8", "::/0"]})
    assert not res.failed, res.output
    assert res.outcomes() == {over_tcp.pid: "terminated"}
    assert res.by_pid()[over_tcp.pid]["client_addr"] == "127.0.0.1"
    monitor.assert_killed(killed=[over_tcp], alive=[over_socket])


def test_query_pattern(ansible, sessions, monitor, base, app):
    report = sessions.active(app + "-report", sql="SELECT pg_sleep(600) /* monthly-report */")
    other = sessions.active(app + "-other", sql="SELECT pg_sleep(601)")

    res = ansible.run(MODULE, {**base, "query_pattern": r"/\* monthly-rep.rt \*/$"})

    assert not res.failed, res.output
    assert res.outcomes() == {report.pid: "terminated"}
    assert "monthly-report" in res.by_pid()[report.pid]["query"]
    monitor.assert_killed(killed=[report], alive=[other])


def test_wait_event_types(ansible, sessions, monitor, lock_table, base, app):
    blocker, (waiter,) = sessions.lock_pair(app, lock_table)
    sleeper = sessions.active(app + "-sleeper")   # pg_sleep waits on Timeout/PgSleep

    res = ansible.run(MODULE, {**base, "wait_event_types": ["Lock"]})
    assert not res.failed, res.output
    assert res.outcomes() == {waiter.pid: "terminated"}
    assert res.by_pid()[waiter.pid]["wait_event_type"] == "Lock"
    monitor.assert_killed(killed=[waiter], alive=[blocker, sleeper])

    res = ansible.run(MODULE, {**base, "wait_event_types": ["Timeout"]})
    assert not res.failed, res.output
    assert res.outcomes() == {sleeper.pid: "terminated"}
    assert res.by_pid()[sleeper.pid]["wait_event"] == "PgSleep"
    monitor.assert_killed(killed=[sleeper], alive=[blocker])


def test_blockers_only(ansible, sessions, monitor, lock_table, base, app):
    blocker, waiters = sessions.lock_pair(app, lock_table, waiters=2)
    bystander = sessions.idle_in_transaction(app + "-bystander")  # idle in transaction, blocks nobody

    res = ansible.run(MODULE, {**base, "blockers_only": True})

    assert not res.failed, res.output
    assert res.outcomes() == {blocker.pid: "terminated"}
    assert res.by_pid()[blocker.pid]["blocking"] == 2
    monitor.assert_killed(killed=[blocker], alive=[bystander, *waiters])
    # With the lock gone the waiters' queries complete on the same backends.
    for waiter in waiters:
        assert waiter.result() == "ok"
        monitor.wait_for(waiter.pid, "idle")


# Guard rails and signalling modes.
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
