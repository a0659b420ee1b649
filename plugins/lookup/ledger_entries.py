# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ledger_entries
author:
  - TRDR Hub SRE (@trdrhub)
version_added: 1.0.0
short_description: Read the entries of an incident ledger
description:
  - Returns the entries of one incident's hash-chained ledger, oldest first, exactly as stored (fields in
    C(docs/ledger.md)) - from the same place the C(trdrhub.incident.ledger) callback and
    M(trdrhub.incident.ledger_record) write, unless the options say otherwise.
  - Reads only; an incident without a ledger yet gives an empty list.
  - The entries are not verified here - verify the chain with M(trdrhub.incident.audit_chain_verify) before trusting
    them (the C(pir) role does). A ledger file whose last line is incomplete, or a line that is not JSON, is an error.
  - Runs on the controller, where the ledger is.
options:
  _terms:
    description: The incident id (one).
    required: true
    type: list
    elements: str
  events:
    description: Only entries with one of these C(event) values (for example V(communication)). Empty means all.
    type: list
    elements: str
    default: []
  backend:
    description: V(file) or V(postgres); defaults to the ledger callback's setting, else E(TRDRHUB_LEDGER_BACKEND), else V(file).
    type: str
  root:
    description: Directory holding one sub-directory per incident (V(file)); defaults to the incidents home
      (E(TRDRHUB_LEDGER_DIR), else the inventory variable C(trdrhub_incidents_dir), else
      C(~/.local/state/trdrhub-incident/incidents); see C(docs/ledger.md)). A relative value is taken from the playbook directory.
    type: str
    aliases: [dir]
  table:
    description: Ledger table (V(postgres)).
    type: str
  dsn:
    description: Connection string of the ledger database (V(postgres)); E(TRDRHUB_LEDGER_DSN) when not set.
    type: str
"""

EXAMPLES = r"""
- name: The messages already sent for the incident
  ansible.builtin.set_fact:
    sent: "{{ lookup('trdrhub.incident.ledger_entries', trdrhub_incident_id, events=['communication']) }}"
"""

RETURN = r"""
_raw:
  description: The entries, oldest first.
  type: list
  elements: dict
"""

import typing as t

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.store import (
    read_entries,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    open_ledger,
    validate_incident_id,
)
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import (
    ledger_env,
)


class LookupModule(LookupBase):

    def run(self, terms: list[t.Any], variables: dict[str, t.Any] | None = None, **kwargs: t.Any) -> list[t.Any]:
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError(f'ledger_entries takes one incident id, got {len(terms)}')
        env = ledger_env(variables, self._templar)
        params = {key: self.get_option(key) for key in ('backend', 'root', 'table', 'dsn')}
        events = set(self.get_option('events') or [])
        base_dir = (variables or {}).get('playbook_dir')
        try:
            incident_id = validate_incident_id(terms[0])
            with open_ledger(params, base_dir, env) as ledger:
                entries = read_entries(ledger, incident_id)
        except TrdrhubError as exc:
            raise AnsibleLookupError(f'ledger_entries: {exc}') from None
        return [[entry for entry in entries if not events or (isinstance(entry, dict) and entry.get('event') in events)]]
