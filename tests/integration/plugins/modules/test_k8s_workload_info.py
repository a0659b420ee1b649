"""k8s_workload_info through real ansible-playbook against the Kubernetes API double (or a real cluster).

Set ``TRDRHUB_K8S_REAL_KUBECONFIG`` (and optionally ``TRDRHUB_K8S_REAL_CONTEXT``) to run the
tests that make sense there against a real cluster; see docs/kubernetes.md.
"""
from __future__ import annotations

import json
import uuid

import pytest
from _itest_k8s import CLEAN_ENV, REAL_KUBECONFIG, DoubleTarget, RealTarget
from trdrhub_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300 if REAL_KUBECONFIG else 120)]
double_only = pytest.mark.skipif(bool(REAL_KUBECONFIG), reason="needs the API double (chosen tokens, exact requests)")


@pytest.fixture
def target(request, tmp_path):
    if REAL_KUBECONFIG:
        made = RealTarget(tmp_path)
    else:
        made = DoubleTarget(request.getfixturevalue("k8s_api"), tmp_path)
    yield made
    made.close()


def run(ansible, args, **kwargs):
    kwargs["extra_env"] = {**CLEAN_ENV, **(kwargs.get("extra_env") or {})}
    return ansible.run("k8s_workload_info", args, **kwargs)


def no_secret(res, *secrets):
    for secret in secrets:
        assert secret not in res.output


def test_healthy_deployment_through_kubeconfig(ansible, target):
    target.add_deployment("trdrhub-api", replicas=2)
    res = run(ansible, {**target.conn, "names": ["trdrhub-api"]})

    assert not res.failed, res.output
    assert res["changed"] is False and res["namespace"] == target.namespace
    assert res["connection"]["source"] == "kubeconfig" and res["connection"]["kubeconfig"] == str(target.kubeconfig)
    dep = res["deployments"][0]
    assert dep["name"] == "trdrhub-api" and dep["replicas"] == dep["ready_replicas"] == dep["available_replicas"] == 2
    assert dep["rollout_complete"] and dep["ready"] and dep["healthy"] and dep["problems"] == []
    assert dep["rollout_status"] == "successfully rolled out" and dep["revision"] == 1 and not dep["paused"]
    assert {c["type"] for c in dep["conditions"]} >= {"Available", "Progressing"}
    assert dep["images"] == {"api": target.image(1, "trdrhub-api")}
    assert len(res["pods"]) == 2 and all(p["ready"] and p["deployment"] == "trdrhub-api" and p["node"] for p in res["pods"])
    assert all(p["containers"][0]["state"] == "running" for p in res["pods"])
    assert res["summary"] == {"deployments": 1, "deployments_ready": 1, "deployments_degraded": 0, "pods": 2,
                              "pods_not_ready": 0, "restarts": 0, "healthy": True}
    assert res["unhealthy"] == []
    if not target.real:
        assert res["connection"]["context"] == "trdrhub-double"
        assert res["requests"] == [
            "GET /apis/apps/v1/namespaces/trdrhub-system/deployments",
            "GET /apis/apps/v1/namespaces/trdrhub-system/replicasets?labelSelector=app%3Dtrdrhub-api",
            "GET /api/v1/namespaces/trdrhub-system/pods?labelSelector=app%3Dtrdrhub-api"]
        no_secret(res, target.api.token)


def test_crashloop_makes_the_deployment_degraded(ansible, target):
    target.add_deployment("trdrhub-api", replicas=2)
    target.crashloop("trdrhub-worker", replicas=2)
    res = run(ansible, target.conn)

    assert not res.failed, res.output
    by_name = {d["name"]: d for d in res["deployments"]}
    assert by_name["trdrhub-api"]["healthy"] and not by_name["trdrhub-worker"]["ready"]
    assert res["summary"]["deployments"] == 2 and res["summary"]["deployments_degraded"] == 1
    assert res["summary"]["pods_not_ready"] >= 1 and res["summary"]["restarts"] >= 1 and not res["summary"]["healthy"]
    crashing = [p for p in res["pods"] if p["deployment"] == "trdrhub-worker" and not p["ready"]]
    assert crashing and crashing[0]["containers"][0]["reason"] == "CrashLoopBackOff"
    assert any("CrashLoopBackOff" in line and line.startswith("deployment trdrhub-worker: pod ") for line in res["unhealthy"])
    if not target.real:
        assert crashing[0]["containers"][0]["last_state"]["reason"] == "OOMKilled"
        assert crashing[0]["restarts"] == 7 and crashing[0]["revision"] == 1
        assert res["unhealthy"][0] == "deployment trdrhub-worker: only 1 of 2 replicas available"
        assert "last exit: OOMKilled, code 137" in res["unhealthy"][1]


def test_stalled_rollout(ansible, target):
    target.stall("trdrhub-api", replicas=2)
    res = run(ansible, {**target.conn, "names": ["trdrhub-api"]})

    assert not res.failed, res.output
    dep = res["deployments"][0]
    assert dep["progress_deadline_exceeded"] and not dep["rollout_complete"] and not dep["healthy"]
    assert dep["revision"] == 2 and dep["updated_replicas"] < dep["current_replicas"]
    progressing = next(c for c in dep["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "ProgressDeadlineExceeded"
    assert dep["rollout_status"].startswith("rollout exceeded its progress deadline: ReplicaSet ")
    assert res["unhealthy"][0].startswith("deployment trdrhub-api: rollout exceeded its progress deadline")
    new_pods = [p for p in res["pods"] if p["revision"] == 2]
    assert new_pods and not any(p["ready"] for p in new_pods)
    assert [h["revision"] for h in dep["history"]] == [2, 1] and dep["history"][0]["current"]
    if not target.real:
        assert new_pods[0]["containers"][0]["reason"] == "ImagePullBackOff"
        assert dep["history"][0]["change_cause"] == "deploy broken"


def test_history_newest_first_and_limited(ansible, target):
    target.add_deployment("trdrhub-api", replicas=1, revisions=4)
    res = run(ansible, {**target.conn, "names": ["trdrhub-api"], "history": 3, "include_pods": False})

    assert not res.failed, res.output
    history = res["deployments"][0]["history"]
    assert [h["revision"] for h in history] == [4, 3, 2]
    assert [h["current"] for h in history] == [True, False, False]
    assert [h["replicas"] for h in history] == [1, 0, 0]
    assert [h["change_cause"] for h in history] == ["deploy 1.4.0", "deploy 1.3.0", "deploy 1.2.0"]
    assert history[0]["created"] >= history[1]["created"] >= history[2]["created"]
    assert res["pods"] == [] and res["summary"]["pods"] is None
    if not target.real:
        assert [h["images"]["api"] for h in history] == [target.image(r, "trdrhub-api") for r in (4, 3, 2)]
        assert len(res["requests"]) == 2


def test_names_filter_keeps_the_given_order(ansible, target):
    for name in ("trdrhub-api", "trdrhub-worker", "trdrhub-beat"):
        target.add_deployment(name, replicas=1)
    res = run(ansible, {**target.conn, "names": ["trdrhub-worker", "trdrhub-api"], "history": 0})

    assert not res.failed, res.output
    assert [d["name"] for d in res["deployments"]] == ["trdrhub-worker", "trdrhub-api"]
    assert {p["deployment"] for p in res["pods"]} == {"trdrhub-worker", "trdrhub-api"}
    assert res["deployments"][0]["history"] == []


def test_label_selector(ansible, target):
    target.add_deployment("trdrhub-api", replicas=1)
    target.add_deployment("trdrhub-worker", replicas=1)
    res = run(ansible, {**target.conn, "label_selector": "app in (trdrhub-worker),app.kubernetes.io/part-of=trdrhub"})

    assert not res.failed, res.output
    assert [d["name"] for d in res["deployments"]] == ["trdrhub-worker"]


def test_unknown_name_lists_what_exists(ansible, target):
    target.add_deployment("trdrhub-api", replicas=1)
    target.add_deployment("trdrhub-worker", replicas=1)
    res = run(ansible, {**target.conn, "names": ["trdrhub-api", "trdrhub-apu"]})

    assert res.failed
    assert res["msg"] == (f"Deployment trdrhub-apu not found in namespace {target.namespace}. "
                          f"Deployments in {target.namespace}: trdrhub-api, trdrhub-worker")
    assert "Traceback" not in res.output


@double_only
def test_wrong_token_is_a_401_message(ansible, target):
    wrong = "wrong-" + uuid.uuid4().hex
    res = run(ansible, {"host": target.api.url, "api_key": wrong, "ca_cert": str(target.api.ca_path), "namespace": target.namespace})

    assert res.failed
    assert res["msg"] == (f"Authentication failed: the Kubernetes API at {target.api.url} answered GET "
                          "/apis/apps/v1/namespaces/trdrhub-system/deployments with 401 Unauthorized: Unauthorized - the "
                          "credentials are missing, wrong or expired (check api_key / K8S_AUTH_API_KEY)")
    assert res["status"] == 401
    no_secret(res, wrong, target.api.token)
    assert "Traceback" not in res.output


@double_only
def test_forbidden_is_a_403_message(ansible, target, tmp_path):
    target.add_deployment("trdrhub-api", replicas=1)
    kubeconfig = target.api.write_kubeconfig(tmp_path / "nobody", token=target.api.forbidden_token)
    res = run(ansible, {"kubeconfig": str(kubeconfig), "namespace": target.namespace})

    assert res.failed
    assert res["msg"].startswith(f"Permission denied: the Kubernetes API at {target.api.url} answered GET "
                                 "/apis/apps/v1/namespaces/trdrhub-system/deployments with 403 Forbidden: ")
    assert ('deployments.apps is forbidden: User "system:serviceaccount:trdrhub-system:nobody" cannot list resource '
            '"deployments" in API group "apps" in the namespace "trdrhub-system"') in res["msg"]
    assert res["status"] == 403
    no_secret(res, target.api.forbidden_token)


def test_unreachable_api_server(ansible, target):
    port = free_port()
    res = run(ansible, {"host": f"https://127.0.0.1:{port}", "api_key": "unused-" + uuid.uuid4().hex, "request_timeout": 3})

    assert res.failed
    assert res["msg"] == (f"Cannot reach the Kubernetes API at https://127.0.0.1:{port}: GET "
                          "/apis/apps/v1/namespaces/trdrhub-system/deployments failed: Connection refused")
    assert "unused-" not in res.output


@double_only
def test_kubeconfig_context_and_environment(ansible, target, tmp_path):
    target.add_deployment("trdrhub-api", replicas=1)
    kubeconfig = target.api.write_kubeconfig(tmp_path / "multi", context="prod-forbidden", token=target.api.forbidden_token,
                                             extra_contexts={"oncall": target.api.token})
    res = run(ansible, {"context": "oncall", "namespace": target.namespace}, extra_env={"K8S_AUTH_KUBECONFIG": str(kubeconfig)})
    assert not res.failed, res.output
    assert res["connection"] == {"api_server": target.api.url, "source": "kubeconfig", "kubeconfig": str(kubeconfig),
                                 "context": "oncall"}
    assert [d["name"] for d in res["deployments"]] == ["trdrhub-api"]

    current = run(ansible, {"namespace": target.namespace}, extra_env={"KUBECONFIG": str(kubeconfig)})
    assert current.failed and current["status"] == 403   # the current context is the forbidden one

    unknown = run(ansible, {"kubeconfig": str(kubeconfig), "context": "staging"})
    assert unknown.failed
    assert unknown["msg"] == f"context 'staging' is not in kubeconfig {kubeconfig}; it has: prod-forbidden, oncall"
    no_secret(unknown, target.api.token, target.api.forbidden_token)


@double_only
def test_host_and_api_key(ansible, target):
    target.add_deployment("trdrhub-api", replicas=1)
    res = run(ansible, {"host": target.api.url, "api_key": target.api.token, "ca_cert": str(target.api.ca_path),
                        "namespace": target.namespace})
    assert not res.failed, res.output
    assert res["connection"] == {"api_server": target.api.url, "source": "host", "kubeconfig": None, "context": None}
    no_secret(res, target.api.token)

    from_env = run(ansible, {"namespace": target.namespace}, extra_env={
        "K8S_AUTH_HOST": target.api.url, "K8S_AUTH_API_KEY": target.api.token, "K8S_AUTH_SSL_CA_CERT": str(target.api.ca_path)})
    assert not from_env.failed, from_env.output
    assert [d["name"] for d in from_env["deployments"]] == ["trdrhub-api"]

    untrusted = run(ansible, {"host": target.api.url, "api_key": target.api.token, "namespace": target.namespace})
    assert untrusted.failed
    assert untrusted["msg"].startswith(f"TLS handshake with the Kubernetes API at {target.api.url} failed")
    assert "certificate verify failed" in untrusted["msg"] and "ca_cert" in untrusted["msg"]
    insecure = run(ansible, {"host": target.api.url, "api_key": target.api.token, "validate_certs": False,
                             "namespace": target.namespace})
    assert not insecure.failed, insecure.output
    no_secret(untrusted, target.api.token)
    no_secret(insecure, target.api.token)


def test_check_mode_only_reads(ansible, target):
    target.stall("trdrhub-api", replicas=2)
    if not target.real:
        target.api.requests.clear()
    res = run(ansible, {**target.conn, "names": ["trdrhub-api"]}, check=True)

    assert not res.failed, res.output
    assert res["changed"] is False and res["deployments"][0]["progress_deadline_exceeded"]
    if not target.real:
        assert {method for method, _path, _user in target.api.requests} == {"GET"}
        assert len(target.api.requests) == 3
        # The result is plain JSON the controller could serialise.
        json.dumps(res.result)
