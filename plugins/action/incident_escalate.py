# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.incident_escalate: the record is read and escalations recorded on the controller.

The incident record lives in the ledger the controller writes; this plugin reads it the way
the incident action plugin does (same ledger settings, same task context) and appends there.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.escalation_store import ESCALATE_ARGS, manage_escalation
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import Call, ControllerAction


class ActionModule(ControllerAction):
    OWN_ARGS = ESCALATE_ARGS
    OPERATION = staticmethod(manage_escalation)

    def shown_args(self, call: Call, result: dict[str, t.Any]) -> dict[str, t.Any]:
        # secrets (routing keys, passwords) removed
        return Redactor(call.secrets).clean(call.masked_params())
