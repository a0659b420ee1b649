# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pod logs of a Deployment through a scripted Kubernetes client: pods in trouble first, at most max_pods, the
crashed instance's log for a restarted container, a pod without a log yet as an entry with its error, secrets masked."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._applogs import kubernetes as applogs
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import K8sApiError


def pod(name, ready=True, restarts=0, containers=('api',)):
    return {'metadata': {'name': name},
            'spec': {'containers': [{'name': c} for c in containers]},
            'status': {'containerStatuses': [{'name': c, 'ready': ready, 'restartCount': restarts} for c in containers]}}


class Client:
    def __init__(self, pods):
        self.pods = pods
        self.calls = []

    def get(self, resource, namespace, name):
        self.calls.append(('get', resource, namespace, name))
        return {'spec': {'selector': {'matchLabels': {'app': name}}}}

    def list(self, resource, namespace, selector):
        self.calls.append(('list', resource, namespace, selector))
        return {'items': self.pods}


PARAMS = {'namespace': 'trdrhub', 'deployments': ['trdrhub-api'], 'tail_lines': 2, 'max_line_length': 40, 'max_pods': 2,
          'previous': True, 'container': None}


@pytest.fixture
def logs(monkeypatch):
    read = []

    def read_log(client, namespace, pod_name, container, tail, previous):
        read.append((pod_name, container, previous))
        if pod_name == 'api-starting':
            raise K8sApiError('container "api" in pod "api-starting" is waiting to start: ContainerCreating')
        return f'boot\nconnect password=hunter2-secret\nlast line of {pod_name}{" (crashed)" if previous else ""}\n'
    monkeypatch.setattr(applogs, 'read_log', read_log)
    return read


def test_pods_in_trouble_come_first_and_a_restarted_container_also_gives_its_crashed_log(logs):
    client = Client([pod('api-ok'), pod('api-crashing', ready=False, restarts=4), pod('api-restarted', restarts=1)])
    entries = applogs.PodLogs(client, PARAMS, Redactor(['hunter2-secret'])).run()
    assert client.calls == [('get', 'deployments', 'trdrhub', 'trdrhub-api'), ('list', 'pods', 'trdrhub', 'app=trdrhub-api')]
    assert logs == [('api-crashing', 'api', False), ('api-crashing', 'api', True),
                    ('api-restarted', 'api', False), ('api-restarted', 'api', True)]
    first = entries[0]
    assert first['deployment'] == 'trdrhub-api' and first['pod'] == 'api-crashing' and first['error'] is None
    assert first['line_count'] == 2 and first['lines'][1] == 'last line of api-crashing'
    assert 'hunter2-secret' not in str(entries)
    assert entries[1]['previous'] is True and entries[1]['lines'][1] == 'last line of api-crashing (crashed)'


def test_a_pod_without_a_log_yet_is_an_entry_with_its_error(logs):
    entries = applogs.PodLogs(Client([pod('api-starting', ready=False)]), PARAMS, Redactor()).run()
    assert len(entries) == 1 and entries[0]['lines'] == [] and entries[0]['line_count'] == 0
    assert 'waiting to start' in entries[0]['error']


def test_only_the_chosen_container_and_no_previous_log_when_not_asked(logs):
    params = dict(PARAMS, container='worker', previous=False)
    applogs.PodLogs(Client([pod('api-a', restarts=2, containers=('api', 'worker'))]), params, Redactor()).run()
    assert logs == [('api-a', 'worker', False)]
