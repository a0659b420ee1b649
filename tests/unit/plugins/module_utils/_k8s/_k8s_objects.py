# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deployment and ReplicaSet objects as the API returns them, for the rollout tests (module_utils and module)."""

from __future__ import annotations

NS = 'trdrhub-system'
REV = 'deployment.kubernetes.io/revision'


def deployment(replicas=3, revision='3', env=None, image='api:3', paused=False, rv='100', generation=3, observed=3,
               updated=3, available=3, current=3, conditions=None):
    container = {'name': 'api', 'image': image}
    if env is not None:
        container['env'] = env
    return {'metadata': {'name': 'trdrhub-api', 'namespace': NS, 'uid': 'uid-dep', 'resourceVersion': rv,
                         'generation': generation, 'annotations': {REV: revision}},
            'spec': {'replicas': replicas, 'paused': paused, 'selector': {'matchLabels': {'app': 'trdrhub-api'}},
                     'template': {'metadata': {'labels': {'app': 'trdrhub-api'}},
                                  'spec': {'containers': [container, {'name': 'sidecar', 'image': 'envoy:1'}]}}},
            'status': {'observedGeneration': observed, 'replicas': current, 'updatedReplicas': updated,
                       'readyReplicas': available, 'availableReplicas': available, 'conditions': conditions or []}}


def replicaset(revision, image, history=None, cause=None):
    annotations = {REV: str(revision)}
    if history:
        annotations['deployment.kubernetes.io/revision-history'] = history
    if cause:
        annotations['kubernetes.io/change-cause'] = cause
    return {'metadata': {'name': f'trdrhub-api-h{revision}', 'annotations': annotations,
                         'ownerReferences': [{'kind': 'Deployment', 'name': 'trdrhub-api', 'uid': 'uid-dep'}]},
            'spec': {'template': {'metadata': {'labels': {'app': 'trdrhub-api', 'pod-template-hash': f'h{revision}'}},
                                  'spec': {'containers': [{'name': 'api', 'image': image}, {'name': 'sidecar', 'image': 'envoy:1'}]}}}}
