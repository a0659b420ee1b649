# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.ledger_record: the append happens on the controller.

The ledger belongs to the controller - the callback plugin writes it there, and the AWX
or Rundeck identity of the person running the job is only known there. Running the
module on a remote host would split the ledger and attribute the event to the SSH user.
"""

from __future__ import annotations

import os
import typing as t

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import (
    ENV,
    LEDGER_BACKEND_ARGS,
    RECORD_ARGS,
    record_event,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import (
    POSTGRES_COMMON_ARGS,
    POSTGRES_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._redact import (
    is_secret_key,
)

CALLBACK = 'trdrhub.incident.ledger'
# callback option -> ledger environment key
_CALLBACK_OPTIONS = {'backend': 'backend', 'dir': 'root', 'table': 'table', 'dsn': 'dsn'}


def callback_settings() -> dict[str, t.Any]:
    """The ledger callback's backend settings (ansible.cfg, environment, defaults), enabled or not."""
    try:
        from ansible.plugins.loader import callback_loader
        plugin = callback_loader.get(CALLBACK, class_only=True)   # loading registers its option definitions
        return dict(C.config.get_plugin_options('callback', plugin._load_name))
    except Exception:   # pylint: disable=broad-exception-caught
        return {}       # the environment variables still apply


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        spec = dict(POSTGRES_COMMON_ARGS, **LEDGER_BACKEND_ARGS, **RECORD_ARGS)
        dummy, params = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        # Unless the task says otherwise, write where the callback writes.
        env, settings = dict(os.environ), callback_settings()
        for option, key in _CALLBACK_OPTIONS.items():
            if settings.get(option) not in (None, ''):
                env[ENV[key]] = str(settings[option])
        context = {'host': task_vars.get('inventory_hostname'), 'play': task_vars.get('ansible_play_name'),
                   'task': self._task.name or None}
        try:
            result.update(record_event(params, check_mode=bool(self._task.check_mode), base_dir=task_vars.get('playbook_dir'),
                                       context=context, env=env, variables=task_vars, secrets=self._secrets(task_vars)))
        except PgIncidentError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result

    def _secrets(self, task_vars: t.Mapping[str, t.Any]) -> list[str]:
        """Values of the play's secret-looking variables, masked wherever they show up in the event."""
        found = []
        for key, value in task_vars.items():
            if not is_secret_key(key) or value in (None, ''):
                continue
            try:
                value = self._templar.template(value)
            except Exception:   # pylint: disable=broad-exception-caught
                continue        # an unresolvable variable cannot be in the event either
            if isinstance(value, str):
                found.append(value)
        return found
