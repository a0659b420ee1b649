# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.incident: the record is read and changed on the controller.

The record lives in the incident ledger, which belongs to the controller (the ledger
callback writes it there, and the AWX or Rundeck identity is only known there), so the
task reads and appends where ``ledger_record`` and the callback do, whatever host it targets.
"""

from __future__ import annotations

import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    _CALLBACK_OPTIONS,
    callback_settings,
)
from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    ActionModule as LedgerRecordAction,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import (
    INCIDENT_ARGS,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident_store import (
    manage_incident,
    redact_params,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import (
    ENV,
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


class ActionModule(LedgerRecordAction):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super(LedgerRecordAction, self).run(tmp, task_vars)   # ActionBase.run, not ledger_record's
        del tmp
        spec = dict(POSTGRES_COMMON_ARGS, **LEDGER_BACKEND_ARGS, **INCIDENT_ARGS)
        dummy, params = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        env, context = self._ledger_env(), self._context(task_vars)
        secrets = self._secrets(task_vars)
        try:
            result.update(manage_incident(params, check_mode=bool(self._task.check_mode), want_diff=bool(self._task.diff),
                                          base_dir=task_vars.get('playbook_dir'), context=context, env=env,
                                          variables=task_vars, secrets=secrets))
        except PgIncidentError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        # What the ledger callback records as this task's arguments: secrets removed.
        shown = {key: (NO_LOG_MARKER if spec[key].get('no_log') and value is not None else value)
                 for key, value in params.items()}
        result['invocation'] = {'module_args': redact_params(shown, Redactor(secrets))}
        return result

    @staticmethod
    def _ledger_env() -> dict[str, str]:
        """The environment with the callback's ledger settings: unless the task says otherwise, read and write where the callback writes."""
        env, settings = dict(os.environ), callback_settings()
        for option, key in _CALLBACK_OPTIONS.items():
            if settings.get(option) not in (None, ''):
                env[ENV[key]] = str(settings[option])
        return env

    def _context(self, task_vars: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Where an entry comes from: host, play and task."""
        return {'host': task_vars.get('inventory_hostname'), 'play': task_vars.get('ansible_play_name'),
                'task': self._task.name or None}
