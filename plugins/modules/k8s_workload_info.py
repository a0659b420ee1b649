# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_workload_info
short_description: Report Kubernetes Deployments for incident triage - rollout state, revisions, failing pods
version_added: 1.0.0
description:
  - Reads the Deployments of a namespace, the ReplicaSets they own (their revision history) and their pods, and returns
    what an incident responder checks first - is the rollout complete, how many replicas are available, which revision
    runs which image, which pods crash-loop or were OOM-killed.
  - Decides whether a rollout is complete the way C(kubectl rollout status) does, and lists revisions like
    C(kubectl rollout history).
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  namespace:
    description:
      - Namespace of the Deployments.
    type: str
    default: trdrhub-system
  names:
    description:
      - Names of the Deployments to report, in this order. Omitted or empty reports every Deployment of O(namespace)
        (that matches O(label_selector)).
      - A name that does not exist fails the task with the names that do.
    type: list
    elements: str
    default: []
  label_selector:
    description:
      - Only Deployments whose labels match this selector, in C(kubectl -l) syntax, for example
        V(app.kubernetes.io/part-of=trdrhub,tier in (api,worker)).
    type: str
  include_pods:
    description:
      - Also read the pods of each Deployment (through its ReplicaSets) and report them in RV(pods).
      - V(false) saves one request per Deployment; RV(pods) is then empty and the pod counts of RV(summary) are null.
    type: bool
    default: true
  history:
    description:
      - Number of most recent revisions to return per Deployment in RV(deployments[].history); V(0) returns none.
    type: int
    default: 5
extends_documentation_fragment:
  - trdrhub.incident.k8s
notes:
  - The account needs C(get) and C(list) on C(deployments) and C(replicasets) (API group C(apps)) and C(list) on
    C(pods) in O(namespace). A missing permission fails with the API server's message naming it.
  - RV(unhealthy) is empty when every reported Deployment is fully rolled out, all its replicas are available and none
    of its pods has a problem; a Deployment scaled to 0 replicas is reported there too.
seealso:
  - name: kubectl rollout status
    description: The rollout-complete logic this module follows.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_status/
  - name: Deployments
    description: Kubernetes documentation of Deployment status, conditions and revisions.
    link: https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
"""

EXAMPLES = r"""
- name: Triage the TRDR Hub API and worker
  trdrhub.incident.k8s_workload_info:
    namespace: trdrhub-system
    names: [trdrhub-api, trdrhub-worker]
  register: k8s

- name: Say what is wrong
  ansible.builtin.debug:
    msg: "{{ k8s.unhealthy }}"
  when: k8s.unhealthy | length > 0

- name: Which image did the previous revision of the API run?
  ansible.builtin.debug:
    msg: "{{ (k8s.deployments[0].history | selectattr('current', 'equalto', false) | first).images }}"
  when: k8s.deployments[0].history | length > 1

- name: Every Deployment of the product, from a pod with a service account, without pods
  trdrhub.incident.k8s_workload_info:
    namespace: trdrhub-system
    label_selector: app.kubernetes.io/part-of=trdrhub
    include_pods: false
    history: 0

- name: With a token from the vault instead of a kubeconfig
  trdrhub.incident.k8s_workload_info:
    host: https://k8s-api.trdrhub.internal:6443
    api_key: "{{ vault_k8s_readonly_token }}"
    ca_cert: /etc/trdrhub/k8s-ca.pem
    names: [trdrhub-api]

- name: Set the connection once for every Kubernetes task of the play
  module_defaults:
    group/trdrhub.incident.kubernetes:
      kubeconfig: ~/.kube/trdrhub-prod.yaml
      context: prod-eu-west-1
  block:
    - name: Read the API Deployment
      trdrhub.incident.k8s_workload_info:
        names: [trdrhub-api]
"""

RETURN = r"""
connection:
  description: Which API server was read and how it was configured (never a credential).
  returned: always
  type: dict
  contains:
    api_server:
      description: URL of the API server.
      type: str
      sample: https://10.0.0.1:6443
    source:
      description: Where the settings came from - V(kubeconfig), V(host) (O(host) / E(K8S_AUTH_HOST)) or V(in_cluster).
      type: str
      sample: kubeconfig
    kubeconfig:
      description: The kubeconfig used, null unless RV(connection.source=kubeconfig).
      type: str
      sample: /home/oncall/.kube/config
    context:
      description: The kubeconfig context used, null unless RV(connection.source=kubeconfig).
      type: str
      sample: prod-eu-west-1
namespace:
  description: The namespace read.
  returned: always
  type: str
  sample: trdrhub-system
deployments:
  description: The Deployments, in the order of O(names) (else as the API server listed them).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the Deployment.
      type: str
      sample: trdrhub-api
    namespace:
      description: Its namespace.
      type: str
      sample: trdrhub-system
    generation:
      description: C(metadata.generation), bumped by every spec change.
      type: int
      sample: 7
    observed_generation:
      description: C(status.observedGeneration), the generation the controller has acted on.
      type: int
      sample: 7
    replicas:
      description: Desired replicas (C(spec.replicas)).
      type: int
      sample: 3
    current_replicas:
      description: Pods of all revisions the controller currently keeps (C(status.replicas)).
      type: int
      sample: 3
    ready_replicas:
      description: Ready pods (C(status.readyReplicas)).
      type: int
      sample: 3
    updated_replicas:
      description: Pods of the newest revision (C(status.updatedReplicas)).
      type: int
      sample: 3
    available_replicas:
      description: Pods ready for at least C(minReadySeconds) (C(status.availableReplicas)).
      type: int
      sample: 3
    unavailable_replicas:
      description: C(status.unavailableReplicas).
      type: int
      sample: 0
    conditions:
      description: C(status.conditions), for example C(Available) and C(Progressing).
      type: list
      elements: dict
      contains:
        type:
          description: Condition type.
          type: str
          sample: Progressing
        status:
          description: V(True), V(False) or V(Unknown).
          type: str
          sample: "True"
        reason:
          description: Machine-readable reason, for example V(NewReplicaSetAvailable) or V(ProgressDeadlineExceeded).
          type: str
          sample: NewReplicaSetAvailable
        message:
          description: Human-readable message.
          type: str
          sample: ReplicaSet "trdrhub-api-7d9c6b5f4" has successfully progressed.
        lastUpdateTime:
          description: When the condition was last updated.
          type: str
          sample: "2025-01-15T14:02:11Z"
        lastTransitionTime:
          description: When its status last changed.
          type: str
          sample: "2025-01-15T14:01:40Z"
    revision:
      description: Current revision (the C(deployment.kubernetes.io/revision) annotation), null before the first rollout.
      type: int
      sample: 12
    paused:
      description: Whether the rollout is paused (C(spec.paused)).
      type: bool
      sample: false
    rollout_complete:
      description: Whether the rollout is complete by C(kubectl rollout status)'s rules.
      type: bool
      sample: true
    rollout_status:
      description: What C(kubectl rollout status) would say.
      type: str
      sample: "rollout in progress: 1 out of 3 new replicas have been updated"
    progress_deadline_exceeded:
      description: Whether the C(Progressing) condition says V(ProgressDeadlineExceeded) - a stalled rollout.
      type: bool
      sample: false
    selector:
      description: The Deployment's pod selector as a label selector string.
      type: str
      sample: app=trdrhub-api
    images:
      description: Container name -> image of the Deployment's pod template.
      type: dict
      sample: {"api": "ghcr.io/trdrhub/api:2025.01.15"}
    ready:
      description: V(true) when the rollout is complete and at least RV(deployments[].replicas) pods are available.
      type: bool
      sample: true
    healthy:
      description: V(true) when RV(deployments[].ready) and RV(deployments[].problems) is empty.
      type: bool
      sample: true
    problems:
      description: What is wrong with the Deployment and its pods, in words; empty when healthy.
      type: list
      elements: str
      sample:
        - only 2 of 3 replicas available
        - "pod trdrhub-api-7d9c6b5f4-x2x9z: container api CrashLoopBackOff (restarted 7 times; last exit: OOMKilled, code 137)"
    history:
      description: The newest O(history) revisions, newest first, from the ReplicaSets the Deployment owns.
      type: list
      elements: dict
      contains:
        revision:
          description: Revision number.
          type: int
          sample: 12
        replicaset:
          description: Name of the revision's ReplicaSet.
          type: str
          sample: trdrhub-api-7d9c6b5f4
        created:
          description: When the ReplicaSet was created (ISO 8601).
          type: str
          sample: "2025-01-15T14:01:40Z"
        images:
          description: Container name -> image of that revision.
          type: dict
          sample: {"api": "ghcr.io/trdrhub/api:2025.01.15"}
        change_cause:
          description: The C(kubernetes.io/change-cause) annotation, null when not set.
          type: str
          sample: deploy 2025.01.15 (pipeline 4711)
        replicas:
          description: Pods the revision's ReplicaSet should run now (0 for old revisions after a complete rollout).
          type: int
          sample: 3
        ready_replicas:
          description: Ready pods of the revision.
          type: int
          sample: 3
        current:
          description: Whether this is the Deployment's current revision.
          type: bool
          sample: true
pods:
  description: Pods of the reported Deployments (empty when O(include_pods=false)); per Deployment not-ready pods first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Pod name.
      type: str
      sample: trdrhub-api-7d9c6b5f4-x2x9z
    namespace:
      description: Its namespace.
      type: str
      sample: trdrhub-system
    deployment:
      description: The Deployment that owns it (through its ReplicaSet).
      type: str
      sample: trdrhub-api
    replicaset:
      description: The ReplicaSet that owns it.
      type: str
      sample: trdrhub-api-7d9c6b5f4
    revision:
      description: The Deployment revision the pod belongs to.
      type: int
      sample: 12
    phase:
      description: C(status.phase) - V(Pending), V(Running), V(Succeeded), V(Failed) or V(Unknown).
      type: str
      sample: Running
    reason:
      description: C(status.reason), for example V(Evicted); usually null.
      type: str
      sample: null
    ready:
      description: Whether the pod's C(Ready) condition is V(True).
      type: bool
      sample: false
    terminating:
      description: Whether the pod is being deleted.
      type: bool
      sample: false
    restarts:
      description: Container restarts, all containers together.
      type: int
      sample: 7
    node:
      description: Node the pod runs on, null while unscheduled.
      type: str
      sample: ip-10-42-3-17.eu-west-1.compute.internal
    started:
      description: When the kubelet accepted the pod (C(status.startTime)).
      type: str
      sample: "2025-01-15T14:01:42Z"
    containers:
      description: Init containers, then containers, with their state.
      type: list
      elements: dict
      contains:
        name:
          description: Container name.
          type: str
          sample: api
        image:
          description: Image it runs.
          type: str
          sample: ghcr.io/trdrhub/api:2025.01.15
        init:
          description: Whether it is an init container.
          type: bool
          sample: false
        ready:
          description: Whether it passes its readiness probe.
          type: bool
          sample: false
        restarts:
          description: Its restart count.
          type: int
          sample: 7
        state:
          description: V(running), V(waiting), V(terminated) or V(unknown).
          type: str
          sample: waiting
        reason:
          description: Why it waits or terminated, for example V(CrashLoopBackOff), V(ImagePullBackOff), V(OOMKilled).
          type: str
          sample: CrashLoopBackOff
        message:
          description: The kubelet's message for that reason.
          type: str
          sample: back-off 5m0s restarting failed container=api
        exit_code:
          description: Exit code when terminated.
          type: int
          sample: null
        started_at:
          description: When it started running, when running or terminated.
          type: str
          sample: null
        finished_at:
          description: When it terminated.
          type: str
          sample: null
        last_state:
          description:
            - Its previous state, null if none; same keys as the container's own state (C(state), C(reason),
              C(message), C(exit_code), C(started_at), C(finished_at)).
            - A previous V(terminated) with reason V(OOMKilled) means the kernel killed it for exceeding its memory limit.
          type: dict
          sample: {"state": "terminated", "reason": "OOMKilled", "message": null, "exit_code": 137,
                   "started_at": "2025-01-15T14:20:02Z", "finished_at": "2025-01-15T14:25:40Z"}
    problems:
      description: What is wrong with the pod, in words; empty when fine.
      type: list
      elements: str
      sample: ["container api CrashLoopBackOff (restarted 7 times; last exit: OOMKilled, code 137)"]
summary:
  description: Counts over the reported Deployments and pods.
  returned: always
  type: dict
  contains:
    deployments:
      description: Deployments reported.
      type: int
      sample: 2
    deployments_ready:
      description: Deployments whose RV(deployments[].ready) is true.
      type: int
      sample: 1
    deployments_degraded:
      description: Deployments whose RV(deployments[].ready) is false.
      type: int
      sample: 1
    pods:
      description: Pods reported; null when O(include_pods=false).
      type: int
      sample: 6
    pods_not_ready:
      description: Pods not ready and not terminating; null when O(include_pods=false).
      type: int
      sample: 1
    restarts:
      description: Container restarts over all reported pods; null when O(include_pods=false).
      type: int
      sample: 7
    healthy:
      description: Whether every reported Deployment is RV(deployments[].healthy) (true when none was reported).
      type: bool
      sample: false
unhealthy:
  description: Every problem of every reported Deployment and its pods, one sentence each, prefixed with the Deployment.
  returned: always
  type: list
  elements: str
  sample: ["deployment trdrhub-api: only 2 of 3 replicas available"]
requests:
  description: The API requests the module made, in order (method and path).
  returned: always
  type: list
  elements: str
  sample: ["GET /apis/apps/v1/namespaces/trdrhub-system/deployments"]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import K8S_AUTH_MUTUALLY_EXCLUSIVE, KUBERNETES, K8sClient, K8sInputError, k8s_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.workloads import WorkloadReader


def argument_spec() -> dict[str, t.Any]:
    return k8s_spec(
        names={'type': 'list', 'elements': 'str', 'default': []},
        label_selector={'type': 'str'},
        include_pods={'type': 'bool', 'default': True},
        history=bounded({'type': 'int', 'default': 5}, minimum=0),
    )


def check_params(params: dict[str, t.Any]) -> None:
    if not (params.get('namespace') or '').strip():
        raise K8sInputError('namespace must not be empty')
    if any(not (name or '').strip() for name in params.get('names') or []):
        raise K8sInputError('names must not contain empty names')


def workload_info(params: dict[str, t.Any], client: K8sClient) -> dict[str, t.Any]:
    reader = WorkloadReader(client, params['namespace'])
    result = reader.read(params.get('names') or [], params.get('label_selector') or None,
                         params.get('include_pods', True), params.get('history', 5))
    return dict(changed=False, connection=client.describe(), namespace=params['namespace'], requests=client.requests,
                **result)


class WorkloadInfo(Worker):
    """The worker: options checked when built, the report read when run."""

    def check(self) -> None:
        check_params(self.params)

    def run(self, client: t.Any) -> dict[str, t.Any]:
        params = self.params
        result = workload_info(params, client)
        if not result['deployments'] and not params.get('names'):
            self.warnings.append(f"No Deployments in namespace {params['namespace']}"
                                 + (f" match label_selector {params['label_selector']!r}" if params.get('label_selector') else ''))
        return result


def main() -> None:
    run_module(argument_spec(), lambda module: WorkloadInfo(module.params), lambda module, worker: K8sClient(module.params),
               requires=[KUBERNETES], error_extra=request_log, mutually_exclusive=K8S_AUTH_MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
