"""A login role that may signal but not see: pg_signal_backend without pg_read_all_stats.

Such a role sees the application's sessions with user, database and application name but
without state, query or timings. The modules must say how many sessions were hidden and
which privilege is missing, never answer "nothing matched", and contain_db must stop.
"""
from __future__ import annotations

import json
import sys
import time
import uuid

import pytest
from psycopg2 import sql

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BLIND_ROLE = "itest_blind"
BLIND_PASSWORD = "blind-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def blind(pg_server, login):
    """Login options of a role with pg_signal_backend and without pg_read_all_stats or pg_monitor."""
    admin = pg_server.connect()
    try:
        cur = admin.cursor()
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BLIND_ROLE,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER PASSWORD %s").format(sql.Identifier(BLIND_ROLE)),
                    (BLIND_PASSWORD,))
        cur.execute(sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(BLIND_ROLE)))
        cur.execute("SELECT pg_has_role(%s, 'pg_read_all_stats', 'USAGE')", (BLIND_ROLE,))
        assert cur.fetchone()[0] is False
    finally:
        admin.close()
    return {**login["ops"], "login_user": BLIND_ROLE, "login_password": BLIND_PASSWORD}


def _runaway(sessions, app):
    victim = sessions.active(app + "-api")
    time.sleep(1.2)
    return victim


def test_terminate_reports_hidden_sessions_instead_of_nothing_matched(ansible, sessions, monitor, blind, app):
    victim = _runaway(sessions, app)

    res = ansible.run("pg_terminate_sessions", {**blind, "applications": [app + "*"], "min_duration": 1}, check=True)

    assert not res.failed, res.output
    assert res["matched"] == 0
    hidden = res["hidden"]
    assert hidden["sessions"] >= 1 and hidden["undecided"] == 1, hidden
    assert hidden["privilege"] == "pg_read_all_stats"
    assert "trdrhub_app" in hidden["users"]
    assert f"GRANT pg_read_all_stats TO {BLIND_ROLE}" in hidden["msg"]
    assert "[WARNING]" in res.output and "hidden from role " + BLIND_ROLE in str(res.get("warnings")), res.output
    monitor.assert_killed(alive=[victim])


def test_terminate_run_signals_no_hidden_session_on_a_guess(ansible, sessions, monitor, blind, app):
    victim = _runaway(sessions, app)

    res = ansible.run("pg_terminate_sessions", {**blind, "applications": [app + "*"], "query_pattern": ".*"})

    assert not res.failed, res.output
    assert res["matched"] == 0 and res["hidden"]["undecided"] == 1
    monitor.assert_killed(alive=[victim])


def test_activity_info_says_how_many_sessions_it_could_not_see(ansible, sessions, blind, login, app):
    _runaway(sessions, app)

    res = ansible.run("pg_activity_info", {**blind, "applications": [app + "*"]})

    assert not res.failed, res.output
    assert res["hidden"]["sessions"] >= 1, res.output
    assert "pg_read_all_stats" in res["hidden"]["msg"]
    assert "pg_read_all_stats" in str(res.get("warnings"))
    # A role that has the privilege sees the same session in full and warns about nothing.
    full = ansible.run("pg_activity_info", {**login["ops"], "applications": [app + "*"]})
    assert full["hidden"] == {"sessions": 0, "undecided": 0, "users": [], "privilege": None, "msg": None}
    assert [s["state"] for s in full["sessions"]] == ["active"]


def test_contain_db_stops_instead_of_reporting_nothing_to_contain(ansible, sessions, monitor, blind, app, tmp_path):
    victim = _runaway(sessions, app)
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"[db_controllers]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    extra = {
        "trdrhub_incident_id": "INC-BLIND-" + uuid.uuid4().hex[:6],
        **{f"contain_db_{key}": value for key, value in blind.items()},
        "contain_db_applications": [app + "*"], "contain_db_min_duration": 1,
    }

    res = ansible.run_playbook("playbooks/contain_db.yml", "-i", hosts, "-e", json.dumps(extra), "--check",
                               extra_env={"TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")}, timeout=150)

    assert res.rc != 0, res.output
    assert "Stopping before the gate" in res.output
    assert "cannot see all sessions" in res.output and "GRANT pg_read_all_stats TO itest_blind" in res.output
    assert "Nothing to contain" not in res.output
    monitor.assert_killed(alive=[victim])
