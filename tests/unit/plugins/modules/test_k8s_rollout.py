# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""k8s_rollout: patch building, undo template selection, rollout evaluation, the 409 retry and the module's exits."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip('kubernetes')

from _k8s_objects import REV, deployment, replicaset  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    K8sConflictError,
)
from ansible_collections.trdrhub.incident.plugins.modules import k8s_rollout  # noqa: E402

SETS = [replicaset(1, 'api:1', cause='deploy 1'), replicaset(3, 'api:3'), replicaset(2, 'api:2', cause='deploy 2'),
        {'metadata': {'name': 'other', 'annotations': {REV: '9'}, 'ownerReferences': [{'kind': 'Deployment', 'uid': 'x'}]}}]


# -- the API double ----------------------------------------------------------------

class FakeClient:
    """Serves a list of Deployment reads and records writes; ``conflicts`` writes answer 409 first."""

    def __init__(self, reads, conflicts=0):
        self.reads = list(reads)
        self.conflicts = conflicts
        self.requests = []
        self.writes = []

    def get(self, resource, namespace, name, subresource=''):
        self.requests.append(f'get {resource}')
        return copy.deepcopy(self.reads.pop(0) if len(self.reads) > 1 else self.reads[0])

    def list(self, resource, namespace, label_selector=None):
        self.requests.append(f'list {resource}')
        return {'items': copy.deepcopy(SETS) if resource == 'replicasets' else []}

    def patch(self, resource, namespace, name, body, patch_type='strategic', subresource=''):
        self.requests.append(f'patch {resource}{"/" + subresource if subresource else ""}')
        if self.conflicts:
            self.conflicts -= 1
            raise K8sConflictError('Conflict: the object has been modified', status=409)
        self.writes.append((body, patch_type, subresource))
        answer = deployment(generation=4, replicas=body.get('spec', {}).get('replicas', 3) if isinstance(body, dict) else 3)
        return answer


# -- the module ---------------------------------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    ({'action': 'scale', 'replicas': -1}, 'replicas must be at least 0, got -1'),
    ({'action': 'status', 'timeout': 0}, 'timeout must be greater than 0, got 0'),
    ({'action': 'set_env', 'container': 'api', 'env': {}}, 'env must name at least one variable for action=set_env'),
    ({'action': 'restart', 'name': ' '}, 'name must not be empty'),
    ({'action': 'scale'}, 'action is scale but all of the following are missing: replicas'),
])
def test_module_refuses_bad_input(run_module, args, message):
    res = run_module(k8s_rollout, {'host': 'https://k8s.example', 'name': 'trdrhub-api', **args})
    assert res['failed'] and res['msg'] == message


@pytest.mark.parametrize('value, kind', [
    ({'nested': [1, 2]}, 'a mapping'),
    ([1, 2], 'a list'),
])
def test_set_env_refuses_values_kubectl_could_not_set(run_module, monkeypatch, value, kind):
    fake = FakeClient([deployment()])
    monkeypatch.setattr(k8s_rollout, 'K8sClient', lambda params: fake)
    res = run_module(k8s_rollout, {'host': 'https://k8s.example', 'name': 'trdrhub-api', 'action': 'set_env',
                                   'container': 'api', 'env': {'READ_ONLY': value}})
    assert res['failed'] and res['msg'] == ('env.READ_ONLY must be a string, a number or a boolean (null removes the '
                                            f'variable), got {kind}')
    assert fake.requests == [] and fake.writes == []


def test_module_diff_only_in_diff_mode(run_module, monkeypatch):
    fake = FakeClient([deployment()])
    fake.describe = lambda: {'source': 'host', 'kubeconfig': None, 'context': None, 'api_server': 'https://k8s.example'}
    fake.close = lambda: None
    monkeypatch.setattr(k8s_rollout, 'K8sClient', lambda params: fake)
    plain = run_module(k8s_rollout, {'host': 'https://k8s.example', 'name': 'trdrhub-api', 'action': 'pause'}, check_mode=True)
    assert plain['changed'] and 'diff' not in plain and fake.writes == []
    shown = run_module(k8s_rollout, {'host': 'https://k8s.example', 'name': 'trdrhub-api', 'action': 'pause'}, check_mode=True,
                       diff=True)
    assert shown['diff']['before']['paused'] is False and shown['diff']['after']['paused'] is True
