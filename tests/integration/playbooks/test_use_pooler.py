"""playbooks/use_pooler.yml: the application's DATABASE_URL pointed at a real PgBouncer and back.

The URL lives in a Secret of the Kubernetes API double (read by the Deployment through ``envFrom``)
or in the Deployment's env, or in a docker compose env file. A stand-in for the application reads
the URL whenever its pods are replaced and keeps one connection open with it, so PgBouncer's admin
console shows whether the application's connections arrive through the pooler. PgBouncer is the
Debian package in front of the harness PostgreSQL (tests/harness/trdrhub_harness/pgbouncer.py).
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg2
import pytest
from _itest_ansible import REPO_ROOT
from _itest_approval import cast, wait_for_request
from _itest_k8s import CLEAN_ENV
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot
from trdrhub_harness.pgbouncer import PgBouncerServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
NS = "trdrhub-system"
API = "trdrhub-api"
SECRET = "trdrhub-db"
KEY = "DATABASE_URL"


@pytest.fixture(scope="module")
def pgbouncer(pg_server):
    if not shutil.which("pgbouncer") and not shutil.which("/usr/sbin/pgbouncer"):
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with PgBouncerServer(pg_server) as bouncer:
        yield bouncer.start()


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                                "ansible_python_interpreter": sys.executable}}}}))
    return path


def direct_url(pg) -> str:
    return f"postgresql://{pg.superuser}:{pg.password}@{pg.host}:{pg.port}/trdrhub?sslmode=disable"


class App:
    """The application: whenever its pods are replaced, it reads the URL again and reconnects with it."""

    def __init__(self, state, read_url) -> None:
        self.state, self.read_url = state, read_url
        self.conn, self.url, self.pods = None, None, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            pods = frozenset(p["metadata"]["name"] for p in self.state.list("pods", NS, f"app={API}")[0])
            if pods != self.pods:
                self.pods = pods
                url = self.read_url()
                if url != self.url:
                    if self.conn is not None:
                        self.conn.close()
                    self.conn = psycopg2.connect(url, application_name="trdrhub-api", connect_timeout=5)
                    self.url = url
            time.sleep(0.1)

    def port(self) -> int:
        return urlsplit(self.url).port

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        if self.conn is not None:
            self.conn.close()


def settle(state, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep = state.get("deployments", NS, API)
        st, replicas = dep.get("status") or {}, dep["spec"]["replicas"]
        if (st.get("observedGeneration") == dep["metadata"]["generation"]
                and st.get("updatedReplicas", 0) == st.get("availableReplicas", 0) == st.get("replicas", 0) == replicas):
            return dep
        time.sleep(0.05)
    raise AssertionError(f"{API} did not settle: {state.get('deployments', NS, API)['status']}")


def secret_url(state) -> str:
    return base64.b64decode(state.get("secrets", NS, SECRET)["data"][KEY]).decode()


def env_url(state) -> str:
    container = state.get("deployments", NS, API)["spec"]["template"]["spec"]["containers"][0]
    return next(e["value"] for e in container.get("env") or [] if e["name"] == KEY)


def seed(k8s_api, pg, how: str) -> None:
    state = k8s_api.state
    state.add_deployment(API, NS, replicas=2)
    if how == "secret":
        state.add_secret(SECRET, {KEY: direct_url(pg), "REDIS_URL": "redis://r:6379/0"}, NS, annotations={"owner": "sre"})
        container = {"name": "api", "envFrom": [{"secretRef": {"name": SECRET}}]}
    else:
        container = {"name": "api", "env": [{"name": KEY, "value": direct_url(pg)}]}
    state.patch("deployments", NS, API, "application/strategic-merge-patch+json",
                {"spec": {"template": {"spec": {"containers": [container]}}}})
    settle(state)


def open_incident(ansible, env) -> str:
    """An incident with a ledger (the playbook acts on existing incidents only), opened by ledger_record's entry point."""
    incident = "INC-POOL-" + uuid.uuid4().hex[:6]
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"},
                         extra_env=env, via_playbook=False)
    assert not opened.failed, opened.output
    return incident


def play(ansible, inventory, extra, env, *flags, timeout=400):
    return ansible.run_playbook(REPO_ROOT / "playbooks" / "use_pooler.yml", "-i", inventory, "-e", json.dumps(extra),
                                *flags, extra_env=env, timeout=timeout)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def k8s_vars(k8s_api, tmp_path, bouncer, incident, **more) -> dict:
    kubeconfig = k8s_api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    return {"trdrhub_incident_id": incident, "use_pooler_kubeconfig": str(kubeconfig),
            "use_pooler_pgbouncer_host": bouncer.host, "use_pooler_pgbouncer_port": bouncer.port,
            "use_pooler_console_host": bouncer.host, "use_pooler_console_port": bouncer.port,
            "use_pooler_console_user": bouncer.stats_user, "use_pooler_timeout": 30, "use_pooler_verify_timeout": 20,
            "use_pooler_verify_interval": 1, "use_pooler_confirm": True, **more}


def notes(ledger_dir, incident, action) -> list:
    return [e for e in read_file_ledger(ledger_dir / incident / "ledger.jsonl")
            if e["event"] == "note" and (e.get("data") or {}).get("action") == action]


def test_secret_switch_with_a_second_approver_verified_on_the_pooler_rerun_and_rollback(ansible, pg_server, trdrhub_db,
                                                                                        pgbouncer, k8s_api, inventory, tmp_path):
    pg, state = pg_server, k8s_api.state
    seed(k8s_api, pg, "secret")
    ledger_dir = tmp_path / "incidents"
    env = dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(ledger_dir), AWX_USER_NAME="alice")
    incident = open_incident(ansible, env)
    extra = k8s_vars(k8s_api, tmp_path, pgbouncer, incident)
    with App(state, lambda: secret_url(state)) as app:
        deadline = time.monotonic() + 10
        while app.url is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.port() == pg.port

        # --check: the plan and the evidence, nothing written, no approval asked.
        before = (state.get("secrets", NS, SECRET)["metadata"]["resourceVersion"],
                  state.get("deployments", NS, API)["metadata"]["resourceVersion"])
        check = play(ansible, inventory, dict(extra, use_pooler_confirm=False), env, "--check", "--diff")
        assert check.rc == 0, check.output
        text = flat(check.output)
        assert (f"Secret {NS}/{SECRET} key {KEY}: {pg.host}:{pg.port}/trdrhub?sslmode=disable "
                f"would be pointed at {pgbouncer.host}:{pgbouncer.port}/trdrhub?sslmode=disable") in text, check.output
        assert f"postgresql://{pg.superuser}:********@{pg.host}:{pg.port}/trdrhub?sslmode=disable" in text
        assert (state.get("secrets", NS, SECRET)["metadata"]["resourceVersion"],
                state.get("deployments", NS, API)["metadata"]["resourceVersion"]) == before
        assert not (ledger_dir / incident / "approvals").exists()
        assert len(notes(ledger_dir, incident, "use_pooler")) == 0

        # Store mode: alice asks, bob approves from another run.
        proc = ansible.start_playbook(REPO_ROOT / "playbooks" / "use_pooler.yml", "-i", inventory, "-e", json.dumps(
            dict(extra, use_pooler_confirm=False, use_pooler_approval_mode="store", use_pooler_approval_poll_interval=0.3,
                 use_pooler_approval_timeout=240)), extra_env=env)
        try:
            rid = wait_for_request(ledger_dir / incident / "approvals", proc, timeout=240)
            request = json.loads((ledger_dir / incident / "approvals" / f"{rid}.json").read_text())
            assert request["action"] == "use_pooler" and request["requester"] == "awx:alice"
            evidence = request["evidence"]
            assert evidence["endpoint"]["port"] == pgbouncer.port and evidence["previous_endpoint"]["port"] == pg.port
            assert evidence["source"] == {"type": "k8s_secret", "location": f"{NS}/{SECRET}", "key": KEY,
                                          "via": f"envFrom secretRef {SECRET}"}
            assert evidence["restart"] == [API] and evidence["pooler"]["clients_waiting"] == 0
            assert secret_url(state) == direct_url(pg)   # nothing before the approval
            voted = cast(ansible, env, rid, "approve", "bob")
            assert voted.rc == 0, voted.output
            output = proc.communicate(timeout=400)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, output
        # Only the endpoint changed: same user, same password, same query; the other key and annotations kept.
        assert secret_url(state) == direct_url(pg).replace(f"{pg.host}:{pg.port}", f"{pgbouncer.host}:{pgbouncer.port}")
        secret = state.get("secrets", NS, SECRET)
        assert base64.b64decode(secret["data"]["REDIS_URL"]).decode() == "redis://r:6379/0"
        assert secret["metadata"]["annotations"]["owner"] == "sre"
        assert "trdrhub.incident/rotated-at" not in secret["metadata"]["annotations"]
        dep = settle(state)
        assert dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        assert app.port() == pgbouncer.port   # the stand-in reconnected through the pooler after the restart
        text = flat(output)
        assert f"pooler check: 1 client(s) of {pg.superuser} on trdrhub connected through PgBouncer" in text, output
        assert "use_pooler_rollback=true" in text   # the undo command
        assert pg.password not in output and pg.password not in voted.output
        (switched,) = notes(ledger_dir, incident, "use_pooler")
        assert switched["data"]["previous_endpoint"]["port"] == pg.port and switched["data"]["verified"] is True
        assert switched["data"]["restarted"] == [API]
        assert pg.password not in (ledger_dir / incident / "ledger.jsonl").read_text()

        # A re-run: nothing to change, no approval asked (store mode would wait), nothing recorded.
        requests = sorted((ledger_dir / incident / "approvals").glob("req-*.json"))
        version = state.get("deployments", NS, API)["metadata"]["resourceVersion"]
        again = play(ansible, inventory, dict(extra, use_pooler_confirm=False, use_pooler_approval_mode="store",
                                              use_pooler_approval_timeout=5), env)
        assert again.rc == 0, again.output
        assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", again.output), again.output
        assert "already points at" in flat(again.output)
        assert sorted((ledger_dir / incident / "approvals").glob("req-*.json")) == requests
        assert state.get("deployments", NS, API)["metadata"]["resourceVersion"] == version
        assert len(notes(ledger_dir, incident, "use_pooler")) == 1

        # Rollback: the endpoint from the ledger, restarted, the stand-in back on the server.
        back = play(ansible, inventory, dict(extra, use_pooler_rollback=True), env)
        assert back.rc == 0, back.output
        assert secret_url(state) == direct_url(pg)
        settle(state)
        deadline = time.monotonic() + 10
        while app.port() != pg.port and time.monotonic() < deadline:
            time.sleep(0.1)
        assert app.port() == pg.port
        assert pg.password not in back.output
        (restored,) = notes(ledger_dir, incident, "use_pooler_rollback")
        assert restored["data"]["endpoint"]["port"] == pg.port and restored["phase"] == "recover"
        rerun = play(ansible, inventory, dict(extra, use_pooler_rollback=True), env)
        assert rerun.rc == 0 and re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", rerun.output), rerun.output


def test_env_value_pooler_down_refused_then_switched_without_the_check(ansible, pg_server, trdrhub_db, pgbouncer,
                                                                       k8s_api, inventory, tmp_path):
    pg, state = pg_server, k8s_api.state
    seed(k8s_api, pg, "env")
    ledger_dir = tmp_path / "incidents"
    env = dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(ledger_dir))
    incident = open_incident(ansible, env)
    version = state.get("deployments", NS, API)["metadata"]["resourceVersion"]
    down = play(ansible, inventory, k8s_vars(k8s_api, tmp_path, pgbouncer, incident, use_pooler_console_port=9), env)
    assert down.rc != 0
    assert "did not answer" in flat(down.output) and "so the application was not pointed at it" in flat(down.output)
    assert state.get("deployments", NS, API)["metadata"]["resourceVersion"] == version

    res = play(ansible, inventory, k8s_vars(k8s_api, tmp_path, pgbouncer, incident, use_pooler_verify=False), env)
    assert res.rc == 0, res.output
    assert env_url(state) == direct_url(pg).replace(f":{pg.port}/", f":{pgbouncer.port}/")
    settle(state)
    assert f"restarted: {API}" in flat(res.output), res.output
    assert pg.password not in res.output
    back = play(ansible, inventory, k8s_vars(k8s_api, tmp_path, pgbouncer, incident, use_pooler_rollback=True), env)
    assert back.rc == 0, back.output
    assert env_url(state) == direct_url(pg)


def test_compose_env_file_check_switch_and_rollback(ansible, pg_server, trdrhub_db, pgbouncer, inventory, tmp_path):
    pg = pg_server
    ledger_dir = tmp_path / "incidents"
    env = dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(ledger_dir))
    incident = open_incident(ansible, env)
    project = tmp_path / "trdrhub"
    project.mkdir()
    env_file = project / ".env"
    original = f'# api\nREDIS_URL=redis://r:6379/0\nexport {KEY}="{direct_url(pg)}"\n'
    env_file.write_text(original)
    extra = {"trdrhub_incident_id": incident, "use_pooler_platform": "compose", "use_pooler_env_file": str(env_file),
             "use_pooler_compose_project_dir": str(project), "use_pooler_pgbouncer_host": pgbouncer.host,
             "use_pooler_pgbouncer_port": pgbouncer.port, "use_pooler_confirm": True}

    snapshot = Snapshot(project, ledger_dir)
    check = play(ansible, inventory, extra, env, "--check")
    assert check.rc == 0, check.output
    assert env_file.read_text() == original and snapshot.new_or_changed() == []
    assert (f"then: docker compose --project-directory {project} --file=docker-compose.yml up --detach --no-deps "
            "--force-recreate api") in flat(check.output)

    # Without docker here: the env file only, the recreation left to the operator.
    res = play(ansible, inventory, dict(extra, use_pooler_compose_recreate=False), env)
    assert res.rc == 0, res.output
    assert env_file.read_text() == original.replace(f"{pg.host}:{pg.port}", f"{pgbouncer.host}:{pgbouncer.port}")
    assert pg.password not in res.output
    again = play(ansible, inventory, dict(extra, use_pooler_compose_recreate=False), env)
    assert again.rc == 0 and re.search(r"localhost\s*:\s*ok=\d+\s+changed=0", again.output), again.output

    back = play(ansible, inventory, dict(extra, use_pooler_compose_recreate=False, use_pooler_rollback=True), env)
    assert back.rc == 0, back.output
    assert env_file.read_text() == original


def test_without_an_incident_or_a_pooler_nothing_is_changed(ansible, pg_server, inventory, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"{KEY}={direct_url(pg_server)}\n")
    env = dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(tmp_path / "incidents"))
    base = {"use_pooler_platform": "compose", "use_pooler_env_file": str(env_file), "use_pooler_confirm": True}
    res = play(ansible, inventory, dict(base, use_pooler_pgbouncer_host="127.0.0.1"), env)
    assert res.rc != 0 and "needs the incident id" in flat(res.output), res.output
    incident = open_incident(ansible, env)
    res = play(ansible, inventory, dict(base, trdrhub_incident_id=incident), env)
    assert res.rc != 0 and "No pooler given: set use_pooler_pgbouncer_host" in flat(res.output), res.output
    res = play(ansible, inventory, dict(base, trdrhub_incident_id=incident, use_pooler_rollback=True), env)
    assert res.rc != 0 and "records no switch of DATABASE_URL to PgBouncer" in flat(res.output), res.output
    assert env_file.read_text() == f"{KEY}={direct_url(pg_server)}\n"
