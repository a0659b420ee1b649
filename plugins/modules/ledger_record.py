# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger_record
short_description: Append a decision, approval, note or other explicit event to the incident ledger
version_added: 1.0.0
description:
  - Appends one entry to the hash-chained incident ledger of O(incident_id) - the same ledger the
    C(trdrhub.incident.ledger) callback plugin writes every task result to. Use it for what no task
    result shows - who decided or approved what, a note for the timeline, an escalation, a message sent.
  - The entry records the actor (the AWX or Rundeck user, else the operating-system user), the play, task
    and host, O(msg) and O(data). Secrets in O(data) and O(msg) (values of secret-looking keys,
    passwords in URLs and connection strings, tokens) are removed before anything is written.
  - Appends are serialised - a file lock for the V(file) backend, an advisory lock for V(postgres) - so
    concurrent playbook runs never fork the chain or lose an entry.
  - Runs on the Ansible controller (an action plugin), whatever host the task targets, so that it writes
    to the ledger the callback writes to and sees the controller's AWX or Rundeck environment.
  - An event log is not idempotent - every run appends one more entry and reports RV(changed=true).
    Use C(changed_when) when the append is bookkeeping that should not count as a change.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  incident_id:
    description:
      - The incident the event belongs to, for example V(INC-2025-0042).
      - It names a directory, so it may only contain letters, digits, V(.), V(_) and V(-) (at most 128, no V(..)).
    type: str
    required: true
  event:
    description:
      - Kind of event. V(task), V(playbook_start) and V(playbook_end) are written by the callback plugin only.
    type: str
    default: note
    choices: [note, decision, approval, escalation, communication, verification, finding, handover]
  phase:
    description:
      - Incident-response phase the event belongs to. Omitted means none.
    type: str
    choices: [detect, triage, investigate, contain, recover, verify, communicate, review]
  msg:
    description:
      - Human-readable text, stored as C(data.message).
    type: str
  data:
    description:
      - Structured details of the event, stored in the entry's C(data) after redaction.
      - The keys C(actor_source), C(job_id), C(sudo_user) and C(recorded_by) are set by the module and override the same
        keys here.
    type: dict
    default: {}
  actor:
    description:
      - Who the event is attributed to, when that is not the person running the playbook (for example the incident
        commander who approved on a call).
      - The detected runner is then kept in C(data.recorded_by).
      - When omitted, the actor is detected - V(awx:<user>) from E(AWX_USER_NAME)/E(TOWER_USER_NAME) or AWX's
        C(awx_user_name) extra variable, V(rundeck:<user>) from E(RD_JOB_USERNAME), else V(local:<os user>).
    type: str
extends_documentation_fragment:
  - trdrhub.incident.ledger
attributes:
  check_mode:
    details:
      - Writes nothing; returns the entry that would be appended, with the sequence number and previous hash computed
        from the ledger's current head. A missing ledger directory or table is not created.
notes:
  - The ledger is verified with M(trdrhub.incident.audit_chain_verify) (C(source=ledger_file) or C(source=ledger_table));
    see C(docs/ledger.md) for the entry format.
seealso:
  - module: trdrhub.incident.audit_chain_verify
  - plugin: trdrhub.incident.ledger
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Record the go decision of the incident commander
  trdrhub.incident.ledger_record:
    incident_id: INC-2025-0042
    event: decision
    phase: contain
    actor: ic:maria
    msg: Terminate the 14 sessions idle in transaction of trdrhub-worker
    data:
      sessions: 14
      approved_on: bridge call

- name: Add a note to the timeline
  trdrhub.incident.ledger_record:
    incident_id: "{{ trdrhub_incident_id }}"
    event: note
    msg: PgBouncer pool saturated since 02:41 UTC; application errors began 02:43
  changed_when: false

- name: Record to the PostgreSQL ledger (connection from TRDRHUB_LEDGER_DSN)
  trdrhub.incident.ledger_record:
    incident_id: INC-2025-0042
    backend: postgres
    event: communication
    phase: communicate
    msg: Statuspage incident opened (investigating)

- name: Show where the next entry would go and the current head, writing nothing
  trdrhub.incident.ledger_record:
    incident_id: INC-2025-0042
  check_mode: true
  register: ledger_head
"""

RETURN = r"""
changed:
  description: V(true) when an entry was appended; V(false) in check mode.
  returned: always
  type: bool
  sample: true
entry:
  description:
    - The entry appended (in check mode, the entry that would be appended), exactly as stored.
    - Its fields are described in C(docs/ledger.md).
  returned: success
  type: dict
  sample:
    v: 1
    seq: 12
    incident_id: INC-2025-0042
    ts: "2025-01-15T14:30:00.123456+00:00"
    event: decision
    phase: contain
    actor: awx:alice
    host: localhost
    play: Contain runaway PostgreSQL sessions
    task: Record the go decision
    module: trdrhub.incident.ledger_record
    changed: null
    failed: null
    args: {}
    data: {message: Terminate the listed sessions, actor_source: awx, job_id: "4711"}
    prev_hash: 0d5f3a2c9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29
    hash: 7b1e0c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c
seq:
  description: Sequence number of the entry in its incident's chain (1 for the first).
  returned: success
  type: int
  sample: 12
hash:
  description: SHA-256 (hex) of the entry, the C(ledger) profile of M(trdrhub.incident.audit_chain_verify).
  returned: success
  type: str
  sample: 7b1e0c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c
prev_hash:
  description: Hash of the entry before it, the head before this append; null for the first entry.
  returned: success
  type: str
  sample: 0d5f3a2c9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29
ledger:
  description: The ledger written to - the file path (V(file) backend) or the table name (V(postgres)).
  returned: success
  type: str
  sample: /srv/incidents/INC-2025-0042/ledger.jsonl
backend:
  description: The backend used, V(file) or V(postgres).
  returned: success
  type: str
  sample: file
incident_dir:
  description:
    - The incident's directory under O(root) (where V(file) keeps C(ledger.jsonl), and where playbooks keep other incident
      files such as C(audit_heads.json)). Not created by this module in check mode or for V(postgres).
  returned: success
  type: str
  sample: /srv/incidents/INC-2025-0042
"""


from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import controller_module
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import RECORD_ARGS, record_event

# Normally the action plugin of the same name does this on the controller; main() runs when the module is
# executed directly on a host (for example by ansible-test).
_MODULE = controller_module(RECORD_ARGS, record_event)
argument_spec = _MODULE.argument_spec
main = _MODULE.main


if __name__ == '__main__':
    main()
