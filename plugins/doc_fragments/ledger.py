# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.doc_fragments.attributes import ModuleDocFragment as Attributes
from ansible_collections.trdrhub.incident.plugins.doc_fragments.postgres import ModuleDocFragment as Postgres
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose


class ModuleDocFragment:
    """A module that records in the incident ledger from the controller (incident, incident_escalate, ledger_record).

    The ledger options, the PostgreSQL connection options (used only by the V(postgres) backend), the
    attributes every module has and those of a controller-side module. approval_store builds on OPTIONS.
    """

    # LEDGER_BACKEND_ARGS in module_utils/_ledger/ledger.py: where the incident ledger is kept.
    OPTIONS = r"""
options:
  backend:
    description:
      - Where the incident ledger is kept.
      - V(file) - a JSON-lines file C(<root>/<incident_id>/ledger.jsonl) on the Ansible controller.
      - V(postgres) - a table (O(table)) reached with the PostgreSQL connection options.
      - When omitted, the backend the C(trdrhub.incident.ledger) callback uses (its C(backend) setting, E(TRDRHUB_LEDGER_BACKEND)),
        else V(file).
    type: str
    choices: [file, postgres]
  root:
    description:
      - Directory holding one sub-directory per incident, for the V(file) backend.
      - A relative path is taken from the playbook's directory (from the current directory when the module runs on a
        host rather than on the controller).
      - When omitted, the incidents home, where the C(trdrhub.incident.ledger) callback writes - E(TRDRHUB_LEDGER_DIR),
        else the inventory variable C(trdrhub_incidents_dir), else C($XDG_STATE_HOME/trdrhub-incident/incidents)
        (C(~/.local/state/trdrhub-incident/incidents)); never the playbook's or the current directory (C(docs/ledger.md)).
    type: path
    aliases: [dir]
  table:
    description:
      - Table of the V(postgres) backend, V(name) or V(schema.name). Created on the first append when it does not exist.
      - When omitted, the callback's C(table) setting (E(TRDRHUB_LEDGER_TABLE)), else V(trdrhub_incident_ledger).
    type: str
notes:
  - For the V(postgres) backend without any connection option, the connection string in E(TRDRHUB_LEDGER_DSN) is used.
"""

    # For a module whose only use of the PostgreSQL connection options is the V(postgres) backend.
    POSTGRES_BACKEND = r"""
attributes:
  action:
    details:
      - Runs on the controller. The PostgreSQL connection options are used from the controller too.
notes:
  - The connection options (O(login_host), O(dsn), ...) are only used with O(backend=postgres).
"""

    DOCUMENTATION: str = compose(OPTIONS, Postgres.OPTIONS, Attributes.CONTROLLER, POSTGRES_BACKEND)
