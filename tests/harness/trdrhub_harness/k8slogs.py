"""Container logs for the Kubernetes API double: ``GET /api/v1/namespaces/{ns}/pods/{name}/log``.

Answers as a real API server does (``kubectl logs`` and ``CoreV1Api.read_namespaced_pod_log``
are checked against it in tests/harness/tests/test_k8s_double_logs.py): plain text, the last
``tailLines`` lines, at most ``limitBytes`` bytes, ``timestamps=true`` prefixing each line with
its RFC 3339 time; a pod with several containers needs ``container``; an unknown container, a
container still waiting to start, or ``previous=true`` without a terminated instance are 400s
with the API server's wording; an unknown pod is a 404.

Logs are written with ``write_log``; a running container nobody wrote a log for answers a few
start-up lines, as a freshly started application would.
"""
from __future__ import annotations

import datetime
from typing import List, Optional, Tuple

from .k8sapi import NAMESPACE, UTC, ApiError, ClusterState

_LOG_PARAMS = {"container", "tailLines", "limitBytes", "timestamps", "previous", "sinceSeconds", "pretty", "follow",
               "timeout"}   # kubectl --request-timeout sends timeout with every call


def write_log(state: ClusterState, pod: str, lines: List[str], container: Optional[str] = None, namespace: str = NAMESPACE,
              previous: bool = False, start: Optional[datetime.datetime] = None) -> None:
    """Set the log of a container (the pod's first container by default), one second between lines."""
    obj = state.get("pods", namespace, pod)
    if obj is None:
        raise KeyError(f"no pod {namespace}/{pod}")
    name = container or obj["spec"]["containers"][0]["name"]
    start = start or state.now - datetime.timedelta(seconds=len(lines))
    with state.lock:
        state.pod_logs[(namespace, pod, name, previous)] = [(start + datetime.timedelta(seconds=i), line)
                                                            for i, line in enumerate(lines)]


def _default_log(pod: dict, container: dict, started: datetime.datetime) -> List[Tuple[datetime.datetime, str]]:
    lines = [f"INFO Started server process for {pod['metadata']['name']} (image {container.get('image')})",
             "INFO Waiting for application startup.", "INFO Application startup complete.",
             'INFO 10.42.0.1:51234 - "GET /health/live HTTP/1.1" 200',
             'INFO 10.42.0.1:51236 - "GET /health/ready HTTP/1.1" 200']
    return [(started + datetime.timedelta(seconds=i), line) for i, line in enumerate(lines)]


def _flag(query: dict, name: str) -> bool:
    value = (query.get(name) or ["false"])[0].lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, "BadRequest", f'strconv.ParseBool: parsing "{value}": invalid syntax')
    return value in ("true", "1")


def _int(query: dict, name: str) -> Optional[int]:
    if name not in query:
        return None
    value = query[name][0]
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def pod_log(state: ClusterState, call) -> str:
    """The handler of ("GET", "log")."""
    query, namespace, name = call.query, call.namespace or "", call.name or ""
    unsupported = sorted(set(query) - _LOG_PARAMS)
    if unsupported:
        raise ApiError(400, "BadRequest", f"the Kubernetes API double does not support {', '.join(unsupported)}")
    if _flag(query, "follow"):
        raise ApiError(400, "BadRequest", "the Kubernetes API double does not support follow")
    tail, limit, since = _int(query, "tailLines"), _int(query, "limitBytes"), _int(query, "sinceSeconds")
    if limit is not None and limit < 1:
        raise ApiError(422, "Invalid", f"PodLogOptions \"\" is invalid: limitBytes: Invalid value: {limit}: must be greater than 0")
    if since is not None and since < 1:
        raise ApiError(422, "Invalid", f"PodLogOptions \"\" is invalid: sinceSeconds: Invalid value: {since}: must be greater than 0")
    if tail is not None and tail < 0:
        raise ApiError(422, "Invalid", f"PodLogOptions \"\" is invalid: tailLines: Invalid value: {tail}: must be greater than or "
                                       "equal to 0")
    pod = state.get("pods", namespace, name)
    if pod is None:
        raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
    containers = pod["spec"].get("containers") or []
    names = [c["name"] for c in containers]
    container = (query.get("container") or [""])[0]
    if not container:
        if len(names) != 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                                              f"[{' '.join(names)}]")
        container = names[0]
    if container not in names:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    status = next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s.get("name") == container), {})
    previous = _flag(query, "previous")
    waiting = (status.get("state") or {}).get("waiting")
    if previous and not (status.get("lastState") or {}).get("terminated"):
        raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
    if waiting and not previous and (waiting.get("reason") in ("ContainerCreating", "PodInitializing")
                                     or not status.get("restartCount")):
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: '
                                          f"{waiting.get('reason') or 'ContainerCreating'}")
    with state.lock:
        lines = list(state.pod_logs.get((namespace, name, container, previous)) or [])
    if not lines and not previous:
        started = datetime.datetime.strptime(pod["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        lines = _default_log(pod, next(c for c in containers if c["name"] == container), started)
    if since is not None:
        lines = [(when, text) for when, text in lines if when >= state.now - datetime.timedelta(seconds=since)]
    if tail is not None:
        lines = lines[len(lines) - tail:] if tail else []
    stamp = _flag(query, "timestamps")
    text = "".join(f"{when.strftime('%Y-%m-%dT%H:%M:%S.%f000Z') + ' ' if stamp else ''}{line}\n" for when, line in lines)
    if limit is not None:
        text = text.encode()[:limit].decode("utf-8", "ignore")
    return text
