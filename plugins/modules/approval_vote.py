# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: approval_vote
short_description: Approve or deny a pending approval request of the trdrhub.incident.approval gate
version_added: 1.0.0
description:
  - Casts one vote on a request that a M(trdrhub.incident.approval) gate in O(trdrhub.incident.approval#module:mode=store) is waiting on. The
    C(trdrhub.incident.approve) playbook wraps it (C(-e request=<id> -e decision=approve)).
  - The vote is refused when the request does not exist, is not pending any more, has expired, when the approver is the
    requester (two-person rule), has voted already, or when O(evidence_hash) is given and is not the request's.
  - The vote is also refused when it comes from the requester's own account, or from an account whose vote already
    counts, whatever O(approver) says - the account is the AWX or Rundeck user, else the OS login of the run (unless the
    request's policy trusts claimed names). It is recorded with the vote (C(principal)).
  - A request whose stored evidence no longer matches its evidence hash (altered after it was made) is refused.
  - The vote is stored once (a second vote of the same person fails, also when both arrive at the same moment) and
    appended to the incident ledger (event C(approval)).
  - Runs on the Ansible controller (an action plugin).
author:
  - TRDR Hub SRE (@trdrhub)
options:
  request_id:
    description:
      - The request, as the gate printed it (V(req-3f9a1c2b7d4e)).
    type: str
    required: true
    aliases: [request]
  decision:
    description:
      - V(approve) or V(deny). One denial denies the request.
    type: str
    required: true
    choices: [approve, deny]
  approver:
    description:
      - Who votes. When omitted, detected like the ledger's actor (V(awx:<user>), V(rundeck:<user>), V(local:<os user>)).
      - When given, the detected runner is recorded with it (C(recorded_by)); a runner that AWX or Rundeck identifies as
        the requester cannot vote under another name.
    type: str
  comment:
    description:
      - Why, stored with the vote and in the ledger.
    type: str
  evidence_hash:
    description:
      - The evidence hash the approver reviewed (at least its first 12 characters). When given and not the request's,
        the vote is refused - the evidence changed since it was reviewed.
    type: str
  incident_id:
    description:
      - The request's incident. When omitted, the V(dir) store is searched in every incident under the ledger root.
    type: str
extends_documentation_fragment:
  - trdrhub.incident.approval_store
attributes:
  check_mode:
    details:
      - Checks the vote and returns it without storing or recording it.
seealso:
  - module: trdrhub.incident.approval
"""

EXAMPLES = r"""
- name: Approve a pending request as the detected user
  trdrhub.incident.approval_vote:
    request_id: req-3f9a1c2b7d4e
    decision: approve

- name: Deny with a reason, naming the incident and the reviewed evidence
  trdrhub.incident.approval_vote:
    request_id: req-3f9a1c2b7d4e
    incident_id: INC-2025-0042
    decision: deny
    evidence_hash: 9c1e4f0a2b3c
    comment: the worker sessions belong to the running migration
"""

RETURN = r"""
request_id:
  description: The request voted on.
  returned: success
  type: str
incident_id:
  description: The request's incident.
  returned: success
  type: str
vote:
  description: The vote as stored (approver, decision, evidence hash, comment, recorded_by, time).
  returned: success
  type: dict
request:
  description: The request voted on, with its evidence.
  returned: success
  type: dict
evidence_hash:
  description: The request's evidence hash.
  returned: success
  type: str
approvals:
  description: Approvals counted after this vote.
  returned: success and not check mode
  type: int
required:
  description: Approvals the request needs.
  returned: success and not check mode
  type: int
quorum:
  description: Whether the request now has every approval it needs (and no denial).
  returned: success and not check mode
  type: bool
store:
  description: The store directory or table.
  returned: success
  type: str
ledger_entries:
  description: The ledger entry of the vote (C(seq), C(hash)).
  returned: success and not check mode
  type: list
  elements: dict
msg:
  description: The vote in one sentence.
  returned: always
  type: str
"""


from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import VOTE_ARGS, cast_vote
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import controller_module

# Normally the action plugin of the same name votes on the controller; main() runs when the module is executed
# directly on a host.
_MODULE = controller_module(VOTE_ARGS, cast_vote)
argument_spec = _MODULE.argument_spec
main = _MODULE.main


if __name__ == '__main__':
    main()
