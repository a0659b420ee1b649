"""A stateful Kubernetes API double: an in-process HTTP(S) server the official client talks to.

No Kubernetes API server can run in the test environment, so this serves the part of
the API the collection uses, with the API server's wire format: discovery
(``/version``, ``/api``, ``/apis``), ``apps/v1`` Deployments and ReplicaSets and
``v1`` Pods (list with ``labelSelector``, get), Deployment writes (``PUT``, ``PATCH``
as merge, strategic-merge or JSON patch, the ``scale`` subresource), ``v1`` Secrets
(list, get, create, replace, patch, delete; ``data`` checked as base64, ``stringData``
folded into ``data``) with ``resourceVersion`` preconditions (409), bearer-token
authentication (401), forbidden and read-only tokens (403) and ``Status`` objects for
every error. A simulated
Deployment controller (``k8scontroller.py``) rolls Deployments out in a background
thread: new ReplicaSet revisions, pods replaced, status converging.

    state = ClusterState()
    state.add_deployment("trdrhub-api", replicas=3, revisions=[{"api": "api:1"}, {"api": "api:2"}])
    with K8sApiServer(state, tls=True) as api:
        api.write_kubeconfig(tmp_path / "kubeconfig")

List and watch behave as kubectl expects from a real API server: ``limit``/``continue``
chunking, ``fieldSelector`` on ``metadata.name``/``metadata.namespace``, ``watch=true``
streaming ``ADDED``/``MODIFIED``/``DELETED`` events from a ``resourceVersion`` (chunked
JSON lines until ``timeoutSeconds``), and ``as=Table`` answers with the columns a real
server prints (``kubectl get``). tests/harness/tests/test_k8s_double_kubectl.py drives it
with kubectl itself. What it does not do, it refuses with a Status (405 for other verbs,
400 for other field labels) rather than pretending. Extension points, kept deliberately
small:

- a new resource is one ``Resource`` entry in ``RESOURCES`` (Secrets: ``v1``,
  ``secrets``, ``Secret``); routing, discovery, RBAC messages follow from it;
  kind-specific checks on write go into ``ClusterState.validate``;
- a new verb or subresource is one entry in ``K8sApiServer.routes`` keyed by
  (method, shape), for example ``("PUT", "object")`` or ``("GET", "scale")``,
  whose handler gets a ``Call`` and changes ``ClusterState`` under its lock. The
  generic ``_replace``/``_patch`` handlers serve any resource whose ``verbs``
  include ``update``/``patch`` (``ClusterState.update`` checks the
  resourceVersion precondition and bumps ``metadata.generation`` on spec changes);
- ``ClusterState.derive_deployment_status`` computes a Deployment's status from
  its ReplicaSets and pods; ``k8scontroller.DeploymentController`` creates,
  re-uses and scales ReplicaSets and pods and then calls it.
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime
import hashlib
import json
import re
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from .certs import TestCA
from .k8spatch import PatchError, apply_patch

UTC = datetime.timezone.utc
NAMESPACE = "trdrhub-system"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
SERVER_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-trdrhub-double", "gitCommit": "0" * 40,
                  "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0",
                  "compiler": "gc", "platform": "linux/amd64"}


@dataclass(frozen=True)
class Resource:
    group_version: str
    plural: str
    kind: str
    verbs: Tuple[str, ...] = ("get", "list", "watch")
    subresources: Tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0] if "/" in self.group_version else ""

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group_version}" if self.group else f"/api/{self.group_version}"


RESOURCES: Dict[str, Resource] = {r.plural: r for r in (
    Resource("apps/v1", "deployments", "Deployment", ("get", "list", "watch", "update", "patch"), ("scale",)),
    Resource("apps/v1", "replicasets", "ReplicaSet"),
    Resource("v1", "pods", "Pod", subresources=("log",)),
    Resource("v1", "secrets", "Secret", ("get", "list", "watch", "create", "update", "patch", "delete")),
)}
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
SHORT_NAMES = {"deployments": ("deploy",), "replicasets": ("rs",), "pods": ("po",)}


def timestamp(when: datetime.datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SelectorError(ValueError):
    pass


_TERM = re.compile(r"^\s*(?P<key>[A-Za-z0-9./_-]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ = re.compile(r"^\s*(?P<key>[A-Za-z0-9./_-]+)\s*(?P<op>==|!=|=)\s*(?P<value>[A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[A-Za-z0-9./_-]+)\s*$")


def parse_selector(text: str) -> List[Callable[[Dict[str, str]], bool]]:
    """A labelSelector string as predicates over a label dict (equality- and set-based syntax)."""
    terms, depth, current = [], 0, ""
    for ch in text or "":
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    if current.strip() or terms:
        terms.append(current)
    preds = []
    for term in terms:
        match = _TERM.match(term)
        if match:
            key, values = match["key"], {v.strip() for v in match["values"].split(",") if v.strip()}
            if match["op"] == "in":
                preds.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                preds.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            continue
        match = _EQ.match(term)
        if match:
            key, value = match["key"], match["value"]
            if match["op"] == "!=":
                preds.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                preds.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        match = _EXISTS.match(term)
        if match:
            key = match["key"]
            if match["neg"]:
                preds.append(lambda labels, k=key: k not in labels)
            else:
                preds.append(lambda labels, k=key: k in labels)
            continue
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    return preds


_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


def parse_field_selector(text: str) -> List[Callable[[dict], bool]]:
    """A fieldSelector (``metadata.name=x,metadata.namespace!=y``) as predicates over an object."""
    preds = []
    for term in (text or "").split(","):
        if not term.strip():
            continue
        match = _EQ.match(term)
        if not match:
            raise SelectorError(f"invalid field selector: {term.strip()!r}")
        if match["key"] not in _FIELDS:
            raise SelectorError(f'field label not supported: {match["key"]}')
        outer, inner = _FIELDS[match["key"]]
        if match["op"] == "!=":
            preds.append(lambda obj, o=outer, i=inner, v=match["value"]: (obj.get(o) or {}).get(i) != v)
        else:
            preds.append(lambda obj, o=outer, i=inner, v=match["value"]: (obj.get(o) or {}).get(i) == v)
    return preds


class ClusterState:
    """Objects by resource and (namespace, name), with a cluster-wide resourceVersion counter.

    Every read returns deep copies; every change goes through ``put`` (which bumps the
    resourceVersion) under ``lock``, so handlers running in server threads and a test
    seeding objects never see half-written state.
    """

    def __init__(self, now: Optional[datetime.datetime] = None) -> None:
        self.lock = threading.RLock()
        self.now = now or datetime.datetime.now(UTC).replace(microsecond=0)
        self.resource_version = 1000
        self.objects: Dict[str, Dict[Tuple[str, str], dict]] = {plural: {} for plural in RESOURCES}
        # (namespace, deployment) -> stall switch, see stall_next_rollout()
        self.stalls: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.pod_counter = 0
        # (namespace, pod, container, previous) -> [(time, line)]: container logs, see k8slogs.write_log
        self.pod_logs: Dict[Tuple[str, str, str, bool], List[Tuple[datetime.datetime, str]]] = {}

    # -- storage -------------------------------------------------------------
    def put(self, plural: str, obj: dict) -> dict:
        """Create or replace an object; assigns uid, creationTimestamp and a new resourceVersion."""
        res = RESOURCES[plural]
        with self.lock:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", NAMESPACE)
            key = (meta["namespace"], meta["name"])
            old = self.objects[plural].get(key)
            meta.setdefault("uid", (old or {}).get("metadata", {}).get("uid") or str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", timestamp(self.now))
            self.resource_version += 1
            meta["resourceVersion"] = str(self.resource_version)
            obj["kind"], obj["apiVersion"] = res.kind, res.group_version
            self.objects[plural][key] = copy.deepcopy(obj)
            return copy.deepcopy(obj)

    def get(self, plural: str, namespace: str, name: str) -> Optional[dict]:
        with self.lock:
            obj = self.objects[plural].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, plural: str, namespace: Optional[str] = None, selector: str = "") -> Tuple[List[dict], str]:
        """(items, list resourceVersion); raises SelectorError for a selector that does not parse."""
        preds = parse_selector(selector)
        with self.lock:
            items = [copy.deepcopy(obj) for (ns, _name), obj in sorted(self.objects[plural].items())
                     if (namespace is None or ns == namespace)
                     and all(p(obj["metadata"].get("labels") or {}) for p in preds)]
            return items, str(self.resource_version)

    def update(self, plural: str, namespace: str, name: str, new: dict) -> dict:
        """Replace an object as PUT does: 404 if absent, 409 on a stale ``metadata.resourceVersion``.

        System fields (uid, creationTimestamp, status) are kept from the stored object;
        ``metadata.generation`` is bumped when ``spec`` changes.
        """
        res = RESOURCES[plural]
        with self.lock:
            old = self.objects[plural].get((namespace, name))
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            if old is None:
                raise ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "group": res.group, "kind": res.plural})
            if not isinstance(new, dict) or not isinstance(new.get("metadata", {}), dict):
                raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format for {res.kind}")
            new = copy.deepcopy(new)
            meta = new.setdefault("metadata", {})
            if meta.get("name") not in (None, name) or meta.get("namespace") not in (None, namespace):
                raise ApiError(400, "BadRequest", "the name of the object and the name on the URL do not match")
            stale = meta.get("resourceVersion")
            if stale and stale != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": the object has been '
                                                "modified; please apply your changes to the latest version and try again",
                               {"name": name, "group": res.group, "kind": res.plural})
            self.validate(plural, new, name, old)
            for key in ("uid", "creationTimestamp", "ownerReferences"):
                if key in old["metadata"]:
                    meta[key] = copy.deepcopy(old["metadata"][key])
            meta.update(name=name, namespace=namespace)
            if "generation" in old["metadata"]:
                changed = new.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            return self.put(plural, new)

    def patch(self, plural: str, namespace: str, name: str, content_type: Optional[str], body: Any) -> dict:
        """PATCH: the patch applied to the stored object, then stored as by ``update`` (a resourceVersion in the patch is a precondition)."""
        with self.lock:
            old = self.get(plural, namespace, name)
            if old is None:
                return self.update(plural, namespace, name, {})  # raises the 404
            try:
                patched = apply_patch(content_type, old, body)
            except LookupError:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                                                            "media types include: application/json-patch+json, "
                                                            "application/merge-patch+json, application/strategic-merge-patch+json"
                               ) from None
            except PatchError as exc:
                raise ApiError(422 if "test" in str(exc) else 400, "Invalid" if "test" in str(exc) else "BadRequest",
                               str(exc)) from None
            if not isinstance(patched, dict):
                raise ApiError(400, "BadRequest", "the patch does not produce an object")
            return self.update(plural, namespace, name, patched)

    def stall_next_rollout(self, deployment: str, namespace: str = NAMESPACE, deadline: Optional[float] = None) -> None:
        """The next template change of the Deployment rolls out pods that never become ready.

        After ``deadline`` seconds (default: the Deployment's progressDeadlineSeconds) the
        controller sets Progressing=False, reason ProgressDeadlineExceeded. Rolling back to
        another template is not affected: that rollout completes.
        """
        with self.lock:
            self.stalls[(namespace, deployment)] = {"key": None, "deadline": deadline, "since": None, "exceeded": False}

    def clear_stall(self, deployment: str, namespace: str = NAMESPACE) -> None:
        with self.lock:
            self.stalls.pop((namespace, deployment), None)

    def delete(self, plural: str, namespace: str, name: str) -> Optional[dict]:
        with self.lock:
            return self.objects[plural].pop((namespace, name), None)

    def validate(self, plural: str, obj: dict, name: str, old: Optional[dict] = None) -> None:
        """Kind-specific checks (and normalisation) of an object about to be created or replaced: 400/422 as ``ApiError``."""
        if plural == "deployments":
            _validate_deployment(obj, name)
        elif plural == "secrets":
            _normalize_secret(obj, name, old)

    def create(self, plural: str, namespace: str, obj: Any) -> dict:
        """POST to a collection: 409 AlreadyExists for a taken name; uid, creationTimestamp, resourceVersion assigned."""
        res = RESOURCES[plural]
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format for {res.kind}")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{res.kind} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                           {"group": res.group, "kind": res.kind})
        if meta.get("namespace") not in (None, namespace):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        if meta.get("resourceVersion"):
            raise ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: metadata.resourceVersion: Invalid value: '
                                           f'"{meta["resourceVersion"]}": must be empty on create', {"name": name, "kind": res.kind})
        for key in ("uid", "creationTimestamp", "generation"):
            meta.pop(key, None)
        meta["namespace"] = namespace
        with self.lock:
            if (namespace, name) in self.objects[plural]:
                raise ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', {"name": name, "group": res.group, "kind": res.plural})
            self.validate(plural, obj, name)
            return self.put(plural, obj)

    def remove(self, plural: str, namespace: str, name: str, preconditions: Optional[dict] = None) -> dict:
        """DELETE: 404 if absent, 409 when ``preconditions`` (uid, resourceVersion) do not match; the deleted object."""
        res = RESOURCES[plural]
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        with self.lock:
            old = self.objects[plural].get((namespace, name))
            if old is None:
                raise ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "group": res.group, "kind": res.plural})
            for field in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(field)
                if wanted and wanted != old["metadata"].get(field):
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": Precondition failed: '
                                                    f"{field.capitalize() if field == 'uid' else 'ResourceVersion'} in precondition: "
                                                    f"{wanted}, {field.capitalize() if field == 'uid' else 'ResourceVersion'} in object "
                                                    f"meta: {old['metadata'].get(field)}",
                                   {"name": name, "group": res.group, "kind": res.plural})
            self.resource_version += 1
            return copy.deepcopy(self.objects[plural].pop((namespace, name)))

    def owned(self, plural: str, owner: dict) -> List[dict]:
        uid = owner["metadata"]["uid"]
        items, _rv = self.list(plural, owner["metadata"]["namespace"])
        return [o for o in items if any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences") or [])]

    # -- seeding helpers -----------------------------------------------------
    def add_secret(self, name: str, data: Dict[str, str], namespace: str = NAMESPACE, secret_type: str = "Opaque",
                   labels: Optional[Dict[str, str]] = None, annotations: Optional[Dict[str, str]] = None) -> dict:
        """A Secret with ``data`` given as plain text (stored base64-encoded, as the API server keeps it)."""
        meta: Dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        secret = {"metadata": meta, "type": secret_type,
                  "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}
        with self.lock:
            self.delete("secrets", namespace, name)
            return self.create("secrets", namespace, secret)

    def add_deployment(self, name: str, namespace: str = NAMESPACE, replicas: int = 3,
                       revisions: Optional[List[Dict[str, str]]] = None, ready: Optional[int] = None,
                       change_causes: Optional[List[Optional[str]]] = None, labels: Optional[Dict[str, str]] = None,
                       minutes_between: int = 30) -> dict:
        """A Deployment rolled out through ``revisions`` (container -> image, oldest first).

        Every revision gets a ReplicaSet (old ones scaled to 0); the newest runs
        ``replicas`` pods of which ``ready`` (default: all) pass their readiness probe.
        """
        revisions = revisions or [{"api": f"ghcr.io/trdrhub/{name}:1.0.0"}]
        causes = list(change_causes or []) + [None] * len(revisions)
        first = self.now - datetime.timedelta(minutes=minutes_between * len(revisions))
        dep = {"metadata": {"name": name, "namespace": namespace, "generation": len(revisions),
                            "labels": {"app": name, "app.kubernetes.io/part-of": "trdrhub", **(labels or {})},
                            "annotations": {REVISION: str(len(revisions))},
                            "creationTimestamp": timestamp(first)},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                        "template": _template(name, revisions[-1]), "progressDeadlineSeconds": 600,
                        "strategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
               "status": {}}
        dep = self.put("deployments", dep)
        for number, images in enumerate(revisions, start=1):
            created = first + datetime.timedelta(minutes=minutes_between * (number - 1))
            current = number == len(revisions)
            rs = self.add_replicaset(dep, number, images, replicas if current else 0, created, causes[number - 1])
            if current:
                for index in range(replicas):
                    self.add_pod(rs, index, ready=index < (replicas if ready is None else ready))
        return self.derive_deployment_status(namespace, name)

    def add_replicaset(self, dep: dict, revision: int, images: Dict[str, str], replicas: int,
                       created: datetime.datetime, change_cause: Optional[str] = None) -> dict:
        name = dep["metadata"]["name"]
        pth = hashlib.sha256(json.dumps([name, images], sort_keys=True).encode()).hexdigest()[:10]
        annotations = {REVISION: str(revision)}
        if change_cause:
            annotations[CHANGE_CAUSE] = change_cause
        labels = {"app": name, "pod-template-hash": pth}
        rs = {"metadata": {"name": f"{name}-{pth}", "namespace": dep["metadata"]["namespace"], "labels": labels,
                           "annotations": annotations, "creationTimestamp": timestamp(created),
                           "ownerReferences": [_owner(dep)], "generation": 1},
              "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                       "template": _template(name, images, pth)},
              "status": {"replicas": replicas, "readyReplicas": 0, "availableReplicas": 0, "observedGeneration": 1}}
        return self.put("replicasets", rs)

    def add_pod(self, rs: dict, index: int, ready: bool = True) -> dict:
        meta = rs["metadata"]
        suffix = hashlib.sha256(f"{meta['name']}/{index}".encode()).hexdigest()[:5]
        started = self.now - datetime.timedelta(minutes=20)
        containers = rs["spec"]["template"]["spec"]["containers"]
        statuses = [{"name": c["name"], "image": c["image"], "imageID": f"{c['image']}@sha256:{'ab' * 32}",
                     "ready": ready, "started": True, "restartCount": 0,
                     "state": {"running": {"startedAt": timestamp(started)}}, "lastState": {}} for c in containers]
        pod = {"metadata": {"name": f"{meta['name']}-{suffix}", "namespace": meta["namespace"],
                            "labels": dict(rs["spec"]["template"]["metadata"]["labels"]),
                            "ownerReferences": [_owner(rs)], "creationTimestamp": timestamp(started)},
               "spec": {"nodeName": f"node-{index % 3 + 1}.trdrhub.internal", "containers": copy.deepcopy(containers)},
               "status": {"phase": "Running", "startTime": timestamp(started), "podIP": f"10.42.0.{index + 10}",
                          "conditions": _pod_conditions(ready, started), "containerStatuses": statuses}}
        return self.put("pods", pod)

    def crashloop_pod(self, deployment: str, namespace: str = NAMESPACE, container: str = "api", restarts: int = 7,
                      last_reason: str = "Error", exit_code: int = 1) -> dict:
        """Turn one ready pod of the Deployment's current revision into a crash-looping one.

        ``last_reason="OOMKilled", exit_code=137`` is a container killed for its memory limit.
        """
        with self.lock:
            pod = next(p for p in self._current_pods(namespace, deployment) if _pod_ready(p))
            finished = self.now - datetime.timedelta(seconds=40)
            for cs in pod["status"]["containerStatuses"]:
                if cs["name"] != container:
                    continue
                cs.update(ready=False, started=False, restartCount=restarts, state={"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 5m0s restarting failed container={container} pod={pod['metadata']['name']}"}},
                    lastState={"terminated": {"reason": last_reason, "exitCode": exit_code,
                                              "startedAt": timestamp(finished - datetime.timedelta(seconds=20)),
                                              "finishedAt": timestamp(finished)}})
            pod["status"]["conditions"] = _pod_conditions(False, self.now - datetime.timedelta(minutes=20))
            pod = self.put("pods", pod)
            self.derive_deployment_status(namespace, deployment)
            return pod

    def stall_rollout(self, deployment: str, images: Dict[str, str], namespace: str = NAMESPACE, new_pods: int = 1,
                      waiting_reason: str = "ImagePullBackOff", change_cause: Optional[str] = None) -> dict:
        """Start a rollout to ``images`` whose new pods never become ready, past its progress deadline."""
        with self.lock:
            dep = self.get("deployments", namespace, deployment)
            revision = int(dep["metadata"]["annotations"][REVISION]) + 1
            dep["metadata"]["generation"] += 1
            dep["metadata"]["annotations"][REVISION] = str(revision)
            dep["spec"]["template"] = _template(deployment, images)
            dep = self.put("deployments", dep)
            rs = self.add_replicaset(dep, revision, images, new_pods, self.now - datetime.timedelta(minutes=15),
                                     change_cause)
            for index in range(new_pods):
                pod = self.add_pod(rs, 100 + index, ready=False)
                for cs in pod["status"]["containerStatuses"]:
                    cs.update(started=False, state={"waiting": {
                        "reason": waiting_reason, "message": f'Back-off pulling image "{cs["image"]}"'}})
                pod["status"]["phase"] = "Pending"
                self.put("pods", pod)
            self.stalls[(namespace, deployment)] = {"key": template_key(dep["spec"]["template"]), "deadline": 0,
                                                    "since": 0.0, "exceeded": True}
            return self.derive_deployment_status(namespace, deployment, progress_deadline_exceeded=True)

    def new_replicaset(self, dep: dict, revision: int) -> dict:
        """The ReplicaSet a Deployment controller creates for the Deployment's current template (0 replicas)."""
        template = copy.deepcopy(dep["spec"]["template"])
        pth = hashlib.sha256(template_key(template).encode()).hexdigest()[:10]
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pth
        labels = dict(template["metadata"]["labels"])
        annotations = {REVISION: str(revision)}
        cause = (dep["metadata"].get("annotations") or {}).get(CHANGE_CAUSE)
        if cause:
            annotations[CHANGE_CAUSE] = cause
        rs = {"metadata": {"name": f"{dep['metadata']['name']}-{pth}", "namespace": dep["metadata"]["namespace"],
                           "labels": labels, "annotations": annotations, "ownerReferences": [_owner(dep)], "generation": 1,
                           "creationTimestamp": timestamp(datetime.datetime.now(UTC))},
              "spec": {"replicas": 0, "selector": {"matchLabels": dict(labels)}, "template": template},
              "status": {"replicas": 0, "observedGeneration": 1}}
        return self.put("replicasets", rs)

    def derive_deployment_status(self, namespace: str, name: str, progress_deadline_exceeded: Optional[bool] = None) -> dict:
        """Recompute the status of a Deployment and its ReplicaSets from their pods.

        ``progress_deadline_exceeded`` stays as it was unless given (time does not pass here).
        """
        with self.lock:
            dep = self.get("deployments", namespace, name)
            revision = dep["metadata"]["annotations"].get(REVISION)
            total = updated = ready = 0
            new_rs = ""
            replicasets = self.owned("replicasets", dep)
            key = template_key(dep["spec"]["template"])
            by_key = [rs for rs in replicasets if template_key(rs["spec"]["template"]) == key]
            # The new ReplicaSet is the one with the Deployment's template (none while a paused
            # Deployment's template change is pending), else the one of its revision annotation.
            newest = by_key[0] if by_key else None
            if newest is None and not dep["spec"].get("paused"):
                newest = next((rs for rs in replicasets if rs["metadata"]["annotations"].get(REVISION) == revision), None)
            for rs in replicasets:
                pods = [p for p in self.owned("pods", rs) if not p["metadata"].get("deletionTimestamp")]
                rs_ready = sum(1 for p in pods if _pod_ready(p))
                before = copy.deepcopy(rs["status"])
                rs["status"].update(replicas=len(pods), readyReplicas=rs_ready, availableReplicas=rs_ready,
                                    fullyLabeledReplicas=len(pods))
                if rs["status"] != before:
                    self.put("replicasets", rs)
                total += len(pods)
                ready += rs_ready
                if newest is not None and rs["metadata"]["uid"] == newest["metadata"]["uid"]:
                    updated = len(pods)
                    new_rs = rs["metadata"]["name"]
            replicas = dep["spec"]["replicas"]
            max_unavailable = replicas * 25 // 100
            old = {c["type"]: c for c in dep["status"].get("conditions") or []}
            stamp = timestamp(self.now)
            available = {"type": "Available", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
            if ready >= replicas - max_unavailable:
                available.update(status="True", reason="MinimumReplicasAvailable", message="Deployment has minimum availability.")
            else:
                available.update(status="False", reason="MinimumReplicasUnavailable",
                                 message="Deployment does not have minimum availability.")
            exceeded = progress_deadline_exceeded
            if exceeded is None:
                exceeded = (old.get("Progressing") or {}).get("reason") == "ProgressDeadlineExceeded"
            progressing = {"type": "Progressing", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
            if dep["spec"].get("paused"):
                progressing.update(status="Unknown", reason="DeploymentPaused", message="Deployment is paused")
            elif exceeded:
                progressing.update(status="False", reason="ProgressDeadlineExceeded",
                                   message=f'ReplicaSet "{new_rs}" has timed out progressing.')
            elif updated == replicas and total == updated and ready == replicas:
                progressing.update(status="True", reason="NewReplicaSetAvailable",
                                   message=f'ReplicaSet "{new_rs}" has successfully progressed.')
            else:
                progressing.update(status="True", reason="ReplicaSetUpdated", message=f'ReplicaSet "{new_rs}" is progressing.')
            status = {"observedGeneration": dep["metadata"]["generation"], "replicas": total,
                      "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                      "unavailableReplicas": max(total - ready, replicas - ready, 0),
                      "conditions": [available, progressing]}
            for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
                if not status[field]:
                    del status[field]  # the API server omits zero counts
            if status == dep.get("status"):
                return dep   # unchanged: no write, no new resourceVersion
            dep["status"] = status
            return self.put("deployments", dep)

    def _current_pods(self, namespace: str, deployment: str) -> List[dict]:
        dep = self.get("deployments", namespace, deployment)
        revision = dep["metadata"]["annotations"].get(REVISION)
        for rs in self.owned("replicasets", dep):
            if rs["metadata"]["annotations"].get(REVISION) == revision:
                return self.owned("pods", rs)
        return []


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def template_key(template: dict) -> str:
    """A pod template without its pod-template-hash label, as comparable text (how the controller matches ReplicaSets).

    Null fields do not count: kubectl's ``rollout undo`` copies a ReplicaSet's template back with
    ``metadata.creationTimestamp: null``, and the real controller still finds that ReplicaSet.
    """
    template = _without_nulls(copy.deepcopy(template or {}))
    (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    return json.dumps(template, sort_keys=True)


def _validate_deployment(dep: dict, name: str) -> None:
    spec = dep.get("spec") or {}
    problems = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        problems.append(f"spec.replicas: Invalid value: {replicas!r}: must be greater than or equal to 0")
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if not containers or any(not isinstance(c, dict) or not c.get("name") or not c.get("image") for c in containers):
        problems.append("spec.template.spec.containers: Required value: every container needs a name and an image")
    if problems:
        raise ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: {"; ".join(problems)}',
                       {"name": name, "group": "apps", "kind": "Deployment"})


def _normalize_secret(secret: dict, name: str, old: Optional[dict] = None) -> None:
    """As the API server stores a Secret: ``stringData`` folded into ``data`` (base64), every ``data`` value valid base64.

    Invalid base64 cannot be decoded into the Secret at all (400); a bad key, a changed ``type`` or a
    change of an immutable Secret is invalid (422).
    """
    data = secret.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: data: expected a map')
    for key, value in data.items():
        if not isinstance(value, str):
            raise ApiError(400, "BadRequest", f'Secret in version "v1" cannot be handled as a Secret: data[{key}]: '
                                              "expected a base64 string")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                                              f"in data[{key}]") from None
    string_data = secret.pop("stringData", None) or {}
    if not isinstance(string_data, dict) or any(not isinstance(v, str) for v in string_data.values()):
        raise ApiError(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: stringData: expected a map of strings')
    data = dict(data, **{key: base64.b64encode(value.encode()).decode() for key, value in string_data.items()})
    problems = [f"data[{key}]: Invalid value: {key!r}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
                for key in data if not SECRET_KEY.match(key)]
    secret.setdefault("type", (old or {}).get("type") or "Opaque")
    if old is not None and secret["type"] != old.get("type", "Opaque"):
        problems.append("type: Invalid value: field is immutable")
    if old is not None and old.get("immutable") and (data != (old.get("data") or {}) or not secret.get("immutable")):
        problems.append("data: Forbidden: field is immutable when `immutable` is set")
    if problems:
        raise ApiError(422, "Invalid", f'Secret "{name}" is invalid: {"; ".join(problems)}', {"name": name, "kind": "Secret"})
    if data:
        secret["data"] = data
    else:
        secret.pop("data", None)


def _owner(obj: dict) -> dict:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def _template(name: str, images: Dict[str, str], pod_template_hash: Optional[str] = None) -> dict:
    labels = {"app": name}
    if pod_template_hash:
        labels["pod-template-hash"] = pod_template_hash
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": c, "image": image, "resources": {"limits": {"memory": "512Mi"}}}
                                    for c, image in images.items()]}}


def _pod_conditions(ready: bool, since: datetime.datetime) -> List[dict]:
    stamp = timestamp(since)
    flag = "True" if ready else "False"
    conds = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
             {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
             {"type": "ContainersReady", "status": flag, "lastTransitionTime": stamp},
             {"type": "Ready", "status": flag, "lastTransitionTime": stamp}]
    if not ready:
        for cond in conds[2:]:
            cond["reason"] = "ContainersNotReady"
    return conds


def _pod_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def status_object(code: int, reason: str, message: str, details: Optional[dict] = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Optional[dict] = None) -> None:
        super().__init__(message)
        self.status = status_object(code, reason, message, details)


@dataclass
class Call:
    """One API request as a route handler sees it."""

    method: str
    namespace: Optional[str]
    res: Resource
    name: Optional[str]
    query: dict
    body: Any = None
    content_type: Optional[str] = None
    user: str = "-"
    accept: str = ""


_WRITE_PARAMS = {"pretty", "dryRun", "fieldManager", "fieldValidation"}
_DELETE_PARAMS = {"gracePeriodSeconds", "propagationPolicy", "orphanDependents"}
_LIST_PARAMS = {"labelSelector", "fieldSelector", "pretty", "timeoutSeconds", "resourceVersion", "resourceVersionMatch",
                "allowWatchBookmarks", "limit", "continue", "watch", "sendInitialEvents", "includeObject"}


class K8sApiServer:
    """The HTTP(S) front of a ``ClusterState`` on a free loopback port, in a background thread.

    ``tokens`` maps accepted bearer tokens to user names; ``forbidden_tokens`` are
    valid tokens of a user without any RBAC permission on resources (403);
    ``read_only_tokens`` may get and list but nothing else (403 on writes).
    With ``controller`` (default) a simulated Deployment controller runs while the
    server does.
    """

    def __init__(self, state: Optional[ClusterState] = None, tls: bool = False,
                 tokens: Optional[Dict[str, str]] = None, forbidden_tokens: Optional[Dict[str, str]] = None,
                 read_only_tokens: Optional[Dict[str, str]] = None, controller: bool = True) -> None:
        self.state = state or ClusterState()
        self.tls = tls
        self.token = "itest-k8s-" + uuid.uuid4().hex
        self.tokens = dict(tokens) if tokens is not None else {self.token: "system:serviceaccount:trdrhub-system:oncall"}
        self.forbidden_tokens = dict(forbidden_tokens or {})
        self.forbidden_token: Optional[str] = next(iter(self.forbidden_tokens), None)
        self.read_only_tokens = dict(read_only_tokens or {})
        self.requests: List[Tuple[str, str, str]] = []  # (method, path with query, user or "-")
        self.request_bodies: List[Tuple[str, str, str]] = []  # (method, path with query, body) of requests with a body
        self.workdir = Path(tempfile.mkdtemp(prefix="trdrhub-k8sapi-"))
        self.ca_path: Optional[Path] = None
        self.routes: Dict[Tuple[str, str], Callable[[Call], dict]] = {
            ("GET", "collection"): self._list,
            ("GET", "object"): self._get,
            ("PUT", "object"): self._replace,
            ("PATCH", "object"): self._patch,
            ("POST", "collection"): self._create,
            ("DELETE", "object"): self._delete,
            ("GET", "scale"): self._get_scale,
            ("PUT", "scale"): self._replace_scale,
            ("PATCH", "scale"): self._patch_scale,
            ("GET", "log"): lambda call: k8slogs.pod_log(self.state, call),   # text/plain, see k8slogs.py
        }
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.serving = False  # watches end when it turns False
        self.controller = DeploymentController(self.state) if controller else None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "K8sApiServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        if self.tls:
            ca = TestCA("trdrhub k8s double CA")
            ca.ca.write(self.workdir, "ca")
            server = ca.issue("localhost", ("localhost", "127.0.0.1")).write(self.workdir, "server")
            self.ca_path = ca.ca.cert_path
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(server.cert_path), str(server.key_path))
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="k8s-api-double", daemon=True)
        self.serving = True
        self._thread.start()
        if self.controller is not None:
            self.controller.start()
        return self

    def stop(self) -> None:
        self.serving = False
        if self.controller is not None:
            self.controller.stop()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "K8sApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path, token: Optional[str] = None, context: str = "trdrhub-double",
                         namespace: str = NAMESPACE, extra_contexts: Optional[Dict[str, str]] = None,
                         current: bool = True) -> Path:
        """A kubeconfig for this server; ``extra_contexts`` maps more context names to their tokens."""
        path = Path(path)
        cluster: Dict[str, Any] = {"server": self.url}
        if self.ca_path is not None:
            cluster["certificate-authority"] = str(self.ca_path)
        contexts = {context: token or self.token, **(extra_contexts or {})}
        config = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                  "clusters": [{"name": "double", "cluster": cluster}],
                  "users": [{"name": f"user-{name}", "user": {"token": tok}} for name, tok in contexts.items()],
                  "contexts": [{"name": name, "context": {"cluster": "double", "user": f"user-{name}", "namespace": namespace}}
                               for name in contexts]}
        if current:
            config["current-context"] = context
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        path.chmod(0o600)
        return path

    # -- request handling ----------------------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes = b"") -> Tuple[int, dict]:
        parts = urlsplit(raw_path)
        path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query, keep_blank_values=True)
        # ``timeout`` bounds the request on the server (kubectl's --request-timeout sends it with every call).
        query.pop("timeout", None)
        user, forbidden = self._authenticate(headers.get("Authorization"))
        self.requests.append((method, raw_path, user or "-"))
        if body:
            self.request_bodies.append((method, raw_path, body.decode("utf-8", "replace")))
        read_only = user is not None and self._token(headers.get("Authorization")) in self.read_only_tokens
        try:
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            discovery = self._discovery(path)
            if discovery is not None:
                if method != "GET":
                    raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {path}")
                return 200, discovery
            shape, namespace, res, name = self._route(path)
            subresource = shape if shape not in ("collection", "object") else None
            if subresource is not None and subresource not in res.subresources:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            watching = shape == "collection" and method == "GET" and query.get("watch", [""])[0] in ("1", "true")
            verb = ("watch" if watching else "list" if shape == "collection" else "get") if method == "GET" else \
                {"PUT": "update", "POST": "create"}.get(method, method.lower())
            if forbidden or (read_only and verb not in ("get", "list", "watch")):
                raise self._forbidden(user, verb, res, namespace, name, subresource)
            handler = self.routes.get((method, shape))
            if handler is None or (shape in ("object", "collection") and verb not in res.verbs):
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource "
                                                        f"({method} {res.plural})")
            call = Call(method, namespace, res, name, query, user=user, accept=headers.get("Accept") or "")
            if method in ("PUT", "PATCH", "POST", "DELETE"):
                call.content_type = headers.get("Content-Type")
                try:
                    call.body = json.loads(body or b"null")
                except ValueError:
                    raise ApiError(400, "BadRequest", "the body of the request is not JSON") from None
            return 200, handler(call)
        except ApiError as exc:
            return exc.status["code"], exc.status

    @staticmethod
    def _token(header: Optional[str]) -> Optional[str]:
        return header[7:].strip() if header and header[:7].lower() == "bearer " else None

    def _authenticate(self, header: Optional[str]) -> Tuple[Optional[str], bool]:
        token = self._token(header)
        if token in self.tokens:
            return self.tokens[token], False
        if token in self.read_only_tokens:
            return self.read_only_tokens[token], False
        if token in self.forbidden_tokens:
            return self.forbidden_tokens[token], True
        return None, False

    @staticmethod
    def _forbidden(user: str, verb: str, res: Resource, namespace: Optional[str], name: Optional[str],
                   subresource: Optional[str] = None) -> ApiError:
        what = f"{res.plural}.{res.group}" if res.group else res.plural
        quoted = f' "{name}"' if name else ""
        scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        plural = f"{res.plural}/{subresource}" if subresource else res.plural
        return ApiError(403, "Forbidden", f'{what}{quoted} is forbidden: User "{user}" cannot {verb} resource '
                                          f'"{plural}" in API group "{res.group}"{scope}',
                        {"name": name, "group": res.group, "kind": res.plural} if name else {"group": res.group, "kind": res.plural})

    def _discovery(self, path: str) -> Optional[dict]:
        groups: Dict[str, List[Resource]] = {}
        for res in RESOURCES.values():
            groups.setdefault(res.group_version, []).append(res)
        if path == "/version":
            return dict(SERVER_VERSION)
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in sorted(groups) if "/" in gv]}
        for gv, members in groups.items():
            if path == members[0].prefix:
                resources = []
                for r in members:
                    entry = {"name": r.plural, "singularName": r.kind.lower(), "namespaced": True, "kind": r.kind,
                             "verbs": list(r.verbs)}
                    if r.plural in SHORT_NAMES:   # as a real server lists them: kubectl get deploy,rs,po; get all
                        entry["shortNames"] = list(SHORT_NAMES[r.plural])
                        entry["categories"] = ["all"]
                    resources.append(entry)
                    resources += [{"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": True,
                                   "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
                                  if sub == "scale" else
                                  {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": True, "kind": r.kind, "verbs": ["get"]}
                                  for sub in r.subresources]
                return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
        return None

    @staticmethod
    def _route(path: str) -> Tuple[str, Optional[str], Resource, Optional[str]]:
        """(shape, namespace, resource, name) of a resource path; 404 for anything else."""
        for res in RESOURCES.values():
            if not path.startswith(res.prefix + "/"):
                continue
            rest = [unquote(p) for p in path[len(res.prefix) + 1:].split("/")]
            namespace = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                namespace, rest = rest[1], rest[2:]
            if rest[0] != res.plural:
                continue
            if len(rest) == 1:
                return "collection", namespace, res, None
            if len(rest) == 2 and namespace is not None:
                return "object", namespace, res, rest[1]
            if len(rest) == 3 and namespace is not None:
                return rest[2], namespace, res, rest[1]  # a subresource: served once a route exists for it
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def _list(self, call: Call) -> Any:
        namespace, res, query = call.namespace, call.res, call.query
        unsupported = sorted(set(query) - _LIST_PARAMS)
        if unsupported:
            raise ApiError(400, "BadRequest", f"the Kubernetes API double does not support {', '.join(unsupported)}")
        try:
            fields = parse_field_selector((query.get("fieldSelector") or [""])[0])
            items, rv = self.state.list(res.plural, namespace, (query.get("labelSelector") or [""])[0])
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {exc}") from None
        items = [item for item in items if all(p(item) for p in fields)]
        if query.get("watch", [""])[0] in ("1", "true"):
            since = (query.get("resourceVersion") or ["0"])[0] or "0"
            timeout = float((query.get("timeoutSeconds") or ["1800"])[0] or 1800)
            return Watch(self, res, namespace, (query.get("labelSelector") or [""])[0], fields,
                         int(since) if since.isdigit() else 0, min(timeout, 1800.0))
        for item in items:  # list items carry no kind/apiVersion, as from a real API server
            item.pop("kind", None)
            item.pop("apiVersion", None)
        metadata: Dict[str, Any] = {"resourceVersion": rv}
        # Chunking (kubectl lists with limit=500): ``continue`` is an opaque token, here the offset.
        offset = 0
        if query.get("continue", [""])[0]:
            try:
                offset = int(base64.urlsafe_b64decode(query["continue"][0].encode()).decode())
            except (binascii.Error, ValueError):
                raise ApiError(400, "BadRequest", "the provided continue parameter is too old to display a consistent "
                                                  "list result") from None
        items = items[offset:]
        limit = query.get("limit", ["0"])[0]
        if not limit.isdigit():
            raise ApiError(400, "BadRequest", f"limit: invalid value {limit!r}")
        if int(limit) and len(items) > int(limit):
            items = items[:int(limit)]
            metadata["continue"] = base64.urlsafe_b64encode(str(offset + int(limit)).encode()).decode()
            metadata["remainingItemCount"] = len(self.state.list(res.plural, namespace, (query.get("labelSelector") or [""])[0])[0]) \
                - offset - int(limit)
        if "as=Table" in call.accept:
            return table(res, items, metadata, datetime.datetime.now(UTC), (query.get("includeObject") or ["Metadata"])[0])
        return {"kind": f"{res.kind}List", "apiVersion": res.group_version, "metadata": metadata, "items": items}

    def _get(self, call: Call) -> dict:
        res, name = call.res, call.name
        obj = self.state.get(res.plural, call.namespace or "", name or "")
        if obj is None:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise ApiError(404, "NotFound", f'{what} "{name}" not found', {"name": name, "group": res.group, "kind": res.plural})
        if "as=Table" in call.accept:
            return table(res, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]}, datetime.datetime.now(UTC),
                         (call.query.get("includeObject") or ["Metadata"])[0])
        return obj

    @staticmethod
    def _write_params(call: Call) -> None:
        unsupported = sorted(set(call.query) - _WRITE_PARAMS)
        if unsupported or "dryRun" in call.query:
            raise ApiError(400, "BadRequest", f"the Kubernetes API double does not support {', '.join(unsupported or ['dryRun'])}")

    def _replace(self, call: Call) -> dict:
        self._write_params(call)
        if not isinstance(call.body, dict) or call.body.get("kind") not in (None, call.res.kind):
            raise ApiError(400, "BadRequest", f"the body of the request must be a {call.res.kind}")
        return self.state.update(call.res.plural, call.namespace or "", call.name or "", call.body)

    def _patch(self, call: Call) -> dict:
        self._write_params(call)
        return self.state.patch(call.res.plural, call.namespace or "", call.name or "", call.content_type, call.body)

    def _create(self, call: Call) -> dict:
        self._write_params(call)
        if call.namespace is None:
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource (POST {call.res.plural})")
        if not isinstance(call.body, dict) or call.body.get("kind") not in (None, call.res.kind):
            raise ApiError(400, "BadRequest", f"the body of the request must be a {call.res.kind}")
        return self.state.create(call.res.plural, call.namespace, call.body)

    def _delete(self, call: Call) -> dict:
        unsupported = sorted(set(call.query) - _WRITE_PARAMS - _DELETE_PARAMS)
        if unsupported or "dryRun" in call.query:
            raise ApiError(400, "BadRequest", f"the Kubernetes API double does not support {', '.join(unsupported or ['dryRun'])}")
        options = call.body if isinstance(call.body, dict) else {}
        gone = self.state.remove(call.res.plural, call.namespace or "", call.name or "", options.get("preconditions"))
        # Objects without finalizers are gone at once: the API server answers with a success Status.
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": call.name, "group": call.res.group, "kind": call.res.plural, "uid": gone["metadata"]["uid"]}}

    def _get_scale(self, call: Call) -> dict:
        return _scale_of(self._get(call))

    def _replace_scale(self, call: Call) -> dict:
        self._write_params(call)
        return self._store_scale(call, call.body)

    def _patch_scale(self, call: Call) -> dict:
        self._write_params(call)
        with self.state.lock:
            try:
                scale = apply_patch(call.content_type, self._get_scale(call), call.body)
            except LookupError:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format") from None
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from None
            return self._store_scale(call, scale)

    def _store_scale(self, call: Call, scale: Any) -> dict:
        """Scale (PUT or patched) -> the Deployment's spec.replicas, with its resourceVersion as precondition."""
        if not isinstance(scale, dict) or not isinstance(scale.get("spec"), dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a Scale")
        with self.state.lock:
            dep = self._get(call)
            replicas = scale["spec"].get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{call.name}" is invalid: spec.replicas: Invalid value: '
                                               f"{replicas!r}: must be greater than or equal to 0")
            dep["metadata"]["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion") or dep["metadata"]["resourceVersion"]
            dep["spec"]["replicas"] = replicas
            return _scale_of(self.state.update(call.res.plural, call.namespace or "", call.name or "", dep))


def _scale_of(dep: dict) -> dict:
    meta = dep["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if key in meta},
            "spec": {"replicas": dep["spec"].get("replicas", 1)},
            "status": {"replicas": (dep.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(((dep["spec"].get("selector") or {}).get("matchLabels") or {}).items()))}}


class Watch:
    """A watch on one resource's collection: the events after ``since``, as a real API server sends them.

    Objects changed after ``since`` come as ``ADDED`` (not seen before by this watch) or
    ``MODIFIED``; an object that disappears, or stops matching the selectors, as ``DELETED``.
    The state is polled under its lock; the watch ends after ``timeout`` seconds or when the
    server stops.
    """

    POLL = 0.1

    def __init__(self, server: "K8sApiServer", res: Resource, namespace: Optional[str], labels: str,
                 fields: List[Callable[[dict], bool]], since: int, timeout: float) -> None:
        self.server, self.res, self.namespace, self.labels, self.fields = server, res, namespace, labels, fields
        self.since, self.timeout = since, timeout

    def _matching(self) -> Dict[Tuple[str, str], dict]:
        items, _rv = self.server.state.list(self.res.plural, self.namespace, self.labels)
        return {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in items if all(p(i) for p in self.fields)}

    def events(self):
        deadline = time.monotonic() + self.timeout
        current = self._matching()
        # Objects at or before ``since`` are known to the client already; newer ones are sent.
        known = {key: obj for key, obj in current.items() if int(obj["metadata"]["resourceVersion"]) <= self.since} \
            if self.since else {}
        sent_rv = {key: int(obj["metadata"]["resourceVersion"]) for key, obj in known.items()}
        while time.monotonic() < deadline and self.server.serving:
            current = self._matching()
            for key, obj in sorted(current.items(), key=lambda kv: int(kv[1]["metadata"]["resourceVersion"])):
                rv = int(obj["metadata"]["resourceVersion"])
                if rv > self.since and rv != sent_rv.get(key):
                    kind = "MODIFIED" if key in sent_rv else "ADDED"
                    sent_rv[key] = rv
                    yield {"type": kind, "object": {**obj, "kind": self.res.kind, "apiVersion": self.res.group_version}}
            for key in [k for k in sent_rv if k not in current]:
                del sent_rv[key]
                with self.server.state.lock:
                    self.server.state.resource_version += 1
                    rv = str(self.server.state.resource_version)
                yield {"type": "DELETED", "object": {"kind": self.res.kind, "apiVersion": self.res.group_version,
                                                     "metadata": {"namespace": key[0], "name": key[1], "resourceVersion": rv}}}
            time.sleep(self.POLL)


def _age(created: Optional[str], now: datetime.datetime) -> str:
    """kubectl's short age (``45s``, ``12m``, ``3h``, ``2d``)."""
    if not created:
        return "<unknown>"
    seconds = max(0, int((now - datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _pod_cells(pod: dict) -> List[Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = (pod.get("status") or {}).get("phase") or "Unknown"
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [f"{ready}/{len(containers) or len(statuses)}", reason, restarts]


TABLE_COLUMNS: Dict[str, List[Tuple[str, str]]] = {
    "pods": [("Ready", "string"), ("Status", "string"), ("Restarts", "string")],
    "deployments": [("Ready", "string"), ("Up-to-date", "string"), ("Available", "string")],
    "replicasets": [("Desired", "integer"), ("Current", "integer"), ("Ready", "integer")],
    "secrets": [("Type", "string"), ("Data", "string")],
}


def _cells(plural: str, obj: dict) -> List[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if plural == "pods":
        return _pod_cells(obj)
    if plural == "deployments":
        return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
                status.get("availableReplicas", 0)]
    if plural == "replicasets":
        return [spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0)]
    return [obj.get("type", "Opaque"), len(obj.get("data") or {})]


def table(res: Resource, items: List[dict], metadata: dict, now: datetime.datetime, include: str) -> dict:
    """The ``meta.k8s.io/v1`` Table a real API server answers to ``Accept: ...;as=Table``."""
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}]
    columns += [{"name": name, "type": kind, "format": "", "description": name, "priority": 0}
                for name, kind in TABLE_COLUMNS[res.plural]]
    columns.append({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0})
    rows = []
    for obj in items:
        full = {**obj, "kind": res.kind, "apiVersion": res.group_version}
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": [obj["metadata"]["name"], *_cells(res.plural, obj), _age(obj["metadata"].get("creationTimestamp"), now)],
                     "object": full if include == "Object" else None if include == "None" else partial})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows}


def _handler_for(server: K8sApiServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "trdrhub-k8s-double"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            code, body = server.handle(self.command, self.path, self.headers, payload)
            if isinstance(body, Watch):
                return self._stream(body)
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()   # a log is plain text
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, watch: "Watch") -> None:
            """A watch: chunked JSON lines, one event each, until the watch ends or the client goes."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.end_headers()
            try:
                for event in watch.events():
                    data = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                pass
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format, *args) -> None:  # noqa: A002 - signature of the base class
            pass

    return Handler


from . import k8slogs  # noqa: E402 - the log handler works on ClusterState defined above
from .k8scontroller import DeploymentController  # noqa: E402 - the controller works on ClusterState defined above
