"""The incident ledger in PostgreSQL: concurrent playbook runs, secrets, an unreachable server.

Two ansible-playbook processes append to one incident's chain at the same time; the table
must hold one unbroken chain with every entry of both runs.
"""
from __future__ import annotations

import sys
import time
import uuid

import pytest
from _itest_ledger import check_chain, read_table_ledger, summaries, table_text, write_playbook
from trdrhub_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "itest-PgLedger-Secret-" + uuid.uuid4().hex
TASKS_PER_RUN = 40
NOTES_PER_RUN = 5


@pytest.fixture
def hosts(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


@pytest.fixture
def ledger_table(pg_server, trdrhub_db):
    """A table name no other test uses; the callback creates it, the fixture drops it."""
    name = "itest_ledger_" + uuid.uuid4().hex[:8]
    yield name
    conn = pg_server.connect(dbname="trdrhub")
    try:
        conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture
def db(pg_server, trdrhub_db):
    conn = pg_server.connect(dbname="trdrhub")
    yield conn
    conn.close()


def pg_env(pg_server, table, **extra):
    return dict({"TRDRHUB_LEDGER_BACKEND": "postgres", "TRDRHUB_LEDGER_DSN": pg_server.dsn("trdrhub"),
                 "TRDRHUB_LEDGER_TABLE": table}, **extra)


def busy_playbook(path, label):
    tasks = []
    for i in range(TASKS_PER_RUN):
        tasks.append({"name": f"{label} step {i}", "ansible.builtin.debug": {"msg": f"{label} {i}"}})
        if i % (TASKS_PER_RUN // NOTES_PER_RUN) == 0:
            tasks.append({"name": f"{label} note {i}", "trdrhub.incident.ledger_record": {
                "incident_id": "{{ trdrhub_incident_id }}", "event": "note", "msg": f"{label} note {i}"}})
    return write_playbook(path, tasks, name=f"busy {label}")


def test_two_concurrent_runs_append_one_unbroken_chain(ansible, pg_server, db, ledger_table, hosts, tmp_path):
    incident = "INC-CONC-" + uuid.uuid4().hex[:6]
    env = pg_env(pg_server, ledger_table)
    procs = [ansible.start_playbook(busy_playbook(tmp_path / f"{label}.yml", label), "-i", hosts,
                                    "-e", f"trdrhub_incident_id={incident}", extra_env=env) for label in ("alpha", "beta")]
    outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output
        assert "NOT recorded" not in output, output

    entries = read_table_ledger(db, ledger_table, incident)
    per_run = 1 + TASKS_PER_RUN + NOTES_PER_RUN + 1   # start, tasks, notes, end
    assert len(entries) == 2 * per_run, f"{len(entries)} entries, expected {2 * per_run}: entries were lost"
    check_chain(entries, incident)
    runs = {}
    for entry in entries:
        runs.setdefault(entry["data"]["run"], []).append(entry)
    assert sorted(len(v) for v in runs.values()) == [per_run, per_run]
    for run_entries in runs.values():   # both runs interleave, each run's own entries stay in order
        assert run_entries[0]["event"] == "playbook_start" and run_entries[-1]["event"] == "playbook_end"
        tasks = [e["task"] for e in run_entries if e["event"] == "task"]
        label = tasks[0].split()[0]
        assert tasks == [f"{label} step {i}" for i in range(TASKS_PER_RUN)]
    interleaved = [e["data"]["run"] for e in entries]
    switches = sum(1 for a, b in zip(interleaved, interleaved[1:]) if a != b)
    print(f"{len(entries)} entries, the runs alternated {switches} times")
    heads = [summaries(output)[incident] for output in outputs]
    assert entries[-1]["seq"] in {h[2] for h in heads}
    # Each summary counts the entries its own run wrote (its notes too), never those the other run
    # appended in between, and the end entry says the same.
    assert [h[0] for h in heads] == [per_run, per_run], heads
    assert [e["data"]["entries"] for e in entries if e["event"] == "playbook_end"] == [per_run, per_run]

    verified = ansible.run("audit_chain_verify", {"source": "ledger_table", "dsn": pg_server.dsn("trdrhub"),
                                                  "table": ledger_table, "incident_id": [incident]})
    assert verified["is_valid"] is True and verified["total_entries"] == 2 * per_run, verified.result


def test_secrets_never_reach_the_ledger_table(ansible, pg_server, trdrhub_db, db, ledger_table, hosts, tmp_path):
    incident = "INC-PGSECRET-" + uuid.uuid4().hex[:6]
    ops = trdrhub_db["ops"]
    pg = {"login_host": pg_server.host, "login_port": pg_server.port, "login_user": ops["user"],
          "login_password": "{{ lookup('ansible.builtin.env', 'ITEST_OPS_PASSWORD') }}", "login_db": "trdrhub"}
    playbook = write_playbook(tmp_path / "pb.yml", [
        {"name": "Triage", "trdrhub.incident.pg_activity_info": pg},
        {"name": "No-log task", "ansible.builtin.command": "echo {{ lookup('ansible.builtin.env', 'ITEST_SECRET') }}",
         "no_log": True},
        {"name": "Note with a DSN", "trdrhub.incident.ledger_record": {
            "incident_id": "{{ trdrhub_incident_id }}", "msg": f"used host=db password={SECRET}",
            "data": {"dsn": f"postgresql://ops:{SECRET}@db/x"}}},
    ])
    run = ansible.run_playbook(playbook, "-i", hosts, "-e", f"trdrhub_incident_id={incident}",
                               extra_env=pg_env(pg_server, ledger_table, ITEST_SECRET=SECRET,
                                                ITEST_OPS_PASSWORD=ops["password"]))
    assert run.rc == 0, run.output
    entries = read_table_ledger(db, ledger_table, incident)
    check_chain(entries, incident)
    assert [e["event"] for e in entries] == ["playbook_start", "task", "task", "note", "playbook_end"]
    text = table_text(db, ledger_table)
    for secret in (SECRET, ops["password"], pg_server.password):
        assert secret not in text
        assert secret not in run.output
    assert entries[1]["args"]["login_password"] == "<redacted>"
    assert entries[2]["args"] == "<censored: no_log task>"


def test_an_unreachable_ledger_database_is_reported_and_the_play_goes_on(ansible, hosts, tmp_path):
    dsn = f"host=127.0.0.1 port={free_port()} dbname=x user=ledger password={SECRET} connect_timeout=2"
    playbook = write_playbook(tmp_path / "pb.yml", [{"name": f"step {i}", "ansible.builtin.debug": {"msg": i}}
                                                    for i in range(6)])
    started = time.monotonic()
    run = ansible.run_playbook(playbook, "-i", hosts, "-e", "trdrhub_incident_id=INC-DOWN",
                               extra_env={"TRDRHUB_LEDGER_BACKEND": "postgres", "TRDRHUB_LEDGER_DSN": dsn,
                                          "TRDRHUB_LEDGER_CONNECT_TIMEOUT": "2"})
    elapsed = time.monotonic() - started
    assert run.rc == 0, run.output
    assert "ok=6" in run.output
    flat = " ".join(run.output.split())
    assert flat.count("trdrhub.incident.ledger: NOT recorded") == 6
    assert "Cannot connect to PostgreSQL at 127.0.0.1" in flat
    assert "6 ledger entries were NOT recorded, the ledger is incomplete" in flat
    assert SECRET not in run.output and "Traceback" not in run.output
    assert elapsed < 60, f"an unreachable ledger slowed the play down to {elapsed:.0f}s"


def test_ledger_record_and_the_callback_share_the_postgres_chain(ansible, pg_server, db, ledger_table, hosts, tmp_path):
    incident = "INC-PGREC-" + uuid.uuid4().hex[:6]
    playbook = write_playbook(tmp_path / "pb.yml", [
        {"name": "Look", "trdrhub.incident.ledger_record": {"incident_id": incident}, "check_mode": True,
         "register": "ledger_head"},
        {"name": "Show the head", "ansible.builtin.debug": {"msg": "next seq {{ ledger_head.seq }}"}},
        {"name": "Decide", "trdrhub.incident.ledger_record": {"incident_id": incident, "event": "approval",
                                                              "msg": "approved by the IC", "actor": "ic:maria"}},
    ])
    run = ansible.run_playbook(playbook, "-i", hosts, "-e", f"trdrhub_incident_id={incident}",
                               extra_env=pg_env(pg_server, ledger_table))
    assert run.rc == 0, run.output
    entries = read_table_ledger(db, ledger_table, incident)
    check_chain(entries, incident)
    # The check-mode look wrote nothing and the callback does not record ledger_record tasks again.
    assert [e["event"] for e in entries] == ["playbook_start", "task", "approval", "playbook_end"]
    assert entries[1]["data"]["msg"] == "next seq 1"
    approval = entries[2]
    assert approval["actor"] == "ic:maria" and approval["data"]["recorded_by"].startswith("local:")
    assert approval["data"]["run"] == entries[0]["data"]["run"]
    assert summaries(run.output)[incident] == (4, ledger_table, 4, entries[-1]["hash"])
