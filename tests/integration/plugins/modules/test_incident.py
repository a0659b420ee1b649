"""trdrhub.incident.incident through real ansible-playbook: the record's life, file and postgres ledgers.

Each backend is one playbook run whose tasks follow an incident from check mode to
resolution, re-running every step to prove idempotence. The ledger callback writes its
task entries into the same file ledger, so the record is folded from a mixed ledger.
"""
from __future__ import annotations

import datetime
import json
import uuid

import pytest
from _itest_batch import run_batch
from _itest_ledger import check_chain, read_file_ledger, read_table_ledger, table_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "itest-IncidentSecret-" + uuid.uuid4().hex
DETECTED = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).replace(microsecond=0)
DETECTED_AT = DETECTED.strftime("%Y-%m-%dT%H:%M:%SZ")


def lifecycle(incident_id: str, ledger: dict) -> dict:
    """The tasks of one incident's life; ``ledger`` holds the backend options."""
    def inc(**kw):
        return ("incident", dict(ledger, incident_id=incident_id, **kw))
    opening = {"title": "API returns 503 on /health/ready", "priority": "P1", "impact": ["customer-facing"],
               "detected_at": DETECTED_AT}
    return {
        "lookup_missing": inc(),
        "open_check": ("incident", dict(ledger, incident_id=incident_id, **opening), {"check_mode": True, "diff": True}),
        "open": inc(**opening, note=f"paged by Alertmanager; db password {{{{ vault_itest_password }}}} and "
                                    f"postgresql://ops:{SECRET}@db/x"),
        "open_again": inc(**opening),
        "commander": inc(commander="ic:maria", note="Maria took command"),
        "commander_again": inc(commander="ic:maria"),
        "ack": inc(acknowledged=True),
        "ack_again": inc(acknowledged=True),
        "identified": inc(status="identified", references={"statuspage_incident_id": "sp-1", "ticket": "OPS-1"}),
        "identified_again": inc(status="identified", references={"ticket": "OPS-1"}),
        "resolve_check": ("incident", dict(ledger, incident_id=incident_id, state="resolved", resolution="pool raised"),
                          {"check_mode": True}),
        "resolve": inc(state="resolved", resolution="pool raised"),
        "resolve_again": inc(state="resolved", resolution="pool raised"),
        "reopen_refused": inc(title="API returns 503 on /health/ready"),
        "resolved_status_refused": inc(status="resolved"),
        "lookup": ("incident", dict(ledger, incident_id=incident_id), {"check_mode": True}),
    }


def check_lifecycle(runs: dict) -> list:
    for name, res in runs.items():
        if not name.endswith("refused") and name != "lookup_missing":
            assert not res.failed, (name, res.output)
    assert runs["lookup_missing"].failed
    assert "has no record in its ledger yet" in runs["lookup_missing"]["msg"] and "Known incidents" in runs["lookup_missing"]["msg"]

    check = runs["open_check"]
    assert check["changed"] and check["entry"] is None and check["incident"]["priority"] == "P1"
    assert check["diff"]["before"] == "" and "priority: P1" in check["diff"]["after"]

    opened = runs["open"]
    assert opened["changed"] and opened["entry"]["data"]["action"] == "open" and opened["entry"]["seq"] >= 1
    record = opened["incident"]
    assert (record["state"], record["status"], record["revision"]) == ("open", "investigating", 1)
    deadline = (DETECTED + datetime.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record["detected_at"] == DETECTED_AT and record["response_deadline"] == deadline
    assert record["opened_by"].startswith("local:")
    for again in ("open_again", "commander_again", "ack_again", "identified_again", "resolve_again"):
        assert runs[again]["changed"] is False and runs[again]["entry"] is None, again

    assert runs["commander"]["entry"]["data"]["action"] == "assign_commander"
    assert runs["commander"]["entry"]["data"]["note"] == "Maria took command"
    assert runs["ack"]["incident"]["acknowledged"] is True and runs["ack"]["incident"]["acknowledged_at"]
    identified = runs["identified"]
    assert identified["entry"]["data"]["action"] == "status" and identified["entry"]["phase"] == "investigate"
    assert identified["incident"]["references"] == {"statuspage_incident_id": "sp-1", "ticket": "OPS-1"}

    assert runs["resolve_check"]["changed"] and runs["resolve_check"]["entry"] is None
    resolved = runs["resolve"]["incident"]
    assert (resolved["state"], resolved["status"], resolved["resolution"]) == ("resolved", "resolved", "pool raised")
    took = datetime.datetime.fromisoformat(resolved["resolved_at"].replace("Z", "+00:00")) - DETECTED
    assert resolved["duration_seconds"] == int(took.total_seconds()) >= 3600
    assert runs["resolve"]["entry"]["phase"] == "recover" and resolved["revision"] == 5

    assert runs["reopen_refused"].failed and "Set reopen: true to reopen it" in runs["reopen_refused"]["msg"]
    assert "status resolved is set with state=resolved" in runs["resolved_status_refused"]["msg"]
    assert runs["lookup"]["incident"] == resolved and runs["lookup"]["changed"] is False
    return [runs[n]["entry"] for n in ("open", "commander", "ack", "identified", "resolve")]


def test_file_ledger(ansible):
    incident = "INC-REC-" + uuid.uuid4().hex[:6]
    root = ansible.workdir / "incidents"   # the callback's TRDRHUB_LEDGER_DIR: the module writes where it writes
    tasks = lifecycle(incident, {})
    tasks["open"] += ({"vars": {"vault_itest_password": SECRET}},)
    tasks["verify"] = ("audit_chain_verify", {"source": "ledger_file", "path": str(root / incident / "ledger.jsonl")})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRDRHUB_INCIDENT_ID", incident)   # the callback records the tasks into the same ledger
        runs = run_batch(ansible, tasks)
    written = check_lifecycle(runs)
    assert runs["verify"]["is_valid"] is True, runs["verify"].result

    entries = read_file_ledger(root / incident / "ledger.jsonl")
    check_chain(entries, incident)
    events = [e for e in entries if e["event"] == "incident"]
    assert events == written   # exactly one entry per change, none for re-runs or check mode
    assert {e["event"] for e in entries} == {"playbook_start", "task", "incident", "playbook_end"}
    raw = (root / incident / "ledger.jsonl").read_text()
    assert SECRET not in raw and SECRET not in runs["open"].output
    assert "db password ********" in events[0]["data"]["note"]


@pytest.fixture
def ledger_table(pg_server, trdrhub_db):
    name = "itest_incident_" + uuid.uuid4().hex[:8]
    yield name
    conn = pg_server.connect(dbname="trdrhub")
    try:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


def test_postgres_ledger(ansible, pg_server, ledger_table):
    incident = "INC-RECPG-" + uuid.uuid4().hex[:6]
    ledger = {"backend": "postgres", "dsn": pg_server.dsn("trdrhub"), "table": ledger_table}
    tasks = lifecycle(incident, ledger)
    tasks["open"] += ({"vars": {"vault_itest_password": SECRET}},)
    tasks["verify"] = ("audit_chain_verify", {"source": "ledger_table", "dsn": pg_server.dsn("trdrhub"),
                                              "table": ledger_table, "incident_id": [incident]})
    runs = run_batch(ansible, tasks)
    written = check_lifecycle(runs)
    assert runs["open_check"]["ledger"] == ledger_table and runs["open"]["backend"] == "postgres"
    assert runs["verify"]["is_valid"] is True and runs["verify"]["total_entries"] == 5, runs["verify"].result

    conn = pg_server.connect(dbname="trdrhub")
    try:
        entries = read_table_ledger(conn, ledger_table, incident)
        text = table_text(conn, ledger_table)
    finally:
        conn.close()
    check_chain(entries, incident)
    assert entries == json.loads(json.dumps(written))
    assert SECRET not in text
