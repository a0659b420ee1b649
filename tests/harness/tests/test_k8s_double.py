"""The Kubernetes API double's write side: patch formats and the simulated Deployment controller (no ansible)."""
from __future__ import annotations

import base64
import json
import time
import uuid

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


# -- core/v1 Secrets --------------------------------------------------------------------------

def b64(text):
    return base64.b64encode(text.encode()).decode()


def api_error(call, *args):
    with pytest.raises(ApiError) as err:
        call(*args)
    return err.value.status


def test_secret_writes_fold_string_data_check_base64_and_preconditions():
    state = ClusterState()
    seeded = state.add_secret("db", {"PW": "old"}, labels={"a": "b"})
    assert seeded["data"] == {"PW": b64("old")} and seeded["type"] == "Opaque" and seeded["kind"] == "Secret"
    rv = seeded["metadata"]["resourceVersion"]

    replaced = state.update("secrets", NS, "db", {**seeded, "stringData": {"PW": "new", "X": "y"}})
    assert replaced["data"] == {"PW": b64("new"), "X": b64("y")} and "stringData" not in replaced
    assert int(replaced["metadata"]["resourceVersion"]) > int(rv) and replaced["metadata"]["uid"] == seeded["metadata"]["uid"]
    stale = api_error(state.update, "secrets", NS, "db", seeded)
    assert stale["code"] == 409 and stale["message"].startswith('Operation cannot be fulfilled on secrets "db"')

    merged = state.patch("secrets", NS, "db", "application/merge-patch+json", {"data": {"X": None}, "stringData": {"Z": "z"}})
    assert merged["data"] == {"PW": b64("new"), "Z": b64("z")}
    smp = state.patch("secrets", NS, "db", "application/strategic-merge-patch+json",
                      {"metadata": {"annotations": {"k": "v"}}, "data": {"Z": b64("zz")}})
    assert smp["data"]["Z"] == b64("zz") and smp["metadata"]["annotations"] == {"k": "v"} and smp["metadata"]["labels"] == {"a": "b"}
    assert api_error(state.patch, "secrets", NS, "db", "application/merge-patch+json",
                     {"metadata": {"resourceVersion": rv}, "data": {"PW": b64("x")}})["code"] == 409

    bad = api_error(state.patch, "secrets", NS, "db", "application/merge-patch+json", {"data": {"PW": "not base64!"}})
    assert bad["code"] == 400 and "illegal base64 data in data[PW]" in bad["message"]
    assert api_error(state.create, "secrets", NS, {"metadata": {"name": "k"}, "data": {"bad/key": b64("x")}})["code"] == 422
    assert api_error(state.patch, "secrets", NS, "db", "application/merge-patch+json", {"type": "kubernetes.io/tls"})["code"] == 422
    assert state.get("secrets", NS, "db")["data"]["PW"] == b64("new")   # nothing refused was stored

    assert api_error(state.create, "secrets", NS, {"metadata": {"name": "db"}})["reason"] == "AlreadyExists"
    assert api_error(state.update, "secrets", NS, "nope", {"metadata": {}})["code"] == 404
    current = state.get("secrets", NS, "db")["metadata"]["resourceVersion"]
    assert api_error(state.remove, "secrets", NS, "db", {"resourceVersion": rv})["code"] == 409
    assert state.remove("secrets", NS, "db", {"resourceVersion": current})["metadata"]["name"] == "db"
    assert state.get("secrets", NS, "db") is None
    assert api_error(state.remove, "secrets", NS, "db")["code"] == 404


@pytest.mark.smoke
def test_secrets_over_http_with_the_official_client(k8s_api, tmp_path):
    import kubernetes

    k8s_api.state.add_secret("db", {"PW": "old"})
    viewer = "itest-viewer-" + uuid.uuid4().hex
    k8s_api.read_only_tokens[viewer] = "system:serviceaccount:trdrhub-system:viewer"
    clients = []

    def core(token):
        client = kubernetes.config.new_client_from_config(str(k8s_api.write_kubeconfig(tmp_path / token, token=token)),
                                                          persist_config=False)
        clients.append(client)
        return kubernetes.client.CoreV1Api(client)

    api, readonly, nobody = core(k8s_api.token), core(viewer), core(k8s_api.forbidden_token)
    try:
        created = api.create_namespaced_secret(NS, {"metadata": {"name": "p"}, "stringData": {"a": "b"}})
        assert created.data == {"a": b64("b")} and created.string_data is None
        assert sorted(s.metadata.name for s in api.list_namespaced_secret(NS).items) == ["db", "p"]
        secret = api.read_namespaced_secret("db", NS)
        secret.data["PW"] = b64("new")
        assert api.replace_namespaced_secret("db", NS, secret).data == {"PW": b64("new")}
        with pytest.raises(kubernetes.client.ApiException) as err:
            api.replace_namespaced_secret("db", NS, secret)   # the resourceVersion read before the last write
        assert err.value.status == 409
        assert readonly.read_namespaced_secret("db", NS).data == {"PW": b64("new")}
        with pytest.raises(kubernetes.client.ApiException) as err:
            readonly.delete_namespaced_secret("p", NS)
        assert err.value.status == 403 and 'cannot delete resource "secrets"' in json.loads(err.value.body)["message"]
        with pytest.raises(kubernetes.client.ApiException) as err:
            nobody.list_namespaced_secret(NS)
        assert err.value.status == 403 and 'cannot list resource "secrets"' in json.loads(err.value.body)["message"]
        assert json.loads(api.delete_namespaced_secret("p", NS, _preload_content=False).data)["status"] == "Success"
        with pytest.raises(kubernetes.client.ApiException) as err:
            api.read_namespaced_secret("p", NS)
        assert err.value.status == 404
    finally:
        for client in clients:
            client.close()
    assert ("POST", f"/api/v1/namespaces/{NS}/secrets", json.dumps({"metadata": {"name": "p"}, "stringData": {"a": "b"}})) \
        in k8s_api.request_bodies
    assert {m for m, _p, _u in k8s_api.requests} == {"GET", "POST", "PUT", "DELETE"}
