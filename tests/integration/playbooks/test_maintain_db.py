"""playbooks/maintain_db.yml against the harness PostgreSQL: evidence, the gate voted on by another person, VACUUM.

A database with a churned table (half its rows deleted, autovacuum off, so the dead tuples stay) and a
quiet one. Check mode lists both with their dead tuples and runs nothing; in store mode bob's approval
lets the VACUUM run on the churned table only; a re-run has nothing to do and asks nothing; a denial runs
nothing. No server named, the pooler (by port, and a real PgBouncer on any port) and VACUUM FULL without
its lock accepted are refused before the gate.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
import uuid

import pytest
from _itest_approval import cast, wait_for_request
from _itest_backup import drop_database, query
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot
from trdrhub_harness.pgbouncer import PgBouncerServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

PLAYBOOK = "playbooks/maintain_db.yml"
TABLE = "churn"


def flat(text):
    return " ".join(text.split())


def dead_tuples(pg_server, db) -> int:
    rows = query(pg_server, db, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", (TABLE,))
    return rows[0][0] if rows else 0


@pytest.fixture
def churned(pg_server):
    """A new database with 10000 dead tuples in public.churn and none in public.quiet."""
    db = "itest_maintplay_" + uuid.uuid4().hex[:6]
    admin = pg_server.connect()
    try:
        admin.cursor().execute(f"CREATE DATABASE {db}")
    finally:
        admin.close()
    conn = pg_server.connect(dbname=db)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)")
        cur.execute("CREATE TABLE quiet (id int) WITH (autovacuum_enabled = false)")
        cur.execute(f"INSERT INTO {TABLE} SELECT i, repeat('x', 200) FROM generate_series(1, 20000) AS i")
        cur.execute(f"DELETE FROM {TABLE} WHERE id % 2 = 0")
    finally:
        conn.close()
    deadline = time.monotonic() + 15
    while dead_tuples(pg_server, db) < 10000 and time.monotonic() < deadline:   # the statistics flush lags a little
        time.sleep(0.2)
    assert dead_tuples(pg_server, db) >= 10000
    yield db
    drop_database(pg_server, db)


class Maintenance:
    def __init__(self, ansible, pg_server, db, tmp_path):
        self.ansible, self.tmp, self.db = ansible, tmp_path, db
        self.incident = "INC-MNT-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.hosts = tmp_path / "hosts.ini"
        self.hosts.write_text(f"[db_controllers]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice"}
        self.vars = {
            "trdrhub_incident_id": self.incident,
            "maintain_db_login_host": pg_server.host, "maintain_db_login_port": pg_server.port,
            "maintain_db_login_user": pg_server.superuser, "maintain_db_login_password": pg_server.password,
            "maintain_db_login_db": db, "maintain_db_approval_poll_interval": 0.3,
        }
        self.proc = None

    def argv(self, *extra, **overrides):
        variables = {k: v for k, v in dict(self.vars, **overrides).items() if v is not None}
        return [PLAYBOOK, "-i", self.hosts, "-e", json.dumps(variables), *extra]

    def run(self, *extra, **overrides):
        return self.ansible.run_playbook(*self.argv(*extra, **overrides), extra_env=self.env, timeout=240)

    def start(self, **overrides):
        self.proc = self.ansible.start_playbook(*self.argv(**overrides), extra_env=self.env)

    def finish(self):
        output = self.proc.communicate(timeout=240)[0]
        return self.proc.returncode, output

    def request_id(self, timeout=90):
        return wait_for_request(self.root / self.incident / "approvals", self.proc, timeout)

    def records(self, event):
        path = self.root / self.incident / "ledger.jsonl"
        return [e for e in read_file_ledger(path) if e["event"] == event] if path.exists() else []


@pytest.fixture
def maintenance(ansible, pg_server, churned, tmp_path):
    made = []

    def make():
        made.append(Maintenance(ansible, pg_server, churned, tmp_path))
        return made[-1]

    yield make
    for m in made:
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()
            m.proc.communicate()


def test_check_mode_lists_the_tables_and_their_dead_tuples_and_runs_nothing(maintenance, pg_server):
    m = maintenance()
    snapshot = Snapshot(m.tmp)
    run = m.run("--check")
    assert run.rc == 0, run.output
    out = flat(run.output)
    assert "Database maintenance evidence" in out and f"database: {m.db} on {pg_server.host}" in out
    assert "statement: VACUUM (ANALYZE) {table}" in out
    assert "2 selected (cap 50), 1 to process, 1 skipped (fewer than 1 dead tuples)" in out
    assert f"VACUUM public.{TABLE}: 10000 dead / 10000 live tuples" in out
    assert "skip public.quiet: 0 dead / 0 live tuples" in out
    assert "CHECK MODE, nothing was run (1 table(s) would be processed)" in out
    assert dead_tuples(pg_server, m.db) >= 10000
    assert pg_server.password not in run.output
    assert snapshot.new_or_changed() == []


def test_store_mode_approved_by_another_person_vacuums_and_a_rerun_has_nothing_to_do(maintenance, pg_server):
    m = maintenance()
    m.start(maintain_db_approval_mode="store")
    rid = m.request_id()
    assert dead_tuples(pg_server, m.db) >= 10000   # nothing before the approval
    request = json.loads((m.root / m.incident / "approvals" / f"{rid}.json").read_text())
    assert request["action"] == "vacuum_db" and request["evidence"]["database"] == m.db
    assert request["evidence"]["tables"] == [f"public.{TABLE} dead=10000"]
    own = cast(m.ansible, m.env, rid, "approve", "alice")
    assert own.rc != 0   # the requester cannot approve their own request
    voted = cast(m.ansible, m.env, rid, "approve", "bob")
    assert voted.rc == 0, voted.output
    rc, output = m.finish()
    assert rc == 0, output
    out = flat(output)
    assert f"result: VACUUM (ANALYZE) on 1 table(s) of {m.db}" in out
    assert f"public.{TABLE}: dead tuples 10000 -> 0 in" in out
    assert query(pg_server, m.db, "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'quiet'")[0][0] == 0
    assert query(pg_server, m.db, f"SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = '{TABLE}'")[0][0] == 1
    decision = m.records("decision")[-1]["data"]
    assert decision["confirmed"] is True and decision["approval"]["approvers"] == ["awx:bob"]
    assert decision["tables"] == [f"public.{TABLE}"]
    [note] = [e for e in m.records("note") if "VACUUM" in e["data"]["message"]]
    assert note["data"]["processed"] == 1 and note["data"]["tables"][0]["dead_before"] == 10000
    assert note["data"]["tables"][0]["dead_after"] == 0

    deadline = time.monotonic() + 15
    while dead_tuples(pg_server, m.db) > 0 and time.monotonic() < deadline:   # the statistics of the VACUUM are flushed
        time.sleep(0.2)
    again = m.run(maintain_db_confirm=True)
    assert again.rc == 0, again.output
    assert "NOTHING TO DO, no table has 1 or more dead tuples" in flat(again.output)
    assert len(m.records("decision")) == 1   # nothing to approve the second time
    assert len([e for e in m.records("note") if "VACUUM" in e["data"]["message"]]) == 1


def test_store_mode_denied_runs_nothing(maintenance, pg_server):
    m = maintenance()
    m.start(maintain_db_approval_mode="store")
    rid = m.request_id()
    voted = cast(m.ansible, m.env, rid, "deny", "bob")
    assert voted.rc == 0, voted.output
    rc, output = m.finish()
    assert rc != 0
    assert "Not approved, nothing was run" in flat(output)
    assert dead_tuples(pg_server, m.db) >= 10000
    assert m.records("decision")[-1]["data"]["confirmed"] is False
    assert not [e for e in m.records("note") if "VACUUM" in e["data"]["message"]]


def test_unconfigured_server_pooler_and_unaccepted_full_are_refused(maintenance, pg_server, monkeypatch):
    m = maintenance()
    for var in ("PGHOST", "PGHOSTADDR", "PGSERVICE"):
        monkeypatch.delenv(var, raising=False)
    none = m.run("--check", maintain_db_login_host=None)
    assert none.rc != 0 and "No PostgreSQL server given: set maintain_db_login_host" in flat(none.output)
    pooler = m.run(maintain_db_login_port=6543, maintain_db_confirm=True)
    assert pooler.rc != 0 and "never to the pooler (port 6543)" in flat(pooler.output)
    full = m.run(maintain_db_full=True, maintain_db_confirm=True)
    assert full.rc != 0 and "Add -e maintain_db_allow_full_lock=true" in flat(full.output)
    assert dead_tuples(pg_server, m.db) >= 10000
    assert m.records("decision") == []


@pytest.mark.skipif(not shutil.which("pgbouncer") and not shutil.which("/usr/sbin/pgbouncer"), reason="pgbouncer is not installed")
def test_a_pgbouncer_on_any_port_is_refused_before_the_gate(maintenance, pg_server):
    m = maintenance()
    with PgBouncerServer(pg_server) as bouncer:
        bouncer.start()
        run = m.run(maintain_db_login_host=bouncer.host, maintain_db_login_port=bouncer.port, maintain_db_confirm=True)
    assert run.rc != 0
    out = flat(run.output)
    assert "Refusing to maintain through a connection pooler" in out and "REFUSED BEFORE THE GATE, nothing was run" in out
    assert dead_tuples(pg_server, m.db) >= 10000
    assert m.records("decision")[-1]["data"]["confirmed"] is False


def test_the_response_procedure_runs_it_as_a_recovery_step(maintenance, pg_server, trdrhub_db):
    """respond_recover_with: [maintain_db] puts the VACUUM in the recover phase, behind its own gate; in check mode
    the evidence is shown and nothing runs."""
    m = maintenance()
    env = dict(m.env, TRDRHUB_PG_HOST=pg_server.host, TRDRHUB_PG_PORT=str(pg_server.port),
               TRDRHUB_PG_OPS_PASSWORD=trdrhub_db["ops"]["password"], TRDRHUB_PG_APP_PASSWORD=trdrhub_db["app"]["password"],
               TRDRHUB_BASE_URL=None, TRDRHUB_ALERTMANAGER_URL=None, TRDRHUB_REDIS_URL=None)
    variables = dict(m.vars, respond_optional_phases=["recover"], respond_recover_with=["maintain_db"])
    before = dead_tuples(pg_server, m.db)
    run = m.ansible.run_playbook("playbooks/respond_p3.yml", "-i", "inventories/sandbox", "-e", json.dumps(variables),
                                 "--check", extra_env=env, timeout=400)
    assert run.rc == 0, run.output
    out = flat(run.output)
    assert "Database maintenance evidence" in out and f"VACUUM public.{TABLE}: 10000 dead" in out
    assert "maintain_db (each behind its approval gate)" in out
    assert dead_tuples(pg_server, m.db) == before

    bad = m.ansible.run_playbook("playbooks/respond_p3.yml", "-i", "inventories/sandbox", "-e",
                                 json.dumps(dict(variables, respond_recover_with=["vacuum_everything"])),
                                 "--check", extra_env=env, timeout=200)
    refused = flat(bad.output)
    assert bad.rc != 0 and "respond_recover_with" in refused and "vacuum_everything" in refused, refused
    assert "Database maintenance evidence" not in refused
