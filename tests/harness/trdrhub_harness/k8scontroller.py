"""A simulated Deployment controller for the Kubernetes API double.

Every ``interval`` seconds (a background thread) each Deployment of the
``ClusterState`` is reconciled the way kube-controller-manager does it, compressed
into a few hundred milliseconds:

- the ReplicaSet whose template equals the Deployment's (ignoring the
  ``pod-template-hash`` label) is the new one; when none exists a new ReplicaSet
  with the next ``deployment.kubernetes.io/revision`` is created, when an old one
  matches (``kubectl rollout undo``) it is re-used and renumbered to the next revision,
  its old numbers kept in ``deployment.kubernetes.io/revision-history``;
- per tick one pod of the new ReplicaSet is added and one old pod removed, until the
  new ReplicaSet runs ``spec.replicas`` pods and no old pod is left; then the status
  (``derive_deployment_status``) says the rollout is complete;
- a paused Deployment does not roll: a template change waits, only the replica count
  of its current ReplicaSet follows ``spec.replicas``;
- ``ClusterState.stall_next_rollout`` makes the next rollout's pods never ready
  (``ImagePullBackOff``); old pods stay, and after the deadline the Deployment's
  Progressing condition turns False with reason ``ProgressDeadlineExceeded``.

Nothing is written when nothing changes, so a settled cluster keeps its resourceVersions.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Optional

from .k8sapi import REVISION, ClusterState, template_key

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"


class DeploymentController:
    def __init__(self, state: ClusterState, interval: float = 0.08) -> None:
        self.state = state
        self.interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "DeploymentController":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="k8s-double-deployment-controller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sync_all()

    def sync_all(self) -> None:
        with self.state.lock:
            for namespace, name in sorted(self.state.objects["deployments"]):
                self.sync(namespace, name)

    def sync(self, namespace: str, name: str) -> None:
        state = self.state
        with state.lock:
            dep = state.get("deployments", namespace, name)
            if dep is None:
                return
            replicasets = state.owned("replicasets", dep)
            key = template_key(dep["spec"]["template"])
            paused = bool(dep["spec"].get("paused"))
            annotations = dep["metadata"].setdefault("annotations", {})
            top = max((_revision(rs) for rs in replicasets), default=0)
            new = next((rs for rs in replicasets if template_key(rs["spec"]["template"]) == key), None)
            stall = state.stalls.get((namespace, name))
            if not paused and (new is None or _revision(new) < top):
                # A rollout starts: a new ReplicaSet, or an old one re-used with the next revision.
                if new is None:
                    new = state.new_replicaset(dep, top + 1)
                else:
                    # As the real controller: the old number is kept in revision-history.
                    notes = new["metadata"]["annotations"]
                    notes[REVISION_HISTORY] = ",".join(filter(None, [notes.get(REVISION_HISTORY), notes.get(REVISION)]))
                    notes[REVISION] = str(top + 1)
                    new = state.put("replicasets", new)
                    replicasets = [rs for rs in replicasets if rs["metadata"]["uid"] != new["metadata"]["uid"]]
                if stall is not None and stall["key"] is None:
                    stall.update(key=key, since=time.monotonic())
            else:
                replicasets = [rs for rs in replicasets if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
            if new is not None and annotations.get(REVISION) != new["metadata"]["annotations"][REVISION]:
                annotations[REVISION] = new["metadata"]["annotations"][REVISION]
                dep = state.put("deployments", dep)
            stalled = stall is not None and stall["key"] == key
            exceeded = False
            if stalled:
                deadline = stall["deadline"] if stall["deadline"] is not None else dep["spec"].get("progressDeadlineSeconds", 600)
                exceeded = stall["exceeded"] or time.monotonic() - (stall["since"] or 0) >= deadline
                stall["exceeded"] = exceeded
            replicas = dep["spec"].get("replicas", 1)
            if new is None:
                # Paused with a pending template change: only the current revision scales.
                current = next((rs for rs in replicasets if rs["metadata"]["annotations"].get(REVISION) == annotations.get(REVISION)), None)
                if current is not None:
                    self._scale(current, replicas, ready=True)
            else:
                wanted = min(replicas, max(1, math.ceil(replicas * 0.25))) if stalled else replicas
                self._scale(new, wanted, ready=not stalled)
                if not paused and not stalled:
                    for old in replicasets:
                        if self._scale(old, max(len(self._pods(old)) - 1, 0), ready=True):
                            break   # one old pod per tick
            state.derive_deployment_status(namespace, name, progress_deadline_exceeded=exceeded)

    def _pods(self, rs: dict) -> list:
        return self.state.owned("pods", rs)

    def _scale(self, rs: dict, wanted: int, ready: bool) -> bool:
        """One step of the ReplicaSet towards ``wanted`` pods; whether something changed."""
        state = self.state
        pods = sorted(self._pods(rs), key=lambda p: p["metadata"]["name"])
        changed = False
        if len(pods) < wanted:
            state.pod_counter += 1
            pod = state.add_pod(rs, 1000 + state.pod_counter, ready=ready)
            if not ready:
                for cs in pod["status"]["containerStatuses"]:
                    cs.update(started=False, state={"waiting": {"reason": "ImagePullBackOff",
                                                                "message": f'Back-off pulling image "{cs["image"]}"'}})
                pod["status"]["phase"] = "Pending"
                state.put("pods", pod)
            changed = True
        elif len(pods) > wanted:
            victim = sorted(pods, key=lambda p: (_ready(p), p["metadata"]["name"]))[0]   # not-ready pods go first
            state.delete("pods", victim["metadata"]["namespace"], victim["metadata"]["name"])
            changed = True
        target = max(wanted, 0)
        if rs["spec"].get("replicas") != target:
            fresh = state.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
            fresh["spec"]["replicas"] = target
            state.put("replicasets", fresh)
        return changed


def _revision(rs: dict) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or [])
