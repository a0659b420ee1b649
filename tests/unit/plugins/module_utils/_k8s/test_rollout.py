# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deployment rollout plans: the patches kubectl would send (restart, set env, scale, pause/resume, undo) and the rollout status."""

from __future__ import annotations

import pytest

pytest.importorskip('kubernetes')

from _k8s_objects import REV, deployment, replicaset  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import rollout as ro  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    K8sInputError,
    K8sNotFoundError,
)

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


def test_set_env_renders_numbers_and_booleans_as_kubectl_does():
    dep = deployment()
    change = ro.plan_set_env(dep, 'api', {'WORKERS': 4, 'RATIO': 0.5, 'READ_ONLY': True, 'DEBUG': False, 'MODE': 'x'},
                             None)
    assert change.info['env'] == {'WORKERS': '4', 'RATIO': '0.5', 'READ_ONLY': 'true', 'DEBUG': 'false', 'MODE': 'x'}
