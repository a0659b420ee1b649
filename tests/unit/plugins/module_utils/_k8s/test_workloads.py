# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Workload views from Kubernetes objects: rollout status, a Deployment healthy or degraded, its history, pod problems."""

from __future__ import annotations

import pytest

pytest.importorskip('kubernetes')

from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import workloads as wl  # noqa: E402

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


# -- rollout status, kubectl's rules ------------------------------------------------------------

@pytest.mark.parametrize('kwargs, complete, text, deadline', [
    ({}, True, 'successfully rolled out', False),
    ({'generation': 3, 'observed': 2}, False, 'waiting for the controller to observe the new spec (generation 3, observed 2)', False),
    ({'updated': 1, 'current': 4}, False, '1 out of 3 new replicas have been updated', False),
    ({'current': 5}, False, '2 old replicas are pending termination', False),
    ({'available': 2}, False, '2 of 3 updated replicas are available', False),
    ({'updated': 1, 'conditions': [{'type': 'Progressing', 'status': 'False', 'reason': 'ProgressDeadlineExceeded',
                                    'message': 'ReplicaSet "x" has timed out progressing.'}]},
     False, 'rollout exceeded its progress deadline: ReplicaSet "x" has timed out progressing.', True),
])
def test_rollout_status(kwargs, complete, text, deadline):
    got = wl.rollout_status(deployment(**kwargs))
    assert got[0] is complete and text in got[1] and got[2] is deadline


def test_deployment_view_healthy_and_degraded():
    view = wl.deployment_view(deployment())
    assert view['ready'] and view['problems'] == [] and view['revision'] == 2 and view['images'] == {'api': 'api:2'}
    assert view['selector'] == 'app=trdrhub-api' and view['unavailable_replicas'] == 0
    degraded = wl.deployment_view(deployment(ready=1, available=1, conditions=[
        {'type': 'Available', 'status': 'False', 'reason': 'MinimumReplicasUnavailable', 'message': 'no'},
        {'type': 'ReplicaFailure', 'status': 'True', 'reason': 'FailedCreate', 'message': 'exceeded quota: mem'}]))
    assert not degraded['ready']
    assert degraded['problems'] == ['only 1 of 3 replicas available', 'ReplicaFailure (FailedCreate: exceeded quota: mem)']
    assert wl.deployment_view(deployment(replicas=0, updated=0, current=0, ready=0, available=0))['problems'] == ['scaled to 0 replicas']
    paused = wl.deployment_view(deployment(updated=1, current=4, paused=True))
    assert paused['paused'] and paused['problems'][0].endswith('(rollout paused)')


def test_history_newest_first_limited_and_only_owned():
    dep = deployment(revision='10')
    other = deployment(name='trdrhub-worker')
    sets = [replicaset(dep, r, f'api:{r}', created=f'2025-01-1{r % 10}T00:00:00Z', cause=f'deploy {r}') for r in (2, 10, 9, 1)]
    sets[1]['spec']['replicas'] = sets[1]['status']['readyReplicas'] = 3
    sets.append(replicaset(other, 11, 'worker:11'))
    history = wl.revision_history(dep, sets, 3)
    assert [h['revision'] for h in history] == [10, 9, 2]
    assert history[0] == {'revision': 10, 'replicaset': 'trdrhub-api-r10', 'created': '2025-01-10T00:00:00Z',
                          'images': {'api': 'api:10'}, 'change_cause': 'deploy 10', 'replicas': 3, 'ready_replicas': 3, 'current': True}
    assert not history[1]['current']
    assert wl.revision_history(dep, sets, 0) == []


def test_pod_problems():
    rs = replicaset(deployment(), 2, 'api:2', replicas=3)
    crash = wl.pod_view(pod(rs, 'p1', ready=False, state=CRASH, last=OOM, restarts=7), 'trdrhub-api', rs)
    assert crash['problems'] == ['container api CrashLoopBackOff (restarted 7 times; last exit: OOMKilled, code 137)']
    assert crash['containers'][0]['last_state']['reason'] == 'OOMKilled' and crash['revision'] == 2 and crash['replicaset'] == 'trdrhub-api-r2'
    recovered = wl.pod_view(pod(rs, 'p2', last=OOM, restarts=1), 'trdrhub-api', rs)
    assert recovered['ready'] and recovered['problems'] == ['container api was OOMKilled (restarted 1 times, last at 2025-01-15T14:25:40Z)']
    pull = wl.pod_view(pod(rs, 'p3', ready=False, phase='Pending', state={'waiting': {'reason': 'ImagePullBackOff',
                                                                                      'message': 'Back-off pulling image "api:3"'}}), 'x', rs)
    assert pull['problems'] == ['container api ImagePullBackOff (restarted 0 times): Back-off pulling image "api:3"']
    probe = wl.pod_view(pod(rs, 'p4', ready=False), 'x', rs)
    assert probe['problems'] == ['container api is running but not ready (readiness probe failing)']
    unscheduled = pod(rs, 'p5', ready=False, phase='Pending', state={'waiting': {'reason': 'ContainerCreating'}})
    unscheduled['status']['conditions'].append({'type': 'PodScheduled', 'status': 'False', 'reason': 'Unschedulable',
                                                'message': '0/3 nodes are available: 3 Insufficient memory.'})
    assert wl.pod_view(unscheduled, 'x', rs)['problems'] == ['not scheduled (Unschedulable: 0/3 nodes are available: 3 Insufficient memory.)']
    starting = wl.pod_view(pod(rs, 'p6', ready=False, phase='Pending', state={'waiting': {'reason': 'ContainerCreating'}}), 'x', rs)
    assert starting['problems'] == ['not ready (phase Pending)']
