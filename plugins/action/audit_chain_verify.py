# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.audit_chain_verify: an incident ledger file on the controller is verified in process.

Every procedure ends by verifying its incident ledger, a file in the incidents home on the
controller. Reading it in the controller process spares a module process (about a third of a
second each time). Everything else - the application's audit_log_entries, a ledger table, a
ledger file on another host - runs the module on the task's host as usual.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_run import (
    AuditChainVerification,
    chain_argument_spec,
    failure_message,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import validate_task_args
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_COMMON_ARGS, POSTGRES_MUTUALLY_EXCLUSIVE


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        if not self._in_process():
            result.update(self._execute_module(task_vars=task_vars))
            return result
        spec = chain_argument_spec(POSTGRES_COMMON_ARGS)
        params, problem = validate_task_args(spec, self._task.args, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        if problem:
            result.update(failed=True, changed=False, msg=problem)
            return result
        try:
            result.update(AuditChainVerification(params).run(None))
        except TrdrhubError as exc:
            result.update(failed=True, changed=False, msg=str(exc), **(getattr(exc, 'details', None) or {}))
        else:
            if params['fail_on_violation'] and not result['is_valid']:
                result.update(failed=True, msg=failure_message(result))
        secrets = {str(params[name]) for name, option in spec.items() if option.get('no_log') and params.get(name)}
        result['invocation'] = {'module_args': remove_values(params, secrets)}
        return result

    def _in_process(self) -> bool:
        """A ledger file read through the controller's own filesystem (a local connection)."""
        return self._task.args.get('source') == 'ledger_file' and getattr(self._connection, 'transport', None) == 'local'
