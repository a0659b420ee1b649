# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.incident_escalate: the record is read and escalations recorded on the controller.

The incident record lives in the ledger the controller writes; this plugin reads it the way
the incident action plugin does (same ledger settings, same task context) and appends there.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.action.incident import (
    ActionModule as IncidentAction,
)
from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    ActionModule as LedgerRecordAction,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._escalation_store import (
    ESCALATE_ARGS,
    manage_escalation,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import (
    LEDGER_BACKEND_ARGS,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import (
    POSTGRES_COMMON_ARGS,
    POSTGRES_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._redact import (
    NO_LOG_MARKER,
    Redactor,
)


class ActionModule(IncidentAction):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super(LedgerRecordAction, self).run(tmp, task_vars)   # ActionBase.run
        del tmp
        spec = dict(POSTGRES_COMMON_ARGS, **LEDGER_BACKEND_ARGS, **ESCALATE_ARGS)
        dummy, params = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        secrets = self._secrets(task_vars)
        try:
            result.update(manage_escalation(params, check_mode=bool(self._task.check_mode), base_dir=task_vars.get('playbook_dir'),
                                            context=self._context(task_vars), env=self._ledger_env(), variables=task_vars,
                                            secrets=secrets))
        except PgIncidentError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        # What the ledger callback records as this task's arguments: secrets (routing keys, passwords) removed.
        shown = {key: (NO_LOG_MARKER if spec[key].get('no_log') and value is not None else value)
                 for key, value in params.items()}
        result['invocation'] = {'module_args': Redactor(secrets).clean(shown)}
        return result
