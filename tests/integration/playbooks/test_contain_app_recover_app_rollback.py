"""playbooks/contain_app.yml, recover_app.yml and rollback.yml through real ansible-playbook.

Kubernetes: against the API double (or a real cluster with ``TRDRHUB_K8S_REAL_KUBECONFIG``).
docker compose: docker is not installed where these tests run, so the compose path runs in
check mode and the tests assert the exact ``docker compose`` commands it shows (and that no
file is written).
"""
from __future__ import annotations

import json
import re
import sys
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_approval import vote, wait_for_request
from _itest_k8s import CLEAN_ENV, REAL_KUBECONFIG, DoubleTarget, RealTarget
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900 if REAL_KUBECONFIG else 300)]
API = "trdrhub-api"


@pytest.fixture
def target(request, tmp_path):
    made = RealTarget(tmp_path) if REAL_KUBECONFIG else DoubleTarget(request.getfixturevalue("k8s_api"), tmp_path)
    yield made
    made.close()


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                                "ansible_python_interpreter": sys.executable}}}}))
    return path


def play(ansible, name, inventory, extra, *flags):
    args = ["-i", inventory, "-e", json.dumps(extra), *flags]
    return ansible.run_playbook(REPO_ROOT / "playbooks" / name, *args, extra_env=CLEAN_ENV, timeout=400)


def open_incident(ansible, incident, env=None):
    """recover_app.yml and rollback.yml act on an existing incident: give it a ledger first."""
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"},
                         extra_env=dict(CLEAN_ENV, **(env or {})))
    assert not opened.failed, opened.output
    return incident


def k8s_vars(target, incident, **more):
    found = {"app_control_kubeconfig": str(target.kubeconfig), "app_control_namespace": target.namespace,
             "trdrhub_incident_id": incident, "app_control_timeout": 240 if target.real else 30,
             "app_control_confirm": True}   # the approval gate: see the test_gate_* tests
    if target.conn.get("context"):
        found["app_control_context"] = target.conn["context"]
    return {**found, **more}


def env_of(target, name=API):
    dep = target.read(name)
    api = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "api")
    return {e["name"]: e.get("value") for e in api.get("env") or []}


def test_contain_then_rollback_restores_replicas_guard_and_env(ansible, target, inventory):
    """Check mode, containment, the guard on a re-run, a store-mode re-run that asks nothing, then the rollback."""
    target.add_deployment(API, replicas=2, revisions=2)
    incident = "INC-APP-" + uuid.uuid4().hex[:6]
    contain = k8s_vars(target, incident, app_control_replicas=3, app_control_expected_replicas=2, app_control_read_only=True,
                       trdrhub_read_only_env="TRDRHUB_READ_ONLY")
    state_file = ansible.workdir / "incidents" / incident / f"app_env_{API}.json"

    before = target.read(API)["metadata"]["resourceVersion"]
    check = play(ansible, "contain_app.yml", inventory, contain, "--check", "--diff")
    assert check.rc == 0, check.output
    assert target.read(API)["metadata"]["resourceVersion"] == before and not state_file.exists()
    assert f"Deployment {API} would be scaled from 2 to 3 replicas" in check.output

    res = play(ansible, "contain_app.yml", inventory, contain)
    assert res.rc == 0, res.output
    dep = target.read(API)
    assert dep["spec"]["replicas"] == 3 and env_of(target) == {"TRDRHUB_READ_ONLY": "true"}
    assert dep["metadata"]["annotations"]["trdrhub.io/incident-id"] == incident
    saved = json.loads(state_file.read_text())
    assert saved["previous"] == {"TRDRHUB_READ_ONLY": None} and saved["container"] == "api" and saved["deployment"] == API

    # A re-run is refused by the guard (3 replicas now, 2 expected) and keeps the saved values.
    again = play(ansible, "contain_app.yml", inventory, contain)
    assert again.rc != 0
    assert f"Deployment {API} has 3 replicas, not the expected_replicas=2: not scaled to 3" in again.output
    assert json.loads(state_file.read_text())["previous"] == {"TRDRHUB_READ_ONLY": None}

    # A store-mode re-run of the done containment (no guard this time) asks no approval and changes nothing.
    ledger, approvals = ansible.workdir / "incidents" / incident / "ledger.jsonl", ansible.workdir / "incidents" / incident / "approvals"

    def asked():
        return [e for e in read_file_ledger(ledger) if e["event"] in ("approval", "decision")]
    requests = sorted(approvals.glob("req-*.json"))
    asked_before, version = asked(), target.read(API)["metadata"]["resourceVersion"]
    rerun_store = {**{k: v for k, v in contain.items() if k != "app_control_expected_replicas"}, "app_control_confirm": False,
                   "app_control_approval_mode": "store", "app_control_approval_timeout": 5}
    store = ansible.run_playbook(REPO_ROOT / "playbooks" / "contain_app.yml", "-i", inventory, "-e", json.dumps(rerun_store),
                                 extra_env=dict(CLEAN_ENV, AWX_USER_NAME="alice"), timeout=400)
    assert store.rc == 0, store.output
    assert "Nothing to do" in flat(store) and "no approval is asked (contain_app)" in flat(store), store.output
    assert asked() == asked_before and sorted(approvals.glob("req-*.json")) == requests
    assert target.read(API)["metadata"]["resourceVersion"] == version
    assert json.loads(state_file.read_text())["previous"] == {"TRDRHUB_READ_ONLY": None}

    # Env only: the saved values are restored (the variable did not exist, so it is removed).
    rollback = k8s_vars(target, incident, app_control_undo=False)
    back = play(ansible, "rollback.yml", inventory, rollback)
    assert back.rc == 0, back.output
    assert env_of(target) == {}
    rerun = play(ansible, "rollback.yml", inventory, rollback)
    assert rerun.rc == 0 and "changed=0" in rerun.output, rerun.output

    entries = read_file_ledger(ansible.workdir / "incidents" / incident / "ledger.jsonl")
    notes = [e for e in entries if e["event"] == "note"]
    contained = [n for n in notes if n["phase"] == "contain" and n["data"]["check_mode"] is False]
    assert contained[0]["data"]["previous_env"] == {"TRDRHUB_READ_ONLY": None}
    assert contained[0]["data"]["deployment"] == f"{target.namespace}/{API}"
    assert contained[0]["data"]["platform"] == "kubernetes"
    rolled = [n for n in notes if n["phase"] == "recover" and n["data"]["action"] == "rollback"]
    assert rolled and rolled[0]["data"]["restored_env"] == {"TRDRHUB_READ_ONLY": None}


def test_rollback_undoes_to_the_previous_revision(ansible, target, inventory):
    target.add_deployment(API, replicas=1, revisions=2)
    incident = "INC-APP-" + uuid.uuid4().hex[:6]
    res = play(ansible, "contain_app.yml", inventory, k8s_vars(target, incident, app_control_read_only=True))
    assert res.rc == 0, res.output
    assert env_of(target) == {"READ_ONLY_MODE": "true"} and target.read(API)["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "3"

    back = play(ansible, "rollback.yml", inventory, k8s_vars(target, incident, app_control_to_revision=2))
    assert back.rc == 0, back.output
    assert env_of(target) == {}
    assert f"Deployment {API} was rolled back to the template of revision 2" in back.output
    again = play(ansible, "rollback.yml", inventory, k8s_vars(target, incident, app_control_to_revision=2))
    assert again.rc == 0 and "changed=0" in again.output, again.output


def test_recover_restarts_and_waits(ansible, target, inventory):
    target.add_deployment(API, replicas=2)
    pods = target.pod_names(API)
    incident = open_incident(ansible, "INC-APP-" + uuid.uuid4().hex[:6])
    res = play(ansible, "recover_app.yml", inventory, k8s_vars(target, incident))
    assert res.rc == 0, res.output
    assert f"Deployment {API} was restarted" in res.output and f"Deployment {API}: successfully rolled out" in res.output
    assert target.pod_names(API).isdisjoint(pods)

    check = play(ansible, "recover_app.yml", inventory, k8s_vars(target, incident), "--check")
    assert check.rc == 0 and f"Deployment {API} would be restarted" in check.output


def test_recover_reports_a_stalled_rollout(ansible, target, inventory):
    if target.real:
        pytest.skip("needs the API double (a restart that stalls)")
    target.add_deployment(API, replicas=2)
    target.api.state.stall_next_rollout(API, target.namespace, deadline=1)
    res = play(ansible, "recover_app.yml", inventory, k8s_vars(target, open_incident(ansible, "INC-APP-" + uuid.uuid4().hex[:6])))
    assert res.rc != 0
    assert f"Rollout of Deployment {API} in {target.namespace} failed: rollout exceeded its progress deadline" in res.output
    flat = " ".join(res.output.split())
    assert "ImagePullBackOff" in flat and " pod trdrhub-api-" in flat   # the failing pods' reasons
    assert "successfully rolled out" not in flat   # no claim of recovery


def test_read_only_without_incident_id_is_refused(ansible, target, inventory):
    target.add_deployment(API, replicas=1)
    before = target.read(API)["metadata"]["resourceVersion"]
    res = play(ansible, "contain_app.yml", inventory, k8s_vars(target, "", app_control_read_only=True))
    assert res.rc != 0 and "set trdrhub_incident_id (or app_control_incident_id)" in res.output
    assert target.read(API)["metadata"]["resourceVersion"] == before


@pytest.mark.parametrize("name, extra", [
    ("contain_app.yml", {"app_control_replicas": 3, "app_control_expected_replicas": 2, "app_control_read_only": True}),
    ("recover_app.yml", {}),
    ("rollback.yml", {}),
])
def test_gate_stops_every_change_without_an_approval(ansible, target, inventory, tmp_path, name, extra):
    target.add_deployment(API, replicas=2, revisions=2)
    before = target.read(API)["metadata"]["resourceVersion"]
    incident = "INC-APP-" + uuid.uuid4().hex[:6]
    ledger_dir = tmp_path / "incidents"
    if name != "contain_app.yml":   # containment may open an incident; recovery and rollback act on an existing one
        open_incident(ansible, incident, {"TRDRHUB_LEDGER_DIR": str(ledger_dir)})
    res = ansible.run_playbook(REPO_ROOT / "playbooks" / name, "-i", inventory, "-e",
                               json.dumps(k8s_vars(target, incident, app_control_confirm=False, **extra)),
                               extra_env=dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(ledger_dir)), timeout=400)
    text = flat(res)
    assert res.rc != 0 and "Not approved: Nothing was changed." in text, res.output
    assert "-e app_control_confirm=true" in text and "-e app_control_approval_mode=store" in text
    assert target.read(API)["metadata"]["resourceVersion"] == before
    decision = [e for e in read_file_ledger(ledger_dir / incident / "ledger.jsonl") if e["event"] == "decision"][-1]
    assert decision["data"]["confirmed"] is False
    assert decision["data"]["action"] == {"contain_app.yml": "contain_app", "recover_app.yml": "restart_app",
                                          "rollback.yml": "rollback"}[name]


def test_gate_in_store_mode_waits_for_another_person(ansible, target, inventory, tmp_path):
    target.add_deployment(API, replicas=2, revisions=2)
    incident = "INC-APP-" + uuid.uuid4().hex[:6]
    ledger_dir = tmp_path / "incidents"
    env = dict(CLEAN_ENV, TRDRHUB_LEDGER_DIR=str(ledger_dir), AWX_USER_NAME="alice")
    open_incident(ansible, incident, env)
    extra = k8s_vars(target, incident, app_control_confirm=False, app_control_approval_mode="store",
                     app_control_approval_poll_interval=0.3, app_control_approval_timeout=240, app_control_to_revision=1)
    proc = ansible.start_playbook(REPO_ROOT / "playbooks" / "rollback.yml", "-i", inventory, "-e", json.dumps(extra),
                                  extra_env=env)
    try:
        rid = wait_for_request(ledger_dir / incident / "approvals", proc, timeout=240)
        request = json.loads((ledger_dir / incident / "approvals" / f"{rid}.json").read_text())
        assert request["action"] == "rollback" and request["requester"] == "awx:alice"
        assert request["evidence"]["undo"]["to_revision_used"] == 1   # the check-mode result of the rollback
        assert target.read(API)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        voted = vote(ansible, inventory, env, rid, "approve", "bob")
        assert voted.rc == 0, voted.output
        output = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert f"Deployment {API} was rolled back to the template of revision 1" in output
    decision = [e for e in read_file_ledger(ledger_dir / incident / "ledger.jsonl") if e["event"] == "decision"][-1]
    assert decision["data"]["confirmed"] is True and decision["data"]["approval"]["approvers"] == ["awx:bob"]


def flat(run):
    """The output with YAML line folding undone (the callback wraps long strings)."""
    return re.sub(r"\s+", " ", run.output)


def test_compose_commands_in_check_mode(ansible, inventory, tmp_path):
    project = tmp_path / "trdrhub"
    project.mkdir()
    compose = {"app_control_platform": "compose", "app_control_compose_project_dir": str(project),
               "trdrhub_incident_id": open_incident(ansible, "INC-COMPOSE-" + uuid.uuid4().hex[:6])}
    base = f"docker compose --project-directory {project} --file=docker-compose.yml"
    override = f"--file={project}/docker-compose.incident.yml"

    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    res = play(ansible, "contain_app.yml", inventory, {**compose, "app_control_replicas": 4, "app_control_read_only": True},
               "--check")
    assert res.rc == 0, res.output
    assert f"compose: ['{base} {override} up --detach --no-deps --scale api=4 api']" in flat(res).replace("''", "'")
    assert not (project / "docker-compose.incident.yml").exists()

    scale_only = play(ansible, "contain_app.yml", inventory, {**compose, "app_control_replicas": 2}, "--check")
    assert scale_only.rc == 0
    assert f"compose: ['{base} up --detach --no-deps --scale api=2 api']" in flat(scale_only).replace("''", "'")

    assert snapshot.new_or_changed() == []
    (project / "docker-compose.incident.yml").write_text("services: {api: {environment: {READ_ONLY_MODE: 'true'}}}\n")
    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    recover = play(ansible, "recover_app.yml", inventory, compose, "--check")
    assert recover.rc == 0
    assert f"compose: ['{base} {override} restart api']" in flat(recover).replace("''", "'")

    rollback = play(ansible, "rollback.yml", inventory, compose, "--check")
    assert rollback.rc == 0
    assert f"compose: ['{base} up --detach --no-deps --force-recreate api']" in flat(rollback).replace("''", "'")
    assert (project / "docker-compose.incident.yml").exists()   # check mode removed nothing
    assert snapshot.new_or_changed() == []

    nothing = play(ansible, "contain_app.yml", inventory, compose, "--check")
    assert nothing.rc != 0 and "Nothing to contain: set app_control_replicas" in flat(nothing)
