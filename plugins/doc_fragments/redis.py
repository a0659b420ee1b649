# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import action_group
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


class ModuleDocFragment:
    """Documentation of the option spec in module_utils/_redis.py."""

    # Connection options: REDIS_COMMON_ARGS in module_utils/_redis.py.
    OPTIONS = r"""
options:
  host:
    description:
      - Host name or IP address of the Redis server.
      - This or O(url) is required; with neither the module fails before connecting (it never falls back to the Redis on
        C(localhost:6379) by itself). Set V(localhost) to use a local server on purpose.
    type: str
    aliases: [login_host]
  port:
    description:
      - TCP port of the Redis server (the TLS port when O(tls=true)).
      - When neither this nor O(url) is set, V(6379).
    type: int
    aliases: [login_port]
  db:
    description:
      - Database number to select. Overrides the database of O(url).
      - When neither this nor O(url) is set, V(0).
    type: int
  username:
    description:
      - ACL user to log in as (Redis 6 or later), together with O(password).
      - When omitted, a password alone logs in as the C(default) user (C(requirepass)).
    type: str
    aliases: [login_user]
  password:
    description:
      - Password of O(username), or of the C(default) user.
      - Never shown in results or error messages.
    type: str
    aliases: [login_password]
  url:
    description:
      - The whole target as a URL, C(redis://[[username]:password@]host[:port][/db]) or C(rediss://...) for TLS.
      - Alternative to O(host), O(port), O(username) and O(password), which cannot be combined with it. O(db) and
        O(tls) refine it.
      - Treated as a secret because it may carry a password; it never appears in results or error messages.
      - Percent-encode special characters in the user name and password.
    type: str
  tls:
    description:
      - Connect with TLS. A C(rediss://) O(url) turns TLS on as well.
    type: bool
    default: false
  validate_certs:
    description:
      - With TLS, verify the server certificate against O(ca_path) (or the system's trust store) and check that it
        was issued for O(host).
      - V(false) encrypts without verifying who answers; use it only for a throwaway test server.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file, or directory prepared with C(openssl rehash), of the certificate authorities that may sign the
        server certificate. When omitted, the system's trust store is used.
      - Only with TLS.
    type: path
    aliases: [ca_certs]
  client_cert:
    description:
      - PEM client certificate, for servers that require one (C(tls-auth-clients yes)). May also contain the key.
      - Only with TLS.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert), when it is not in that file.
      - Only with TLS.
    type: path
  socket_timeout:
    description:
      - Seconds to wait for the connection and for each reply before giving up.
    type: float
    default: 5
notes:
  - The module speaks RESP2 and does not retry a failed connection, so an unreachable server fails at once with one
    message naming C(host:port) and the reason.
  - ACL users need the commands the module runs, listed in its notes and in the returned RV(queries).
requirements:
  - redis (redis-py) 4.2 or later on the host that runs the module
"""

    DOCUMENTATION: str = compose(OPTIONS, action_group('redis', 'the connection options'))
