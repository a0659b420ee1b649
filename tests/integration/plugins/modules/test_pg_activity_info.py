"""pg_activity_info against a database of its own, compared with pg_stat_activity."""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MODULE = "pg_activity_info"
INFO_DB = "itest_info"
STATS_KEYS = {"numbackends", "xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted",
              "tup_updated", "tup_deleted", "deadlocks", "blks_hit", "blks_read", "cache_hit_ratio",
              "conflicts", "temp_files", "temp_bytes", "stats_reset"}


@pytest.fixture(scope="module")
def info_db(pg_server, trdrhub_db):
    """A database only this module's tests connect to, so numbackends is predictable."""
    admin = pg_server.connect()
    try:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {INFO_DB} WITH (FORCE)")
        admin.cursor().execute(f"CREATE DATABASE {INFO_DB}")
        db = pg_server.connect(dbname=INFO_DB)
        db.cursor().execute("CREATE TABLE triage_lock (id int); GRANT ALL ON triage_lock TO trdrhub_app")
        db.close()
        yield INFO_DB
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {INFO_DB} WITH (FORCE)")
    finally:
        admin.close()


def client_states(monitor) -> dict:
    """Client backends by state as the module should see them: the monitor idles, the module runs."""
    rows = monitor.query("SELECT state, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                         " AND pid <> pg_backend_pid() GROUP BY state")
    counts = dict(rows)
    counts["idle"] = counts.get("idle", 0) + 1      # the monitor, idle while the module looks
    counts["active"] = counts.get("active", 0) + 1  # the module's own session
    return counts


@pytest.fixture
def triage_scene(sessions, info_db, app):
    """Two long statements, an idle transaction, an idle session, a blocker with two waiters."""
    kw = {"dbname": info_db}
    scene = {
        "long": [sessions.active(f"{app}-long{i}", **kw) for i in range(2)],
        "iit": sessions.idle_in_transaction(app + "-iit", **kw),
        "idle": sessions.idle(app + "-idle", **kw),
    }
    scene["blocker"], scene["waiters"] = sessions.lock_pair(app, "triage_lock", waiters=2, **kw)
    time.sleep(1.5)
    return scene


@pytest.mark.smoke
def test_activity_report(ansible, monitor, login, triage_scene, info_db, app):
    s = triage_scene
    # connections are counted over the whole server, which other test workers share: their sessions change state
    # while the module looks, so the count is compared from a run the monitor saw the same before and after.
    for _attempt in range(10):
        expected_states = client_states(monitor)
        res = ansible.run(MODULE, {**login["super_socket"], "login_db": info_db, "applications": [app + "*"],
                                   "long_running_threshold": 1})
        if client_states(monitor) == expected_states:
            break
    else:
        pytest.fail("other sessions of the server changed state during every one of 10 runs")

    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["database"] == info_db
    assert res["server_version"].split(".")[0].isdigit()
    # stats: every documented counter; the database's backends are ours plus the module's own
    assert set(res["stats"]) >= STATS_KEYS
    assert res["stats"]["numbackends"] == 7 + 1
    assert res["stats"]["xact_commit"] > 0
    ratio = res["stats"]["cache_hit_ratio"]
    assert ratio is None or 0 <= ratio <= 1
    # connections: the whole server, by state, as pg_stat_activity shows it
    conns = res["connections"]
    assert conns["by_state"] == expected_states
    assert conns["total"] == sum(expected_states.values())
    assert conns["max_connections"] == 400
    assert conns["saturation"] == round(conns["total"] / 400, 4)
    assert isinstance(conns["reserved"], int)
    # sessions: exactly ours (the module's own is never listed), longest first
    every = [*s["long"], s["iit"], s["idle"], s["blocker"], *s["waiters"]]
    assert set(res.by_pid()) == {x.pid for x in every}
    durations = [x["duration_s"] for x in res["sessions"]]
    assert durations == sorted(durations, reverse=True)
    # long_running: the active ones past the threshold (sleepers and lock waiters)
    long_pids = [x["pid"] for x in res["long_running"]]
    assert set(long_pids) == {x.pid for x in s["long"] + s["waiters"]}
    assert long_pids[0] == s["long"][0].pid                       # the oldest statement first
    assert all(x["duration_s"] >= 1 and x["state"] == "active" for x in res["long_running"])
    # idle in transaction: the idle transaction and the blocker (which idles holding its lock)
    assert {x["pid"] for x in res["idle_in_transaction"]} == {s["iit"].pid, s["blocker"].pid}
    # blockers: one, blocking both waiters
    assert len(res["blockers"]) == 1
    blocker = res["blockers"][0]
    assert blocker["pid"] == s["blocker"].pid
    assert blocker["blocks"] == 2
    assert sorted(blocker["blocked_pids"]) == sorted(w.pid for w in s["waiters"])
    assert res.by_pid()[s["blocker"].pid]["blocking"] == 2
    assert {res.by_pid()[w.pid]["wait_event_type"] for w in s["waiters"]} == {"Lock"}


def test_filters_narrow_the_lists_in_check_mode(ansible, login, monitor, triage_scene, info_db, app):
    """Read-only, so check mode gives the same answer; filters narrow every list but not connections."""
    s = triage_scene

    res = ansible.run(MODULE, {**login["ops"], "login_db": info_db, "applications": [app + "*"],
                               "states": ["idle in transaction"], "long_running_threshold": 600},
                      check=True)

    assert not res.failed, res.output
    assert set(res.by_pid()) == {s["iit"].pid, s["blocker"].pid}
    assert res["long_running"] == []
    assert [b["pid"] for b in res["blockers"]] == [s["blocker"].pid]
    assert res["blockers"][0]["blocks"] == 2
    assert res["connections"]["total"] >= 8 + 1
    # pg_read_all_stats lets the non-superuser see states and queries of other roles
    assert all(x["state"] == "idle in transaction" and x["query"] for x in res["sessions"])
    monitor.assert_killed(alive=[s["iit"], s["blocker"], *s["waiters"]])


def test_query_text_is_redacted_and_truncated(ansible, sessions, monitor, login, app):
    """A password literal in pg_stat_activity.query never reaches the output; long texts are cut."""
    role = "itest_redact_" + app.rsplit("-", 1)[-1]
    secret = "itest-Literal-" + app.rsplit("-", 1)[-1] + "-secret"
    monitor.query(f"CREATE ROLE {role} NOLOGIN")
    try:
        alter = sessions.connect(app + "-alter", user="postgres")
        alter.start(f"ALTER ROLE {role} PASSWORD '{secret}'")
        assert alter.result() == "ok"
        long_query = "SELECT pg_sleep(600) /* " + "x" * 300 + " */"
        long = sessions.active(app + "-long", sql=long_query)

        res = ansible.run(MODULE, {**login["super_socket"], "applications": [app + "*"], "query_max_length": 50})

        assert not res.failed, res.output
        assert secret not in res.output
        assert "********" in res.by_pid()[alter.pid]["query"]
        assert res.by_pid()[long.pid]["query"].startswith("SELECT pg_sleep(600) /* xxx")
        assert len(res.by_pid()[long.pid]["query"]) <= 50 + 3
    finally:
        sessions.close()
        monitor.query(f"DROP ROLE IF EXISTS {role}")
