# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_rollout
short_description: Restart, roll back, scale, pause or reconfigure a Kubernetes Deployment and wait for its rollout
version_added: 1.0.0
description:
  - Containment and recovery actions on one Deployment, as C(kubectl rollout) and C(kubectl scale) / C(kubectl set env)
    do them, with guards, check mode and a diff.
  - V(restart) sets the pod-template annotation C(kubectl.kubernetes.io/restartedAt), so every pod is replaced by a
    rolling update (C(kubectl rollout restart)). Always reports a change.
  - V(status) waits until the rollout is complete by C(kubectl rollout status)'s rules - the controller observed the
    newest generation and the updated, ready and available replicas reach O(replicas) - and fails with the reason when
    the rollout exceeds its progress deadline, is paused, or O(timeout) passes.
  - V(undo) rolls back to the previous revision or to O(to_revision) from the Deployment's ReplicaSet history, as
    C(kubectl rollout undo) does - the ReplicaSet's pod template (without its C(pod-template-hash) label) is copied into
    the Deployment. Nothing changes when the Deployment already runs that template.
  - V(history) lists the revisions (C(kubectl rollout history)). V(pause) and V(resume) set C(spec.paused).
  - V(scale) sets the number of replicas through the C(scale) subresource; with O(expected_replicas) it only scales
    when the Deployment has exactly that many now (C(kubectl scale --current-replicas)).
  - V(set_env) sets or removes environment variables of one container (C(kubectl set env)) and returns their
    RV(previous) values, so the change can be undone with another V(set_env).
  - Changes that depend on what was read (undo, set_env, scale) are written with the C(resourceVersion) read as a
    precondition; when the Deployment changed in between (C(409 Conflict)) the action is planned again from a fresh read,
    up to three times.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  action:
    description:
      - What to do; see the description.
    type: str
    required: true
    choices: [restart, status, undo, history, pause, resume, scale, set_env]
  namespace:
    description:
      - Namespace of the Deployment.
    type: str
    default: trdrhub-system
  name:
    description:
      - Name of the Deployment, for example V(trdrhub-api) or V(trdrhub-worker).
      - An unknown name fails with the names of the Deployments that exist in O(namespace).
    type: str
    required: true
  replicas:
    description:
      - Number of replicas for O(action=scale). Required with it.
    type: int
  expected_replicas:
    description:
      - With O(action=scale), scale only when the Deployment has exactly this many replicas now; otherwise fail and
        change nothing.
    type: int
  container:
    description:
      - Container whose environment O(action=set_env) changes, for example V(api). Required with it.
      - A container the Deployment does not have fails with the names of those it has.
    type: str
  env:
    description:
      - For O(action=set_env), variable name -> value. A null value removes the variable.
      - Values are set as strings (V(true)/V(false) for booleans). A variable that took its value from a Secret or
        ConfigMap (C(valueFrom)) is replaced by the plain value; RV(previous_value_from) keeps what it was.
    type: dict
  to_revision:
    description:
      - For O(action=undo), the revision to roll back to (see O(action=history)). Omitted or V(0) means the revision
        before the current one; then, as with C(kubectl rollout undo), a second run rolls forward again - give
        O(to_revision) for a run that can be repeated safely.
    type: int
  wait:
    description:
      - After O(action=restart), V(undo), V(set_env), V(scale) or V(resume), wait until the rollout is complete (as
        O(action=status) does) and fail when it stalls or O(timeout) passes.
      - O(action=status) always waits.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the rollout with O(wait) or O(action=status).
    type: float
    default: 300
  incident_id:
    description:
      - Incident reference. When set, every change also sets the Deployment annotation C(trdrhub.io/incident-id) to it
        (on the Deployment, not the pod template, so it never causes a rollout itself).
    type: str
extends_documentation_fragment:
  - trdrhub.incident.k8s
attributes:
  check_mode:
    details:
      - Reads the Deployment (and for V(undo) its ReplicaSets), computes the object the action would produce and
        reports RV(changed) and the diff from it; nothing is written, and O(wait) does not wait (O(action=status), which
        only reads, still waits).
  diff_mode:
    support: full
    details:
      - Shows replicas, paused, images, env per container, pod-template annotations and the incident annotation before
        and after.
notes:
  - "RBAC: C(get) on C(deployments); C(patch) on C(deployments) for restart, undo, pause, resume and set_env;
    C(patch) on C(deployments/scale) for scale; C(list) on C(replicasets) for undo and history; C(list) on C(pods) to
    name failing pods when a rollout fails. A missing permission fails with the API server's message."
  - The diff and RV(previous) show env values as they are in the Deployment. Keep secrets in Secrets (C(valueFrom)),
    whose values are never read.
seealso:
  - module: trdrhub.incident.k8s_workload_info
  - name: kubectl rollout
    description: The commands this module follows.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/
"""

EXAMPLES = r"""
- name: Restart the API and wait until every pod is replaced
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: restart
    wait: true
    timeout: 600
    incident_id: INC-2025-0042

- name: Wait for a rollout someone else started
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: status
    timeout: 300

- name: Scale the API from 3 to 6 replicas, only if it still has 3
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: scale
    replicas: 6
    expected_replicas: 3
    wait: true

- name: Put the API in read-only mode and keep the old value
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: set_env
    container: api
    env:
      READ_ONLY_MODE: "true"
  register: read_only

- name: Undo the env change later
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: set_env
    container: api
    env: "{{ read_only.previous }}"

- name: Roll back to revision 12
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: undo
    to_revision: 12
    wait: true

- name: Show the revisions
  trdrhub.incident.k8s_rollout:
    name: trdrhub-api
    action: history
  register: revisions
"""

RETURN = r"""
changed:
  description: Whether the Deployment was (in check mode, would be) changed. Always true for O(action=restart).
  returned: always
  type: bool
  sample: true
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
  sample: Deployment trdrhub-api was scaled from 3 to 6 replicas
action:
  description: The action run.
  returned: success
  type: str
  sample: scale
namespace:
  description: Namespace of the Deployment.
  returned: success
  type: str
  sample: trdrhub-system
name:
  description: Name of the Deployment.
  returned: success
  type: str
  sample: trdrhub-api
deployment:
  description:
    - The Deployment after the action (in check mode, as it would be; after O(wait), once rolled out), with the keys of
      RV(trdrhub.incident.k8s_workload_info#module:deployments) except C(history), C(healthy) and pod problems.
  returned: success
  type: dict
  sample: {"name": "trdrhub-api", "replicas": 6, "ready_replicas": 6, "revision": 14, "rollout_complete": true}
revision:
  description:
    - The Deployment's current revision after the action (a rollout started without O(wait) may not have a new one yet).
    - For O(action=undo) the revision rolled back to is RV(to_revision_used).
  returned: success
  type: int
  sample: 14
rollout_complete:
  description: Whether the rollout is complete by C(kubectl rollout status)'s rules.
  returned: success
  type: bool
  sample: true
rollout_status:
  description: What C(kubectl rollout status) would say.
  returned: success
  type: str
  sample: successfully rolled out
waited:
  description: Seconds spent waiting for the rollout.
  returned: when O(action=status) or O(wait) applied
  type: float
  sample: 12.4
restarted_at:
  description: The C(kubectl.kubernetes.io/restartedAt) value set (UTC).
  returned: O(action=restart)
  type: str
  sample: "2025-01-15T14:30:00Z"
replicas:
  description: Replicas requested.
  returned: O(action=scale)
  type: int
  sample: 6
previous_replicas:
  description: Replicas the Deployment had before.
  returned: O(action=scale)
  type: int
  sample: 3
container:
  description: The container whose env was changed.
  returned: O(action=set_env)
  type: str
  sample: api
env:
  description: The variables requested, as strings; null for a removed one.
  returned: O(action=set_env)
  type: dict
  sample: {"READ_ONLY_MODE": "true"}
previous:
  description:
    - The values of the O(env) variables before the change; null for a variable that was not set (or took its value from
      C(valueFrom)). Passing this dict as O(env) of another V(set_env) restores them.
  returned: O(action=set_env)
  type: dict
  sample: {"READ_ONLY_MODE": null}
previous_value_from:
  description: For variables that took their value from a Secret or ConfigMap before, their C(valueFrom).
  returned: O(action=set_env)
  type: dict
  sample: {}
to_revision_used:
  description: The revision whose template was (or already is) the Deployment's.
  returned: O(action=undo)
  type: int
  sample: 12
from_revision:
  description: The revision the Deployment was at before O(action=undo).
  returned: O(action=undo)
  type: int
  sample: 13
images:
  description: Container name -> image of the revision rolled back to.
  returned: O(action=undo)
  type: dict
  sample: {"api": "ghcr.io/trdrhub/api:2025.01.14"}
history:
  description: Every revision, newest first, with the keys of RV(trdrhub.incident.k8s_workload_info#module:deployments[].history).
  returned: O(action=history)
  type: list
  elements: dict
  sample: [{"revision": 14, "replicaset": "trdrhub-api-7d9c6b5f4", "images": {"api": "ghcr.io/trdrhub/api:1.2.0"},
            "change_cause": null, "replicas": 3, "ready_replicas": 3, "current": true, "created": "2025-01-15T14:01:40Z"}]
diff:
  description: Before and after of the relevant part of the Deployment (with C(--diff)).
  returned: diff mode
  type: dict
connection:
  description: Which API server was used and how it was configured (never a credential).
  returned: always
  type: dict
  sample: {"api_server": "https://10.0.0.1:6443", "source": "kubeconfig", "kubeconfig": "/home/oncall/.kube/config",
           "context": "prod"}
requests:
  description: The API requests made, in order (method and path).
  returned: always
  type: list
  elements: str
  sample: ["GET /apis/apps/v1/namespaces/trdrhub-system/deployments/trdrhub-api",
           "PATCH /apis/apps/v1/namespaces/trdrhub-system/deployments/trdrhub-api/scale"]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import K8S_AUTH_MUTUALLY_EXCLUSIVE, KUBERNETES, K8sClient, K8sInputError, k8s_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.rollout import ACTIONS, check_env
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.rollout_run import Rollout


def argument_spec() -> dict[str, t.Any]:
    return k8s_spec(
        action={'type': 'str', 'required': True, 'choices': list(ACTIONS)},
        name={'type': 'str', 'required': True},
        replicas=bounded({'type': 'int'}, minimum=0),
        expected_replicas=bounded({'type': 'int'}, minimum=0),
        container={'type': 'str'},
        env={'type': 'dict'},
        to_revision=bounded({'type': 'int'}, minimum=0),
        wait={'type': 'bool', 'default': False},
        timeout=bounded({'type': 'float', 'default': 300}, above=0),
        incident_id={'type': 'str'},
    )


REQUIRED_IF = [('action', 'scale', ['replicas']), ('action', 'set_env', ['container', 'env'])]


def check_params(params: dict[str, t.Any]) -> None:
    for key in ('namespace', 'name'):
        if not (params.get(key) or '').strip():
            raise K8sInputError(f'{key} must not be empty')
    if params['action'] == 'set_env' and not params.get('env'):
        raise K8sInputError('env must name at least one variable for action=set_env')
    if any(not str(k).strip() for k in params.get('env') or {}):
        raise K8sInputError('env must not contain an empty variable name')
    check_env(params.get('env') or {})


class RolloutRun:
    """The worker: options checked when built; the rollout and its report (the diff only with --diff) when run."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool, diff: bool) -> None:
        check_params(params)
        self.params, self.check_mode, self.diff = params, check_mode, diff

    def run(self, client: t.Any) -> dict[str, t.Any]:
        params = self.params
        result = Rollout(client, params['namespace'], params['name'], self.check_mode).run(params)
        if not self.diff:
            result.pop('diff', None)
        return dict(connection=client.describe(), requests=client.requests, **result)


def main() -> None:
    run_module(argument_spec(), lambda module: RolloutRun(module.params, module.check_mode, module._diff),
               lambda module, run: K8sClient(module.params), requires=[KUBERNETES], required_if=REQUIRED_IF,
               error_extra=lambda module, client: dict(request_log(module, client), connection=client.describe() if client else {}),
               mutually_exclusive=K8S_AUTH_MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
