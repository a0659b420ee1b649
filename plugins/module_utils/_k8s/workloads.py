# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Deployments, their ReplicaSet revisions and pods, shaped for incident triage.

Everything here works on the API server's JSON (plain dicts), so it is tested
without a cluster. The rollout logic follows ``kubectl rollout status`` and the
revision history ``kubectl rollout history``: a Deployment's revisions are the
ReplicaSets it owns, numbered by their ``deployment.kubernetes.io/revision``
annotation.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sClient,
    K8sNotFoundError,
    selector_text,
)

REVISION = 'deployment.kubernetes.io/revision'
CHANGE_CAUSE = 'kubernetes.io/change-cause'
TIMED_OUT = 'ProgressDeadlineExceeded'
# Waiting reasons that are part of a normal start, not a problem.
STARTING = ('ContainerCreating', 'PodInitializing')


def _int(value: t.Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def revision_of(obj: dict[str, t.Any]) -> int | None:
    value = ((obj.get('metadata') or {}).get('annotations') or {}).get(REVISION)
    return _int(value, -1) if value is not None and _int(value, -1) >= 0 else None


def images_of(template: dict[str, t.Any] | None) -> dict[str, str]:
    """Container name -> image of a pod template (init containers excluded)."""
    spec = ((template or {}).get('spec') or {})
    return {c.get('name'): c.get('image') for c in spec.get('containers') or []}


def owned_by(obj: dict[str, t.Any], owner: dict[str, t.Any]) -> bool:
    """Whether ``owner`` is the controller of ``obj`` (by uid; by kind and name when uids are absent)."""
    meta = owner.get('metadata') or {}
    for ref in (obj.get('metadata') or {}).get('ownerReferences') or []:
        if meta.get('uid') and ref.get('uid'):
            if ref['uid'] == meta['uid']:
                return True
        elif ref.get('kind') == owner.get('kind') and ref.get('name') == meta.get('name'):
            return True
    return False


def condition(status: dict[str, t.Any], kind: str) -> dict[str, t.Any] | None:
    for cond in status.get('conditions') or []:
        if cond.get('type') == kind:
            return cond
    return None


def rollout_status(dep: dict[str, t.Any]) -> tuple[bool, str, bool]:
    """(complete, message, deadline_exceeded), decided the way ``kubectl rollout status`` decides."""
    meta, spec, status = dep.get('metadata') or {}, dep.get('spec') or {}, dep.get('status') or {}
    generation, observed = _int(meta.get('generation')), _int(status.get('observedGeneration'))
    if generation > observed:
        return False, f'waiting for the controller to observe the new spec (generation {generation}, observed {observed})', False
    progressing = condition(status, 'Progressing')
    if progressing and progressing.get('reason') == TIMED_OUT:
        return False, f"rollout exceeded its progress deadline: {progressing.get('message') or TIMED_OUT}", True
    replicas = _int(spec.get('replicas'), 1)
    updated, current = _int(status.get('updatedReplicas')), _int(status.get('replicas'))
    available = _int(status.get('availableReplicas'))
    if updated < replicas:
        return False, f'rollout in progress: {updated} out of {replicas} new replicas have been updated', False
    if current > updated:
        return False, f'rollout in progress: {current - updated} old replicas are pending termination', False
    if available < updated:
        return False, f'rollout in progress: {available} of {updated} updated replicas are available', False
    return True, 'successfully rolled out', False


def condition_view(cond: dict[str, t.Any]) -> dict[str, t.Any]:
    return {key: cond.get(key) for key in ('type', 'status', 'reason', 'message', 'lastUpdateTime', 'lastTransitionTime')}


def history_view(rs: dict[str, t.Any], current_revision: int | None) -> dict[str, t.Any]:
    meta, spec, status = rs.get('metadata') or {}, rs.get('spec') or {}, rs.get('status') or {}
    revision = revision_of(rs)
    return {
        'revision': revision,
        'replicaset': meta.get('name'),
        'created': meta.get('creationTimestamp'),
        'images': images_of(spec.get('template')),
        'change_cause': (meta.get('annotations') or {}).get(CHANGE_CAUSE),
        'replicas': _int(spec.get('replicas')),
        'ready_replicas': _int(status.get('readyReplicas')),
        'current': revision is not None and revision == current_revision,
    }


def revision_history(dep: dict[str, t.Any], replicasets: list[dict[str, t.Any]], limit: int) -> list[dict[str, t.Any]]:
    """The newest ``limit`` revisions of the Deployment, newest first."""
    current = revision_of(dep)
    owned = [history_view(rs, current) for rs in replicasets if owned_by(rs, dep)]
    owned.sort(key=lambda h: (h['revision'] if h['revision'] is not None else -1, h['created'] or ''), reverse=True)
    return owned[:max(limit, 0)]


def deployment_view(dep: dict[str, t.Any]) -> dict[str, t.Any]:
    meta, spec, status = dep.get('metadata') or {}, dep.get('spec') or {}, dep.get('status') or {}
    complete, message, timed_out = rollout_status(dep)
    view = {
        'name': meta.get('name'),
        'namespace': meta.get('namespace'),
        'generation': _int(meta.get('generation')),
        'observed_generation': _int(status.get('observedGeneration')),
        'replicas': _int(spec.get('replicas'), 1),
        'current_replicas': _int(status.get('replicas')),
        'ready_replicas': _int(status.get('readyReplicas')),
        'updated_replicas': _int(status.get('updatedReplicas')),
        'available_replicas': _int(status.get('availableReplicas')),
        'unavailable_replicas': _int(status.get('unavailableReplicas')),
        'conditions': [condition_view(c) for c in status.get('conditions') or []],
        'revision': revision_of(dep),
        'paused': bool(spec.get('paused')),
        'rollout_complete': complete,
        'rollout_status': message,
        'progress_deadline_exceeded': timed_out,
        'selector': selector_text(spec.get('selector')),
        'images': images_of(spec.get('template')),
    }
    view['ready'] = complete and view['available_replicas'] >= view['replicas']
    view['problems'] = deployment_problems(view, status)
    return view


def deployment_problems(view: dict[str, t.Any], status: dict[str, t.Any]) -> list[str]:
    problems = []
    # A rollout that only waits for its updated pods to become available says nothing the
    # availability count below does not say better.
    only_waits_for_availability = (view['updated_replicas'] >= view['replicas']
                                   and view['current_replicas'] <= view['updated_replicas'])
    if not view['rollout_complete'] and (view['progress_deadline_exceeded'] or not only_waits_for_availability):
        problems.append(view['rollout_status'] + (' (rollout paused)' if view['paused'] else ''))
    if view['replicas'] == 0:
        problems.append('scaled to 0 replicas')
    elif view['available_replicas'] < view['replicas']:
        problems.append(f"only {view['available_replicas']} of {view['replicas']} replicas available")
    available = condition(status, 'Available')
    if available and available.get('status') == 'False' and not problems:
        problems.append(f"Available=False ({available.get('reason')}: {available.get('message')})")
    failure = condition(status, 'ReplicaFailure')
    if failure and failure.get('status') == 'True':
        problems.append(f"ReplicaFailure ({failure.get('reason')}: {failure.get('message')})")
    return problems


def _state(raw: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """One container state ({running|waiting|terminated: {...}}) flattened."""
    for name in ('running', 'waiting', 'terminated'):
        detail = (raw or {}).get(name)
        if detail is not None:
            return {'state': name, 'reason': detail.get('reason'), 'message': detail.get('message'),
                    'exit_code': detail.get('exitCode'), 'started_at': detail.get('startedAt'),
                    'finished_at': detail.get('finishedAt')}
    return {'state': 'unknown', 'reason': None, 'message': None, 'exit_code': None, 'started_at': None, 'finished_at': None}


def container_view(cs: dict[str, t.Any], init: bool) -> dict[str, t.Any]:
    view = {'name': cs.get('name'), 'image': cs.get('image'), 'init': init, 'ready': bool(cs.get('ready')),
            'restarts': _int(cs.get('restartCount'))}
    view.update(_state(cs.get('state')))
    last = _state(cs.get('lastState')) if cs.get('lastState') else None
    view['last_state'] = last if last and last['state'] != 'unknown' else None
    return view


def container_problems(c: dict[str, t.Any], phase: str | None) -> list[str]:
    name, last = f"container {c['name']}" + (' (init)' if c['init'] else ''), c['last_state']
    lasted = ''
    if last and last['state'] == 'terminated':
        lasted = f"; last exit: {last['reason'] or 'Error'}, code {last['exit_code']}"
    problems = []
    if c['state'] == 'waiting' and c['reason'] and c['reason'] not in STARTING:
        problems.append(f"{name} {c['reason']} (restarted {c['restarts']} times{lasted})"
                        + (f": {c['message']}" if c['message'] and c['reason'] != 'CrashLoopBackOff' else ''))
    elif c['state'] == 'terminated' and c['exit_code'] not in (0, None):
        problems.append(f"{name} terminated: {c['reason'] or 'Error'}, exit code {c['exit_code']}")
    elif last and last['reason'] == 'OOMKilled':
        problems.append(f"{name} was OOMKilled (restarted {c['restarts']} times, last at {last['finished_at']})")
    elif c['state'] == 'running' and not c['ready'] and not c['init'] and phase == 'Running':
        problems.append(f'{name} is running but not ready (readiness probe failing)')
    return problems


def pod_view(pod: dict[str, t.Any], deployment: str | None, replicaset: dict[str, t.Any] | None) -> dict[str, t.Any]:
    meta, spec, status = pod.get('metadata') or {}, pod.get('spec') or {}, pod.get('status') or {}
    containers = [container_view(cs, True) for cs in status.get('initContainerStatuses') or []]
    containers += [container_view(cs, False) for cs in status.get('containerStatuses') or []]
    ready_cond = condition(status, 'Ready')
    view = {
        'name': meta.get('name'),
        'namespace': meta.get('namespace'),
        'deployment': deployment,
        'replicaset': (replicaset or {}).get('metadata', {}).get('name'),
        'revision': revision_of(replicaset) if replicaset else None,
        'phase': status.get('phase'),
        'reason': status.get('reason'),
        'ready': bool(ready_cond and ready_cond.get('status') == 'True'),
        'terminating': bool(meta.get('deletionTimestamp')),
        'restarts': sum(c['restarts'] for c in containers),
        'node': spec.get('nodeName'),
        'started': status.get('startTime'),
        'containers': containers,
    }
    view['problems'] = pod_problems(view, status)
    return view


def pod_problems(view: dict[str, t.Any], status: dict[str, t.Any]) -> list[str]:
    problems = [p for c in view['containers'] for p in container_problems(c, view['phase'])]
    scheduled = condition(status, 'PodScheduled')
    if scheduled and scheduled.get('status') == 'False':
        problems.append(f"not scheduled ({scheduled.get('reason')}: {scheduled.get('message')})")
    if view['phase'] == 'Failed':
        problems.append(f"pod failed ({view['reason'] or 'no reason'}: {status.get('message') or ''})".replace(': )', ')'))
    if not problems and not view['ready'] and not view['terminating'] and view['phase'] != 'Succeeded':
        problems.append(f"not ready (phase {view['phase'] or 'unknown'})")
    return problems


def summarize(deployments: list[dict[str, t.Any]], pods: list[dict[str, t.Any]] | None) -> dict[str, t.Any]:
    return {
        'deployments': len(deployments),
        'deployments_ready': sum(1 for d in deployments if d['ready']),
        'deployments_degraded': sum(1 for d in deployments if not d['ready']),
        'pods': len(pods) if pods is not None else None,
        'pods_not_ready': sum(1 for p in pods if not p['ready'] and not p['terminating']) if pods is not None else None,
        'restarts': sum(p['restarts'] for p in pods) if pods is not None else None,
        'healthy': all(d['healthy'] for d in deployments),
    }


class WorkloadReader:
    """Reads Deployments of one namespace with their revisions and pods (1 + 1-2 requests per Deployment)."""

    def __init__(self, client: K8sClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def deployments(self, names: list[str], label_selector: str | None) -> list[dict[str, t.Any]]:
        """Deployments by name order (or API order when ``names`` is empty); unknown names fail with the ones there are."""
        found = (self.client.list('deployments', self.namespace, label_selector).get('items') or [])
        if not names:
            return found
        by_name = {(d.get('metadata') or {}).get('name'): d for d in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise self.not_found(missing, label_selector, sorted(str(n) for n in by_name))
        return [by_name[n] for n in dict.fromkeys(names)]

    def not_found(self, missing: list[str], label_selector: str | None, matching: list[str]) -> K8sNotFoundError:
        existing = matching
        if label_selector:
            everything = self.client.list('deployments', self.namespace).get('items') or []
            existing = sorted(str((d.get('metadata') or {}).get('name')) for d in everything)
        absent = [n for n in missing if n not in existing]
        parts = []
        if absent:
            parts.append(f"Deployment {', '.join(absent)} not found in namespace {self.namespace}")
        unmatched = [n for n in missing if n in existing]
        if unmatched:
            parts.append(f"Deployment {', '.join(unmatched)} does not match label_selector {label_selector!r}")
        there = ', '.join(existing) if existing else 'none (check the namespace name)'
        return K8sNotFoundError(f"{'; '.join(parts)}. Deployments in {self.namespace}: {there}",
                                missing=missing, existing=existing)

    def read(self, names: list[str], label_selector: str | None, include_pods: bool, history: int) -> dict[str, t.Any]:
        views, pods = [], [] if include_pods else None
        for dep in self.deployments(names, label_selector):
            view = deployment_view(dep)
            selector = view['selector'] or None
            replicasets = []
            if history > 0 or include_pods:
                replicasets = [rs for rs in self.client.list('replicasets', self.namespace, selector).get('items') or []
                               if owned_by(rs, dep)]
            view['history'] = revision_history(dep, replicasets, history)
            own_pods: list[dict[str, t.Any]] = []
            if pods is not None:
                for pod in self.client.list('pods', self.namespace, selector).get('items') or []:
                    owner = next((rs for rs in replicasets if owned_by(pod, rs)), None)
                    if owner is not None:
                        own_pods.append(pod_view(pod, view['name'], owner))
                own_pods.sort(key=lambda p: (p['ready'], p['name'] or ''))
                pods.extend(own_pods)
            view['problems'] += [f"pod {p['name']}: {problem}" for p in own_pods for problem in p['problems']]
            view['healthy'] = view['ready'] and not view['problems']
            views.append(view)
        unhealthy = [f"deployment {v['name']}: {problem}" for v in views for problem in v['problems']]
        return {'deployments': views, 'pods': pods if pods is not None else [], 'summary': summarize(views, pods),
                'unhealthy': unhealthy}
