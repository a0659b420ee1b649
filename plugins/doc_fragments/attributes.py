# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


def action_group(group: str, what: str) -> str:
    """The attributes every module has, and membership of the module-defaults group ``group``."""
    return compose(ModuleDocFragment.DOCUMENTATION, f"""
attributes:
  action_group:
    description: Use C(group/trdrhub.incident.{group}) in C(module_defaults) to set {what} once.
    support: full
    membership: [trdrhub.incident.{group}]
""")


def family(options: str, group: str, what: str) -> tuple[str, str]:
    """A module family's fragments: its options with the attributes of a member of the module-defaults group
    ``group``, and with the attributes of a module outside it (the family's ``connection`` fragment)."""
    return compose(options, action_group(group, what)), compose(options, ModuleDocFragment.DOCUMENTATION)


class ModuleDocFragment:
    """Attributes shared by the collection's modules.

    ``trdrhub.incident.attributes`` holds what every module has unless it says otherwise: full check
    mode, no diff, POSIX, with the descriptions ansible.builtin.action_common_attributes gives them
    (copied, so a module needs no other fragment for its attributes). Its check-mode details fit a
    module that only reads; a module that changes something gives its own details (and its diff
    support), which replace them.
    ``controller`` adds the flow attributes of a module that runs on the controller. A module family's
    fragment (postgres, redis, k8s, http_api, notify_http, ledger, approval_store) includes these
    attributes and the family's module-defaults group (``action_group()``, ``family()``; meta/runtime.yml
    action_groups), so a module names its family's fragment only.
    """

    # The flow attributes of a module that runs on the controller, with the descriptions of
    # ansible.builtin.action_common_attributes.flow.
    CONTROLLER_FLOW = r"""
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

    CONTROLLER: str = compose(DOCUMENTATION, CONTROLLER_FLOW)
