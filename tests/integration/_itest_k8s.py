"""Targets for the Kubernetes integration tests: the API double, or a real cluster.

With ``TRDRHUB_K8S_REAL_KUBECONFIG`` set (and optionally ``TRDRHUB_K8S_REAL_CONTEXT``)
the tests run against that cluster instead: each test gets a throwaway namespace,
seeded through the official client with small public images, and deleted afterwards.
Tests that need what only the double can provide (chosen tokens, exact request
lists, exact images) are skipped there.
"""
from __future__ import annotations

import os
import time
import uuid
from typing import Dict, List, Optional

REAL_KUBECONFIG = os.environ.get("TRDRHUB_K8S_REAL_KUBECONFIG")
REAL_CONTEXT = os.environ.get("TRDRHUB_K8S_REAL_CONTEXT")
PAUSE_IMAGE = os.environ.get("TRDRHUB_K8S_PAUSE_IMAGE", "registry.k8s.io/pause:3.10")
BUSYBOX_IMAGE = os.environ.get("TRDRHUB_K8S_BUSYBOX_IMAGE", "busybox:1.36")
# Environment every run gets: no ambient Kubernetes settings, loopback never through a proxy.
CLEAN_ENV = {"K8S_AUTH_KUBECONFIG": None, "K8S_AUTH_CONTEXT": None, "K8S_AUTH_HOST": None, "K8S_AUTH_API_KEY": None,
             "K8S_AUTH_VERIFY_SSL": None, "K8S_AUTH_SSL_CA_CERT": None, "KUBECONFIG": None,
             "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class DoubleTarget:
    """The API double: seeding goes straight into its state."""

    real = False

    def __init__(self, api, workdir) -> None:
        self.api = api
        self.namespace = "trdrhub-system"
        self.kubeconfig = api.write_kubeconfig(workdir / "kubeconfig", namespace=self.namespace)
        self.conn = {"kubeconfig": str(self.kubeconfig), "namespace": self.namespace}

    def image(self, revision: int, name: str = "api") -> str:
        return f"ghcr.io/trdrhub/{name}:1.{revision}.0"

    def add_deployment(self, name: str, replicas: int = 2, revisions: int = 1, container: str = "api") -> None:
        self.api.state.add_deployment(name, self.namespace, replicas=replicas,
                                      revisions=[{container: self.image(r, name)} for r in range(1, revisions + 1)],
                                      change_causes=[f"deploy 1.{r}.0" for r in range(1, revisions + 1)])

    def crashloop(self, name: str, replicas: int = 2) -> None:
        self.add_deployment(name, replicas=replicas)
        self.api.state.crashloop_pod(name, self.namespace, last_reason="OOMKilled", exit_code=137)

    def stall(self, name: str, replicas: int = 2) -> None:
        self.add_deployment(name, replicas=replicas)
        self.api.state.stall_rollout(name, {"api": "ghcr.io/trdrhub/api:does-not-exist"}, self.namespace,
                                     change_cause="deploy broken")

    def read(self, name: str) -> dict:
        """The Deployment as stored (its resourceVersion tells whether anything wrote to it)."""
        return self.api.state.get("deployments", self.namespace, name)

    def pod_names(self, name: str) -> set:
        items, _rv = self.api.state.list("pods", self.namespace, f"app={name}")
        return {p["metadata"]["name"] for p in items}

    def close(self) -> None:
        pass


class RealTarget:
    """A real cluster (kind, for instance): a throwaway namespace seeded through the official client."""

    real = True

    def __init__(self, workdir) -> None:
        import kubernetes

        self.k8s = kubernetes
        self.client = kubernetes.config.new_client_from_config(REAL_KUBECONFIG, context=REAL_CONTEXT, persist_config=False)
        self.apps = kubernetes.client.AppsV1Api(self.client)
        self.core = kubernetes.client.CoreV1Api(self.client)
        self.namespace = "trdrhub-itest-" + uuid.uuid4().hex[:8]
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        self.kubeconfig = REAL_KUBECONFIG
        self.conn = {"kubeconfig": REAL_KUBECONFIG, "namespace": self.namespace}
        if REAL_CONTEXT:
            self.conn["context"] = REAL_CONTEXT

    def image(self, revision: int, name: str = "api") -> str:
        return PAUSE_IMAGE

    def _body(self, name: str, replicas: int, containers: List[dict], deadline: int = 600) -> dict:
        return {"metadata": {"name": name, "labels": {"app": name, "app.kubernetes.io/part-of": "trdrhub"}},
                "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}}

    def _patch_template(self, name: str, revision: int, containers: Optional[List[dict]] = None) -> None:
        body: Dict = {"metadata": {"annotations": {"kubernetes.io/change-cause": f"deploy 1.{revision}.0"}},
                      "spec": {"template": {"metadata": {"annotations": {"trdrhub.example/revision": str(revision)}}}}}
        if containers is not None:
            body["spec"]["template"]["spec"] = {"containers": containers}
        self.apps.patch_namespaced_deployment(name, self.namespace, body)

    def add_deployment(self, name: str, replicas: int = 2, revisions: int = 1, container: str = "api") -> None:
        self.apps.create_namespaced_deployment(self.namespace, self._body(name, replicas, [{"name": container, "image": PAUSE_IMAGE}]))
        self.wait(name, _complete)
        for revision in range(2, revisions + 1):
            self._patch_template(name, revision)
            self.wait(name, lambda d, r=revision: _complete(d) and d["metadata"]["annotations"].get(
                "deployment.kubernetes.io/revision") == str(r))

    def crashloop(self, name: str, replicas: int = 2) -> None:
        containers = [{"name": "api", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "sleep 2; exit 1"]}]
        self.apps.create_namespaced_deployment(self.namespace, self._body(name, replicas, containers))
        self.wait_pods(name, lambda p: any((cs.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
                                           for cs in p["status"].get("containerStatuses") or []))

    def stall(self, name: str, replicas: int = 2) -> None:
        self.apps.create_namespaced_deployment(self.namespace, self._body(name, replicas, [{"name": "api", "image": PAUSE_IMAGE}],
                                                                          deadline=10))
        self.wait(name, _complete)
        self._patch_template(name, 2, [{"name": "api", "image": "registry.invalid/trdrhub/api:does-not-exist"}])
        self.wait(name, lambda d: any(c.get("reason") == "ProgressDeadlineExceeded" for c in d["status"].get("conditions") or []),
                  timeout=120)

    def _read(self, name: str) -> dict:
        return self.client.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, self.namespace))

    def read(self, name: str) -> dict:
        return self._read(name)

    def pod_names(self, name: str) -> set:
        pods = self.client.sanitize_for_serialization(self.core.list_namespaced_pod(self.namespace, label_selector=f"app={name}"))
        return {p["metadata"]["name"] for p in pods.get("items") or [] if not p["metadata"].get("deletionTimestamp")}

    def wait(self, name: str, done, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self._read(name)):
                return
            time.sleep(1)
        raise AssertionError(f"deployment {name} in {self.namespace} did not reach the expected state in {timeout:.0f}s")

    def wait_pods(self, name: str, done, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.client.sanitize_for_serialization(self.core.list_namespaced_pod(self.namespace, label_selector=f"app={name}"))
            if any(done(p) for p in pods.get("items") or []):
                return
            time.sleep(1)
        raise AssertionError(f"pods of {name} in {self.namespace} did not reach the expected state in {timeout:.0f}s")

    def close(self) -> None:
        try:
            self.core.delete_namespace(self.namespace)
        finally:
            self.client.close()


def _complete(dep: dict) -> bool:
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    replicas = spec.get("replicas", 1)
    return (dep["metadata"].get("generation", 0) <= status.get("observedGeneration", 0)
            and status.get("updatedReplicas", 0) == replicas == status.get("availableReplicas", 0)
            and status.get("replicas", 0) == replicas)
