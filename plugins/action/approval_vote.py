# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.approval_vote: the vote is stored and recorded on the controller.

The approval store and the incident ledger are the controller's, and so is the AWX or Rundeck
identity of the approver.
"""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import VOTE_ARGS, cast_vote
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import ControllerAction


class ActionModule(ControllerAction):
    OWN_ARGS = VOTE_ARGS
    OPERATION = staticmethod(cast_vote)
