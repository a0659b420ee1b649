# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What a rollout action changes, and how the rollout is judged - plain JSON in and out.

Each action is planned against the Deployment as read: ``plan_*`` returns a
``Change`` with the would-be object (for check mode and the diff) and the patch
that makes it so. The patches follow kubectl: ``rollout restart`` sets the
``kubectl.kubernetes.io/restartedAt`` template annotation, ``rollout undo`` copies a
ReplicaSet's template (without its ``pod-template-hash`` label) back into the
Deployment, ``set env`` merges the container's env by name. Patches whose outcome
depends on what was read (undo, set env, a guarded scale) carry the
``resourceVersion`` read as a precondition, so a concurrent change makes the API
server refuse them (409) instead of silently overwriting it.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sError,
    K8sInputError,
    K8sNotFoundError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.workloads import (
    CHANGE_CAUSE,
    _int,
    images_of,
    owned_by,
    revision_of,
    rollout_status,
)

RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt'
INCIDENT_ANNOTATION = 'trdrhub.io/incident-id'
POD_TEMPLATE_HASH = 'pod-template-hash'
REVISION_HISTORY = 'deployment.kubernetes.io/revision-history'
ACTIONS = ('restart', 'status', 'undo', 'history', 'pause', 'resume', 'scale', 'set_env')
# Actions after which the Deployment rolls (new pods), so ``wait`` applies.
ROLLING = ('restart', 'undo', 'set_env', 'scale', 'resume')


class RolloutFailed(K8sError):
    """The rollout stalled (progress deadline exceeded), is paused, or did not finish in time."""


class Change(t.NamedTuple):
    after: dict[str, t.Any]
    changed: bool
    body: t.Any = None
    patch_type: str = 'strategic'
    subresource: str = ''
    info: dict[str, t.Any] = {}


def _meta(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    return obj.setdefault('metadata', {})


def _tag(after: dict[str, t.Any], body: dict[str, t.Any], incident_id: str | None) -> None:
    """The incident id annotation on the Deployment (never on the pod template: it must not cause a rollout)."""
    if incident_id:
        _meta(after).setdefault('annotations', {})[INCIDENT_ANNOTATION] = incident_id
        body.setdefault('metadata', {}).setdefault('annotations', {})[INCIDENT_ANNOTATION] = incident_id


def without_hash(template: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """A pod template without the pod-template-hash label the controller adds to its ReplicaSet copy."""
    template = copy.deepcopy(template or {})
    labels = (template.get('metadata') or {}).get('labels')
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return template


def containers_of(dep: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return (((dep.get('spec') or {}).get('template') or {}).get('spec') or {}).get('containers') or []


def find_container(dep: dict[str, t.Any], name: str) -> dict[str, t.Any]:
    for container in containers_of(dep):
        if container.get('name') == name:
            return container
    names = ', '.join(str(c.get('name')) for c in containers_of(dep)) or 'none'
    raise K8sNotFoundError(f"Container {name} not found in Deployment {_meta(dep).get('name')}; its containers: {names}",
                           containers=[c.get('name') for c in containers_of(dep)])


def env_values(container: dict[str, t.Any]) -> dict[str, str | None]:
    """Name -> value of a container's env; a value taken from elsewhere (valueFrom) is None."""
    return {e.get('name'): e.get('value', '' if 'valueFrom' not in e else None) for e in container.get('env') or []}


def relevant(dep: dict[str, t.Any]) -> dict[str, t.Any]:
    """The part of a Deployment the actions change, for the diff."""
    spec = dep.get('spec') or {}
    template = spec.get('template') or {}
    return {
        'replicas': _int(spec.get('replicas'), 1),
        'paused': bool(spec.get('paused')),
        'images': images_of(template),
        'env': {c.get('name'): {k: ('(valueFrom)' if v is None else v) for k, v in env_values(c).items()} for c in containers_of(dep)},
        'template_annotations': dict((template.get('metadata') or {}).get('annotations') or {}),
        'incident_id': (_meta(dep).get('annotations') or {}).get(INCIDENT_ANNOTATION),
    }


def check_env(env: dict[str, t.Any]) -> None:
    """Refuse a value ``kubectl set env`` could not take: only strings, numbers and booleans (null removes)."""
    for name, value in env.items():
        if value is not None and not isinstance(value, (str, int, float)):
            raise K8sInputError(f'env.{name} must be a string, a number or a boolean (null removes the variable), '
                                f'got {kind_of(value)}')


def env_text(value: t.Any) -> str | None:
    """An env value from YAML as Kubernetes wants it: a string (booleans as true/false); None removes."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def plan_restart(dep: dict[str, t.Any], now: str, incident_id: str | None) -> Change:
    if (dep.get('spec') or {}).get('paused'):
        raise K8sInputError(f"Deployment {_meta(dep).get('name')} is paused: a restart would not roll out; resume it first (action=resume)")
    after = copy.deepcopy(dep)
    _meta(after.setdefault('spec', {}).setdefault('template', {})).setdefault('annotations', {})[RESTARTED_AT] = now
    body: dict[str, t.Any] = {'spec': {'template': {'metadata': {'annotations': {RESTARTED_AT: now}}}}}
    _tag(after, body, incident_id)
    return Change(after, True, body, 'strategic', info={'restarted_at': now})


def plan_pause(dep: dict[str, t.Any], paused: bool, incident_id: str | None) -> Change:
    if bool((dep.get('spec') or {}).get('paused')) == paused:
        return Change(dep, False)
    after = copy.deepcopy(dep)
    after.setdefault('spec', {})['paused'] = paused
    body: dict[str, t.Any] = {'spec': {'paused': paused}}
    _tag(after, body, incident_id)
    return Change(after, True, body, 'merge')


def plan_scale(dep: dict[str, t.Any], replicas: int, expected: int | None) -> Change:
    current = _int((dep.get('spec') or {}).get('replicas'), 1)
    info = {'replicas': replicas, 'previous_replicas': current}
    if expected is not None and current != expected:
        raise K8sInputError(f"Deployment {_meta(dep).get('name')} has {current} replicas, not the expected_replicas={expected}: "
                            f"not scaled to {replicas} (someone else may have scaled it; check and re-run)",
                            current_replicas=current, expected_replicas=expected)
    if current == replicas:
        return Change(dep, False, info=info)
    after = copy.deepcopy(dep)
    after['spec']['replicas'] = replicas
    body = {'metadata': {'resourceVersion': _meta(dep).get('resourceVersion')}, 'spec': {'replicas': replicas}}
    return Change(after, True, body, 'merge', 'scale', info)


def plan_set_env(dep: dict[str, t.Any], container: str, env: dict[str, t.Any], incident_id: str | None) -> Change:
    after = copy.deepcopy(dep)
    target = find_container(after, container)
    current = env_values(target)
    entries = {e.get('name'): e for e in target.get('env') or []}
    previous = {name: current.get(name) for name in env}
    value_from = {name: entries[name]['valueFrom'] for name in env if name in entries and 'valueFrom' in entries[name]}
    items, new_env = [], [copy.deepcopy(e) for e in target.get('env') or []]
    for name, raw in env.items():
        value = env_text(raw)
        present = name in entries
        if value is None:
            if present:
                items.append({'name': name, '$patch': 'delete'})
                new_env = [e for e in new_env if e.get('name') != name]
        elif not present or 'valueFrom' in entries[name] or entries[name].get('value', '') != value:
            item: dict[str, t.Any] = {'name': name, 'value': value}
            if present and 'valueFrom' in entries[name]:
                item['valueFrom'] = None
            items.append(item)
            if present:
                new_env = [{'name': name, 'value': value} if e.get('name') == name else e for e in new_env]
            else:
                new_env.append({'name': name, 'value': value})
    info = {'container': container, 'previous': previous, 'env': {k: env_text(v) for k, v in env.items()},
            'previous_value_from': value_from}
    if not items:
        return Change(dep, False, info=info)
    if new_env:
        target['env'] = new_env
    else:
        target.pop('env', None)
    body: dict[str, t.Any] = {'metadata': {'resourceVersion': _meta(dep).get('resourceVersion')},
                              'spec': {'template': {'spec': {'containers': [{'name': container, 'env': items}]}}}}
    _tag(after, body, incident_id)
    return Change(after, True, body, 'strategic', info=info)


def undo_target(dep: dict[str, t.Any], replicasets: list[dict[str, t.Any]], to_revision: int | None) -> dict[str, t.Any]:
    """The ReplicaSet to roll back to: ``to_revision``, else the newest revision before the current one (as kubectl)."""
    name = _meta(dep).get('name')
    current = revision_of(dep)
    owned = {revision_of(rs): rs for rs in replicasets if owned_by(rs, dep) and revision_of(rs) is not None}
    available = ', '.join(str(r) for r in sorted(owned)) or 'none'
    if to_revision:
        if to_revision in owned:
            return owned[to_revision]
        for rs in owned.values():
            # A revision rolled back to is renumbered; the controller keeps its old numbers here.
            earlier = ((rs.get('metadata') or {}).get('annotations') or {}).get(REVISION_HISTORY) or ''
            if str(to_revision) in [r.strip() for r in earlier.split(',')]:
                return rs
        raise K8sNotFoundError(f'Deployment {name} has no revision {to_revision}; its revisions: {available}',
                               revisions=sorted(owned))
    older = [r for r in owned if r != current]
    if not older:
        raise K8sNotFoundError(f'Deployment {name} has no previous revision to roll back to (revisions: {available})',
                               revisions=sorted(owned))
    return owned[max(older)]


def plan_undo(dep: dict[str, t.Any], replicasets: list[dict[str, t.Any]], to_revision: int | None,
              incident_id: str | None) -> Change:
    if (dep.get('spec') or {}).get('paused'):
        raise K8sInputError(f"Deployment {_meta(dep).get('name')} is paused: resume it before rolling back (action=resume)")
    target = undo_target(dep, replicasets, to_revision)
    revision = revision_of(target)
    template = without_hash((target.get('spec') or {}).get('template'))
    info = {'to_revision_used': revision, 'from_revision': revision_of(dep), 'images': images_of(template)}
    if template == without_hash((dep.get('spec') or {}).get('template')):
        return Change(dep, False, info=info)
    after = copy.deepcopy(dep)
    after['spec']['template'] = template
    annotations = dict(_meta(dep).get('annotations') or {})
    cause = (_meta(target).get('annotations') or {}).get(CHANGE_CAUSE)
    if cause:
        annotations[CHANGE_CAUSE] = cause
    if incident_id:
        annotations[INCIDENT_ANNOTATION] = incident_id
    _meta(after)['annotations'] = annotations
    body = [{'op': 'test', 'path': '/metadata/resourceVersion', 'value': _meta(dep).get('resourceVersion')},
            {'op': 'replace', 'path': '/spec/template', 'value': template},
            {'op': 'add', 'path': '/metadata/annotations', 'value': annotations}]
    return Change(after, True, body, 'json', info=info)


def evaluate(dep: dict[str, t.Any], min_generation: int = 0) -> tuple[str, str]:
    """('complete' | 'progressing' | 'failed' | 'paused', message) of a Deployment's rollout."""
    observed = _int((dep.get('status') or {}).get('observedGeneration'))
    if observed < min_generation:
        return 'progressing', f'waiting for the controller to observe generation {min_generation} (observed {observed})'
    complete, message, timed_out = rollout_status(dep)
    if complete:
        return 'complete', message
    if timed_out:
        return 'failed', message
    if (dep.get('spec') or {}).get('paused'):
        return 'paused', f'{message}; the Deployment is paused, so the rollout does not progress until it is resumed (action=resume)'
    return 'progressing', message
