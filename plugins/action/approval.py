# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.approval: the gate waits on the controller.

The controller is where the operator's terminal is (mode prompt), where the approval store
and the incident ledger live, and where the AWX identity of the requester is known.
"""

from __future__ import annotations

import os
import typing as t

from ansible.errors import AnsiblePromptInterrupt, AnsiblePromptNoninteractive
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display
from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    _CALLBACK_OPTIONS,
    callback_settings,
)
from ansible_collections.trdrhub.incident.plugins.action.ledger_record import (
    ActionModule as LedgerRecordAction,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval import (
    ApprovalError,
    evidence_hash,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval_gate import (
    GATE_ARGS,
    Gate,
    Recorder,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgIncidentError,
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

display = Display()
POLICY_VAR = 'trdrhub_approval_policy'


def ledger_env() -> dict[str, str]:
    """The environment with the ledger callback's settings applied, so entries go where the callback writes."""
    env, settings = dict(os.environ), callback_settings()
    for option, key in _CALLBACK_OPTIONS.items():
        if settings.get(option) not in (None, ''):
            env[ENV[key]] = str(settings[option])
    return env


def ask(text: str) -> str:
    try:
        return to_text(display.prompt_until(f'{text}: ', private=False))
    except AnsiblePromptNoninteractive:
        raise ApprovalError('mode prompt needs an interactive terminal, and stdin of this run is not one (AWX, cron, CI, '
                            'a pipe). Use mode store: approvers then vote with ansible-playbook trdrhub.incident.approve '
                            '-e request=<id> -e decision=approve|deny, or scripts/approve.py.') from None
    except AnsiblePromptInterrupt:
        return ''


class ActionModule(LedgerRecordAction):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super(LedgerRecordAction, self).run(tmp, task_vars)   # ActionBase.run, not ledger_record's
        del tmp
        spec = dict(POSTGRES_COMMON_ARGS, **LEDGER_BACKEND_ARGS, **GATE_ARGS)
        dummy, params = self.validate_argument_spec(argument_spec=spec, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)
        if params.get('policy') is None and task_vars.get(POLICY_VAR) not in (None, ''):
            params['policy'] = self._templar.template(task_vars[POLICY_VAR])   # the inventory's policy
        context = {'host': task_vars.get('inventory_hostname'), 'play': task_vars.get('ansible_play_name'),
                   'task': self._task.name or None}
        env, secrets = ledger_env(), self._secrets(task_vars)
        record = Recorder(params, base_dir=task_vars.get('playbook_dir'), context=context, env=env, variables=task_vars,
                          secrets=secrets)
        try:
            gate = Gate(params, record=record, env=env, variables=task_vars, context=context,
                        base_dir=task_vars.get('playbook_dir'), secrets=secrets, ask=ask,
                        say=display.display)
            result.update(gate.run(check_mode=bool(self._task.check_mode)))
        except PgIncidentError as exc:
            result.update(failed=True, changed=bool(record.entries), approved=False, status='error', msg=str(exc),
                          ledger_entries=record.entries)
        # What the ledger callback records as this task's arguments: no secret, the evidence by its hash.
        shown = {key: (NO_LOG_MARKER if spec[key].get('no_log') and value is not None else value)
                 for key, value in params.items()}
        digest = result.get('evidence_hash') or evidence_hash(Redactor(secrets).clean(params.get('evidence') or {}))
        shown['evidence'] = f'<sha256:{digest}>'
        result['invocation'] = {'module_args': Redactor(secrets).redact(shown)}
        return result
