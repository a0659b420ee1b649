# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: incidents_home
author:
  - TRDR Hub SRE (@trdrhub)
version_added: 1.0.0
short_description: The directory where incidents live, as every part of the collection finds it
description:
  - The incidents home holds one directory per incident (ledger, approvals, diagnostics, review).
  - E(TRDRHUB_LEDGER_DIR), else the inventory variable C(trdrhub_incidents_dir) of the host, else
    C($XDG_STATE_HOME/trdrhub-incident/incidents) (C(~/.local/state/trdrhub-incident/incidents)); never the
    playbook's or the current directory. Always an absolute path. See C(docs/ledger.md).
  - Runs on the controller; no term.
"""

EXAMPLES = r"""
- name: Where this incident's files are
  ansible.builtin.debug:
    msg: "{{ lookup('trdrhub.incident.incidents_home') }}/{{ trdrhub_incident_id }}"
"""

RETURN = r"""
_raw:
  description: The absolute path of the incidents home.
  type: list
  elements: str
"""

import typing as t

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.trdrhub.incident.plugins.plugin_utils._commands import (
    home_of,
)


class LookupModule(LookupBase):

    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[t.Any]:
        if terms or kwargs:
            raise AnsibleLookupError('incidents_home takes no term and no option')
        return [home_of(variables, self._templar)[0]]
