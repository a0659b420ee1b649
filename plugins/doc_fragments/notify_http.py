# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import ModuleDocFragment as Attributes
from ansible_collections.trdrhub.incident.plugins.doc_fragments.http_api import ModuleDocFragment as HttpApi
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


class ModuleDocFragment:
    """A notification module: its transport options and the attributes every module has.

    Also the transport options of incident_ticket and statuspage_incident (the same options of HTTP_API_ARGS);
    they document their own O(retries), whose rules differ.
    """

    # NOTIFY_HTTP_ARGS in module_utils/_notify/notify.py: TLS, timeout, retries of a notification POST.
    OPTIONS = r"""
options:
  validate_certs:
    description:
      - Verify the server's TLS certificate (chain and host name) for C(https://) URLs.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the certificate authorities that may sign the server certificate, for a TLS-intercepting proxy
        or a private endpoint. Takes precedence over E(REQUESTS_CA_BUNDLE) and E(CURL_CA_BUNDLE).
    type: path
  timeout:
    description:
      - Seconds to wait for the connection and for the answer.
    type: float
    default: 10
  retries:
    description:
      - How many times the notification is sent again after an answer that says it was not accepted - C(429 Too Many
        Requests) and, where the service allows it, C(5xx) - with exponential backoff starting at O(retry_delay)
        seconds (at most 30 s between tries). A C(Retry-After) header is honoured; when it asks for more than 60
        seconds the module gives up at once and says so.
      - V(0) disables retries.
    type: int
    default: 2
notes:
  - Proxies are taken from the standard E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) environment variables.
  - An answer larger than 16 MiB (or declaring more) is not read - reading stops there and the task fails saying so.
"""

    DOCUMENTATION: str = compose(OPTIONS, HttpApi.TRANSPORT, Attributes.DOCUMENTATION)
