# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""k8s_workload_info, the module: its report, name order, unknown names, selectors, client errors and bad input, from API JSON."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip('kubernetes')

from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import workloads as wl  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    K8sAuthError,
)
from ansible_collections.trdrhub.incident.plugins.modules import k8s_workload_info  # noqa: E402

NS = 'trdrhub-system'


def deployment(name='trdrhub-api', replicas=3, generation=2, observed=2, revision='2', updated=3, current=3, ready=3,
               available=3, conditions=None, paused=False, images=None):
    status = {'observedGeneration': observed, 'replicas': current, 'updatedReplicas': updated, 'readyReplicas': ready,
              'availableReplicas': available, 'conditions': conditions if conditions is not None else [
                  {'type': 'Available', 'status': 'True', 'reason': 'MinimumReplicasAvailable', 'message': 'ok'},
                  {'type': 'Progressing', 'status': 'True', 'reason': 'NewReplicaSetAvailable', 'message': 'done'}]}
    return {'metadata': {'name': name, 'namespace': NS, 'uid': f'uid-{name}', 'generation': generation,
                         'annotations': {wl.REVISION: revision}},
            'spec': {'replicas': replicas, 'paused': paused, 'selector': {'matchLabels': {'app': name}},
                     'template': {'spec': {'containers': [{'name': c, 'image': i} for c, i in (images or {'api': 'api:2'}).items()]}}},
            'status': status}


def replicaset(dep, revision, image, replicas=0, created='2025-01-15T14:00:00Z', cause=None):
    name = f"{dep['metadata']['name']}-r{revision}"
    annotations = {wl.REVISION: str(revision)}
    if cause:
        annotations[wl.CHANGE_CAUSE] = cause
    return {'metadata': {'name': name, 'uid': f'uid-{name}', 'creationTimestamp': created, 'annotations': annotations,
                         'ownerReferences': [{'kind': 'Deployment', 'name': dep['metadata']['name'], 'uid': dep['metadata']['uid']}]},
            'spec': {'replicas': replicas, 'template': {'spec': {'containers': [{'name': 'api', 'image': image}]}}},
            'status': {'readyReplicas': replicas}}


def pod(rs, name, ready=True, state=None, last=None, restarts=0, phase='Running'):
    cs = {'name': 'api', 'image': 'api:2', 'ready': ready, 'restartCount': restarts,
          'state': state or {'running': {'startedAt': '2025-01-15T14:01:00Z'}}}
    if last:
        cs['lastState'] = last
    return {'metadata': {'name': name, 'namespace': NS, 'ownerReferences': [{'kind': 'ReplicaSet', 'uid': rs['metadata']['uid']}]},
            'spec': {'nodeName': 'node-1'},
            'status': {'phase': phase, 'startTime': '2025-01-15T14:00:30Z',
                       'conditions': [{'type': 'Ready', 'status': 'True' if ready else 'False'}], 'containerStatuses': [cs]}}


CRASH = {'waiting': {'reason': 'CrashLoopBackOff', 'message': 'back-off 5m0s restarting failed container=api'}}


OOM = {'terminated': {'reason': 'OOMKilled', 'exitCode': 137, 'finishedAt': '2025-01-15T14:25:40Z'}}


# -- the module ------------------------------------------------------------------------------------

class FakeClient:
    """K8sClient's read interface over a dict of API lists; records requests like the real one."""

    def __init__(self, params, objects, error=None):
        self.objects, self.error, self.requests = objects, error, []

    def list(self, resource, namespace, label_selector=None):
        self.requests.append(f'list {resource} {label_selector or ""}'.strip())
        if self.error:
            raise self.error
        items = self.objects.get(resource, [])
        if label_selector and resource == 'deployments':
            key, _sep, value = label_selector.partition('=')
            items = [d for d in items if (d['metadata'].get('labels') or {}).get(key) == value]
        return {'items': copy.deepcopy(items)}

    def describe(self):
        return {'source': 'host', 'kubeconfig': None, 'context': None, 'api_server': 'https://k8s.example'}

    def close(self):
        pass


@pytest.fixture
def cluster(monkeypatch):
    api, worker = deployment(), deployment(name='trdrhub-worker', replicas=1, updated=1, current=1, ready=0, available=0)
    api['metadata']['labels'] = {'tier': 'api'}
    rs_api, rs_worker = replicaset(api, 2, 'api:2', replicas=3), replicaset(worker, 2, 'worker:2', replicas=1)
    objects = {'deployments': [api, worker], 'replicasets': [replicaset(api, 1, 'api:1'), rs_api, rs_worker],
               'pods': [pod(rs_api, f'api-{i}') for i in range(3)]
               + [pod(rs_worker, 'worker-0', ready=False, state=CRASH, last=OOM, restarts=4)]}
    state = {'objects': objects, 'error': None, 'clients': []}

    def make(params):
        made = FakeClient(params, state['objects'], state['error'])
        state['clients'].append(made)
        return made

    monkeypatch.setattr(k8s_workload_info, 'K8sClient', make)
    return state


def test_module_reports_everything(run_module, cluster):
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example'}, check_mode=True)
    assert not res.get('failed') and res['changed'] is False and res['namespace'] == NS
    assert [d['name'] for d in res['deployments']] == ['trdrhub-api', 'trdrhub-worker']
    assert [h['revision'] for h in res['deployments'][0]['history']] == [2, 1]
    assert res['summary'] == {'deployments': 2, 'deployments_ready': 1, 'deployments_degraded': 1, 'pods': 4,
                              'pods_not_ready': 1, 'restarts': 4, 'healthy': False}
    assert res['unhealthy'] == ['deployment trdrhub-worker: only 0 of 1 replicas available',
                                'deployment trdrhub-worker: pod worker-0: container api CrashLoopBackOff (restarted 4 times; '
                                'last exit: OOMKilled, code 137)']
    assert [p['deployment'] for p in res['pods']] == ['trdrhub-api'] * 3 + ['trdrhub-worker']


def test_module_names_order_without_pods(run_module, cluster):
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example', 'names': ['trdrhub-worker', 'trdrhub-api'],
                                         'include_pods': False, 'history': 0})
    assert [d['name'] for d in res['deployments']] == ['trdrhub-worker', 'trdrhub-api']
    assert res['pods'] == [] and res['summary']['pods'] is None and res['summary']['restarts'] is None
    assert res['requests'] == ['list deployments']   # no ReplicaSet or pod reads needed


def test_module_unknown_name_lists_existing(run_module, cluster):
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example', 'names': ['trdrhub-apu']})
    assert res['failed']
    assert res['msg'] == ('Deployment trdrhub-apu not found in namespace trdrhub-system. '
                          'Deployments in trdrhub-system: trdrhub-api, trdrhub-worker')
    assert res['missing'] == ['trdrhub-apu'] and res['existing'] == ['trdrhub-api', 'trdrhub-worker']


def test_module_name_outside_label_selector(run_module, cluster):
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example', 'names': ['trdrhub-worker'], 'label_selector': 'tier=api'})
    assert res['failed'] and "Deployment trdrhub-worker does not match label_selector 'tier=api'" in res['msg']


def test_module_empty_namespace_warns(run_module, cluster):
    cluster['objects'] = {}
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example', 'namespace': 'empty'})
    assert res['deployments'] == [] and res['summary']['healthy'] is True
    assert res['warnings'] == ['No Deployments in namespace empty']


def test_module_maps_client_errors(run_module, cluster):
    cluster['error'] = K8sAuthError('Permission denied: ...', status=403)
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example'})
    assert res['failed'] and res['msg'] == 'Permission denied: ...' and res['status'] == 403
    assert res['requests'] == ['list deployments']


@pytest.mark.parametrize('args, text', [
    ({'history': -1}, 'history must be at least 0, got -1'),
    ({'namespace': ' '}, 'namespace must not be empty'),
    ({'names': ['']}, 'names must not contain empty names'),
])
def test_module_bad_input(run_module, cluster, args, text):
    res = run_module(k8s_workload_info, {'host': 'https://k8s.example', **args})
    assert res['failed'] and text in res['msg'] and cluster['clients'] == []


def test_module_without_kubernetes_library(run_module, monkeypatch):
    monkeypatch.setattr(k8s_workload_info, 'KUBERNETES', ('kubernetes', False, None))
    res = run_module(k8s_workload_info, {})
    assert res['failed'] and 'kubernetes' in res['msg']
