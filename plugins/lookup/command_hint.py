# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: command_hint
author:
  - TRDR Hub SRE (@trdrhub)
version_added: 1.0.0
short_description: A next-step command that works pasted verbatim into another shell, from any directory
description:
  - Builds the command line a role prints as the operator's next step - vote on an approval, assign the incident
    commander, re-run with confirmation, render the review, lift a block.
  - The command carries what the current directory or shell gave this run and another shell would lack -
    C(ANSIBLE_CONFIG=<absolute path>) when the configuration was found in the current directory (a checkout),
    C(TRDRHUB_LEDGER_DIR=<incidents home>) unless the incidents home is the default one (C(docs/ledger.md)), and
    absolute paths for inventories, playbooks and C(@files).
  - Runs on the controller; no term.
options:
  playbook:
    description: A playbook of this collection (V(approve), V(pir), ...) or a playbook FQCN.
    type: str
  module:
    description: A module to run ad hoc on localhost with O(module_args).
    type: str
  module_args:
    description: The module's C(key=value) arguments, put in double quotes as given (so C($(id -un)) expands).
    type: str
  extra_vars:
    description: Extra variables added with C(-e).
    type: dict
    default: {}
  inventory:
    description: Give O(playbook) this run's inventories (C(-i)) too.
    type: bool
    default: false
notes:
  - Without O(playbook) and O(module) the command is this run again - the same playbooks, inventories, extra
    variables, limit, tags and check/diff flags - with O(extra_vars) added.
"""

EXAMPLES = r"""
- name: Say how to vote
  ansible.builtin.debug:
    msg: "Approve with: {{ lookup('trdrhub.incident.command_hint', playbook='approve', extra_vars={'request': rid, 'decision': 'approve'}) }}"

- name: Say how to re-run with the confirmation
  ansible.builtin.debug:
    msg: "{{ lookup('trdrhub.incident.command_hint', extra_vars={'contain_db_confirm': true}) }}"
"""

RETURN = r"""
_raw:
  description: One command line.
  type: list
  elements: str
"""

import typing as t

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.trdrhub.incident.plugins.plugin_utils._commands import (
    command,
)


class LookupModule(LookupBase):

    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[t.Any]:
        if terms:
            raise AnsibleLookupError('command_hint takes no term, only options (playbook=, module=, extra_vars=)')
        self.set_options(var_options=variables, direct=kwargs)
        return [command(variables=variables, templar=self._templar, playbook=self.get_option('playbook'),
                        module=self.get_option('module'), module_args=self.get_option('module_args'),
                        extra_vars=self.get_option('extra_vars'), inventory=self.get_option('inventory'))]
