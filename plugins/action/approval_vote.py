# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.approval_vote: the vote is stored and recorded on the controller.

The approval store and the incident ledger are the controller's, and so is the AWX or Rundeck
identity of the approver.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.action.approval import (
    ledger_env,
)
from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    ActionModule as LedgerRecordAction,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval_gate import (
    VOTE_ARGS,
    cast_vote,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import (
    LEDGER_BACKEND_ARGS,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import (
    POSTGRES_COMMON_ARGS,
    POSTGRES_MUTUALLY_EXCLUSIVE,
)


class ActionModule(LedgerRecordAction):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super(LedgerRecordAction, self).run(tmp, task_vars)   # ActionBase.run, not ledger_record's
        del tmp
        spec = dict(POSTGRES_COMMON_ARGS, **LEDGER_BACKEND_ARGS, **VOTE_ARGS)
        dummy, params = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        context = {'host': task_vars.get('inventory_hostname'), 'play': task_vars.get('ansible_play_name'),
                   'task': self._task.name or None}
        try:
            result.update(cast_vote(params, check_mode=bool(self._task.check_mode), base_dir=task_vars.get('playbook_dir'),
                                    env=ledger_env(), variables=task_vars, context=context, secrets=self._secrets(task_vars)))
        except PgIncidentError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
