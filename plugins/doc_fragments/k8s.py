# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import family


class ModuleDocFragment:
    """Documentation of K8S_AUTH_ARGS in module_utils/_k8s/client.py (how to reach and authenticate to the API server)."""

    # K8S_AUTH_ARGS in module_utils/_k8s/client.py: how to reach and authenticate to the API server.
    OPTIONS = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to use; several files separated by C(:) are merged like C(kubectl) does.
      - When omitted, E(K8S_AUTH_KUBECONFIG), then E(KUBECONFIG); without them C(~/.kube/config) is read only when
        O(context) (or E(K8S_AUTH_CONTEXT)) names a context of it. Otherwise, in a pod, its service account (in-cluster
        configuration) is used; anywhere else the module fails before connecting, also when C(~/.kube/config) exists
        - its current-context is whichever cluster someone last switched to, never used implicitly.
      - The file is only read, never rewritten (refreshed tokens are not persisted).
      - Cannot be combined with O(host).
    type: path
  context:
    description:
      - Context of the kubeconfig to use.
      - When omitted, E(K8S_AUTH_CONTEXT), else the kubeconfig's C(current-context).
      - An unknown context fails with the list of contexts the kubeconfig has.
    type: str
  host:
    description:
      - URL of the API server, for example V(https://10.0.0.1:6443), to connect without a kubeconfig.
      - When omitted, E(K8S_AUTH_HOST), unless O(kubeconfig) or O(context) is set.
      - Use it with O(api_key) (a service-account token), O(ca_cert) and O(validate_certs).
    type: str
  api_key:
    description:
      - Bearer token to authenticate with, for example a service-account token.
      - When omitted, E(K8S_AUTH_API_KEY). With a kubeconfig or in a pod it replaces the credentials found there.
      - Never shown in results or error messages.
    type: str
  validate_certs:
    description:
      - Verify the API server's TLS certificate.
      - When omitted, E(K8S_AUTH_VERIFY_SSL) (or E(K8S_AUTH_VALIDATE_CERTS)), else the kubeconfig's
        C(insecure-skip-tls-verify), else V(true).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - PEM file with the certificate authority of the API server.
      - When omitted, E(K8S_AUTH_SSL_CA_CERT) (or E(K8S_AUTH_CA_CERT)), else the kubeconfig's
        C(certificate-authority), else the pod's service-account CA, else the system's trust store.
    type: path
    aliases: [ssl_ca_cert]
  request_timeout:
    description:
      - Seconds to wait for each answer of the API server. A connection error is retried once, and so is a C(429) or
        C(503) with a C(Retry-After) header - after that pause when it is at most 60 seconds, else after a short backoff.
    type: float
    default: 10
notes:
  - The option names and E(K8S_AUTH_*) environment variables are those of the C(kubernetes.core) collection, so
    inventories written for it work unchanged; this collection does not need C(kubernetes.core).
  - Client-certificate and exec-plugin (cloud provider) credentials are supported through a kubeconfig.
  - Proxies are taken from the kubeconfig's C(proxy-url) or the E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY)
    environment variables.
  - Every failure is one message that names the API server and the request and quotes the server's C(Status)
    message - unreachable, TLS verification failed, authentication failed (C(401)), permission denied (C(403)),
    not found - and never contains a token.
  - An answer that is not a Kubernetes object (a proxy's page, JSON of another shape) fails the task naming what came
    back; an answer larger than 16 MiB (or declaring more) is not read - reading stops there and the task fails.
requirements:
  - kubernetes (the official Python client) on the host that runs the module
"""

    # A module of the kubernetes module-defaults group (C(group/trdrhub.incident.kubernetes)), and one with the
    # connection options outside the group (app_logs_info).
    DOCUMENTATION, CONNECTION = family(OPTIONS, 'kubernetes', 'the connection options')

    # K8S_AUTH_ARGS as the suboptions of one dict option, O(k8s_auth), for a module that reaches the API server for
    # only part of its work (database_url, rotate_secrets). The module gives its description: when it is used.
    AUTH_OPTION = r"""
options:
  k8s_auth:
    type: dict
    suboptions:
      kubeconfig:
        description: Path of the kubeconfig.
        type: path
      context:
        description: Kubeconfig context.
        type: str
      host:
        description: API server URL, to connect without a kubeconfig.
        type: str
      api_key:
        description: Bearer token. Never shown.
        type: str
      validate_certs:
        description: Verify the API server's certificate.
        type: bool
        aliases: [verify_ssl]
      ca_cert:
        description: CA file of the API server.
        type: path
        aliases: [ssl_ca_cert]
      request_timeout:
        description: Seconds to wait for each answer.
        type: float
        default: 10
"""
