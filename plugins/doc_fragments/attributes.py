# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


def _group(name: str, what: str) -> str:
    """The attribute of a module in the module-defaults group ``name`` (``what`` it sets once)."""
    return f"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.{name}) in C(module_defaults) to set {what} once.
    support: full
    membership: [trdrhub.incident.{name}]
"""


class ModuleDocFragment:
    """Attributes shared by the collection's modules (use after ansible.builtin.action_common_attributes).

    ``trdrhub.incident.attributes`` is the read-only (info) module; the ``*_group`` fragments
    add the module-defaults group a module belongs to (meta/runtime.yml action_groups).
    """

    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    POSTGRESQL_GROUP = _group('postgresql', 'the connection options')
    ALERTMANAGER_GROUP = _group('alertmanager', 'O(url) and the auth options')
    REDIS_GROUP = _group('redis', 'the connection options')
    KUBERNETES_GROUP = _group('kubernetes', 'the connection options')
