# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules.

    ``trdrhub.incident.attributes`` holds what every module has unless it says otherwise: full check
    mode, no diff, POSIX, with the descriptions ansible.builtin.action_common_attributes gives them
    (copied, so a module needs no other fragment for its attributes). Its check-mode details fit a
    module that only reads; a module that changes something gives its own details (and its diff
    support), which replace them.
    ``controller`` adds the flow attributes of a module that runs on the controller, with the
    descriptions of ansible.builtin.action_common_attributes.flow; the ``*_group`` fragments add the
    module-defaults group a module belongs to (meta/runtime.yml action_groups).
    """

    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target, if not supported the action will be skipped.
    support: full
    details:
      - The module only reads, so it runs unchanged in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode
    support: none
  platform:
    description: Target OS/families that can be operated against
    support: N/A
    platforms: posix
"""

    CONTROLLER = r"""
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller
    support: full
  async:
    description: Supports being used with the C(async) keyword
    support: none
  bypass_host_loop:
    description:
      - Forces a 'global' task that does not execute per host, this bypasses per host templating and serial,
        throttle and other loop considerations
      - Conditionals will work as if C(run_once) is being used, variables used will be from the first available host
      - This action will not work normally outside of lockstep strategies
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
