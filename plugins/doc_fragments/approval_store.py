# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import ModuleDocFragment as Attributes
from ansible_collections.trdrhub.incident.plugins.doc_fragments.ledger import ModuleDocFragment as Ledger
from ansible_collections.trdrhub.incident.plugins.doc_fragments.postgres import ModuleDocFragment as Postgres
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


class ModuleDocFragment:
    """The approval gate and the vote (approval, approval_vote): the store, the ledger, the PostgreSQL
    connection (of both when they are tables) and the attributes of a controller-side module."""

    # STORE_ARGS in module_utils/_approval/store.py: where approval requests wait for votes.
    OPTIONS = r"""
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

    DOCUMENTATION: str = compose(OPTIONS, Ledger.OPTIONS, Postgres.OPTIONS, Attributes.CONTROLLER)
