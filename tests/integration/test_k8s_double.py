"""The Kubernetes API double's write side: patch formats and the simulated Deployment controller (no ansible)."""
from __future__ import annotations

import time

import pytest
from trdrhub_harness.k8sapi import REVISION, ApiError, ClusterState
from trdrhub_harness.k8scontroller import DeploymentController
from trdrhub_harness.k8spatch import PatchError, json_patch, merge_patch, strategic_merge_patch

pytestmark = [pytest.mark.timeout(60)]
NS = "trdrhub-system"


def test_strategic_merge_patch_merges_containers_and_env_by_name():
    pod = {"containers": [{"name": "api", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                          {"name": "sidecar", "image": "s:1"}]}
    patch = {"containers": [{"name": "api", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"},
                                                    {"name": "B", "value": "20"}]}],
             "$setElementOrder/containers": [{"name": "api"}, {"name": "sidecar"}]}
    assert strategic_merge_patch(pod, patch) == {"containers": [
        {"name": "api", "image": "a:1", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]},
        {"name": "sidecar", "image": "s:1"}]}
    assert strategic_merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"$patch": "replace", "d": 3}}) == {"a": {"d": 3}}
    with pytest.raises(PatchError, match="merge key: name"):
        strategic_merge_patch(pod, {"containers": [{"image": "x"}]})


def test_merge_and_json_patch():
    assert merge_patch({"spec": {"replicas": 3, "paused": True}, "l": [1]}, {"spec": {"paused": None}, "l": [2]}) == \
        {"spec": {"replicas": 3}, "l": [2]}
    doc = {"metadata": {"resourceVersion": "7", "annotations": {"a/b": "x"}}, "spec": {"list": [1, 2]}}
    out = json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                           {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "y"},
                           {"op": "add", "path": "/spec/list/-", "value": 3}, {"op": "remove", "path": "/spec/list/0"}])
    assert out == {"metadata": {"resourceVersion": "7", "annotations": {"a/b": "y"}}, "spec": {"list": [2, 3]}}
    with pytest.raises(PatchError, match="testing value"):
        json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"}])


def settle(controller, state, name, done, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        controller.sync_all()
        dep = state.get("deployments", NS, name)
        if done(dep):
            return dep
        time.sleep(0.01)
    raise AssertionError(f"{name} did not settle: {dep['status']}")


def complete(dep):
    status = dep["status"]
    return (status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == status.get("availableReplicas", 0) == status.get("replicas", 0) == dep["spec"]["replicas"])


def test_controller_rolls_reuses_replicasets_and_respects_pause():
    state = ClusterState()
    state.add_deployment("trdrhub-api", replicas=2, revisions=[{"api": "api:1"}, {"api": "api:2"}])
    controller = DeploymentController(state)
    settled_rv = settle(controller, state, "trdrhub-api", complete)["metadata"]["resourceVersion"]
    controller.sync_all()
    assert state.get("deployments", NS, "trdrhub-api")["metadata"]["resourceVersion"] == settled_rv   # no idle writes

    old = state.get("replicasets", NS, next(rs["metadata"]["name"] for rs in state.list("replicasets", NS)[0]
                                            if rs["metadata"]["annotations"][REVISION] == "1"))
    template = old["spec"]["template"]
    dep = state.patch("deployments", NS, "trdrhub-api", "application/json-patch+json",
                      [{"op": "replace", "path": "/spec/template", "value": template}])
    assert dep["metadata"]["generation"] == 3
    dep = settle(controller, state, "trdrhub-api", lambda d: complete(d) and d["metadata"]["annotations"][REVISION] == "3")
    reused = state.get("replicasets", NS, old["metadata"]["name"])
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert len(state.list("replicasets", NS)[0]) == 2

    state.patch("deployments", NS, "trdrhub-api", "application/merge-patch+json", {"spec": {"paused": True}})
    state.patch("deployments", NS, "trdrhub-api", "application/strategic-merge-patch+json",
                {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}})
    for _dummy in range(5):
        controller.sync_all()
    dep = state.get("deployments", NS, "trdrhub-api")
    assert dep["metadata"]["annotations"][REVISION] == "3" and len(state.list("replicasets", NS)[0]) == 2
    assert dep["status"]["conditions"][1]["reason"] == "DeploymentPaused" and "updatedReplicas" not in dep["status"]


def test_stalled_rollout_reaches_the_progress_deadline():
    state = ClusterState()
    state.add_deployment("trdrhub-api", replicas=4)
    controller = DeploymentController(state)
    state.stall_next_rollout("trdrhub-api", NS, deadline=0.3)
    state.patch("deployments", NS, "trdrhub-api", "application/strategic-merge-patch+json",
                {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}})
    dep = settle(controller, state, "trdrhub-api",
                 lambda d: any(c.get("reason") == "ProgressDeadlineExceeded" for c in d["status"].get("conditions") or []))
    assert dep["status"]["updatedReplicas"] == 1 and dep["status"]["readyReplicas"] == 4   # old pods stay, one new never ready
    with pytest.raises(ApiError) as err:
        state.update("deployments", NS, "trdrhub-api", {**dep, "metadata": {**dep["metadata"], "resourceVersion": "1"}})
    assert err.value.status["code"] == 409
    with pytest.raises(ApiError) as err:
        state.patch("deployments", NS, "trdrhub-api", "application/merge-patch+json", {"spec": {"replicas": -1}})
    assert err.value.status["code"] == 422
