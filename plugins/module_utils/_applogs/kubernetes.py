# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""``kubectl logs deployment/<name> --tail=N`` for every pod of a Deployment, through the Kubernetes API.

The pods are those the Deployment's selector matches, the ones in trouble first (not ready,
restarted), at most ``max_pods`` of them; each container's log is read with
``GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=..&tailLines=N``, and for a container
that restarted also the log of its previous instance - the one that crashed. A container that
has no log yet (still starting) is an entry with its error, not a failure of the module.
"""

from __future__ import annotations

import json
import typing as t
from urllib.parse import quote, urlencode

from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.lines import excerpt
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import K8sClient, selector_text
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import K8sApiError, K8sNotFoundError

# A log answer larger than this is cut by the API server (limitBytes); tail_lines keeps it far smaller.
MAX_LOG_BYTES = 4 * 1024 * 1024


class _Text:
    """A log answer wrapped as the JSON string K8sClient.call parses, so that it shares the client's error mapping."""

    def __init__(self, data: bytes) -> None:
        self.data = json.dumps(data.decode('utf-8', 'replace')).encode()


def read_log(client: K8sClient, namespace: str, pod: str, container: str, tail: int, previous: bool) -> str:
    query = {'container': container, 'tailLines': tail, 'limitBytes': MAX_LOG_BYTES}
    if previous:
        query['previous'] = 'true'
    request = f'GET /api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/log?{urlencode(query)}'
    send = client.sender(request)

    def method(**kwargs: t.Any) -> _Text:
        return _Text(send(**kwargs).data)

    return client.call(request, method)


def _trouble(pod: dict[str, t.Any]) -> tuple[int, int, str]:
    statuses = (pod.get('status') or {}).get('containerStatuses') or []
    ready = all(s.get('ready') for s in statuses) and bool(statuses)
    restarts = sum(int(s.get('restartCount') or 0) for s in statuses)
    return (1 if ready else 0, -restarts, str((pod.get('metadata') or {}).get('name')))


class PodLogs:
    def __init__(self, client: K8sClient, params: t.Mapping[str, t.Any], redactor: Redactor) -> None:
        self.client = client
        self.params = params
        self.redactor = redactor
        self.namespace = params['namespace']

    def _entry(self, deployment: str, pod: str, container: str, previous: bool) -> dict[str, t.Any]:
        entry: dict[str, t.Any] = {'source': 'kubernetes', 'deployment': deployment, 'service': None, 'pod': pod,
                                   'container': container, 'previous': previous, 'lines': [], 'line_count': 0, 'error': None}
        try:
            text = read_log(self.client, self.namespace, pod, container, self.params['tail_lines'], previous)
        except (K8sApiError, K8sNotFoundError) as exc:
            # 400 (still starting, no previous instance) or a pod gone since the list: this pod's problem, not the run's.
            entry['error'] = self.redactor.text(str(exc))
            return entry
        entry.update(excerpt(text, self.redactor, self.params['tail_lines'], self.params['max_line_length']))
        return entry

    def deployment(self, name: str) -> list[dict[str, t.Any]]:
        dep = self.client.get('deployments', self.namespace, name)
        selector = selector_text((dep.get('spec') or {}).get('selector'))
        pods = sorted(self.client.list('pods', self.namespace, selector or None).get('items') or [], key=_trouble)
        entries = []
        for pod in pods[:self.params['max_pods']]:
            pod_name = str((pod.get('metadata') or {}).get('name'))
            statuses = {s.get('name'): s for s in (pod.get('status') or {}).get('containerStatuses') or []}
            for container in (pod.get('spec') or {}).get('containers') or []:
                cname = container.get('name')
                if self.params.get('container') and cname != self.params['container']:
                    continue
                entries.append(self._entry(name, pod_name, cname, False))
                restarted = int((statuses.get(cname) or {}).get('restartCount') or 0) > 0
                if self.params['previous'] and restarted:
                    entries.append(self._entry(name, pod_name, cname, True))
        return entries

    def run(self) -> list[dict[str, t.Any]]:
        entries = []
        for name in self.params['deployments']:
            entries.extend(self.deployment(name))
        return entries
