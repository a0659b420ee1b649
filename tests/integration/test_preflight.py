"""roles/preflight: no playbook acts on an empty group, no role connects to a server nobody named.

Every run here is expected to stop in its preflight, before any module connects anywhere.
The environment carries no PGHOST/PGHOSTADDR/PGSERVICE and PGPORT points at port 1, so even a
run that slipped past its check could not reach a PostgreSQL on this machine; the tests assert
that the failing task is the preflight and that no connection was attempted.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from _itest_ansible import REPO_ROOT
from _itest_batch import run_batch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PLAYBOOKS = sorted(REPO_ROOT.joinpath("playbooks").glob("*.yml"))
NO_TARGET_ENV = {
    "PGHOST": None, "PGHOSTADDR": None, "PGSERVICE": None, "PGPORT": "1",
    "KUBECONFIG": None, "K8S_AUTH_KUBECONFIG": None, "K8S_AUTH_CONTEXT": None, "K8S_AUTH_HOST": None,
    "KUBERNETES_SERVICE_HOST": None,
}
CONNECTION_ATTEMPTS = ("Cannot connect to", "connection refused", "Connection refused", "No such file or directory")


def inventory(tmp_path: Path, *groups: str) -> Path:
    lines = []
    for group in groups:
        lines += [f"[{group}]", f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"]
    path = tmp_path / "hosts.ini"
    path.write_text("\n".join(lines or ["[unrelated]", "nowhere.invalid"]) + "\n")
    return path


def run(ansible, tmp_path, playbook, hosts, extra_vars, *args, env=None):
    return ansible.run_playbook(
        f"playbooks/{playbook}", "-i", hosts, "-e", json.dumps(extra_vars), *args,
        extra_env={**NO_TARGET_ENV, "TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents"), **(env or {})}, timeout=150)


def failed_task(output: str) -> str:
    """The name of the task that failed (the TASK header before the first 'fatal:')."""
    before = output.split("fatal: [", 1)[0]
    return before.rsplit("TASK [", 1)[-1].split("]", 1)[0]


# ---------------------------------------------------------------- empty target group

def _plays(path: Path) -> list:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_every_playbook_checks_its_hosts_first(playbook):
    plays = _plays(playbook)
    if all(play.get("hosts") == "localhost" for play in plays):
        return  # the implicit localhost always exists (approve.yml, status.yml)
    first, acting = plays[0], plays[1]
    assert first["hosts"] == "localhost"
    task = first["tasks"][0]
    assert task["ansible.builtin.include_role"] == {"name": "trdrhub.incident.preflight", "tasks_from": "hosts"}
    assert task["vars"]["preflight_hosts"] == acting["hosts"]
    assert task["vars"]["preflight_hosts_variable"] in acting["hosts"]


@pytest.mark.parametrize("playbook,group,variable", [
    ("block_ips.yml", "block_ips_hosts", "block_ips_hosts"),
    ("unblock_ips.yml", "block_ips_hosts", "block_ips_hosts"),
    ("contain_db.yml", "db_controllers", "contain_db_hosts"),
    ("recover_db.yml", "db_controllers", "recover_db_hosts"),
    ("contain_security.yml", "edge", "contain_security_hosts"),
    ("respond_p1.yml", "db_controllers", "respond_hosts"),
])
def test_a_playbook_without_hosts_fails(ansible, tmp_path, playbook, group, variable):
    res = run(ansible, tmp_path, playbook, inventory(tmp_path), {
        "trdrhub_incident_id": "INC-PREFLIGHT-1", "block_ips_addresses": ["203.0.113.5"]})
    assert res.rc != 0, res.output
    assert f"No host matches '{group}' in the inventory" in res.output
    assert f"-e {variable}=" in res.output
    assert "no hosts matched" not in res.output
    assert "failed=1" in res.output


def test_a_hosts_variable_naming_an_empty_group_fails(ansible, tmp_path):
    res = run(ansible, tmp_path, "verify.yml", inventory(tmp_path, "db_controllers"),
              {"verify_hosts": "standby_dbs", "trdrhub_incident_id": "INC-PREFLIGHT-2"})
    assert res.rc != 0, res.output
    assert "No host matches 'standby_dbs' in the inventory" in res.output
    assert "-e verify_hosts=" in res.output


def test_localhost_needs_no_inventory_entry(ansible, tmp_path):
    # The default of the application and communication playbooks: the implicit localhost.
    res = run(ansible, tmp_path, "pir.yml", inventory(tmp_path), {"trdrhub_incident_id": "INC-PREFLIGHT-3"})
    assert "No host matches" not in res.output


# ---------------------------------------------------------------- PostgreSQL target

PG_ROLES = [
    ("recover_db.yml", "recover_db", ["db_controllers"], {"recover_db_backup": "/nonexistent/trdrhub_backup.sql.gz"}),
    ("contain_db.yml", "contain_db", ["db_controllers"], {}),
    ("investigate.yml", "investigate", ["db_controllers"], {"trdrhub_redis_queues": [], "trdrhub_base_url": ""}),
    ("verify_audit.yml", "verify_audit", ["db_controllers"], {}),
    ("contain_security.yml", "contain_security", ["edge"], {"contain_security_access_logs": ["/nonexistent.log"]}),
    ("rotate_secrets.yml", "rotate_secrets", ["db_controllers"], {"rotate_secrets_role": "trdrhub_app"}),
]

ACT_ON_AN_EXISTING_INCIDENT = {"investigate.yml", "verify_audit.yml", "rotate_secrets.yml"}


@pytest.fixture(scope="module")
def opened_homes(ansible, tmp_path_factory):
    """{(playbook, check): incidents home}: INC-PREFLIGHT-PG opened in a home of its own for each run of a playbook
    that acts on an existing incident (an unknown incident is refused before anything else); one playbook opens them all.
    """
    homes = {(playbook, check): tmp_path_factory.mktemp("preflight-pg") / "incidents"
             for playbook in sorted(ACT_ON_AN_EXISTING_INCIDENT) for check in (True, False)}
    opened = run_batch(ansible, {f"{playbook} check={check}": ("ledger_record", {
        "incident_id": "INC-PREFLIGHT-PG", "event": "note", "msg": "opened for the test", "root": str(home)})
        for (playbook, check), home in homes.items()})
    for name, res in opened.items():
        assert not res.failed, (name, res.output)
    return homes


@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
@pytest.mark.parametrize("playbook,prefix,groups,extra", PG_ROLES, ids=[r[0] for r in PG_ROLES])
def test_no_postgres_target_fails_naming_the_variable(request, ansible, tmp_path, playbook, prefix, groups, extra, check):
    env = {}
    if playbook in ACT_ON_AN_EXISTING_INCIDENT:
        env["TRDRHUB_LEDGER_DIR"] = str(request.getfixturevalue("opened_homes")[(playbook, check)])
    res = run(ansible, tmp_path, playbook, inventory(tmp_path, *groups),
              dict(extra, trdrhub_incident_id="INC-PREFLIGHT-PG"), *(["--check"] if check else []), env=env)
    assert res.rc != 0, res.output
    assert f"No PostgreSQL server given: set {prefix}_login_host (or {prefix}_login_unix_socket, or {prefix}_dsn)" \
        in res.output
    assert failed_task(res.output) == "trdrhub.incident.preflight : Fail when no PostgreSQL server is named"
    assert not any(text in res.output for text in CONNECTION_ATTEMPTS), res.output


def test_pghost_in_the_environment_is_a_target(ansible, tmp_path):
    dead = tmp_path / "no-server-here"
    dead.mkdir()
    res = run(ansible, tmp_path, "contain_db.yml", inventory(tmp_path, "db_controllers"),
              {"trdrhub_incident_id": "INC-PREFLIGHT-PG"}, "--check", env={"PGHOST": str(dead)})
    assert res.rc != 0
    assert "No PostgreSQL server given" not in res.output
    # The module went to the named (dead) socket directory, nowhere else.
    assert f"Cannot connect to PostgreSQL at {dead}:1" in res.output


# ---------------------------------------------------------------- Kubernetes target

@pytest.mark.parametrize("playbook,prefix,extra", [
    ("contain_app.yml", "app_control", {"app_control_platform": "kubernetes", "app_control_replicas": 3}),
    ("triage.yml", "triage_k8s", {"triage_kubernetes_enabled": True, "triage_alertmanager_url": ""}),
])
def test_no_kubernetes_cluster_fails_naming_the_variable(ansible, tmp_path, playbook, prefix, extra):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\ncurrent-context: somewhere\n")
    res = run(ansible, tmp_path, playbook, inventory(tmp_path), dict(extra, trdrhub_incident_id="INC-PREFLIGHT-K8S"),
              "--check", env={"HOME": str(home)})
    assert res.rc != 0, res.output
    assert f"No Kubernetes cluster given: set {prefix}_context" in res.output
    assert failed_task(res.output) == "trdrhub.incident.preflight : Fail when no Kubernetes cluster is named"


def test_sandbox_recover_db_check_no_longer_reaches_the_local_server(ansible, tmp_path):
    """The sandbox inventory names no server for recover_db: the dry run stops at the preflight."""
    res = run(ansible, tmp_path, "recover_db.yml", REPO_ROOT / "inventories" / "sandbox",
              {"recover_db_backup": "/nonexistent/trdrhub_backup.sql.gz"}, "--check")
    assert res.rc != 0, res.output
    assert "No PostgreSQL server given: set recover_db_login_host" in res.output
    assert failed_task(res.output) == "trdrhub.incident.preflight : Fail when no PostgreSQL server is named"
    assert not any(text in res.output for text in CONNECTION_ATTEMPTS), res.output
