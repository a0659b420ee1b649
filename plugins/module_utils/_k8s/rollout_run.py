# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Runs one rollout action against the API: read, plan (``_k8s_rollout``), write unless check mode, wait.

A write refused with 409 (the Deployment changed between read and write) is planned
again from a fresh read, at most ``ATTEMPTS`` times, like kubectl's retry on conflict,
so a guard (``expected_replicas``) and the ``previous`` env values are always judged
against the object that is actually changed.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sClient,
    K8sConflictError,
    K8sError,
    K8sNotFoundError,
    selector_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.rollout import (
    INCIDENT_ANNOTATION,
    ROLLING,
    Change,
    RolloutFailed,
    evaluate,
    plan_pause,
    plan_restart,
    plan_scale,
    plan_set_env,
    plan_undo,
    relevant,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.workloads import (
    WorkloadReader,
    _int,
    deployment_view,
    owned_by,
    revision_history,
)

ATTEMPTS = 3


@dataclasses.dataclass
class Rollout:
    """One action on one Deployment; ``run`` returns the module result (without connection and requests)."""

    client: K8sClient
    namespace: str
    name: str
    check_mode: bool = False
    clock: t.Callable[[], float] = time.monotonic
    sleep: t.Callable[[float], None] = time.sleep

    def read(self) -> dict[str, t.Any]:
        try:
            return self.client.get('deployments', self.namespace, self.name)
        except K8sNotFoundError:
            # Fails with the names that exist (or returns it, if it appeared in between).
            return WorkloadReader(self.client, self.namespace).deployments([self.name], None)[0]

    def replicasets(self, dep: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        selector = selector_text((dep.get('spec') or {}).get('selector')) or None
        return [rs for rs in self.client.list('replicasets', self.namespace, selector).get('items') or [] if owned_by(rs, dep)]

    def plan(self, params: dict[str, t.Any], dep: dict[str, t.Any]) -> Change:
        action, incident = params['action'], params.get('incident_id') or None
        if action == 'restart':
            now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
            return plan_restart(dep, now, incident)
        if action in ('pause', 'resume'):
            return plan_pause(dep, action == 'pause', incident)
        if action == 'scale':
            return plan_scale(dep, params['replicas'], params.get('expected_replicas'))
        if action == 'set_env':
            return plan_set_env(dep, params['container'], params.get('env') or {}, incident)
        if action == 'undo':
            return plan_undo(dep, self.replicasets(dep), params.get('to_revision'), incident)
        return Change(dep, False)

    def write(self, change: Change, incident_id: str | None) -> dict[str, t.Any]:
        answer = self.client.patch('deployments', self.namespace, self.name, change.body, change.patch_type, change.subresource)
        if change.subresource:
            # The scale subresource carries no annotations; the incident id is set on the Deployment itself.
            if incident_id:
                return self.client.patch('deployments', self.namespace, self.name,
                                         {'metadata': {'annotations': {INCIDENT_ANNOTATION: incident_id}}}, 'merge')
            return self.read()
        return answer

    def apply(self, params: dict[str, t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any], Change]:
        """(before, after, change): planned from a fresh read and written, again from a fresh read after a 409."""
        for attempt in range(1, ATTEMPTS + 1):
            before = self.read()
            change = self.plan(params, before)
            if not change.changed or self.check_mode:
                return before, change.after, change
            try:
                return before, self.write(change, params.get('incident_id') or None), change
            except K8sConflictError as exc:
                if attempt == ATTEMPTS:
                    raise K8sConflictError(f'{exc} - Deployment {self.name} kept changing while {params["action"]} was applied '
                                           f'({ATTEMPTS} attempts, each refused); this task changed nothing, re-run it',
                                           **exc.details) from None
        raise AssertionError('unreachable')

    def wait(self, min_generation: int, timeout: float) -> tuple[dict[str, t.Any], float]:
        """The Deployment once its rollout is complete; RolloutFailed when it stalls, is paused or times out."""
        started = self.clock()
        delay = 0.2
        while True:
            dep = self.client.get('deployments', self.namespace, self.name)
            state, message = evaluate(dep, min_generation)
            waited = round(self.clock() - started, 2)
            if state == 'complete':
                return dep, waited
            if state in ('failed', 'paused'):
                raise RolloutFailed(self.failure(dep, message), deployment=deployment_view(dep), waited=waited)
            remaining = timeout - (self.clock() - started)
            if remaining <= 0:
                raise RolloutFailed(f'Timed out after {timeout:g}s waiting for the rollout of Deployment {self.name} in '
                                    f'{self.namespace}: {message}', deployment=deployment_view(dep), waited=waited)
            self.sleep(min(delay, remaining))
            delay = min(delay * 1.5, 2.0)

    def failure(self, dep: dict[str, t.Any], message: str) -> str:
        text = f'Rollout of Deployment {self.name} in {self.namespace} failed: {message}'
        try:
            report = WorkloadReader(self.client, self.namespace).read([self.name], None, True, 0)
            pods = [p for p in report['deployments'][0]['problems'] if p.startswith('pod ')][:3]
        except K8sError:
            pods = []   # the reason is known without them; a missing list permission must not hide it
        if pods:
            text += '; ' + '; '.join(pods)
        if 'progress deadline' in message:
            text += ' (roll back with action=undo)'
        return text

    def run(self, params: dict[str, t.Any]) -> dict[str, t.Any]:
        action = params['action']
        before, after, change = self.apply(params)
        result: dict[str, t.Any] = {'changed': change.changed, 'action': action, 'namespace': self.namespace, 'name': self.name}
        result.update(change.info)
        if action == 'history':
            result['history'] = revision_history(before, self.replicasets(before), 1000)
        waits = action == 'status' or (params.get('wait') and action in ROLLING and not self.check_mode)
        if waits:
            generation = _int((after.get('metadata') or {}).get('generation'))
            after, result['waited'] = self.wait(generation, params['timeout'])
        view = deployment_view(after)
        result.update(deployment=view, revision=view['revision'], rollout_complete=view['rollout_complete'],
                      rollout_status=view['rollout_status'])
        result['diff'] = {'before_header': f'deployment/{self.name} ({self.namespace})', 'before': relevant(before),
                          'after_header': f'deployment/{self.name} ({self.namespace})', 'after': relevant(after)}
        result['msg'] = summary(action, result, self.check_mode)
        return result


def summary(action: str, result: dict[str, t.Any], check_mode: bool) -> str:
    name = f"Deployment {result['name']}"
    verb = 'would be' if check_mode and result['changed'] else 'was'
    if action == 'status':
        return f"{name}: {result['rollout_status']}"
    if action == 'history':
        return f"{name} has {len(result['history'])} revision(s); current {result['revision']}"
    if not result['changed']:
        return {'scale': f"{name} already has {result.get('replicas')} replicas",
                'set_env': f"{name}: env of container {result.get('container')} already as requested",
                'undo': f"{name} already runs the template of revision {result.get('to_revision_used')}",
                'pause': f'{name} is already paused', 'resume': f'{name} is not paused'}.get(action, f'{name} unchanged')
    return {'restart': f'{name} {verb} restarted',
            'scale': f"{name} {verb} scaled from {result.get('previous_replicas')} to {result.get('replicas')} replicas",
            'set_env': f"{name}: env of container {result.get('container')} {verb} changed ({', '.join(result.get('env') or {})})",
            'undo': f"{name} {verb} rolled back to the template of revision {result.get('to_revision_used')}",
            'pause': f'{name} {verb} paused', 'resume': f'{name} {verb} resumed'}.get(action, f'{name} {verb} changed')
