# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: approval
short_description: Approval gate before a destructive incident-response step (two-person rule)
version_added: 1.0.0
description:
  - Placed right before a destructive step - terminating sessions, rotating secrets, a rollback, blocking IPs, a restore.
    The task succeeds only when the step is approved; otherwise it fails and nothing after it runs.
  - The approvers needed depend on O(priority) and O(action) (O(policy)); the requester never approves, approvers are
    distinct people, one denial denies, and a timeout is a denial.
  - The request carries O(evidence) - normally the check-mode result of the step - and its SHA-256. Approvers see the
    evidence and vote on that hash, so what was approved is what runs.
  - Every request, vote and outcome is appended to the incident ledger (event C(approval)), hash-chained with the rest.
  - Runs on the Ansible controller (an action plugin). See C(docs/approvals.md).
author:
  - TRDR Hub SRE (@trdrhub)
options:
  incident_id:
    description:
      - The incident, for example V(INC-2025-0042). Names the ledger and the default store directory.
    type: str
    required: true
  action:
    description:
      - The destructive step to approve, for example V(terminate_sessions), V(rotate_secrets), V(rollback), V(block_ips)
        or V(restore_db). Other names (lower-case letters, digits, V(_)) use the policy's C(default) rule.
    type: str
    required: true
  priority:
    description:
      - Priority of the incident; selects the policy row and the default O(timeout).
    type: str
    required: true
    choices: [P1, P2, P3, P4]
  evidence:
    description:
      - What the step will do, shown to approvers - any data, normally the registered check-mode result of the step.
      - Secrets are removed before it is shown, stored or hashed (as for the ledger).
    type: raw
  summary:
    description:
      - One line for approvers, for example V(Terminate 14 sessions idle in transaction of trdrhub-worker).
    type: str
  policy:
    description:
      - "Overrides of the approval policy, per priority - C({P1: {rotate_secrets: one, timeout: 600}}). Values are
        V(automatic) (no approver), V(one), V(two) or a number of approvers (0 to 5); the keys are actions,
        C(default) (actions not listed), C(timeout) (seconds) and C(trust_claimed_names) (true counts votes by the
        names given rather than by account; weaker, off by default)."
      - When omitted, the host variable C(trdrhub_approval_policy) (set it in the inventory), else the defaults.
      - "Defaults: P1 and P2 - one approver for V(terminate_sessions), V(block_ips), V(rollback) and other actions, two for
        V(rotate_secrets) and V(restore_db), timeout 900 s (P1) and 1800 s (P2); P3 - one for V(terminate_sessions) and
        V(block_ips), two for everything else, 3600 s; P4 - two for everything, 14400 s."
    type: dict
  mode:
    description:
      - How approvals are collected. Whatever the mode, an action the policy marks V(automatic) is approved at once.
      - V(store) - the request is written to the approval store; approvers vote with the C(trdrhub.incident.approve)
        playbook (M(trdrhub.incident.approval_vote)) or C(scripts/approve.py) while the gate polls.
      - V(prompt) - approvers type their name and V(yes) or V(no) at the terminal of this run; needs an interactive
        terminal (fails with a message pointing to V(store) otherwise) and has no timeout while a prompt is open.
      - V(preapproved) - an approval node of an AWX workflow came before this job; its job id and workflow job id
        (C(awx_job_id), C(awx_workflow_job_id)) must be present and are recorded with every C(awx_*)/C(tower_*) variable
        and C(AWX_*) environment variable. Without them the gate fails, unless O(preapproved_by) names another approval.
      - V(auto) - approved only when the policy marks the action V(automatic); otherwise denied without asking.
    type: str
    default: store
    choices: [prompt, store, preapproved, auto]
  preapproved_by:
    description:
      - With O(mode=preapproved) outside AWX, what approved the step beforehand (for example V(variable contain_db_confirm)).
        Recorded as such, with the requester as the one who asserted it. Ignored when AWX workflow variables are present.
    type: str
  timeout:
    description:
      - Seconds to wait for the quorum (O(mode=store)); when it passes the request expires and counts as denied.
      - When omitted, the policy's C(timeout) of O(priority).
    type: float
  poll_interval:
    description:
      - Seconds between two looks at the store while waiting.
    type: float
    default: 5
  requester:
    description:
      - Who asks. When omitted, detected like the ledger's actor - V(awx:<user>), V(rundeck:<user>), else V(local:<os user>).
      - Names compare without case and without the V(awx:), V(rundeck:) or V(local:) prefix, so V(local:alice) cannot
        approve as V(alice).
    type: str
  fail_on_denied:
    description:
      - Fail the task when the outcome is not V(approved) (denied, expired, not enough approvers at the prompt).
      - V(false) returns RV(approved=false) instead; the play must then check it before the destructive step.
    type: bool
    default: true
  phase:
    description:
      - Incident phase of the ledger entries. When omitted, the C(trdrhub_phase) variable, else none.
    type: str
    choices: [detect, triage, investigate, contain, recover, verify, communicate, review]
extends_documentation_fragment:
  - trdrhub.incident.approval_store
attributes:
  check_mode:
    details:
      - Shows the request it would make and returns RV(approved=false) with RV(status=check_mode), without failing,
        waiting, storing or recording anything; the destructive step after it runs in check mode too.
  action:
    details:
      - Runs on the controller, where the terminal, the store and the ledger are.
notes:
  - The connection options are used by O(backend=postgres) (the ledger) and O(store_backend=postgres).
  - In O(mode=store) the two-person rule counts accounts - the AWX or Rundeck user, else the OS login (audit login uid,
    C(SUDO_USER) under sudo, or the effective uid) - recorded with the request (C(requester_principal)) and with every
    vote. A vote from the requester's account, or from an account whose vote already counts, does not count whatever
    approver name it gives; the gate prints why and lists it in RV(ignored_votes). The policy key C(trust_claimed_names)
    counts names instead (weaker). At the O(mode=prompt) terminal the names typed are all there is.
seealso:
  - module: trdrhub.incident.approval_vote
  - module: trdrhub.incident.ledger_record
"""

EXAMPLES = r"""
- name: Evidence - which sessions would be terminated
  trdrhub.incident.pg_terminate_sessions:
    users: [trdrhub_app]
    min_duration: 300
  check_mode: true
  register: evidence

- name: Approval before terminating them
  trdrhub.incident.approval:
    incident_id: "{{ trdrhub_incident_id }}"
    action: terminate_sessions
    priority: P1
    summary: "Terminate {{ evidence.sessions | length }} runaway sessions of trdrhub_app"
    evidence: "{{ evidence.sessions }}"
    mode: store
    timeout: 600

- name: Terminate exactly the approved sessions
  trdrhub.incident.pg_terminate_sessions:
    users: [trdrhub_app]
    min_duration: 300
    pids: "{{ evidence.sessions | map(attribute='pid') | list }}"

- name: Rotate secrets after an AWX workflow approval node
  trdrhub.incident.approval:
    incident_id: INC-2025-0042
    action: rotate_secrets
    priority: P1
    mode: preapproved
    evidence: {secrets: [stripe, jwt-signing]}
"""

RETURN = r"""
approved:
  description: V(true) when the step may run.
  returned: always
  type: bool
  sample: true
status:
  description: V(approved), V(denied), V(expired) (timed out), V(check_mode) or V(error).
  returned: always
  type: str
  sample: approved
msg:
  description: The outcome in one sentence.
  returned: always
  type: str
  sample: "Approved req-3f9a1c2b7d4e by awx:bob: Terminate 14 sessions"
request_id:
  description: Id of the request; approvers name it when they vote.
  returned: success
  type: str
  sample: req-3f9a1c2b7d4e
request:
  description: The request as stored - incident, action, priority, summary, redacted evidence, evidence hash, requester,
    required approvers, rule, mode, created and expiry times.
  returned: success
  type: dict
evidence_hash:
  description: SHA-256 of the redacted evidence as compact JSON with sorted keys.
  returned: success
  type: str
  sample: 9c1e4f...
required:
  description: Approvers the policy requires (0 is automatic).
  returned: success
  type: int
  sample: 1
rule:
  description: The policy entry that decided it, for example V(policy.P1.terminate_sessions).
  returned: success
  type: str
mode:
  description: The mode used; V(automatic) when the policy needs no approver.
  returned: success
  type: str
requester:
  description: Who asked.
  returned: success
  type: str
  sample: awx:alice
approvers:
  description: Who approved (for V(preapproved), the AWX workflow job or O(preapproved_by)).
  returned: success
  type: list
  elements: str
deniers:
  description: Who denied.
  returned: success
  type: list
  elements: str
ignored_votes:
  description: Votes that did not count, with the reason (the requester's, a second vote of one person, other evidence,
    after expiry).
  returned: success
  type: list
  elements: dict
ledger_entries:
  description: The C(approval) ledger entries this gate appended (C(kind) request, vote or outcome, C(seq), C(hash)).
  returned: always
  type: list
  elements: dict
store:
  description: The store directory or table (O(mode=store)).
  returned: when mode is store
  type: str
waited:
  description: Seconds spent waiting for votes (O(mode=store)).
  returned: when mode is store
  type: float
preapproval:
  description: The AWX job and workflow evidence, or O(preapproved_by) (O(mode=preapproved)).
  returned: when mode is preapproved
  type: dict
"""

import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import GATE_ARGS, Gate, Recorder
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import controller_module


def run_gate(params: dict[str, t.Any], check_mode: bool, base_dir: str, context: dict[str, t.Any]) -> dict[str, t.Any]:
    """The gate on this host: no terminal can be prompted here; a failure keeps the entries already recorded."""
    record = Recorder(params, base_dir=base_dir, context=context, env=os.environ, variables={}, secrets=())
    try:
        return Gate(params, record=record, env=os.environ, variables={}, context=context,
                    base_dir=base_dir).run(check_mode=check_mode)
    except TrdrhubError as exc:
        return dict(exc.details, failed=True, msg=str(exc), approved=False, status='error', ledger_entries=record.entries)


# Normally the action plugin of the same name runs the gate on the controller; main() runs when the module is
# executed directly on a host, where no terminal can be prompted.
_MODULE = controller_module(GATE_ARGS, run_gate)
argument_spec = _MODULE.argument_spec
main = _MODULE.main


if __name__ == '__main__':
    main()
