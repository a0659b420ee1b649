# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running a rollout action against a fake API: conflicts re-planned from a fresh read, check mode, waiting with a fake clock."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip('kubernetes')

from _k8s_objects import NS, REV, deployment, replicaset  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import rollout_run as run_mod  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    K8sConflictError,
)

# -- undo: which template -----------------------------------------------------------------------

SETS = [replicaset(1, 'api:1', cause='deploy 1'), replicaset(3, 'api:3'), replicaset(2, 'api:2', cause='deploy 2'),
        {'metadata': {'name': 'other', 'annotations': {REV: '9'}, 'ownerReferences': [{'kind': 'Deployment', 'uid': 'x'}]}}]


# -- rollout evaluation -------------------------------------------------------------------------

STALLED = [{'type': 'Progressing', 'status': 'False', 'reason': 'ProgressDeadlineExceeded',
            'message': 'ReplicaSet "trdrhub-api-h4" has timed out progressing.'}]


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
