# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Restarting the consumers of a rotated secret: the Kubernetes restarter patches restartedAt and waits for the rollout."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import RestartError


class FakeDeployments:
    """Deployments that finish their rollout as soon as they are patched, or stall."""

    def __init__(self, stall: bool = False) -> None:
        self.stall = stall
        self.patches: list[tuple[str, dict[str, t.Any]]] = []
        self.deps: dict[str, dict[str, t.Any]] = {}

    def _dep(self, name: str) -> dict[str, t.Any]:
        return self.deps.setdefault(name, {
            'metadata': {'name': name, 'generation': 1, 'resourceVersion': '1'},
            'spec': {'replicas': 1, 'template': {'metadata': {}}},
            'status': {'observedGeneration': 1, 'replicas': 1, 'updatedReplicas': 1, 'availableReplicas': 1}})

    def get(self, resource: str, namespace: str, name: str, subresource: str = '') -> dict[str, t.Any]:
        return json.loads(json.dumps(self._dep(name)))

    def patch(self, resource, namespace, name, body, patch_type='strategic', subresource=''):
        self.patches.append((name, body))
        dep = self._dep(name)
        dep['metadata']['generation'] += 1
        if not self.stall:
            dep['status']['observedGeneration'] = dep['metadata']['generation']
        return json.loads(json.dumps(dep))


def test_kube_restarter_sets_restarted_at_and_waits():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter
    client = FakeDeployments()
    assert KubeRestarter(client, 'ns', ['trdrhub-api', 'trdrhub-worker'], 5).restart() == ['trdrhub-api', 'trdrhub-worker']
    assert [name for name, _body in client.patches] == ['trdrhub-api', 'trdrhub-worker']
    annotations = client.patches[0][1]['spec']['template']['metadata']['annotations']
    assert 'kubectl.kubernetes.io/restartedAt' in annotations


def test_kube_restarter_restarts_again_in_the_next_second_when_the_template_did_not_change():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter

    class SameSecond(FakeDeployments):
        """The first patch lands in the same second as an earlier restart: the template, so the generation, stays."""

        def patch(self, resource, namespace, name, body, patch_type='strategic', subresource=''):
            if not self.patches:
                self.patches.append((name, body))
                return json.loads(json.dumps(self._dep(name)))
            return super().patch(resource, namespace, name, body, patch_type, subresource)

    client, slept = SameSecond(), []
    assert KubeRestarter(client, 'ns', ['trdrhub-api'], 5, sleep=slept.append).restart() == ['trdrhub-api']
    assert len(client.patches) == 2 and len(slept) == 1 and 0 < slept[0] <= 1.05
    assert client.deps['trdrhub-api']['metadata']['generation'] == 2


def test_kube_restarter_times_out_as_a_restart_error():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter
    ticks = iter(range(0, 1000, 3))
    restarter = KubeRestarter(FakeDeployments(stall=True), 'ns', ['trdrhub-api'], 5,
                              clock=lambda: float(next(ticks)), sleep=lambda s: None)
    with pytest.raises(RestartError, match='Timed out after 5s waiting for the rollout of Deployment trdrhub-api'):
        restarter.restart()
