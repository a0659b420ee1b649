"""Least privilege: trdrhub_ops (pg_signal_backend + pg_read_all_stats, not superuser)."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MODULE = "pg_terminate_sessions"


def test_ops_role_contains_an_incident(ansible, incident, sessions, monitor, login, app):
    """The workload's incident: exactly the incident sessions die, everything else lives."""
    inc = incident()
    inc.long_running(3, seconds=120, application_name=app + "-api")
    inc.idle_in_transaction(2, application_name=app + "-worker")
    inc.short_queries(1, application_name=app + "-api")
    inc.maintenance(application_name=app + "-maintenance")
    inc.wait_ready()
    inc.wait_older_than(1.5)
    from trdrhub_harness.workload import INCIDENT, MUST_SURVIVE

    res = ansible.run(MODULE, {**login["ops"], "users": ["trdrhub_app"], "applications": [app + "*"],
                               "min_duration": 1})

    assert not res.failed, res.output
    assert set(res.outcomes()) == set(inc.pids(kind=INCIDENT)), inc.report()
    assert set(res.outcomes().values()) == {"terminated"}
    monitor.assert_killed(killed=inc.pids(kind=INCIDENT), alive=inc.pids(kind=MUST_SURVIVE))


def test_role_without_pg_signal_backend_fails_and_kills_nothing(ansible, sessions, monitor, login, app):
    victims = [sessions.active(f"{app}-{i}") for i in range(2)]

    res = ansible.run(MODULE, {**login["nosignal"], "applications": [app + "*"]})

    assert res.failed
    assert "pg_signal_backend" in res["msg"], res["msg"]
    assert "itest_nosignal" in res["msg"]
    assert "Traceback" not in res.output
    monitor.assert_killed(alive=victims)


def test_role_without_pg_signal_backend_check_mode_signals_nothing(ansible, sessions, monitor, login, app):
    """Check mode already names the missing privilege, before anyone confirms a termination."""
    victim = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**login["nosignal"], "applications": [app + "*"]}, check=True)

    assert res.failed
    assert "pg_signal_backend" in res["msg"], res["msg"]
    monitor.assert_killed(alive=[victim])
    assert monitor.row(victim.pid)["state"] == "active"


def test_ops_cannot_signal_a_superuser_even_with_allow_superuser(ansible, sessions, monitor, login, app):
    su = sessions.active(app + "-dba", user="postgres")
    normal = sessions.active(app + "-api")

    res = ansible.run(MODULE, {**login["ops"], "applications": [app + "*"], "allow_superuser": True})

    assert res.failed
    assert "superuser" in res["msg"] and str(su.pid) in res["msg"], res["msg"]
    # The privilege check runs before the first signal: no partial kill.
    monitor.assert_killed(alive=[su, normal])
