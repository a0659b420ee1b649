# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import family
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


class ModuleDocFragment:
    """Documentation of HTTP_API_ARGS in module_utils/_common/http_client.py (auth, TLS, timeouts, retries)."""

    # HTTP_API_ARGS in module_utils/_common/http_client.py: auth, TLS, timeouts, retries.
    OPTIONS = r"""
options:
  url_username:
    description:
      - User name for HTTP basic authentication.
      - Requires O(url_password); cannot be combined with O(bearer_token).
    type: str
    aliases: [user]
  url_password:
    description:
      - Password for HTTP basic authentication.
      - Never shown in results or error messages.
    type: str
    aliases: [password]
  bearer_token:
    description:
      - "Token sent as C(Authorization: Bearer <token>), for servers behind an authenticating proxy."
      - Never shown in results or error messages.
    type: str
  validate_certs:
    description:
      - Verify the server's TLS certificate (chain and host name) for C(https://) URLs.
      - Set to V(false) only for a throwaway test instance; a failed verification names the reason either way.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the certificate authorities that may sign the server certificate, for a private CA.
      - When omitted, E(REQUESTS_CA_BUNDLE) or E(CURL_CA_BUNDLE) is used if set, else the CA bundle of the Python
        C(certifi) package.
      - Unlike a plain C(requests) session, O(ca_path) takes precedence over those environment variables.
    type: path
  client_cert:
    description:
      - PEM file with a TLS client certificate, for servers that require mutual TLS.
      - May also contain the private key; otherwise set O(client_key).
    type: path
  client_key:
    description:
      - PEM file with the private key of O(client_cert) (unencrypted).
    type: path
  timeout:
    description:
      - Seconds to wait for the connection and for each answer.
    type: float
    default: 10
  retries:
    description:
      - How many times a request is repeated after a connection error, a timeout, a C(5xx) answer or C(429 Too Many
        Requests), with exponential backoff starting at O(retry_delay) seconds (at most 30 s between tries).
      - A C(Retry-After) header is honoured; when it asks for more than 60 seconds the module gives up at once and
        says so.
      - A C(POST) is repeated only when the server cannot have processed it (connection refused, C(429), C(503)), so a
        retry never creates a duplicate.
      - V(0) disables retries.
    type: int
    default: 2
notes:
  - Proxies are taken from the standard E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) environment variables.
  - Every failure is one message that names the URL (never with credentials), the request and the server's reason -
    unreachable, TLS verification failed, authentication refused (C(401)/C(403)), not the expected API, malformed JSON.
  - An answer larger than 16 MiB (or declaring more) is not read - reading stops there and the task fails saying so.
"""

    # What every HTTP client of the collection (HTTP_API_ARGS, NOTIFY_HTTP_ARGS) documents alike.
    TRANSPORT = r"""
options:
  retry_delay:
    description:
      - Seconds before the first retry; doubled for each further one.
    type: float
    default: 1
requirements:
  - requests (Python package) on the host that runs the module
"""

    # An Alertmanager module (the alertmanager module-defaults group, C(group/trdrhub.incident.alertmanager)), and
    # any other HTTP API module (http_health_info).
    ALERTMANAGER, DOCUMENTATION = family(compose(OPTIONS, TRANSPORT), 'alertmanager', 'O(url) and the auth options')
