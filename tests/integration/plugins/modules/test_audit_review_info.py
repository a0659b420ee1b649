"""audit_review_info through real ansible-playbook against the harness PostgreSQL.

Each test module reads a private copy of audit_log_entries filled with a known story: a
week of ordinary baseline activity, then one day (the window) in which one actor spikes,
one works at night, one exports for the first time, and anonymous logins fail from many
addresses. The window is pinned with ``until`` so business hours and weekdays are fixed.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import uuid

import _itest_audit as audit
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MODULE = "audit_review_info"
UTC = datetime.timezone.utc
UNTIL = datetime.datetime(2025, 1, 15, 18, 0, tzinfo=UTC)          # a Wednesday
WINDOW_START = UNTIL - datetime.timedelta(hours=24)
NORMAL, SPIKER, NIGHT, EXPORTER = (str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{n}.itest")) for n in
                                   ("normal", "spiker", "night", "exporter"))


class Rows:
    """Builds audit_log_entries rows with every NOT NULL column set; the chain hash is irrelevant here."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, when, actor, action, *, tenant="tenant-a", ip="10.0.0.1", role="analyst", metadata=None):
        seq = len(self.rows) + 1
        self.rows.append({
            "id": str(uuid.uuid4()), "sequence_number": seq, "tenant_id": tenant, "actor_id": actor,
            "actor_role": role, "actor_ip": ip, "actor_user_agent": "itest", "resource_type": "lc_document",
            "resource_id": f"LC-{seq:06d}", "resource_name": None, "action": action, "action_description": None,
            "severity": "medium", "before_hash": None, "after_hash": None, "prev_entry_hash": None,
            "entry_hash": hashlib.sha256(str(seq).encode()).hexdigest(),
            "event_metadata": json.dumps(metadata or {}), "correlation_id": None, "created_at": when,
        })


def story() -> list[dict]:
    rows = Rows()
    # Baseline: the seven days before the window, business hours only (10:00-16:00 UTC on weekdays).
    for day in range(1, 8):
        date = WINDOW_START - datetime.timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for hour in range(10, 16):
            at = date.replace(hour=hour, minute=0)
            rows.add(at, NORMAL, "read", metadata={"email": "normal@tenant-a.example"})
            rows.add(at + datetime.timedelta(minutes=5), NORMAL, "update")
            rows.add(at, SPIKER, "read", tenant="tenant-b", ip="10.0.1.1")
            rows.add(at, NIGHT, "update", ip="10.0.2.1")
            rows.add(at, EXPORTER, "read", ip="10.0.3.1")
    # The window: Tuesday 18:00 to Wednesday 18:00 UTC.
    wednesday = UNTIL.replace(hour=0)
    for hour in range(10, 16):
        at = wednesday.replace(hour=hour)
        rows.add(at, NORMAL, "read", metadata={"email": "normal@tenant-a.example"})
        rows.add(at + datetime.timedelta(minutes=5), NORMAL, "update")
        rows.add(at, NIGHT, "update", ip="10.0.2.1")
    for i in range(240):                                            # 40x its hourly rate, in business hours
        rows.add(wednesday.replace(hour=10) + datetime.timedelta(seconds=60 * i), SPIKER, "read", tenant="tenant-b",
                 ip="10.0.1.1")
    for minute in range(0, 50, 10):                                 # five updates at 02:00 at night
        rows.add(wednesday.replace(hour=2, minute=minute), NIGHT, "update", ip="10.0.2.1")
    for i in range(4):
        rows.add(wednesday.replace(hour=11, minute=i), EXPORTER, "export", ip="10.0.3.1")
        rows.add(wednesday.replace(hour=12, minute=i), EXPORTER, "read", ip="10.0.3.1")
    for i in range(7):                                              # failed anonymous logins from seven addresses
        rows.add(wednesday.replace(hour=14, minute=i), None, "login", ip=f"203.0.113.{i + 10}", role=None,
                 metadata={"success": False, "email": f"guess{i}@example.com"})
    return rows.rows


@pytest.fixture(scope="module")
def audit_db(pg_server, trdrhub_db):
    return audit.ensure_audit_db(pg_server)


@pytest.fixture(scope="module")
def review_table(pg_server, audit_db):
    name = "itest_review_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=audit_db)
    audit.create_audit_table(conn, name)
    audit.copy_rows(conn, name, story())
    yield name
    conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


@pytest.fixture
def args(login, audit_db, review_table):
    return {**login["super_tcp"], "login_db": audit_db, "table": review_table, "until": UNTIL.isoformat(),
            "since": "24h", "baseline": "7d"}


def by_actor(res) -> dict:
    return {a["actor"]: a for a in res["actors"]}


def flags(actor) -> set:
    return {f["flag"] for f in actor["flags"]}


def test_flags_the_anomalous_actors_and_not_the_normal_one(ansible, args, pg_server):
    res = ansible.run(MODULE, args)
    assert not res.failed, res.output
    assert res["changed"] is False
    actors = by_actor(res)
    assert set(actors) == {NORMAL, SPIKER, NIGHT, EXPORTER, "(no actor)"}

    normal = actors[NORMAL]
    assert normal["flags"] == [] and normal["risk"] == 0
    assert normal["counts"] == {"read": 6, "update": 6} and normal["count"] == 12
    assert normal["email"] == "normal@tenant-a.example" and normal["ips"] == ["10.0.0.1"]
    assert normal["baseline_count"] > 0 and normal["ratio"] is not None and normal["ratio"] < 3

    spiker = actors[SPIKER]
    assert "volume_spike" in flags(spiker) and spiker["count"] == 240
    assert spiker["ratio"] >= 3 and spiker["tenants"] == ["tenant-b"]
    assert "off_hours" not in flags(spiker)

    night = actors[NIGHT]
    assert flags(night) == {"off_hours"} and night["off_hours_count"] == 5
    assert "5 of 11 entries outside business hours" in night["flags"][0]["reason"]

    exporter = actors[EXPORTER]
    assert {"sensitive_action", "new_action"} <= flags(exporter)
    assert exporter["counts"]["export"] == 4
    assert all(s["action"] == "export" for s in exporter["samples"][:4])
    assert len(exporter["samples"]) == 5

    anonymous = actors["(no actor)"]
    assert anonymous["actor_id"] is None and anonymous["failed_logins"] == 7 and anonymous["ip_count"] == 7
    assert {"failed_logins", "many_ips", "new_actor"} <= flags(anonymous)

    assert set(res["flagged_actors"]) == {SPIKER, NIGHT, EXPORTER, None}
    risks = [a["risk"] for a in res["actors"]]
    assert risks == sorted(risks, reverse=True) and res["actors"][-1]["actor"] == NORMAL
    assert res["summary"]["entries"] == sum(a["count"] for a in res["actors"])
    assert res["summary"]["flagged"] == 4 and res["summary"]["tenants"] == ["tenant-a", "tenant-b"]
    assert res["window"]["since"] == WINDOW_START.isoformat() and res["window"]["until"] == UNTIL.isoformat()
    assert any("GROUP BY" in q for q in res["queries"])
    assert pg_server.password not in res.output


def test_check_mode_returns_the_same(ansible, args):
    res = ansible.run(MODULE, args)
    checked = ansible.run(MODULE, args, check=True)
    assert not checked.failed, checked.output
    assert checked["actors"] == res["actors"] and checked["summary"] == res["summary"]


def test_tenant_and_actor_filters(ansible, args):
    tenant_a = ansible.run(MODULE, {**args, "tenant_id": ["tenant-a"], "include_no_actor": False})
    assert not tenant_a.failed, tenant_a.output
    assert set(by_actor(tenant_a)) == {NORMAL, NIGHT, EXPORTER}
    assert tenant_a["summary"]["tenants"] == ["tenant-a"]

    one = ansible.run(MODULE, {**args, "actor_id": [SPIKER.upper()]})
    assert not one.failed, one.output
    assert [a["actor_id"] for a in one["actors"]] == [SPIKER]


def test_thresholds_and_business_hours_are_configurable(ansible, args):
    # Around the clock every day: nobody works off hours; a high spike threshold spares the spiker.
    res = ansible.run(MODULE, {**args, "business_hours": "00:00-00:00", "business_days": list(
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), "spike_min_count": 1000, "sensitive_actions": [],
        "weights": {"new_action": 10}})
    assert not res.failed, res.output
    actors = by_actor(res)
    assert actors[NIGHT]["flags"] == [] and actors[SPIKER]["flags"] == []
    assert flags(actors[EXPORTER]) == {"new_action"} and actors[EXPORTER]["risk"] == 10
    assert res["actors"][0]["actor"] in (EXPORTER, "(no actor)")


@pytest.mark.parametrize("extra, message", [
    ({"since": "yesterday"}, "since: 'yesterday' is neither a duration"),
    ({"business_hours": "9-5"}, "business_hours: '9-5' is not a range of local times"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone: 'Mars/Olympus_Mons' is not a time zone PostgreSQL knows"),
    ({"actor_id": ["bob"]}, "actor_id: 'bob' is not a UUID"),
    ({"since": "2025-01-16T00:00:00Z"}, "since (2025-01-16T00:00:00+00:00) must be before until"),
    ({"table": "itest_no_such_audit_table"}, "table itest_no_such_audit_table does not exist"),
    ({"weights": {"bogus": 1}}, "weights: unknown flag(s) bogus"),
])
def test_bad_input_fails_with_one_clear_message(ansible, args, extra, message):
    res = ansible.run(MODULE, {**args, **extra})
    assert res.failed and res["msg"].startswith(message), res.get("msg")
    assert "Traceback" not in res.output
