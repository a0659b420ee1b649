"""playbooks/investigate.yml (runbook phase 2) against the harness PostgreSQL and Redis and a local HTTPS server.

The evidence is made real: a lock blocker, an Alembic version table behind the expected
revision, a tampered audit table, a queue above its threshold, a failing readiness check
and a certificate that expires in three days. The bundle must hold every collector, the
summary must lead with those findings, and the database password must appear nowhere.

The run with every collector succeeding (application logs from the Kubernetes API double and a
paused PgBouncer pool included) is made once for the module and read by several tests; every
incident of the module is opened by one playbook run beforehand.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import shutil
import stat
import subprocess
import types
import uuid

import pytest
import redis
from _itest_audit import audit_rows, copy_rows, create_audit_table
from _itest_batch import run_batch
from _itest_http import StubServer, TrdrHubHealth
from _itest_ledger import check_chain, read_file_ledger
from _itest_sessions import SessionFactory
from _itest_snapshot import Snapshot
from trdrhub_harness import free_port, workload
from trdrhub_harness.certs import TestCA
from trdrhub_harness.k8sapi import K8sApiServer
from trdrhub_harness.k8slogs import write_log

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REVISION = "0a1b2c3d4e5f"
EXPECTED = "9f8e7d6c5b4a"
SECTIONS = {"postgres", "migrations", "audit_chain", "redis", "health", "host_resources", "recent_commits"}


@contextlib.contextmanager
def evidence_made(pg_server, trdrhub_db, redis_server, monitor, passwords):
    """Version table, tampered audit table, a blocker (with two waiters) and a queue backlog; cleaned up afterwards."""
    suffix = uuid.uuid4().hex[:8]
    version, audit, lock_table = f"itest_inv_alembic_{suffix}", f"itest_inv_audit_{suffix}", f"itest_inv_lock_{suffix}"
    queue = f"itest:inv:{suffix}"
    app = f"itest-investigate-{suffix}"
    conn = pg_server.connect(dbname="trdrhub")
    rds = _redis(redis_server)
    sessions = SessionFactory(pg_server, monitor, passwords, "trdrhub", workload.APP_ROLE)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {version} (version_num varchar(32) PRIMARY KEY)")
        cur.execute(f"INSERT INTO {version} VALUES (%s)", (REVISION,))
        create_audit_table(conn, audit)
        copy_rows(conn, audit, audit_rows(12))
        cur.execute(f"UPDATE {audit} SET action = 'delete' WHERE sequence_number = 5")   # hash no longer matches
        cur.execute(f"CREATE TABLE {lock_table} (id int)")
        cur.execute(f"GRANT SELECT ON {version}, {audit} TO {trdrhub_db['app']['user']}")
        cur.execute(f"GRANT ALL ON {lock_table} TO {trdrhub_db['app']['user']}")
        rds.rpush(queue, *[f"job-{i}" for i in range(7)])
        sessions.lock_pair(app, lock_table, waiters=2, user=trdrhub_db["app"]["user"])
        yield {"version_table": version, "audit_table": audit, "queue": queue}
    finally:
        try:
            sessions.close()
        finally:
            rds.delete(queue)
            conn.cursor().execute(f"DROP TABLE IF EXISTS {version}, {audit}, {lock_table}")
            conn.close()


def deploy_repo(path, commits):
    """A git repository with ``commits`` (subject, author date) committed in that order."""
    path.mkdir()
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(path.parent), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    for index, (subject, when) in enumerate(commits):
        (path / "values.yaml").write_text(f"image: ghcr.io/trdrhub/api:1.{index}.0\n")
        subprocess.run(["git", "-C", str(path), "add", "values.yaml"], check=True, env=env)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        subprocess.run(["git", "-C", str(path), "-c", "user.name=Dev Ops", "-c", "user.email=devops@trdrhub.example",
                        "commit", "-q", "-m", subject], check=True,
                       env={**env, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return path


def _redis(server):
    return redis.Redis.from_url(server.url)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = TestCA()
    ca.ca.write(directory, "ca")
    return {"ca": str(ca.ca.cert_path), "near": ca.issue(valid_days=3).write(directory, "near")}


# The scenarios that run investigate.yml, each on an incident of its own.
SCENARIOS = ("every_collector", "failing_collector", "check_mode")


@pytest.fixture(scope="module")
def incidents(ansible, tmp_path_factory):
    """The incidents home of this module: one incident per scenario, all opened by one playbook run.

    investigate.yml acts on an existing incident (an unknown id is refused): each gets a ledger first.
    """
    home = tmp_path_factory.mktemp("investigate") / "incidents"
    ids = {name: "INC-INV-" + uuid.uuid4().hex[:6] for name in SCENARIOS}
    calls = {name: ("ledger_record", {"incident_id": incident, "event": "note", "root": str(home), "msg": "opened for the test"})
             for name, incident in ids.items()}
    opened = run_batch(ansible, calls)
    for name, res in opened.items():
        assert not res.failed, (name, res.output)
    return home, ids


def investigate_run(ansible, pg_server, trdrhub_db, incidents, scenario):
    """Run the playbook for the scenario's incident with extra vars; the incident's directory is run.dir."""
    home, ids = incidents
    incident = ids[scenario]
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"], "TRDRHUB_LEDGER_DIR": str(home),
           "TRDRHUB_REDIS_URL": None, "TRDRHUB_BASE_URL": None}

    def run(extra: dict, *args):
        return ansible.run_playbook("playbooks/investigate.yml", "-i", "inventories/sandbox",
                                    "-e", json.dumps({"trdrhub_incident_id": incident, **extra}), *args, extra_env=env)
    run.incident = incident
    run.dir = home / incident
    return run


def _bundle_dirs(incident_dir):
    diagnostics = incident_dir / "diagnostics"
    return sorted(p for p in diagnostics.iterdir()) if diagnostics.exists() else []


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def pgbouncer(pg_server):
    """A PgBouncer in front of the harness PostgreSQL; None when pgbouncer is not installed (its test is skipped)."""
    from trdrhub_harness.pgbouncer import PgBouncerServer
    if not shutil.which("pgbouncer"):
        yield None
        return
    with PgBouncerServer(pg_server) as bouncer:
        yield bouncer.start()


@contextlib.contextmanager
def paused_pool(pgbouncer):
    """The pooler's database ``postgres`` PAUSEd while the block runs; the investigate variables that read it."""
    if pgbouncer is None:
        yield {}
        return
    client = pgbouncer.connect()    # the pooler knows a database while a client uses it
    with client.cursor() as cur:
        cur.execute("SELECT 1")
    admin = pgbouncer.connect(dbname="pgbouncer")
    try:
        with admin.cursor() as cur:
            cur.execute("PAUSE postgres")
            cur.execute("SHOW DATABASES")
            assert [row for row in cur.fetchall() if row[0] == "postgres"], "the pooler forgot the database"
        yield {"investigate_pgbouncer_host": pgbouncer.host, "investigate_pgbouncer_port": pgbouncer.port,
               "investigate_pgbouncer_user": pgbouncer.stats_user}
    finally:
        with admin.cursor() as cur:
            cur.execute("RESUME postgres")
        admin.close()
        client.close()


@pytest.fixture(scope="module")
def every_collector(ansible, pg_server, trdrhub_db, redis_server, monitor, passwords, incidents, pki, pgbouncer,
                    tmp_path_factory):
    """One run in which every collector answers, read by the tests below.

    The evidence above (kept only while the run lasts); a deployment repository; a health endpoint answering
    503 behind a certificate that expires in three days; the Kubernetes API double with two Deployments whose
    first api pod logs the database password and a bearer token; and, when pgbouncer is installed, a pooler
    database PAUSEd.
    """
    work = tmp_path_factory.mktemp("every-collector")
    investigate = investigate_run(ansible, pg_server, trdrhub_db, incidents, "every_collector")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    repo = deploy_repo(work / "deploy", [("Deploy api 1.0.0", now - datetime.timedelta(days=3)),
                                         ("Raise the API pool size", now - datetime.timedelta(minutes=20))])
    health = TrdrHubHealth()
    health.database = "error"
    near = pki["near"]
    password = trdrhub_db["app"]["password"]
    token = "itest-log-token-" + uuid.uuid4().hex
    with evidence_made(pg_server, trdrhub_db, redis_server, monitor, passwords) as evidence, \
            K8sApiServer(tls=True) as k8s_api:
        k8s_api.state.add_deployment("trdrhub-api", replicas=2)
        k8s_api.state.add_deployment("trdrhub-worker", replicas=1)
        pod = sorted(p["metadata"]["name"] for p in k8s_api.state.list("pods", "trdrhub-system", "app=trdrhub-api")[0])[0]
        write_log(k8s_api.state, pod, ["INFO Application startup complete.",
                                       f"ERROR cannot connect: password authentication failed, dsn password={password}",
                                       f"DEBUG outbound Authorization: Bearer {token}",
                                       f"ERROR retrying with postgresql://trdrhub_app:{password}@db:5432/trdrhub"])
        kubeconfig = k8s_api.write_kubeconfig(work / "kubeconfig")
        with StubServer(routes=health.routes(), cert_file=str(near.cert_path), key_file=str(near.key_path)) as server, \
                paused_pool(pgbouncer) as pooler_vars:
            run = investigate({
                "investigate_version_table": evidence["version_table"], "investigate_expected_revision": [EXPECTED],
                "investigate_audit_table": evidence["audit_table"],
                "investigate_redis_url": redis_server.url, "investigate_redis_queues": [evidence["queue"]],
                "investigate_base_url": server.url("localhost"), "investigate_http_ca_path": pki["ca"],
                "investigate_thresholds": {"queue_backlog": 5, "load_per_core": 1000, "swap_used_bytes": 1 << 50},
                "investigate_deploy_repo": str(repo),
                "trdrhub_kubernetes_enabled": True, "investigate_k8s_kubeconfig": str(kubeconfig),
                "investigate_app_logs_tail": 50,
                **pooler_vars,
            })
            health_port = server.url("localhost").rsplit(":", 1)[1]
    return types.SimpleNamespace(run=run, investigate=investigate, evidence=evidence, repo=repo, health_port=health_port,
                                 pod=pod, token=token, pgbouncer=pgbouncer)


def _bundle(investigate):
    (bundle_dir,) = _bundle_dirs(investigate.dir)
    return bundle_dir, json.loads((bundle_dir / "bundle.json").read_text())


def test_the_bundle_holds_every_collector_and_the_summary_leads_with_the_findings(
        every_collector, redis_server, pg_server, trdrhub_db):
    run, investigate, repo, evidence = every_collector.run, every_collector.investigate, every_collector.repo, every_collector.evidence
    collectors = SECTIONS | {"kubernetes", "app_logs"} | ({"pgbouncer"} if every_collector.pgbouncer else set())
    assert run.rc == 0, run.output
    (bundle_dir,) = _bundle_dirs(investigate.dir)
    assert _mode(bundle_dir) == 0o750 and _mode(bundle_dir.parent) == 0o750
    bundle_file, summary_file = bundle_dir / "bundle.json", bundle_dir / "summary.md"
    assert _mode(bundle_file) == 0o640 and _mode(summary_file) == 0o640

    bundle = json.loads(bundle_file.read_text())
    assert bundle["incident_id"] == investigate.incident and bundle["check_mode"] is False
    assert bundle["bundle_dir"] == str(bundle_dir)
    sections = bundle["collectors"]
    assert set(sections) == collectors
    for name, section in sections.items():
        assert section["status"] == "ok", (name, section)
        assert section["collected_at"] and section["error"] is None
        assert "invocation" not in section["result"]
    pg = sections["postgres"]["result"]
    assert pg["blockers"] and pg["blockers"][0]["blocks"] == 2
    assert sections["migrations"]["result"]["revisions"] == [REVISION]
    assert sections["migrations"]["result"]["up_to_date"] is False
    assert sections["audit_chain"]["result"]["violation_counts"] == {"hash_mismatch": 1}
    assert sections["redis"]["result"]["queues"][evidence["queue"]]["length"] == 7
    assert sections["health"]["result"]["tls"]["expiring_soon"] is True
    (host,) = sections["host_resources"]["result"]["hosts"]
    assert host["host"] == "localhost" and host["status"] == "ok" and host["cpu"]["cores"] >= 1
    assert any(f["mount"] == "/" for f in host["filesystems"]) and host["processes"]["by_memory"]
    assert [(r["target"], r["reachable"]) for r in host["reachability"]] == [
        (f"{pg_server.host}:{pg_server.port}", True), (f"{redis_server.host}:{redis_server.port}", True),
        (f"localhost:{every_collector.health_port}", True)]
    commits = sections["recent_commits"]["result"]
    assert commits["repository"] == str(repo)
    assert [(c["subject"], c["author"], c["refs"]) for c in commits["commits"]] == [
        ("Raise the API pool size", "Dev Ops", ["HEAD -> main"]), ("Deploy api 1.0.0", "Dev Ops", [])]

    titles = [f["title"] for f in bundle["findings"]]
    assert [f["severity"] for f in bundle["findings"]][0] == "critical"
    for expected in ("Audit chain violations: 1", "Health check failing: /health/ready answered 503",
                     "1 session(s) blocking 2 other(s)", "Database migration not up to date",
                     f"Queue backlog: {evidence['queue']} holds 7 item(s)"):
        assert expected in titles, titles
    assert any(t.startswith("TLS certificate expires soon") for t in titles), titles
    assert f"Recent commit in the deployment repository: {commits['commits'][0]['short']} Raise the API pool size" in titles
    assert not [t for t in titles if "unreachable" in t], titles

    summary = summary_file.read_text()
    headline = summary.split("## Collectors")[0]
    assert "## Headline findings" in headline and "Audit chain violations: 1" in headline
    assert "Database migration not up to date" in headline and "Queue backlog" in headline
    for title in ("## PostgreSQL activity", "## Migrations", "## Audit chain", "## Redis", "## Health and TLS",
                  "## Application and database hosts", "### localhost", "## Recent deployments (deployment repository)"):
        assert title in summary

    flat = " ".join(run.output.split())
    assert f"summary: {summary_file}" in flat and "Audit chain violations: 1" in flat

    # The ledger names the bundle and its hash; the password is nowhere.
    entries = read_file_ledger(investigate.dir / "ledger.jsonl")
    check_chain(entries, investigate.incident)
    (finding,) = [e for e in entries if e["event"] == "finding"]
    assert finding["phase"] == "investigate" and finding["data"]["bundle_dir"] == str(bundle_dir)
    assert finding["data"]["bundle_sha256"] == hashlib.sha256(bundle_file.read_bytes()).hexdigest()
    assert finding["data"]["collectors"] == {name: "ok" for name in collectors}
    password = trdrhub_db["app"]["password"]
    for text in (bundle_file.read_text(), summary, run.output, (investigate.dir / "ledger.jsonl").read_text()):
        assert password not in text


def test_a_failing_collector_is_recorded_and_the_play_completes(ansible, pg_server, trdrhub_db, incidents, tmp_path):
    investigate = investigate_run(ansible, pg_server, trdrhub_db, incidents, "failing_collector")
    dead_port, dead_api = free_port(), free_port()
    run = investigate({"investigate_redis_host": "127.0.0.1", "investigate_redis_port": dead_port,
                       "investigate_redis_password": "itest-redis-secret-" + uuid.uuid4().hex,
                       "investigate_audit_table": "itest_no_audit_here", "investigate_base_url": "",
                       "trdrhub_kubernetes_enabled": True, "investigate_k8s_host": f"https://127.0.0.1:{dead_api}",
                       "investigate_k8s_api_key": "itest-k8s-token-" + uuid.uuid4().hex,
                       "investigate_deploy_repo": str(tmp_path / "no-such-repo")})
    assert run.rc == 0, run.output
    (bundle_dir,) = _bundle_dirs(investigate.dir)
    bundle = json.loads((bundle_dir / "bundle.json").read_text())
    sections = bundle["collectors"]
    # No base URL: no health section. Kubernetes (trdrhub_kubernetes_enabled) cannot be reached.
    assert set(sections) == {"postgres", "migrations", "audit_chain", "redis", "kubernetes", "host_resources", "app_logs",
                             "recent_commits"}
    assert sections["kubernetes"]["status"] == "error" and sections["kubernetes"]["error"]
    assert sections["app_logs"]["status"] == "error" and "Cannot reach the Kubernetes API" in sections["app_logs"]["error"]
    assert sections["recent_commits"]["status"] == "error"
    assert sections["recent_commits"]["error"].startswith(f"fatal: cannot change to '{tmp_path / 'no-such-repo'}'")
    assert sections["host_resources"]["status"] == "ok"
    titles = [f["title"] for f in bundle["findings"] if f["severity"] == "critical"]
    assert f"127.0.0.1:{dead_port} unreachable from localhost" in titles, titles
    assert sections["redis"]["status"] == "error"
    assert f"127.0.0.1:{dead_port}" in sections["redis"]["error"]
    assert sections["audit_chain"]["status"] == "skipped"
    assert sections["audit_chain"]["skip_reason"] == "table itest_no_audit_here does not exist in the database"
    assert sections["postgres"]["status"] == "ok" and sections["migrations"]["status"] == "ok"
    assert sections["migrations"]["result"]["up_to_date"] is True   # the workload's seeded revision
    summary = (bundle_dir / "summary.md").read_text()
    assert "Collector redis failed" in summary.split("## Collectors")[0]
    assert "Skipped: table itest_no_audit_here does not exist in the database." in summary
    assert "redis=error" in " ".join(run.output.split())
    for text in ((bundle_dir / "bundle.json").read_text(), summary, run.output):
        assert trdrhub_db["app"]["password"] not in text and "itest-redis-secret-" not in text
        assert "itest-k8s-token-" not in text


def test_check_mode_collects_but_writes_nothing(ansible, pg_server, trdrhub_db, incidents, tmp_path):
    investigate = investigate_run(ansible, pg_server, trdrhub_db, incidents, "check_mode")
    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents", incidents[0])
    run = investigate({}, "--check")
    assert run.rc == 0, run.output
    flat = " ".join(run.output.split())
    assert "CHECK MODE: nothing was written" in flat
    assert "collectors: audit_chain=ok, host_resources=ok, migrations=ok, postgres=ok" in flat
    assert _bundle_dirs(investigate.dir) == []
    assert snapshot.new_or_changed() == []   # no bundle, no ledger entry, no incident directory


def test_application_logs_from_the_pods_with_every_secret_masked(every_collector, trdrhub_db):
    """The pods' logs reach the bundle through the Kubernetes API double; secrets in log lines do not."""
    run, investigate, pod = every_collector.run, every_collector.investigate, every_collector.pod
    password, token = trdrhub_db["app"]["password"], every_collector.token
    assert run.rc == 0, run.output
    bundle_dir, bundle = _bundle(investigate)
    logs = bundle["collectors"]["app_logs"]
    assert logs["status"] == "ok", logs
    entries = {(e["deployment"], e["pod"]): e for e in logs["result"]["logs"]}
    assert {key[0] for key in entries} == {"trdrhub-api", "trdrhub-worker"}
    assert len([key for key in entries if key[0] == "trdrhub-api"]) == 2
    lines = entries[("trdrhub-api", pod)]["lines"]
    assert lines[0] == "INFO Application startup complete." and len(lines) == 4
    assert f"2 error line(s) in the last 4 of pod {pod} (api)" in [f["title"] for f in bundle["findings"]]
    summary = (bundle_dir / "summary.md").read_text()
    assert "## Application logs" in summary and "INFO Application startup complete." in summary
    for text in ((bundle_dir / "bundle.json").read_text(), summary, run.output, (investigate.dir / "ledger.jsonl").read_text()):
        assert password not in text and token not in text


@pytest.mark.parametrize("incident_id", ["", "../etc", "INC 1"])
def test_an_invalid_incident_id_is_refused_before_anything_is_collected(ansible, incident_id, tmp_path):
    run = ansible.run_playbook("playbooks/investigate.yml", "-i", "inventories/sandbox",
                               "-e", json.dumps({"trdrhub_incident_id": incident_id}),
                               extra_env={"TRDRHUB_LEDGER_DIR": str(tmp_path), "TRDRHUB_PG_PORT": "1"})
    assert run.rc != 0
    assert "investigate needs the incident id" in " ".join(run.output.split())
    assert "pg_activity_info" not in run.output and not list(tmp_path.rglob("diagnostics"))


def test_a_paused_pooler_database_is_a_critical_finding(every_collector):
    if every_collector.pgbouncer is None:
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    run = every_collector.run
    assert run.rc == 0, run.output
    bundle_dir, bundle = _bundle(every_collector.investigate)
    section = bundle["collectors"]["pgbouncer"]
    assert section["status"] == "ok", section
    assert section["result"]["summary"]["paused_databases"] == ["postgres"], section["result"]["databases"]
    critical = [(f["collector"], f["title"]) for f in bundle["findings"] if f["severity"] == "critical"]
    assert ("pgbouncer", "PgBouncer database postgres is PAUSED on the pooler (RESUME postgres lifts it)") in critical
    assert "## PgBouncer pools" in (bundle_dir / "summary.md").read_text()
