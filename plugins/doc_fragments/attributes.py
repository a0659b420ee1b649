# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules (use after ansible.builtin.action_common_attributes).

    ``trdrhub.incident.attributes`` holds what every module has unless it says otherwise: full check
    mode, no diff, POSIX. Its check-mode details fit a module that only reads; a module that changes
    something gives its own details (and its diff support), which replace them.
    ``controller`` adds the flow attributes of a module that runs on the controller (use it after
    ansible.builtin.action_common_attributes.flow); the ``*_group`` fragments add the module-defaults
    group a module belongs to (meta/runtime.yml action_groups).
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

    CONTROLLER = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    POSTGRESQL_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.postgresql) in C(module_defaults) to set the connection options once.
    support: full
    membership: [trdrhub.incident.postgresql]
"""

    ALERTMANAGER_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.alertmanager) in C(module_defaults) to set O(url) and the auth options once.
    support: full
    membership: [trdrhub.incident.alertmanager]
"""

    REDIS_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.redis) in C(module_defaults) to set the connection options once.
    support: full
    membership: [trdrhub.incident.redis]
"""

    KUBERNETES_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.kubernetes) in C(module_defaults) to set the connection options once.
    support: full
    membership: [trdrhub.incident.kubernetes]
"""
