"""Container logs of the Kubernetes API double, judged by the official Python client and by kubectl.

``read_namespaced_pod_log`` (what app_logs_info calls) and ``kubectl logs --tail`` (what an
operator types) must get from the double what a real API server answers: plain text, the last
lines, the per-container choice, and the API server's errors for a missing container name, an
unknown container, a container still starting and a missing previous instance.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from trdrhub_harness.k8sapi import NAMESPACE, ClusterState, K8sApiServer
from trdrhub_harness.k8slogs import write_log

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
KUBECTL = shutil.which("kubectl")
LINES = [f"INFO request {i} handled" for i in range(1, 21)]


@pytest.fixture
def cluster():
    state = ClusterState()
    state.add_deployment("trdrhub-api", replicas=2)
    with K8sApiServer(state, tls=True, controller=False) as api:
        pods = sorted(p["metadata"]["name"] for p in state.list("pods", NAMESPACE, "app=trdrhub-api")[0])
        write_log(state, pods[0], LINES)
        config = kubernetes.client.Configuration()
        config.host, config.ssl_ca_cert = api.url, str(api.ca_path)
        config.api_key = {"authorization": f"Bearer {api.token}"}
        with kubernetes.client.ApiClient(config) as client:
            yield state, api, kubernetes.client.CoreV1Api(client), pods


def test_official_client_tail_timestamps_and_limit(cluster):
    state, _api, core, pods = cluster
    assert core.read_namespaced_pod_log(pods[0], NAMESPACE, tail_lines=3) == "".join(f"{line}\n" for line in LINES[-3:])
    assert core.read_namespaced_pod_log(pods[0], NAMESPACE, container="api", tail_lines=0) == ""
    stamped = core.read_namespaced_pod_log(pods[0], NAMESPACE, tail_lines=1, timestamps=True)
    assert stamped.endswith(f"Z {LINES[-1]}\n") and stamped[:4].isdigit()
    assert core.read_namespaced_pod_log(pods[0], NAMESPACE, limit_bytes=10) == LINES[0][:10]
    # A container nobody wrote to answers the start-up lines of an application.
    assert "Application startup complete." in core.read_namespaced_pod_log(pods[1], NAMESPACE)


def test_official_client_errors(cluster):
    state, _api, core, pods = cluster
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("trdrhub-api-gone", NAMESPACE)
    assert missing.value.status == 404 and 'pods \\"trdrhub-api-gone\\" not found' in missing.value.body
    with pytest.raises(ApiException) as unknown:
        core.read_namespaced_pod_log(pods[0], NAMESPACE, container="sidecar")
    assert unknown.value.status == 400 and f"container sidecar is not valid for pod {pods[0]}" in unknown.value.body
    with pytest.raises(ApiException) as previous:
        core.read_namespaced_pod_log(pods[0], NAMESPACE, previous=True)
    assert previous.value.status == 400 and f'previous terminated container \\"api\\" in pod \\"{pods[0]}\\" not found' \
        in previous.value.body

    pod = state.get("pods", NAMESPACE, pods[1])
    pod["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    pod["status"]["containerStatuses"].append({"name": "sidecar", "ready": False, "restartCount": 0,
                                               "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}})
    state.put("pods", pod)
    with pytest.raises(ApiException) as choose:
        core.read_namespaced_pod_log(pods[1], NAMESPACE)
    assert choose.value.status == 400 and f"a container name must be specified for pod {pods[1]}, choose one of: [api sidecar]" \
        in choose.value.body
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log(pods[1], NAMESPACE, container="sidecar")
    assert waiting.value.status == 400 and 'is waiting to start: ContainerCreating' in waiting.value.body


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (Debian: apt-get install kubernetes-client)")
def test_kubectl_logs_tail(cluster, tmp_path):
    _state, api, _core, pods = cluster
    env = {**os.environ, "KUBECONFIG": str(api.write_kubeconfig(tmp_path / "kubeconfig")), "HOME": str(tmp_path)}

    def kubectl(*args):
        return subprocess.run([KUBECTL, "--request-timeout=30s", "-n", NAMESPACE, *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    tail = kubectl("logs", pods[0], "--tail=5", "-c", "api")
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.splitlines() == LINES[-5:]
    stamped = kubectl("logs", pods[0], "--tail=1", "--timestamps")
    assert stamped.returncode == 0 and stamped.stdout.rstrip().endswith(f"Z {LINES[-1]}")
    wrong = kubectl("logs", pods[0], "-c", "sidecar")
    assert wrong.returncode != 0 and f"container sidecar is not valid for pod {pods[0]}" in wrong.stderr
