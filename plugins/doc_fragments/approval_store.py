# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Documentation of STORE_ARGS in module_utils/_approval/store.py."""

    DOCUMENTATION = r"""
options:
  store_backend:
    description:
      - Where approval requests wait for votes.
      - V(dir) - a directory on the controller, one C(<request_id>.json) per request and one
        C(<request_id>.vote.<approver>.json) per vote (created exclusively, so concurrent votes never overwrite each other).
      - V(postgres) - the table O(store_table) and O(store_table)C(_votes) (primary key C(request_id, approver)), reached
        with the PostgreSQL connection options (else E(TRDRHUB_LEDGER_DSN)). Use it when approvers vote from other machines
        or from AWX.
    type: str
    default: dir
    choices: [dir, postgres]
  store_dir:
    description:
      - Directory of the V(dir) store.
      - When omitted, C(<incidents home>/<incident_id>/approvals/), next to the incident's C(ledger.jsonl) (O(root),
        else E(TRDRHUB_LEDGER_DIR), else the inventory variable C(trdrhub_incidents_dir), else
        C(~/.local/state/trdrhub-incident/incidents); see C(docs/ledger.md)).
    type: path
  store_table:
    description:
      - Table of the V(postgres) store, V(name) or V(schema.name); votes go to the same name with C(_votes) appended.
        Both are created by the gate when they do not exist.
    type: str
    default: trdrhub_incident_approvals
"""
