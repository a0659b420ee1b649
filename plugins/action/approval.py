# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.approval: the gate waits on the controller.

The controller is where the operator's terminal is (mode prompt), where the approval store
and the incident ledger live, and where the AWX identity of the requester is known.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsiblePromptInterrupt, AnsiblePromptNoninteractive
from ansible.module_utils.common.text.converters import to_text
from ansible.utils.display import Display
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.approval import (
    ApprovalError,
    evidence_hash,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import (
    GATE_ARGS,
    Gate,
    Recorder,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
)
from ansible_collections.trdrhub.incident.plugins.plugin_utils._action_module import (
    Call,
    ControllerAction,
)
from ansible_collections.trdrhub.incident.plugins.plugin_utils._commands import (
    command,
)

display = Display()
POLICY_VAR = 'trdrhub_approval_policy'


def ask(text: str) -> str:
    try:
        return to_text(display.prompt_until(f'{text}: ', private=False))
    except AnsiblePromptNoninteractive:
        raise ApprovalError('mode prompt needs an interactive terminal, and stdin of this run is not one (AWX, cron, CI, '
                            'a pipe). Use mode store: approvers then vote with ansible-playbook trdrhub.incident.approve '
                            '-e request=<id> -e decision=approve|deny, or scripts/approve.py.') from None
    except AnsiblePromptInterrupt:
        return ''


class ActionModule(ControllerAction):
    OWN_ARGS = GATE_ARGS

    def act(self, call: Call) -> dict[str, t.Any]:
        params, task_vars = call.params, call.variables
        if params.get('policy') is None and task_vars.get(POLICY_VAR) not in (None, ''):
            params['policy'] = self._templar.template(task_vars[POLICY_VAR])   # the inventory's policy
        record = Recorder(params, base_dir=call.base_dir, context=call.context, env=call.env, variables=task_vars,
                          secrets=call.secrets)
        try:
            gate = Gate(params, record=record, env=call.env, variables=task_vars, context=call.context,
                        base_dir=call.base_dir, secrets=call.secrets, ask=ask, say=display.display,
                        vote_command=lambda extra: command(variables=task_vars, templar=self._templar, playbook='approve',
                                                           extra_vars=extra))
            return gate.run(check_mode=call.check_mode)
        except TrdrhubError as exc:
            return dict(failed=True, changed=bool(record.entries), approved=False, status='error', msg=str(exc),
                        ledger_entries=record.entries)

    def shown_args(self, call: Call, result: dict[str, t.Any]) -> dict[str, t.Any]:
        # no secret, the evidence by its hash
        shown = call.masked_params()
        redactor = Redactor(call.secrets)
        digest = result.get('evidence_hash') or evidence_hash(redactor.clean(call.params.get('evidence') or {}))
        shown['evidence'] = f'<sha256:{digest}>'
        return redactor.redact(shown)
