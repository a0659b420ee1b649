# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: database_url
short_description: Point the application's database URL at another endpoint (PgBouncer, or back to the server)
version_added: 1.1.0
description:
  - Changes the endpoint of the PostgreSQL URL the application reads (C(DATABASE_URL)) - O(host), O(port) and, when
    given, O(dbname) and O(query) - and keeps its scheme, user and password exactly as they are. This is the runbook's
    phase 3.2 step "update DATABASE_URL to use PgBouncer", and its undo.
  - The password is never needed, stored or shown - RV(previous) and RV(url) are masked, RV(previous_endpoint) and
    RV(endpoint) hold the parts without it, and the password is added to Ansible's C(no_log) values.
  - V(file) - a C(KEY=value) env file (the C(env_file) of docker compose), a JSON key or a whole file; written atomically
    (temporary file, fsync, rename), other lines untouched. Recreate the service afterwards.
  - V(kubernetes) - the variable O(key) of container O(container) of Deployment O(deployment). A plain C(value) is
    patched in the Deployment (with the C(resourceVersion) read as precondition), which rolls it out. A value from a
    Secret (C(valueFrom.secretKeyRef), or an C(envFrom) Secret holding O(key)) is changed in that Secret (replaced
    with its C(resourceVersion) as precondition; other keys, labels and annotations kept, annotation
    C(trdrhub.incident/database-url-changed-at) set); the pods only see it after a restart - RV(restart_needed).
  - Idempotent - a URL that already has the endpoint is not written.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  store:
    description:
      - Where the URL is kept - V(file) or V(kubernetes); see the description.
    type: str
    required: true
    choices: [file, kubernetes]
  key:
    description:
      - The variable (env file, Deployment env, Secret key) or JSON key that holds the URL.
    type: str
    default: DATABASE_URL
  path:
    description:
      - The file, with O(store=file). Required with it.
    type: path
  file_format:
    description:
      - With O(store=file), V(env) (C(KEY=value) lines, C(export) and quotes kept), V(json) (a top-level key) or V(raw)
        (the whole file is the URL).
    type: str
    default: env
    choices: [env, json, raw]
  namespace:
    description:
      - Namespace of the Deployment, with O(store=kubernetes).
    type: str
    default: trdrhub-system
  deployment:
    description:
      - The Deployment whose container reads the URL, with O(store=kubernetes).
    type: str
    default: trdrhub-api
  container:
    description:
      - The container of O(deployment) that reads the URL.
    type: str
    default: api
  host:
    description:
      - The new host of the URL - the pooler (or, to undo, the server).
    type: str
    required: true
  port:
    description:
      - The new port; omitted means none in the URL (libpq's 5432).
    type: int
  dbname:
    description:
      - The new database name; omitted keeps the URL's.
    type: str
  query:
    description:
      - The new query string without C(?) (for example V(sslmode=require)); omitted keeps the URL's, V('') removes it.
    type: str
  k8s_auth:
    description:
      - Kubernetes connection, for O(store=kubernetes). Same keys and E(K8S_AUTH_*) fallbacks as the
        C(trdrhub.incident.k8s) options (see C(docs/kubernetes.md) in this collection).
extends_documentation_fragment:
  - trdrhub.incident.k8s.auth_option
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - Reads the URL and reports what would change; writes nothing.
  diff_mode:
    support: full
    details:
      - The URL before and after, password masked.
notes:
  - RBAC for O(store=kubernetes) - C(get) and C(patch) on the Deployment; C(get) and C(update) on the Secret.
  - A value from a ConfigMap or a field reference is refused (a URL with a password does not belong there).
seealso:
  - module: trdrhub.incident.pgbouncer_info
  - module: trdrhub.incident.k8s_rollout
"""

EXAMPLES = r"""
- name: Point the API at PgBouncer (the URL lives in a Secret the Deployment reads)
  trdrhub.incident.database_url:
    store: kubernetes
    namespace: trdrhub-system
    deployment: trdrhub-api
    container: api
    k8s_auth:
      kubeconfig: ~/.kube/trdrhub-prod.yaml
    host: pgbouncer.trdrhub-system.svc
    port: 6543
  register: switched

- name: Restart the Deployment when the Secret changed
  trdrhub.incident.k8s_rollout:
    action: restart
    name: trdrhub-api
    wait: true
  when: switched.restart_needed

- name: docker compose - the env file of the api service
  trdrhub.incident.database_url:
    store: file
    path: /srv/trdrhub/.env
    host: pgbouncer
    port: 6543
"""

RETURN = r"""
msg:
  description: One sentence - where the URL is and which endpoint it points (or would point) at.
  returned: success
  type: str
  sample: "Secret trdrhub-system/trdrhub-db key DATABASE_URL: db-primary:5432/lcopilot was pointed at pgbouncer:6543/lcopilot"
source:
  description: Where the URL was found - C(type) (file, k8s_env, k8s_secret), C(location), C(key) and how the container
    reads it (C(via)).
  returned: success
  type: dict
  sample: {"type": "k8s_secret", "location": "trdrhub-system/trdrhub-db", "key": "DATABASE_URL", "via": "envFrom secretRef trdrhub-db"}
previous:
  description: The URL before, password masked.
  returned: success
  type: str
  sample: postgresql://trdrhub_app:********@db-primary:5432/lcopilot
url:
  description: The URL now (in check mode, the URL it would have), password masked.
  returned: success
  type: str
  sample: postgresql://trdrhub_app:********@pgbouncer:6543/lcopilot
previous_endpoint:
  description: C(host), C(port), C(dbname), C(user) and C(query) of the URL before - what restores it.
  returned: success
  type: dict
  sample: {"host": "db-primary", "port": 5432, "dbname": "lcopilot", "user": "trdrhub_app", "query": ""}
endpoint:
  description: The same parts of the URL now.
  returned: success
  type: dict
needs_change:
  description: Whether the URL differs from the one asked for - C(changed) as the module decided it, which C(changed_when)
    on a check-mode planning task does not hide.
  returned: success
  type: bool
restart_needed:
  description: True when a Secret was changed - the Deployments that read it must be restarted to use it.
  returned: success
  type: bool
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    DEFAULT_NAMESPACE,
    K8S_AUTH_ARGS,
    KUBERNETES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pooler.database_url import (
    FileSource,
    kubernetes_source,
    run,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import SecretsClient


def argument_spec() -> dict[str, t.Any]:
    spec: dict[str, t.Any] = {}
    spec.update(
        store={'type': 'str', 'required': True, 'choices': ['file', 'kubernetes']},
        key={'type': 'str', 'default': 'DATABASE_URL', 'no_log': False},
        path={'type': 'path'},
        file_format={'type': 'str', 'default': 'env', 'choices': ['env', 'json', 'raw']},
        namespace={'type': 'str', 'default': DEFAULT_NAMESPACE},
        deployment={'type': 'str', 'default': 'trdrhub-api'},
        container={'type': 'str', 'default': 'api'},
        host={'type': 'str', 'required': True},
        port=bounded({'type': 'int'}, 1, 65535),
        dbname={'type': 'str'},
        query={'type': 'str'},
        k8s_auth={'type': 'dict', 'options': dict(K8S_AUTH_ARGS)},
    )
    return spec


class UrlChange:
    """The worker: the URL's source (an env file, or the Deployment's variable or Secret) and the change of its endpoint."""

    def __init__(self, module: t.Any) -> None:
        self.module = module
        host = module.params['host']
        if not host.strip() or any(c in host for c in '/@?# '):
            raise InputError(f"host must be a host name or address without scheme, user or path, got {host!r}")

    def run(self, client: t.Any) -> dict[str, t.Any]:
        p = self.module.params
        if client is None:
            source: t.Any = FileSource(p['path'], p['key'], p['file_format'])
        else:
            source = kubernetes_source(client, p['namespace'], p['deployment'], p['container'], p['key'])
        result = run(source, p, self.module.check_mode, self.module.no_log_values.add)
        if not self.module._diff:
            result.pop('diff')
        result['requests'] = client.requests if client is not None else []
        return result


def main() -> None:
    run_module(argument_spec(), UrlChange,
               lambda module, _worker: SecretsClient(module.params.get('k8s_auth') or {}) if module.params['store'] == 'kubernetes' else None,
               requires=lambda params: [KUBERNETES] if params['store'] == 'kubernetes' else [],
               error_extra=lambda module, client: {'requests': client.requests if client is not None else []},
               required_if=[('store', 'file', ['path'])])


if __name__ == '__main__':
    main()
