"""The Kubernetes API double driven by kubectl, as an operator would drive a real cluster.

The collection's own client code is not the only judge of the double: kubectl (the Debian
``kubernetes-client`` package, or any kubectl on PATH) uses discovery, server-side tables,
chunked lists, field selectors and watches, and its rollout commands read ReplicaSet revisions
the way the real Deployment controller writes them. Each test runs kubectl against the double
over TLS with a bearer token from a kubeconfig and checks what a real cluster would answer; a
difference is a bug in the double.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from trdrhub_harness.k8sapi import NAMESPACE, ClusterState, K8sApiServer

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (Debian: apt-get install kubernetes-client)"),
]
DEPLOYMENT = "trdrhub-api"


class Kubectl:
    def __init__(self, api: K8sApiServer, home) -> None:
        kubeconfig = api.write_kubeconfig(home / "kubeconfig")
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([KUBECTL, "--request-timeout=30s", "-n", NAMESPACE, *args], capture_output=True, text=True,
                                env=self.env, timeout=120, check=False)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def jsonpath(self, what: str, path: str) -> str:
        return self("get", what, "-o", f"jsonpath={path}").stdout

    def revisions(self) -> dict[str, str]:
        """ReplicaSet name -> revision annotation."""
        out = self("get", "rs", "-o", "custom-columns=NAME:.metadata.name,REV:.metadata.annotations.deployment\\.kubernetes\\.io/revision",
                   "--no-headers").stdout
        return dict(line.split() for line in out.splitlines() if line.strip())

    def history(self) -> list[str]:
        out = self("rollout", "history", f"deployment/{DEPLOYMENT}").stdout
        return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]


@pytest.fixture
def cluster(tmp_path):
    state = ClusterState()
    state.add_deployment(DEPLOYMENT, replicas=3, revisions=[{"api": "registry.example/api:1"}, {"api": "registry.example/api:2"}])
    with K8sApiServer(state, tls=True) as api:
        yield state, api, Kubectl(api, tmp_path)


def test_get_prints_server_side_tables_with_short_names_and_chunked_lists(cluster):
    _state, api, kubectl = cluster
    pods = kubectl("get", "pods").stdout.splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(pods) == 4 and all(line.split()[1:4] == ["1/1", "Running", "0"] for line in pods[1:])
    both = kubectl("get", "deploy,rs").stdout
    assert "deployment.apps/trdrhub-api   3/3" in both and "replicaset.apps/" in both
    # kubectl lists in chunks; a chunk smaller than the list still shows every pod.
    assert len(kubectl("get", "po", "--chunk-size=2", "--no-headers").stdout.splitlines()) == 3
    assert any("limit=2" in path for _m, path, _u in api.requests) and any("continue=" in path for _m, path, _u in api.requests)
    assert "trdrhub-api" in kubectl("get", "all").stdout
    # Without a valid token the double refuses, as the API server does.
    kubectl.env["KUBECONFIG"] = str(api.write_kubeconfig(api.workdir / "bad-kubeconfig", token="not-a-token"))
    refused = kubectl("get", "pods", check=False)
    assert refused.returncode != 0
    assert "Unauthorized" in refused.stderr or "provide credentials" in refused.stderr, refused.stderr


def test_rollout_status_restart_history(cluster):
    _state, api, kubectl = cluster
    assert 'deployment "trdrhub-api" successfully rolled out' in kubectl("rollout", "status", f"deployment/{DEPLOYMENT}",
                                                                         "--timeout=60s").stdout
    assert kubectl.history() == ["1", "2"]
    kubectl("rollout", "restart", f"deployment/{DEPLOYMENT}")
    restarted = kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.spec.template.metadata.annotations}")
    assert "kubectl.kubernetes.io/restartedAt" in restarted
    # rollout status watches the Deployment (list + watch with a field selector) until it converges.
    assert "successfully rolled out" in kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s").stdout
    assert any("watch=true" in path and "fieldSelector=metadata.name" in path for _m, path, _u in api.requests)
    assert kubectl.history() == ["1", "2", "3"]
    pods = kubectl("get", "pods", "--no-headers", "-o", "custom-columns=NAME:.metadata.name").stdout.split()
    current_rs = max(kubectl.revisions().items(), key=lambda kv: int(kv[1]))[0]
    assert len(pods) == 3 and all(p.startswith(current_rs + "-") for p in pods)
    detail = kubectl("rollout", "history", f"deployment/{DEPLOYMENT}", "--revision=2").stdout
    assert "registry.example/api:2" in detail


def test_rollout_undo_reuses_the_old_replicaset_as_a_new_revision(cluster):
    _state, _api, kubectl = cluster
    kubectl("set", "env", f"deployment/{DEPLOYMENT}", "READ_ONLY_MODE=true")
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s")
    env = kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.spec.template.spec.containers[0].env}")
    assert "READ_ONLY_MODE" in env and kubectl.history() == ["1", "2", "3"]
    before = kubectl.revisions()
    rev2 = next(name for name, rev in before.items() if rev == "2")

    kubectl("rollout", "undo", f"deployment/{DEPLOYMENT}")
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s")
    after = kubectl.revisions()
    # As the real controller does: no new ReplicaSet; revision 2's becomes revision 4.
    assert set(after) == set(before) and after[rev2] == "4"
    assert kubectl.history() == ["1", "3", "4"]
    assert kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.spec.template.spec.containers[0].env}") == ""

    kubectl("rollout", "undo", f"deployment/{DEPLOYMENT}", "--to-revision=1")
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s")
    assert kubectl.history() == ["3", "4", "5"]
    assert kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.spec.template.spec.containers[0].image}") == "registry.example/api:1"


def test_scale_and_a_stalled_rollout(cluster):
    state, _api, kubectl = cluster
    kubectl("scale", f"deployment/{DEPLOYMENT}", "--replicas=5")
    kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s")
    assert kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.status.readyReplicas}") == "5"
    assert len(kubectl("get", "pods", "--no-headers").stdout.splitlines()) == 5
    assert kubectl.history() == ["1", "2"], "scaling is not a new revision"

    # A rollout whose pods never become ready: rollout status fails on the progress deadline.
    state.stall_next_rollout(DEPLOYMENT, deadline=3)
    kubectl("set", "image", f"deployment/{DEPLOYMENT}", "api=registry.example/api:3")
    stalled = kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=60s", check=False)
    assert stalled.returncode != 0 and "exceeded its progress deadline" in stalled.stderr + stalled.stdout
    kubectl("rollout", "undo", f"deployment/{DEPLOYMENT}")
    assert "successfully rolled out" in kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=90s").stdout
    assert kubectl.jsonpath(f"deployment/{DEPLOYMENT}", "{.spec.template.spec.containers[0].image}") == "registry.example/api:2"
