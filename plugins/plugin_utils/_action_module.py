# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""``ControllerAction``: the shared base of the collection's controller-side action plugins.

``ledger_record``, ``incident``, ``incident_escalate``, ``approval`` and ``approval_vote`` run
on the controller, where the incident ledger lives and where the identity of the person
running the job is known. The base owns option validation, the ledger callback's settings,
the task context and the play's secrets; each plugin only says what its operation does
(``act``). A ``TrdrhubError`` is one failed result with its sentence, as in the modules' runner.
"""

from __future__ import annotations

import os
import typing as t
from dataclasses import dataclass

from ansible import constants as C
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    ENV_VAR,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    NO_LOG_MARKER,
    is_secret_key,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import secret_values, validate_task_args
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import (
    controller_argument_spec,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    ENV,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    POSTGRES_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.trdrhub.incident.plugins.plugin_utils._commands import (
    home_of,
)

CALLBACK = 'trdrhub.incident.ledger'
_CALLBACK_OPTIONS = {'backend': 'backend', 'dir': 'root', 'table': 'table', 'dsn': 'dsn'}


def callback_settings() -> dict[str, t.Any]:
    """The ledger callback's backend settings (ansible.cfg, environment, defaults), enabled or not."""
    try:
        from ansible.plugins.loader import callback_loader
        plugin = callback_loader.get(CALLBACK, class_only=True)   # loading registers its option definitions
        return dict(C.config.get_plugin_options('callback', plugin._load_name))
    except Exception:   # pylint: disable=broad-exception-caught
        return {}       # the environment variables still apply


def ledger_env(variables: t.Mapping[str, t.Any] | None = None, templar: t.Any = None) -> dict[str, str]:
    """The environment with the ledger callback's settings and the incidents home applied.

    Unless a task says otherwise, everything reads and writes where the callback writes:
    TRDRHUB_LEDGER_DIR holds the incidents home (module_utils/_common/incidents_home.py), absolute.
    """
    env, settings = dict(os.environ), callback_settings()
    for option, key in _CALLBACK_OPTIONS.items():
        if settings.get(option) not in (None, ''):
            env[ENV[key]] = str(settings[option])
    env[ENV_VAR] = home_of(variables, templar, env)[0]
    return env


@dataclass
class Call:
    """One task's validated options and everything a controller-side operation needs besides them."""

    params: dict[str, t.Any]
    spec: dict[str, t.Any]
    check_mode: bool
    diff: bool
    base_dir: str | None
    context: dict[str, t.Any]
    env: dict[str, str]
    variables: dict[str, t.Any]
    secrets: list[str]

    def masked_params(self) -> dict[str, t.Any]:
        """The options with every no_log option's value (and a password in connect_params) replaced by Ansible's marker."""
        shown = {key: (NO_LOG_MARKER if self.spec[key].get('no_log') and value is not None else value)
                 for key, value in self.params.items()}
        return remove_values(shown, set(secret_values(self.spec, self.params)))


class ControllerAction(ActionBase):
    """Run a controller-side operation: ``act(call)`` returns the result; a TrdrhubError is one message.

    A plugin declares its options (``OWN_ARGS``, besides the connection and ledger options) and
    its ``OPERATION``, called as ``OPERATION(params, check_mode=, base_dir=, context=, env=,
    variables=, secrets=)`` (and ``want_diff=`` when ``WANT_DIFF``), the keywords the module's
    ``controller_main`` gives it on a host; or it overrides ``act``.
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    OWN_ARGS: dict[str, t.Any] = {}
    OPERATION: t.Callable[..., dict[str, t.Any]] | None = None
    WANT_DIFF = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        spec = controller_argument_spec(self.OWN_ARGS)
        params, problem = validate_task_args(spec, self._task.args, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        if problem:
            result.update(failed=True, changed=False, msg=problem)
            return result
        call = Call(params=params, spec=spec, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff),
                    base_dir=task_vars.get('playbook_dir'), context=self._context(task_vars),
                    env=ledger_env(task_vars, self._templar),
                    variables=task_vars, secrets=self._secrets(task_vars))
        try:
            result.update(self.act(call))
        except TrdrhubError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        shown = self.shown_args(call, result)
        if shown is not None:   # what the ledger callback records as this task's arguments
            result['invocation'] = {'module_args': shown}
        return result

    def act(self, call: Call) -> dict[str, t.Any]:
        operation = self.OPERATION
        if operation is None:
            raise NotImplementedError
        extra = {'want_diff': call.diff} if self.WANT_DIFF else {}
        return operation(call.params, check_mode=call.check_mode, base_dir=call.base_dir, context=call.context,
                         env=call.env, variables=call.variables, secrets=call.secrets, **extra)

    def shown_args(self, call: Call, result: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """The task's arguments as recorded, secrets removed; None keeps Ansible's own invocation."""
        del call, result
        return None

    def _context(self, task_vars: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """Where an entry comes from: host, play and task."""
        return {'host': task_vars.get('inventory_hostname'), 'play': task_vars.get('ansible_play_name'),
                'task': self._task.name or None}

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
