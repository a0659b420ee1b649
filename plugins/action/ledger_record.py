# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.ledger_record: the append happens on the controller.

The ledger belongs to the controller - the callback plugin writes it there, and the AWX
or Rundeck identity of the person running the job is only known there. Running the
module on a remote host would split the ledger and attribute the event to the SSH user.

The shared base, ``ControllerAction``, lives in plugins/plugin_utils/_action_module.py.
"""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import RECORD_ARGS, record_event
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import ControllerAction


class ActionModule(ControllerAction):
    OWN_ARGS = RECORD_ARGS
    OPERATION = staticmethod(record_event)
