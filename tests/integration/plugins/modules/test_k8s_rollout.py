"""k8s_rollout through real ansible-playbook against the Kubernetes API double (or a real cluster).

Each action goes check mode (nothing written: the resourceVersion stays) -> apply ->
re-run (idempotent where the action allows). Set ``TRDRHUB_K8S_REAL_KUBECONFIG`` to run
the tests that make sense there against a real cluster; see docs/kubernetes.md.
"""
from __future__ import annotations

import uuid

import pytest
from _itest_k8s import CLEAN_ENV, REAL_KUBECONFIG, DoubleTarget, RealTarget
from trdrhub_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600 if REAL_KUBECONFIG else 180)]
double_only = pytest.mark.skipif(bool(REAL_KUBECONFIG), reason="needs the API double (chosen tokens, stalls, requests)")
API = "trdrhub-api"
WAIT = {"wait": True, "timeout": 240 if REAL_KUBECONFIG else 30}


@pytest.fixture
def target(request, tmp_path):
    made = RealTarget(tmp_path) if REAL_KUBECONFIG else DoubleTarget(request.getfixturevalue("k8s_api"), tmp_path)
    yield made
    made.close()


def run(ansible, target, args, **kwargs):
    kwargs["extra_env"] = {**CLEAN_ENV, **(kwargs.get("extra_env") or {})}
    return ansible.run("k8s_rollout", {**target.conn, "name": API, **args}, timeout=300, **kwargs)


def rv(target, name=API):
    return target.read(name)["metadata"]["resourceVersion"]


def env_of(target, container="api", name=API):
    dep = target.read(name)
    spec = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e.get("value") for e in spec.get("env") or []}


CHECK_CASES = {
    "restart": {"action": "restart"},
    "undo": {"action": "undo"},
    "pause": {"action": "pause"},
    "scale": {"action": "scale", "replicas": 3, "expected_replicas": 2},
    "set_env": {"action": "set_env", "container": "api", "env": {"READ_ONLY_MODE": "true"}},
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_mode_writes_nothing_and_shows_the_diff(ansible, target, case):
    target.add_deployment(API, replicas=2, revisions=2)
    before = rv(target)
    if not target.real:
        target.api.requests.clear()
    res = run(ansible, target, CHECK_CASES[case], check=True, diff=True)

    assert not res.failed, res.output
    assert res["changed"] is True and "would be" in res["msg"]
    assert rv(target) == before
    diff = res["diff"]
    assert diff["before"] != diff["after"]
    if case == "scale":
        assert (diff["before"]["replicas"], diff["after"]["replicas"]) == (2, 3)
    elif case == "set_env":
        assert diff["after"]["env"]["api"]["READ_ONLY_MODE"] == "true" and res["previous"] == {"READ_ONLY_MODE": None}
    elif case == "restart":
        assert "kubectl.kubernetes.io/restartedAt" in diff["after"]["template_annotations"]
    elif case == "pause":
        assert diff["after"]["paused"] is True
    if not target.real:
        assert {method for method, _path, _user in target.api.requests} == {"GET"}


def test_restart_replaces_every_pod_and_is_always_changed(ansible, target):
    target.add_deployment(API, replicas=2)
    pods = target.pod_names(API)
    res = run(ansible, target, {"action": "restart", "incident_id": "INC-2025-0042", **WAIT})

    assert not res.failed, res.output
    assert res["changed"] and res["rollout_complete"] and res["revision"] == 2 and res["msg"] == f"Deployment {API} was restarted"
    dep = target.read(API)
    assert dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == res["restarted_at"]
    assert dep["metadata"]["annotations"]["trdrhub.io/incident-id"] == "INC-2025-0042"
    assert "trdrhub.io/incident-id" not in dep["spec"]["template"]["metadata"]["annotations"]
    assert target.pod_names(API).isdisjoint(pods)

    again = run(ansible, target, {"action": "restart", **WAIT})
    assert not again.failed and again["changed"] and again["revision"] == 3


def test_scale_guard_apply_rerun_and_mismatch(ansible, target):
    target.add_deployment(API, replicas=2)
    res = run(ansible, target, {"action": "scale", "replicas": 3, "expected_replicas": 2, **WAIT})
    assert not res.failed, res.output
    assert res["changed"] and res["previous_replicas"] == 2 and res["replicas"] == 3
    assert res["deployment"]["available_replicas"] == 3 and res["rollout_complete"]
    if not target.real:
        assert res["requests"][1] == f"PATCH /apis/apps/v1/namespaces/{target.namespace}/deployments/{API}/scale"

    again = run(ansible, target, {"action": "scale", "replicas": 3, **WAIT})
    assert not again.failed and again["changed"] is False and again["msg"] == f"Deployment {API} already has 3 replicas"

    before = rv(target)
    guarded = run(ansible, target, {"action": "scale", "replicas": 6, "expected_replicas": 2})
    assert guarded.failed
    assert guarded["msg"] == (f"Deployment {API} has 3 replicas, not the expected_replicas=2: not scaled to 6 "
                              "(someone else may have scaled it; check and re-run)")
    assert guarded["current_replicas"] == 3 and rv(target) == before
    assert "Traceback" not in guarded.output


def test_set_env_returns_previous_and_setting_it_back_restores(ansible, target):
    target.add_deployment(API, replicas=1)
    res = run(ansible, target, {"action": "set_env", "container": "api", "env": {"READ_ONLY_MODE": True, "LOG_LEVEL": "debug"},
                                **WAIT})
    assert not res.failed, res.output
    assert res["changed"] and res["previous"] == {"READ_ONLY_MODE": None, "LOG_LEVEL": None}
    assert res["env"] == {"READ_ONLY_MODE": "true", "LOG_LEVEL": "debug"}
    assert env_of(target) == {"READ_ONLY_MODE": "true", "LOG_LEVEL": "debug"} and res["rollout_complete"]

    again = run(ansible, target, {"action": "set_env", "container": "api", "env": {"READ_ONLY_MODE": "true"}})
    assert not again.failed and again["changed"] is False and again["previous"] == {"READ_ONLY_MODE": "true"}

    back = run(ansible, target, {"action": "set_env", "container": "api", "env": res["previous"], **WAIT})
    assert not back.failed and back["changed"] and back["previous"] == {"READ_ONLY_MODE": "true", "LOG_LEVEL": "debug"}
    assert env_of(target) == {}


def test_undo_to_previous_and_to_revision(ansible, target):
    target.add_deployment(API, replicas=1, revisions=3)
    history = run(ansible, target, {"action": "history"})
    assert not history.failed, history.output
    assert [h["revision"] for h in history["history"]] == [3, 2, 1] and history["changed"] is False

    res = run(ansible, target, {"action": "undo", **WAIT})
    assert not res.failed, res.output
    assert res["changed"] and res["to_revision_used"] == 2 and res["from_revision"] == 3
    assert res["revision"] == 4 and res["rollout_complete"]   # revision 2's ReplicaSet re-used as revision 4
    if not target.real:
        assert res["deployment"]["images"] == {"api": target.image(2, API)}

    first = run(ansible, target, {"action": "undo", "to_revision": 1, **WAIT})
    assert not first.failed, first.output
    assert first["changed"] and first["revision"] == 5
    again = run(ansible, target, {"action": "undo", "to_revision": 1, **WAIT})
    assert not again.failed, again.output
    assert again["changed"] is False and again["msg"] == f"Deployment {API} already runs the template of revision 5"

    missing = run(ansible, target, {"action": "undo", "to_revision": 42})
    assert missing.failed and missing["msg"] == f"Deployment {API} has no revision 42; its revisions: 3, 4, 5"


def test_pause_resume_and_restart_of_a_paused_deployment(ansible, target):
    target.add_deployment(API, replicas=1)
    paused = run(ansible, target, {"action": "pause"})
    assert not paused.failed and paused["changed"] and target.read(API)["spec"]["paused"] is True
    assert run(ansible, target, {"action": "pause"})["changed"] is False

    refused = run(ansible, target, {"action": "restart"})
    assert refused.failed
    assert refused["msg"] == f"Deployment {API} is paused: a restart would not roll out; resume it first (action=resume)"

    resumed = run(ansible, target, {"action": "resume", **WAIT})
    assert not resumed.failed and resumed["changed"] and not target.read(API)["spec"].get("paused")


def test_status_waits_and_a_stalled_rollout_fails_with_the_reason(ansible, target):
    target.add_deployment(API, replicas=2)
    started = run(ansible, target, {"action": "set_env", "container": "api", "env": {"FEATURE_X": "off"}})
    assert not started.failed and started["changed"] and "waited" not in started.result
    status = run(ansible, target, {"action": "status", "timeout": WAIT["timeout"]})
    assert not status.failed, status.output
    assert status["changed"] is False and status["rollout_complete"] and status["deployment"]["updated_replicas"] == 2
    assert status["msg"] == f"Deployment {API}: successfully rolled out"

    target.stall("trdrhub-worker", replicas=2)
    stalled = ansible.run("k8s_rollout", {**target.conn, "name": "trdrhub-worker", "action": "status", "timeout": 20},
                          extra_env=CLEAN_ENV)
    assert stalled.failed
    assert stalled["msg"].startswith(f"Rollout of Deployment trdrhub-worker in {target.namespace} failed: rollout exceeded "
                                     'its progress deadline: ReplicaSet "')
    assert "has timed out progressing" in stalled["msg"] and stalled["msg"].endswith("(roll back with action=undo)")
    assert stalled["deployment"]["progress_deadline_exceeded"]

    undone = ansible.run("k8s_rollout", {**target.conn, "name": "trdrhub-worker", "action": "undo", **WAIT}, extra_env=CLEAN_ENV)
    assert not undone.failed, undone.output
    assert undone["changed"] and undone["rollout_complete"]


@double_only
def test_restart_that_stalls_fails_after_the_deadline(ansible, target):
    target.add_deployment(API, replicas=2)
    target.api.state.stall_next_rollout(API, target.namespace, deadline=1.5)
    res = run(ansible, target, {"action": "restart", **WAIT})

    assert res.failed
    assert res["msg"].startswith(f"Rollout of Deployment {API} in {target.namespace} failed: rollout exceeded its progress "
                                 'deadline: ReplicaSet "')
    assert "container api ImagePullBackOff" in res["msg"]
    assert 1 <= res["waited"] < 10

    timeout = run(ansible, target, {"action": "status", "timeout": 0.5})
    assert timeout.failed and timeout["msg"].startswith(f"Rollout of Deployment {API} in {target.namespace} failed")


@double_only
def test_wait_times_out_with_the_rollout_state(ansible, target):
    target.add_deployment(API, replicas=2)
    target.api.state.stall_next_rollout(API, target.namespace, deadline=600)
    res = run(ansible, target, {"action": "restart", "wait": True, "timeout": 1})

    assert res.failed
    assert res["msg"].startswith(f"Timed out after 1s waiting for the rollout of Deployment {API} in {target.namespace}: "
                                 "rollout in progress: ")


def test_unknown_deployment_and_missing_container(ansible, target):
    target.add_deployment(API, replicas=1)
    target.add_deployment("trdrhub-worker", replicas=1)
    unknown = ansible.run("k8s_rollout", {**target.conn, "name": "trdrhub-apu", "action": "restart"}, extra_env=CLEAN_ENV)
    assert unknown.failed
    assert unknown["msg"] == (f"Deployment trdrhub-apu not found in namespace {target.namespace}. "
                              f"Deployments in {target.namespace}: trdrhub-api, trdrhub-worker")

    before = rv(target)
    missing = run(ansible, target, {"action": "set_env", "container": "apii", "env": {"A": "1"}})
    assert missing.failed and missing["msg"] == f"Container apii not found in Deployment {API}; its containers: api"
    assert rv(target) == before
    for res in (unknown, missing):
        assert "Traceback" not in res.output


def test_unreachable_api_server(ansible, target):
    port = free_port()
    secret = "unused-" + uuid.uuid4().hex
    res = ansible.run("k8s_rollout", {"host": f"https://127.0.0.1:{port}", "api_key": secret, "request_timeout": 3,
                                      "name": API, "action": "restart"}, extra_env=CLEAN_ENV)
    assert res.failed
    assert res["msg"] == (f"Cannot reach the Kubernetes API at https://127.0.0.1:{port}: GET "
                          f"/apis/apps/v1/namespaces/trdrhub-system/deployments/{API} failed: Connection refused")
    assert secret not in res.output


@double_only
def test_forbidden_and_read_only_accounts(ansible, target, tmp_path):
    target.add_deployment(API, replicas=1)
    nobody = target.api.write_kubeconfig(tmp_path / "nobody", token=target.api.forbidden_token)
    res = run(ansible, target, {"kubeconfig": str(nobody), "action": "scale", "replicas": 3})
    assert res.failed and res["status"] == 403
    assert res["msg"].startswith(f"Permission denied: the Kubernetes API at {target.api.url} answered GET "
                                 f"/apis/apps/v1/namespaces/trdrhub-system/deployments/{API} with 403 Forbidden: ")

    viewer = "itest-viewer-" + uuid.uuid4().hex
    target.api.read_only_tokens[viewer] = "system:serviceaccount:trdrhub-system:viewer"
    readonly = target.api.write_kubeconfig(tmp_path / "viewer", token=viewer)
    before = rv(target)
    res = run(ansible, target, {"kubeconfig": str(readonly), "action": "scale", "replicas": 3})
    assert res.failed and res["status"] == 403 and rv(target) == before
    assert (f'deployments.apps "{API}" is forbidden: User "system:serviceaccount:trdrhub-system:viewer" cannot patch '
            'resource "deployments/scale" in API group "apps" in the namespace "trdrhub-system"') in res["msg"]
    assert viewer not in res.output and target.api.forbidden_token not in res.output


@double_only
def test_conflicting_writer_is_retried_on_a_fresh_read(ansible, target):
    """Another writer changes the Deployment between our read and our write: the write is refused (409) and planned again."""
    target.add_deployment(API, replicas=2)
    state, seen = target.api.state, {"n": 0}
    original = target.api.routes[("PATCH", "scale")]

    def interfering(call):
        seen["n"] += 1
        if seen["n"] == 1:   # someone scales to 4 just before our first write lands
            dep = state.get("deployments", target.namespace, API)
            dep["spec"]["replicas"] = 4
            state.update("deployments", target.namespace, API, {**dep, "metadata": {**dep["metadata"], "resourceVersion": None}})
        return original(call)

    target.api.routes[("PATCH", "scale")] = interfering
    res = run(ansible, target, {"action": "scale", "replicas": 3, "expected_replicas": 2})
    assert res.failed and seen["n"] == 1
    assert res["msg"] == (f"Deployment {API} has 4 replicas, not the expected_replicas=2: not scaled to 3 "
                          "(someone else may have scaled it; check and re-run)")
    assert target.read(API)["spec"]["replicas"] == 4


@double_only
def test_the_double_refuses_a_stale_put(target):
    """The API double itself: PUT with an old resourceVersion answers 409 Conflict, as the API server does."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    target.add_deployment(API, replicas=1)
    stale = target.read(API)
    target.api.state.update("deployments", target.namespace, API,
                            {**stale, "metadata": {**stale["metadata"], "resourceVersion": None}, "spec": {**stale["spec"], "replicas": 2}})
    request = urllib.request.Request(f"{target.api.url}/apis/apps/v1/namespaces/{target.namespace}/deployments/{API}",
                                     data=json.dumps(stale).encode(), method="PUT",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {target.api.token}"})
    context = ssl.create_default_context(cafile=str(target.api.ca_path))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, context=context, timeout=10)  # noqa: S310 - the double on loopback
    body = json.loads(err.value.read())
    assert err.value.code == 409 and body["reason"] == "Conflict"
    assert body["message"] == (f'Operation cannot be fulfilled on deployments.apps "{API}": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    assert target.read(API)["spec"]["replicas"] == 2
