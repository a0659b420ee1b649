# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident
short_description: Open, update, acknowledge, assign, set the status of and resolve an incident record kept in the incident ledger
version_added: 1.0.0
description:
  - Manages the record of one incident - title, priority and response deadline, impact, status, incident commander,
    acknowledgement, references to other systems, resolution. O(incident_id) is the correlation id used everywhere
    (ledger, status page, PagerDuty C(dedup_key), Alertmanager silences, evidence bundles).
  - "The record is kept only in the incident's hash-chained ledger - the one the C(trdrhub.incident.ledger) callback
    and M(trdrhub.incident.ledger_record) write. Every change is one ledger entry, event C(incident), whose C(data)
    holds C(action), C(actions), C(changes) (C({field: {before, after}})), the whole C(record) after the change, the
    O(note) and who made it. The current record is the C(record) of the last such entry; the history is the ledger."
  - Before the record is trusted, every entry of the ledger is checked - its hash, its sequence number and its link to
    the entry before. A ledger that does not verify is refused with one message that names
    M(trdrhub.incident.audit_chain_verify).
  - "Declarative and idempotent: options that are left out keep their value; when the record already holds what the
    task asks for, nothing is appended and RV(changed=false). Otherwise one entry is appended, named after its most
    significant action - V(resolve), V(reopen), V(open), V(assign_commander), V(acknowledge), V(auto_acknowledge),
    V(status), V(update). Its ledger phase is V(triage) for V(open), V(reopen), V(acknowledge), V(auto_acknowledge)
    and V(assign_commander), V(recover) for
    V(resolve), and for V(status) and V(update) follows the status reached - V(investigate) (investigating,
    identified), V(recover) (monitoring) or V(review) (resolved)."
  - "Opening a new incident requires O(title); its status starts at V(investigating) unless O(status) says otherwise.
    V(resolved) is reached only with O(state=resolved). O(state=open) on a resolved incident fails unless
    O(reopen=true)."
  - The response deadline is computed from O(priority) as M(trdrhub.incident.incident_assess) does (the same policy
    table, changed with O(policy)), counted from O(detected_at), or from the time the incident was opened when that is
    not known. The duration of a resolved incident is counted the same way, up to its resolution.
  - Free text (O(title), O(summary), O(note), O(root_cause), O(resolution), O(commander)) and O(references) lose their secrets before
    they are compared or stored - values of secret-looking keys, passwords in URLs, tokens and the values of the
    play's secret-looking variables - exactly as for M(trdrhub.incident.ledger_record).
  - Runs on the Ansible controller (an action plugin), whatever host the task targets, and reads and writes where
    the ledger callback writes unless the ledger options say otherwise. The read, the decision and the append happen
    under the ledger's lock, so two concurrent runs never both change the same old record.
  - To look a record up without changing anything, run the module with only O(incident_id) (and the ledger options),
    best in check mode. Such a task never reopens a resolved incident; it fails when the incident has no record.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  incident_id:
    description:
      - The incident, for example V(INC-2025-0042). It names the ledger, so it may only contain letters, digits, V(.),
        V(_) and V(-) (at most 128, no V(..)).
    type: str
    required: true
  state:
    description:
      - V(open) opens the incident when it has no record yet, or updates the open record.
      - V(resolved) resolves it (status V(resolved), C(resolved_at), C(duration_seconds)), or updates a resolved record
        (for example its O(resolution) or O(references)). A record must exist.
    type: str
    choices: [open, resolved]
    default: open
  title:
    description:
      - One-line title. Required to open a new incident.
    type: str
  summary:
    description:
      - What is known so far, for the timeline and the post-mortem.
    type: str
  priority:
    description:
      - Priority, usually RV(trdrhub.incident.incident_assess#module:priority). Sets RV(incident.response_deadline).
    type: str
    choices: [P1, P2, P3, P4]
  impact:
    description:
      - Impact categories, replacing the recorded ones - V(customer-facing), V(internal), V(data_integrity),
        V(data_loss), V(security), V(compliance), V(cosmetic) or a category added in O(policy). C(-) and C(_) are
        interchangeable; they are stored in the policy's spelling and order, each once.
    type: list
    elements: str
  status:
    description:
      - Status of the response, the Statuspage vocabulary - V(investigating), V(identified), V(monitoring).
      - V(resolved) is set with O(state=resolved) only.
    type: str
    choices: [investigating, identified, monitoring, resolved]
  commander:
    description:
      - The incident commander, for example V(ic:maria). An empty string removes the assignment.
    type: str
  acknowledged:
    description:
      - Whether a responder has acknowledged the incident. Setting it records C(acknowledged_at) and C(acknowledged_by)
        (the person running the task); V(false) withdraws the acknowledgement.
      - This is the acknowledgement by a person that the response time is judged on; an automatic one is
        O(auto_acknowledged).
    type: bool
  auto_acknowledged:
    description:
      - Whether the incident's alerts were acknowledged automatically (triage's Alertmanager silences). Setting it
        records C(auto_acknowledged_at) and C(auto_acknowledged_by) once; it does not set C(acknowledged), so
        time-based escalation goes on and the response time still waits for a person.
    type: bool
  detected_at:
    description:
      - When the incident was detected, ISO 8601 (V(2025-01-15T14:30:00Z)); a time without offset is UTC. The response
        deadline and the duration are counted from it.
    type: str
  references:
    description:
      - Identifiers in other systems, merged key by key into the recorded ones - for example C(statuspage_incident_id),
        C(pagerduty_dedup_key), C(silence_ids), C(ticket). A key set to null is removed.
    type: dict
  root_cause:
    description:
      - Why the incident happened, as the responders understand it (the post-incident review's C(Root cause) section
        starts from it). It may be recorded at any state - when the cause is found (with O(status=identified)) or
        with the resolution. An empty string removes it.
      - It is kept when the incident is reopened (the cause may still hold); set it again when it turns out wrong.
    type: str
    version_added: 1.1.0
  resolution:
    description:
      - How the incident was resolved; with O(state=resolved) only.
    type: str
  note:
    description:
      - Free text stored with the ledger entry of this change (C(data.note)), for example why the priority changed.
      - It is not part of the record and is not a change by itself - a note alone appends nothing; use
        M(trdrhub.incident.ledger_record) for a note without a change.
    type: str
  reopen:
    description:
      - With O(state=open), reopen a resolved incident. Its resolution, C(resolved_at) and duration are cleared (they
        stay in the ledger's history), C(reopen_count) counts up and the status goes back to V(investigating) unless
        O(status) says otherwise.
    type: bool
    default: false
  policy:
    description:
      - Changes to the priority policy table, as O(trdrhub.incident.incident_assess#module:policy) takes them, for the
        response deadline and the impact categories. Keep it in inventory so every run uses the same.
    type: dict
    default: {}
  notified:
    description:
      - "Records that a notification obligation (RV(obligations)) was met - C(obligation) (its key, for example
        V(regulator)), C(to) (whom, for example the authority and its case number), optionally C(by) (defaults to the
        actor), C(at) (ISO 8601, defaults to now) and C(note). Kept in the record's C(notifications); the same
        C(obligation) and C(to) again changes nothing."
    type: dict
  obligation_policy:
    description:
      - "Changes to the notification obligation table (C(docs/compliance.md)), by obligation - C(title), C(party),
        C(when_impact), C(when_priority), C(within_hours) (after detection), C(conditions); a new key adds an
        obligation, V(null) removes one. Keep it in inventory (C(trdrhub_notification_obligations))."
    type: dict
    default: {}
extends_documentation_fragment:
  - trdrhub.incident.ledger
attributes:
  check_mode:
    details:
      - Reads the ledger and returns the record as it would be and the changes; appends nothing and creates no ledger
        directory or table. RV(entry) is null.
  diff_mode:
    support: full
    details:
      - Shows the record before and after, one field a line.
notes:
  - Times in the record are ISO 8601 UTC to the second (V(2025-01-15T14:30:00Z)).
  - The C(trdrhub.incident.ledger) callback also records the task itself (event C(task)); the entry this module appends
    is the record's.
seealso:
  - module: trdrhub.incident.ledger_record
  - module: trdrhub.incident.incident_assess
  - module: trdrhub.incident.audit_chain_verify
  - plugin: trdrhub.incident.ledger
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Open the incident
  trdrhub.incident.incident:
    incident_id: INC-2025-0042
    title: API returns 503 on /health/ready
    priority: P1
    impact: [customer-facing]
    detected_at: "2025-01-15T14:30:00Z"
    summary: Readiness fails since 14:30 UTC; database checks time out
  register: inc

- name: Tell the responder when the response is due
  ansible.builtin.debug:
    msg: "{{ inc.incident.priority }}: respond by {{ inc.incident.response_deadline }}"

- name: Assign the incident commander and acknowledge
  trdrhub.incident.incident:
    incident_id: INC-2025-0042
    commander: ic:maria
    acknowledged: true
    note: Maria took command on the bridge call

- name: Cause found; record the status page incident
  trdrhub.incident.incident:
    incident_id: INC-2025-0042
    status: identified
    references:
      statuspage_incident_id: p31zjtct2jer
      pagerduty_dedup_key: INC-2025-0042

- name: Resolve, with the root cause
  trdrhub.incident.incident:
    incident_id: INC-2025-0042
    state: resolved
    resolution: Runaway sessions terminated; connection pool size raised to 40
    root_cause: A stuck consumer held connections open; the pool was too small to absorb it

- name: Read the current record, changing nothing
  trdrhub.incident.incident:
    incident_id: INC-2025-0042
  check_mode: true
  register: current

- name: Keep the record in the PostgreSQL ledger (connection from TRDRHUB_LEDGER_DSN)
  trdrhub.incident.incident:
    incident_id: INC-2025-0043
    backend: postgres
    title: Notifications not delivered
    priority: P2
"""

RETURN = r"""
changed:
  description: V(true) when the record changed (in check mode - would change) and an entry was (would be) appended.
  returned: always
  type: bool
  sample: true
incident:
  description:
    - The record after the task (in check mode, as it would be). Unchanged when nothing changed.
  returned: success
  type: dict
  contains:
    incident_id:
      description: The incident.
      type: str
      sample: INC-2025-0042
    state:
      description: V(open) or V(resolved).
      type: str
      sample: open
    status:
      description: V(investigating), V(identified), V(monitoring) or V(resolved).
      type: str
      sample: investigating
    title:
      description: Title.
      type: str
      sample: API returns 503 on /health/ready
    summary:
      description: Summary; null when never given.
      type: str
      sample: Readiness fails since 14:30 UTC
    priority:
      description: V(P1) to V(P4); null when never given.
      type: str
      sample: P1
    response_deadline:
      description: When the response is due (ISO 8601 UTC); null without a priority.
      type: str
      sample: "2025-01-15T14:45:00Z"
    impact:
      description: Impact categories.
      type: list
      elements: str
      sample: [customer-facing]
    commander:
      description: Incident commander; null when none is assigned.
      type: str
      sample: ic:maria
    commander_assigned_at:
      description: When the commander was assigned.
      type: str
      sample: "2025-01-15T14:36:10Z"
    acknowledged:
      description: Whether a person has acknowledged the incident.
      type: bool
      sample: true
    acknowledged_at:
      description: When it was acknowledged; null when it is not.
      type: str
      sample: "2025-01-15T14:36:10Z"
    acknowledged_by:
      description: Who acknowledged it (the actor, for example V(awx:alice)).
      type: str
      sample: awx:alice
    auto_acknowledged_at:
      description: When its alerts were acknowledged automatically (triage's silences); null when they were not.
      type: str
      sample: "2025-01-15T14:31:02Z"
    auto_acknowledged_by:
      description: Who ran the automatic acknowledgement (the actor of the triage run).
      type: str
      sample: awx:alice
    detected_at:
      description: Detection time; null when not given.
      type: str
      sample: "2025-01-15T14:30:00Z"
    opened_at:
      description: When the record was opened.
      type: str
      sample: "2025-01-15T14:33:02Z"
    opened_by:
      description: Who opened it - V(awx:<user>), V(rundeck:<user>) or V(local:<os user>).
      type: str
      sample: awx:alice
    references:
      description: Identifiers in other systems.
      type: dict
      sample: {statuspage_incident_id: p31zjtct2jer, silence_ids: [9f2b8a5c-8c1e-4a56-9a3e-3b0c3f2a6a11]}
    notifications:
      description: Notification obligations met, by obligation key, each with C(at), C(by), C(to) and C(note) (O(notified)).
      type: dict
      returned: when an obligation was recorded as met
      sample: {regulator: {at: "2025-01-16T09:00:00Z", by: "awx:dpo", to: "ICO, case 123", note: null}}
    root_cause:
      description: Why it happened (O(root_cause)); null when never given. Who recorded it and when is in the ledger.
      type: str
      sample: A stuck consumer held connections open; the pool was too small to absorb it
    resolution:
      description: How it was resolved; null while open.
      type: str
      sample: Runaway sessions terminated
    resolved_at:
      description: When it was resolved; null while open.
      type: str
      sample: "2025-01-15T15:12:40Z"
    resolved_by:
      description: Who resolved it.
      type: str
      sample: awx:alice
    duration_seconds:
      description: Seconds from detection (or opening) to resolution; null while open.
      type: int
      sample: 2560
    reopened_at:
      description: When it was last reopened; null when never.
      type: str
      sample: null
    reopen_count:
      description: How many times it was reopened.
      type: int
      sample: 0
    revision:
      description: Number of C(incident) entries in the ledger, this change included.
      type: int
      sample: 3
    updated_at:
      description: Time of the last change.
      type: str
      sample: "2025-01-15T14:36:10Z"
    updated_by:
      description: Who made the last change.
      type: str
      sample: awx:alice
obligations:
  description:
    - The notification obligations of the record, derived from its impact categories, priority and detection time by
      the obligation table (O(obligation_policy)), each with C(key), C(title), C(party), C(conditions),
      C(within_hours), C(due_at), C(reason), C(state) (V(open), V(overdue), V(met), V(met_late)), C(seconds_left)
      (negative when overdue; null when met) and C(notified) (C(at), C(by), C(to), C(note); null while open).
  returned: success
  type: list
  elements: dict
  sample: [{key: regulator, title: Regulator (data protection supervisory authority), due_at: "2025-01-18T14:30:00Z",
            state: open, seconds_left: 223200, notified: null}]
changes:
  description: The fields that changed (would change), each with C(before) and C(after); empty when nothing changed.
  returned: success
  type: dict
  sample: {commander: {before: null, after: "ic:maria"}, acknowledged: {before: false, after: true}}
entry:
  description:
    - The ledger entry appended, exactly as stored (fields in C(docs/ledger.md)); C(data) holds C(action), C(actions),
      C(changes), C(record) and C(note).
    - Null when nothing was appended, and in check mode.
  returned: success
  type: dict
  sample: {seq: 7, event: incident, phase: triage, data: {action: assign_commander}}
ledger:
  description: The ledger read - the file path (V(file) backend) or the table name (V(postgres)).
  returned: success
  type: str
  sample: /srv/incidents/INC-2025-0042/ledger.jsonl
backend:
  description: The backend used, V(file) or V(postgres).
  returned: success
  type: str
  sample: file
incident_dir:
  description: The incident's directory under O(root).
  returned: success
  type: str
  sample: /srv/incidents/INC-2025-0042
"""


from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import INCIDENT_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.store import manage_incident
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import controller_module

# Normally the action plugin of the same name does this on the controller; main() runs when the module is
# executed directly on a host (for example by ansible-test).
_MODULE = controller_module(INCIDENT_ARGS, manage_incident, want_diff=True)
argument_spec = _MODULE.argument_spec
main = _MODULE.main


if __name__ == '__main__':
    main()
