# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_logs_info
short_description: Read the last lines of the application's logs for incident triage, secrets redacted
version_added: 1.0.0
description:
  - The runbook's C(kubectl logs deployment/trdrhub-api --tail=100) and C(docker-compose logs --tail=100 api).
  - With O(source=kubernetes), reads through the Kubernetes API the last O(tail_lines) lines of every container of the
    pods of each of O(deployments) (at most O(max_pods) pods per Deployment, those not ready or restarted first), and of
    the previous instance of a container that restarted - the one that crashed.
  - With O(source=compose), runs C(docker compose logs --no-color --tail N <service>) for each of O(services) on the
    host the task runs on.
  - Every line is redacted before it leaves the host - passwords, tokens, credentials in URLs, C(Authorization) headers
    and the values of O(redact) - and cut at O(max_line_length) characters.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  source:
    description:
      - Where the application runs.
    type: str
    choices: [kubernetes, compose]
    default: kubernetes
  tail_lines:
    description:
      - Number of lines to read from the end of each log.
    type: int
    default: 100
  max_line_length:
    description:
      - Longer lines are cut to this many characters (a stack trace on one line, a request body).
    type: int
    default: 2000
  redact:
    description:
      - Secret values to mask wherever they appear in a line, besides the secret shapes the collection always masks.
    type: list
    elements: str
    default: []
  namespace:
    description:
      - O(source=kubernetes) - namespace of the Deployments.
    type: str
    default: trdrhub-system
  deployments:
    description:
      - O(source=kubernetes) - the Deployments whose pods' logs are read. A name that does not exist fails the module.
    type: list
    elements: str
    default: [trdrhub-api]
  container:
    description:
      - O(source=kubernetes) - only this container of each pod; every container when omitted.
    type: str
  max_pods:
    description:
      - O(source=kubernetes) - pods read per Deployment; those not ready or with the most restarts come first.
    type: int
    default: 3
  previous:
    description:
      - O(source=kubernetes) - also read the log of the previous instance of a container that restarted
        (C(kubectl logs --previous)).
    type: bool
    default: true
  services:
    description:
      - O(source=compose) - the compose services whose logs are read.
    type: list
    elements: str
    default: [api]
  project_dir:
    description:
      - O(source=compose) - directory of the compose project (C(--project-directory)); the command also runs there.
    type: path
  compose_files:
    description:
      - O(source=compose) - compose files, each passed as C(--file=); docker compose's own choice when empty.
    type: list
    elements: path
    default: []
  compose_command:
    description:
      - O(source=compose) - the command that runs docker compose, for example V([docker-compose]) for the standalone
        version 1 binary or V([podman, compose]).
    type: list
    elements: str
    default: [docker, compose]
extends_documentation_fragment:
  - trdrhub.incident.k8s.connection
notes:
  - O(source=kubernetes) needs C(get) on C(deployments), C(list) on C(pods) and C(get) on C(pods/log) in O(namespace);
    the connection options apply only to it.
  - A container that has no log to give (still starting, or no previous instance) is an entry of RV(logs) with its
    C(error); the module does not fail for it.
  - A separate module rather than an option of M(trdrhub.incident.k8s_workload_info) - logs are text that must be
    redacted line by line, they come from docker compose too, and reading them is one request per container that a
    rollout check does not need.
seealso:
  - module: trdrhub.incident.k8s_workload_info
  - name: kubectl logs
    description: The command this module stands in for.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_logs/
"""

EXAMPLES = r"""
- name: The last 100 lines of the API pods
  trdrhub.incident.app_logs_info:
    namespace: trdrhub-system
    deployments: [trdrhub-api, trdrhub-worker]
    tail_lines: 100
  register: app_logs

- name: Show the errors
  ansible.builtin.debug:
    msg: "{{ app_logs.logs | map(attribute='lines') | flatten | select('search', 'ERROR|Traceback') }}"

- name: The compose service on the application host
  trdrhub.incident.app_logs_info:
    source: compose
    project_dir: /srv/trdrhub
    services: [api]
    tail_lines: 200
    redact: ["{{ vault_database_password }}"]
"""

RETURN = r"""
logs:
  description: One entry per container log read (Kubernetes) or per service (compose), in order.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: V(kubernetes) or V(compose).
      type: str
      sample: kubernetes
    deployment:
      description: The Deployment the pod belongs to; null for compose.
      type: str
      sample: trdrhub-api
    service:
      description: The compose service; null for Kubernetes.
      type: str
      sample: null
    pod:
      description: The pod; null for compose.
      type: str
      sample: trdrhub-api-7d9c6b5f4-x2kqp
    container:
      description: The container; null for compose.
      type: str
      sample: api
    previous:
      description: Whether this is the log of the previous (crashed) instance of the container.
      type: bool
      sample: false
    lines:
      description: The last lines, oldest first, redacted.
      type: list
      elements: str
      sample: ["INFO Application startup complete.", "ERROR connection to postgresql://app:********@db:5432/lcopilot failed"]
    line_count:
      description: Number of RV(logs[].lines).
      type: int
      sample: 100
    error:
      description: Why this log could not be read (the API server's or docker compose's message); null when it was.
      type: str
      sample: null
requests:
  description: Kubernetes API requests made, in order.
  returned: when O(source=kubernetes)
  type: list
  elements: str
  sample: ["GET /apis/apps/v1/namespaces/trdrhub-system/deployments/trdrhub-api"]
commands:
  description: The docker compose commands run, in order.
  returned: when O(source=compose)
  type: list
  elements: str
  sample: ["docker compose --project-directory /srv/trdrhub logs --no-color --tail 100 api"]
connection:
  description: How the Kubernetes API was reached (the API server, the credentials' source), no secret.
  returned: when O(source=kubernetes)
  type: dict
  sample: {"api_server": "https://k8s.internal:6443", "source": "kubeconfig"}
"""

import errno
import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.compose import ComposeLogs
from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.kubernetes import PodLogs
from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.lines import AppLogsError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import K8S_AUTH_MUTUALLY_EXCLUSIVE, KUBERNETES, K8sClient, k8s_spec


def argument_spec() -> dict[str, t.Any]:
    return k8s_spec(
        source={'type': 'str', 'choices': ['kubernetes', 'compose'], 'default': 'kubernetes'},
        tail_lines=bounded({'type': 'int', 'default': 100}, minimum=1, maximum=10000),
        max_line_length=bounded({'type': 'int', 'default': 2000}, minimum=80, maximum=100000),
        redact={'type': 'list', 'elements': 'str', 'default': [], 'no_log': True},
        deployments={'type': 'list', 'elements': 'str', 'default': ['trdrhub-api']},
        container={'type': 'str'},
        max_pods=bounded({'type': 'int', 'default': 3}, minimum=1, maximum=50),
        previous={'type': 'bool', 'default': True},
        services={'type': 'list', 'elements': 'str', 'default': ['api']},
        project_dir={'type': 'path'},
        compose_files={'type': 'list', 'elements': 'path', 'default': []},
        compose_command={'type': 'list', 'elements': 'str', 'default': ['docker', 'compose']},
    )


class AppLogs(Worker):
    """The worker: checks the options, then reads the logs from the client (Kubernetes) or the compose command."""

    def __init__(self, module: t.Any) -> None:
        super().__init__(module.params, module.check_mode)
        self.module = module
        self.redactor = Redactor(self.params['redact'])
        names = self.params['deployments'] if self.params['source'] == 'kubernetes' else self.params['services']
        option = 'deployments' if self.params['source'] == 'kubernetes' else 'services'
        if not names or any(not (n or '').strip() for n in names):
            raise AppLogsError(f'{option} must name at least one, and no empty name')
        if self.params['source'] == 'kubernetes' and not (self.params['namespace'] or '').strip():
            raise AppLogsError('namespace must not be empty')
        if self.params['source'] == 'compose' and not self.params['compose_command']:
            raise AppLogsError('compose_command must not be empty')

    def _run_command(self, argv: list[str]) -> tuple[int, str, str]:
        path = argv[0] if os.path.isabs(argv[0]) else self.module.get_bin_path(argv[0])
        if not path or not os.access(path, os.X_OK):
            raise OSError(errno.ENOENT, f'{argv[0]}: command not found')
        return self.module.run_command([path] + argv[1:], cwd=self.params.get('project_dir') or None)

    def client(self) -> K8sClient | None:
        return K8sClient(self.params) if self.params['source'] == 'kubernetes' else None

    def run(self, client: K8sClient | None) -> dict[str, t.Any]:
        if client is None:
            reader = ComposeLogs(self._run_command, self.params, self.redactor)
            return {'changed': False, 'logs': reader.run(), 'commands': reader.commands}
        logs = PodLogs(client, self.params, self.redactor).run()
        return {'changed': False, 'logs': logs, 'requests': client.requests, 'connection': client.describe()}


def main() -> None:
    run_module(argument_spec(), AppLogs, lambda module, worker: worker.client(), mutually_exclusive=K8S_AUTH_MUTUALLY_EXCLUSIVE,
               requires=lambda params: [KUBERNETES] if params['source'] == 'kubernetes' else [],
               error_extra=lambda module, client: {'requests': client.requests} if client is not None else {})


if __name__ == '__main__':
    main()
