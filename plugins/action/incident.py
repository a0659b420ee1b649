# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.incident: the record is read and changed on the controller.

The record lives in the incident ledger, which belongs to the controller (the ledger
callback writes it there, and the AWX or Rundeck identity is only known there), so the
task reads and appends where ``ledger_record`` and the callback do, whatever host it targets.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import INCIDENT_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.store import manage_incident, redact_params
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import Call, ControllerAction


class ActionModule(ControllerAction):
    OWN_ARGS = INCIDENT_ARGS
    OPERATION = staticmethod(manage_incident)
    WANT_DIFF = True

    def shown_args(self, call: Call, result: dict[str, t.Any]) -> dict[str, t.Any]:
        return redact_params(call.masked_params(), Redactor(call.secrets))
