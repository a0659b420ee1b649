"""pg_terminate_sessions filters, each checked against pg_stat_activity itself.

Every test spawns sessions under its own application_name prefix (``app``) and
restricts the module to ``app*`` as well, so the filter under test is the only
thing that separates the sessions that die from those that must live.
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
