# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""k8s_rollout: patch building, undo template selection, rollout evaluation, the 409 retry and the module's exits."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip('kubernetes')

from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import rollout as ro  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import rollout_run as run_mod  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    K8sConflictError,
    K8sInputError,
    K8sNotFoundError,
)
from ansible_collections.trdrhub.incident.plugins.modules import k8s_rollout  # noqa: E402

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


# -- patch building ------------------------------------------------------------------------------

def test_restart_patch_is_kubectls_and_tags_the_deployment_only():
    change = ro.plan_restart(deployment(), '2025-01-15T14:30:00Z', 'INC-1')
    assert change.changed and change.patch_type == 'strategic'
    assert change.body == {'spec': {'template': {'metadata': {'annotations': {ro.RESTARTED_AT: '2025-01-15T14:30:00Z'}}}},
                           'metadata': {'annotations': {ro.INCIDENT_ANNOTATION: 'INC-1'}}}
    assert change.after['spec']['template']['metadata']['annotations'] == {ro.RESTARTED_AT: '2025-01-15T14:30:00Z'}
    with pytest.raises(K8sInputError, match='is paused: a restart would not roll out'):
        ro.plan_restart(deployment(paused=True), 'now', None)


@pytest.mark.parametrize('env, requested, items, after, previous', [
    (None, {'READ_ONLY_MODE': True}, [{'name': 'READ_ONLY_MODE', 'value': 'true'}], [{'name': 'READ_ONLY_MODE', 'value': 'true'}],
     {'READ_ONLY_MODE': None}),
    ([{'name': 'A', 'value': '1'}, {'name': 'B', 'value': '2'}], {'A': None}, [{'name': 'A', '$patch': 'delete'}],
     [{'name': 'B', 'value': '2'}], {'A': '1'}),
    ([{'name': 'A', 'value': '1'}], {'A': 2}, [{'name': 'A', 'value': '2'}], [{'name': 'A', 'value': '2'}], {'A': '1'}),
    ([{'name': 'S', 'valueFrom': {'secretKeyRef': {'name': 's', 'key': 'k'}}}], {'S': 'x'},
     [{'name': 'S', 'value': 'x', 'valueFrom': None}], [{'name': 'S', 'value': 'x'}], {'S': None}),
])
def test_set_env_patch_merges_by_name(env, requested, items, after, previous):
    change = ro.plan_set_env(deployment(env=env), 'api', requested, None)
    assert change.changed and change.patch_type == 'strategic'
    assert change.body == {'metadata': {'resourceVersion': '100'},
                           'spec': {'template': {'spec': {'containers': [{'name': 'api', 'env': items}]}}}}
    assert change.after['spec']['template']['spec']['containers'][0]['env'] == after
    assert change.info['previous'] == previous


def test_set_env_unchanged_missing_container_and_value_from_kept():
    dep = deployment(env=[{'name': 'A', 'value': 'true'}, {'name': 'S', 'valueFrom': {'secretKeyRef': {'name': 's', 'key': 'k'}}}])
    same = ro.plan_set_env(dep, 'api', {'A': True, 'GONE': None}, 'INC-1')
    assert not same.changed and same.body is None and same.after is dep and same.info['previous'] == {'A': 'true', 'GONE': None}
    replaced = ro.plan_set_env(dep, 'api', {'S': 'plain'}, None)
    assert replaced.info['previous_value_from'] == {'S': {'secretKeyRef': {'name': 's', 'key': 'k'}}}
    with pytest.raises(K8sNotFoundError) as err:
        ro.plan_set_env(dep, 'apii', {'A': '1'}, None)
    assert str(err.value) == 'Container apii not found in Deployment trdrhub-api; its containers: api, sidecar'


def test_scale_guard_and_patch():
    change = ro.plan_scale(deployment(), 6, 3)
    assert change.changed and change.subresource == 'scale' and change.patch_type == 'merge'
    assert change.body == {'metadata': {'resourceVersion': '100'}, 'spec': {'replicas': 6}}
    assert change.info == {'replicas': 6, 'previous_replicas': 3}
    assert not ro.plan_scale(deployment(), 3, None).changed
    with pytest.raises(K8sInputError) as err:
        ro.plan_scale(deployment(), 6, 2)
    assert err.value.details == {'current_replicas': 3, 'expected_replicas': 2}


def test_pause_resume_merge_patch():
    change = ro.plan_pause(deployment(), True, 'INC-1')
    assert change.body == {'spec': {'paused': True}, 'metadata': {'annotations': {ro.INCIDENT_ANNOTATION: 'INC-1'}}}
    assert change.patch_type == 'merge' and not ro.plan_pause(deployment(paused=True), True, None).changed
    assert not ro.plan_pause(deployment(), False, None).changed


# -- undo: which template -----------------------------------------------------------------------

SETS = [replicaset(1, 'api:1', cause='deploy 1'), replicaset(3, 'api:3'), replicaset(2, 'api:2', cause='deploy 2'),
        {'metadata': {'name': 'other', 'annotations': {REV: '9'}, 'ownerReferences': [{'kind': 'Deployment', 'uid': 'x'}]}}]


def test_undo_picks_previous_or_the_given_revision_and_ignores_foreign_replicasets():
    assert ro.undo_target(deployment(), SETS, None)['metadata']['name'] == 'trdrhub-api-h2'
    assert ro.undo_target(deployment(), SETS, 1)['metadata']['name'] == 'trdrhub-api-h1'
    renumbered = [replicaset(5, 'api:1', history='1,4'), replicaset(3, 'api:3')]
    assert ro.undo_target(deployment(revision='3'), renumbered, 4)['metadata']['name'] == 'trdrhub-api-h5'
    with pytest.raises(K8sNotFoundError, match=r'^Deployment trdrhub-api has no revision 9; its revisions: 1, 2, 3$'):
        ro.undo_target(deployment(), SETS, 9)
    with pytest.raises(K8sNotFoundError, match='no previous revision to roll back to'):
        ro.undo_target(deployment(), [replicaset(3, 'api:3')], None)


def test_undo_copies_the_template_without_the_hash_and_is_idempotent():
    change = ro.plan_undo(deployment(), SETS, None, 'INC-1')
    template = change.after['spec']['template']
    assert template['metadata']['labels'] == {'app': 'trdrhub-api'} and template['spec']['containers'][0]['image'] == 'api:2'
    assert change.patch_type == 'json' and change.body[0] == {'op': 'test', 'path': '/metadata/resourceVersion', 'value': '100'}
    assert change.body[1] == {'op': 'replace', 'path': '/spec/template', 'value': template}
    assert change.body[2]['value'] == {REV: '3', 'kubernetes.io/change-cause': 'deploy 2', ro.INCIDENT_ANNOTATION: 'INC-1'}
    assert change.info == {'to_revision_used': 2, 'from_revision': 3, 'images': {'api': 'api:2', 'sidecar': 'envoy:1'}}
    same = ro.plan_undo(deployment(image='api:2'), SETS, 2, None)
    assert not same.changed and same.body is None
    with pytest.raises(K8sInputError, match='is paused: resume it before rolling back'):
        ro.plan_undo(deployment(paused=True), SETS, None, None)


# -- rollout evaluation -------------------------------------------------------------------------

STALLED = [{'type': 'Progressing', 'status': 'False', 'reason': 'ProgressDeadlineExceeded',
            'message': 'ReplicaSet "trdrhub-api-h4" has timed out progressing.'}]


@pytest.mark.parametrize('kwargs, min_generation, state, text', [
    ({}, 0, 'complete', 'successfully rolled out'),
    ({}, 4, 'progressing', 'waiting for the controller to observe generation 4 (observed 3)'),
    ({'updated': 1, 'current': 4}, 0, 'progressing', '1 out of 3 new replicas have been updated'),
    ({'available': 2}, 0, 'progressing', '2 of 3 updated replicas are available'),
    ({'updated': 1, 'conditions': STALLED}, 0, 'failed', 'rollout exceeded its progress deadline'),
    ({'updated': 0, 'paused': True}, 0, 'paused', 'the Deployment is paused'),
])
def test_evaluate(kwargs, min_generation, state, text):
    got = ro.evaluate(deployment(**kwargs), min_generation)
    assert got[0] == state and text in got[1]


# -- runner: 409 retry, waiting ----------------------------------------------------------------

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


def test_a_conflict_is_planned_again_from_a_fresh_read():
    client = FakeClient([deployment(env=[]), deployment(env=[{'name': 'READ_ONLY_MODE', 'value': 'maybe'}], rv='101')], conflicts=1)
    result = run_mod.Rollout(client, NS, 'trdrhub-api').run({'action': 'set_env', 'container': 'api',
                                                            'env': {'READ_ONLY_MODE': 'true'}, 'timeout': 5})
    assert result['changed'] and result['previous'] == {'READ_ONLY_MODE': 'maybe'}
    assert client.writes[0][0]['metadata'] == {'resourceVersion': '101'}
    assert client.requests == ['get deployments', 'patch deployments', 'get deployments', 'patch deployments']


def test_conflicts_every_time_fail_with_one_message():
    client = FakeClient([deployment()], conflicts=5)
    with pytest.raises(K8sConflictError) as err:
        run_mod.Rollout(client, NS, 'trdrhub-api').run({'action': 'scale', 'replicas': 5, 'timeout': 5})
    assert str(err.value).endswith('Deployment trdrhub-api kept changing while scale was applied (3 attempts, each refused); '
                                   'this task changed nothing, re-run it')
    assert err.value.details == {'status': 409}


def test_check_mode_never_writes_and_never_waits():
    client = FakeClient([deployment()])
    result = run_mod.Rollout(client, NS, 'trdrhub-api', check_mode=True).run(
        {'action': 'undo', 'wait': True, 'timeout': 5, 'incident_id': 'INC-1'})
    assert result['changed'] and client.writes == [] and 'waited' not in result
    assert result['msg'] == 'Deployment trdrhub-api would be rolled back to the template of revision 2'
    assert result['diff']['before']['images']['api'] == 'api:3' and result['diff']['after']['images']['api'] == 'api:2'
    assert result['diff']['after']['incident_id'] == 'INC-1'


def test_wait_until_complete_with_a_fake_clock():
    clock = {'now': 0.0}
    progressing = deployment(generation=4, observed=4, updated=1, current=4)
    client = FakeClient([deployment(), deployment(generation=4, observed=3), progressing, deployment(generation=4, observed=4)])
    runner = run_mod.Rollout(client, NS, 'trdrhub-api', clock=lambda: clock['now'],
                             sleep=lambda s: clock.__setitem__('now', clock['now'] + s))
    result = runner.run({'action': 'restart', 'wait': True, 'timeout': 30})
    assert result['rollout_complete'] and result['waited'] == pytest.approx(0.5) and result['changed']


def test_wait_times_out_and_stalls_fail():
    clock = {'now': 0.0}
    slow = deployment(generation=4, observed=4, updated=1, current=4)
    runner = run_mod.Rollout(FakeClient([deployment(), slow]), NS, 'trdrhub-api', clock=lambda: clock['now'],
                             sleep=lambda s: clock.__setitem__('now', clock['now'] + s))
    expected = r'^Timed out after 3s waiting for the rollout of Deployment trdrhub-api in trdrhub-system: rollout in progress: 1 out of 3'
    with pytest.raises(run_mod.RolloutFailed, match=expected):
        runner.run({'action': 'restart', 'wait': True, 'timeout': 3})
    stalled = deployment(generation=4, observed=4, updated=1, conditions=STALLED)
    with pytest.raises(run_mod.RolloutFailed) as err:
        run_mod.Rollout(FakeClient([stalled]), NS, 'trdrhub-api').run({'action': 'status', 'timeout': 3})
    assert str(err.value) == ('Rollout of Deployment trdrhub-api in trdrhub-system failed: rollout exceeded its progress deadline: '
                              'ReplicaSet "trdrhub-api-h4" has timed out progressing. (roll back with action=undo)')


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


def test_set_env_renders_numbers_and_booleans_as_kubectl_does():
    dep = deployment()
    change = ro.plan_set_env(dep, 'api', {'WORKERS': 4, 'RATIO': 0.5, 'READ_ONLY': True, 'DEBUG': False, 'MODE': 'x'},
                             None)
    assert change.info['env'] == {'WORKERS': '4', 'RATIO': '0.5', 'READ_ONLY': 'true', 'DEBUG': 'false', 'MODE': 'x'}


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
