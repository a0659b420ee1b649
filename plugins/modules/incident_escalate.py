# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_escalate
short_description: Decide and record the escalation of an incident - the level due now and external escalations
version_added: 1.0.0
description:
  - Reads the incident record from the incident's ledger (as M(trdrhub.incident.incident) does, verifying every entry
    first), compares the time since detection with the escalation schedule of its priority, and returns the level due
    now (RV(due_level)), the level already reached (RV(current_level)), the new escalations with their contacts
    (RV(new_escalations)) and when the next level falls due (RV(next_escalation_at)).
  - "Levels - 1 on-call engineer, 2 senior engineer / team lead, 3 engineering manager, 4 CTO / VP Engineering. The
    schedule is the C(escalation) list of the priority policy of M(trdrhub.incident.incident_assess) (minutes after
    detection) - V(P1) level 2 at 15, level 3 at 30, level 4 at 60; V(P2) level 2 at 60, level 3 at 120; V(P3)
    level 2 at 240; V(P4) none. Change it with O(policy)."
  - "The clock runs from C(detected_at) (else C(opened_at)) until the incident is acknowledged; once acknowledged no
    further level is escalated by time. A resolved incident is never escalated. Level 1 is paged when the incident
    opens, so escalation starts at level 2; levels skipped because the schedule was missed are escalated together."
  - "External escalations - V(cloud_provider), V(vendor), V(legal) (legal / compliance) and V(pr) (PR /
    communications), or categories added in O(external_rules) - are requested with O(external). V(legal) and
    V(pr) are also due without being requested when the record's impact includes C(security) or C(data_loss) (a data
    breach), V(legal) also for C(compliance). V(monitoring) and V(alerting) are the monitoring and alerting vendors."
  - "Specialist teams - the Database Administrator (C(team:dba)) is paged when the record's impact includes
    C(data_integrity) or C(data_loss), the Security Team (C(team:security_team)) when it includes C(security); once
    each, whatever the level, with the contact O(contacts) holds under C(dba) or C(security_team)."
  - "Idempotent: every new escalation is recorded in the ledger as one entry, event C(escalation), its phase following
    the incident's status (C(investigate) while investigating or identified, C(recover) while monitoring), with
    C(data.escalation) V(L2) to V(L4) or C(external:<category>). An escalation already recorded is never returned as
    new again. Each is decided again under the ledger's lock before it is recorded, so two concurrent runs never
    record the same escalation."
  - Escalations recorded earlier whose delivery was not recorded (an C(escalation) entry with C(data.action=notified),
    written by the C(trdrhub.incident.escalate) role after it notified the contacts) are returned in RV(undelivered).
  - Runs on the Ansible controller (an action plugin), whatever host the task targets, reading and writing where the
    ledger callback writes unless the ledger options say otherwise. Contacts are returned and recorded without their
    PagerDuty routing keys.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  incident_id:
    description:
      - The incident, for example V(INC-2025-0042). Its record must exist (opened with M(trdrhub.incident.incident)).
    type: str
    required: true
  now:
    description:
      - The time to decide for, ISO 8601 (V(2025-01-15T15:10:00Z)); a time without offset is UTC. Defaults to the time
        the task runs.
    type: str
  level:
    description:
      - Escalate up to this level now, whatever the schedule says (the incident commander's decision). Levels above
        the one already reached are escalated; V(1) changes nothing.
    type: int
  external:
    description:
      - External categories to bring in - V(cloud_provider), V(vendor), V(monitoring), V(alerting), V(legal), V(pr)
        or a category of O(external_rules). One already recorded is not escalated again.
    type: list
    elements: str
    default: []
  contacts:
    description:
      - "Contacts per level, by the C(who) of the schedule - C(on_call), C(team_lead), C(engineering_manager),
        C(executive) - and per specialist team - C(dba), C(security_team). Each a dict with any of C(name) (the primary),
        C(slack) (Slack member id such as C(U024BE7LH), or a handle), C(email), C(phone), C(secondary),
        C(secondary_phone), C(secondary_email) (the secondary contact), C(pagerduty_routing_key) (Events API v2
        integration key of a PagerDuty service; keep it in a vault) and C(pagerduty_escalation_policy) (the PagerDuty
        escalation policy it reaches, for reference)."
      - A level without a contact is still escalated and recorded; RV(missing_contacts) names it.
    type: dict
    default: {}
  external_contacts:
    description:
      - Contacts per external category, the same fields as O(contacts).
    type: dict
    default: {}
  external_rules:
    description:
      - "Changes to the external categories, by category - C(title), C(conditions) (when to escalate, in words) and
        C(when_impact) (impact categories of the record that make it due without O(external)). New categories may be
        added. For example C({pr: {when_impact: []}}) stops the automatic PR escalation."
    type: dict
    default: {}
  policy:
    description:
      - "Changes to the priority policy table, as O(trdrhub.incident.incident_assess#module:policy) takes them - here its
        C(escalation) lists matter (C({P2: {escalation: [...]}})). Keep it in inventory so every run uses the same."
    type: dict
    default: {}
extends_documentation_fragment:
  - trdrhub.incident.ledger
attributes:
  check_mode:
    details:
      - Reads the ledger and returns what would be escalated; records nothing. RV(entries) is empty.
notes:
  - The module decides and records; it sends nothing. The C(trdrhub.incident.escalate) role notifies the contacts
    (Slack, email, PagerDuty) - see C(docs/escalation.md).
seealso:
  - module: trdrhub.incident.incident
  - module: trdrhub.incident.incident_assess
  - module: trdrhub.incident.ledger_record
"""

EXAMPLES = r"""
- name: Escalate what is due now
  trdrhub.incident.incident_escalate:
    incident_id: INC-2025-0042
    contacts: "{{ trdrhub_escalation_contacts }}"
    external_contacts: "{{ trdrhub_escalation_external_contacts }}"
  register: escalation

- name: Show who is brought in
  ansible.builtin.debug:
    msg: "{{ escalation.new_escalations | map(attribute='message') | list }}"

- name: A data breach - bring in legal and PR, and the engineering manager now
  trdrhub.incident.incident_escalate:
    incident_id: INC-2025-0042
    level: 3
    external: [legal, pr]

- name: What would be escalated at 15:30 UTC, recording nothing
  trdrhub.incident.incident_escalate:
    incident_id: INC-2025-0042
    now: "2025-01-15T15:30:00Z"
  check_mode: true
"""

RETURN = r"""
changed:
  description: V(true) when an escalation was recorded (in check mode - would be).
  returned: always
  type: bool
  sample: true
due_level:
  description: The level the incident must have reached now (1 to 4) - by the schedule, or O(level) when higher.
  returned: success
  type: int
  sample: 3
current_level:
  description: The highest level recorded before this task (1 when none was).
  returned: success
  type: int
  sample: 1
reached_level:
  description: The highest level after this task's escalations.
  returned: success
  type: int
  sample: 3
next_level:
  description: The next level of the schedule; null when none is left, or the clock stopped (acknowledged, resolved).
  returned: success
  type: int
  sample: 4
next_escalation_at:
  description: When RV(next_level) falls due, ISO 8601 UTC; null with it.
  returned: success
  type: str
  sample: "2025-01-15T15:30:00Z"
new_escalations:
  description: The escalations this task recorded (in check mode - would record), in order, levels first.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: V(L2) to V(L4), or C(external:<category>); the C(data.escalation) of the ledger entry.
      type: str
      sample: L2
    kind:
      description: V(level), V(team) (a specialist team paged for the impact) or V(external).
      type: str
      sample: level
    level:
      description: The level; null for an external escalation.
      type: int
      sample: 2
    who:
      description: The role of the level in the schedule; null for an external escalation.
      type: str
      sample: team_lead
    category:
      description: The external category; null for a level.
      type: str
      sample: null
    title:
      description: The level's or category's title.
      type: str
      sample: Senior engineer / team lead
    due_at:
      description: When it fell due, ISO 8601 UTC.
      type: str
      sample: "2025-01-15T14:45:00Z"
    reason:
      description: Why it is due.
      type: str
      sample: P1 not acknowledged 15 min after detection
    contact:
      description:
        - The contact (C(name), C(slack), C(email), C(phone), C(pagerduty_escalation_policy)) and C(pagerduty), whether
          a routing key is configured. The routing key itself is never returned. Null without a contact.
      type: dict
      sample: {name: Dana Lee, slack: U024BE7LH, email: dana@trdrhub.example, pagerduty: true}
    contact_ref:
      description: The key of the contact in O(contacts) or O(external_contacts).
      type: str
      sample: team_lead
    message:
      description: One line saying who is brought in and why, as recorded in the ledger.
      type: str
      sample: "INC-2025-0042 (P1, investigating) escalated to level 2 (Senior engineer / team lead: Dana Lee): ..."
    seq:
      description: Sequence number of the ledger entry; absent in check mode.
      type: int
      sample: 7
undelivered:
  description: Escalations recorded earlier whose notification was never recorded, with today's contacts; the same keys.
  returned: success
  type: list
  elements: dict
  sample: []
notify:
  description: RV(new_escalations) followed by RV(undelivered) - whose contacts are to be notified now.
  returned: success
  type: list
  elements: dict
  sample: []
escalated:
  description: The escalations recorded before this task (C(key), C(kind), C(level), C(category), C(recorded_at), C(seq)).
  returned: success
  type: list
  elements: dict
  sample: [{key: L2, kind: level, level: 2, recorded_at: "2025-01-15T14:46:02Z", seq: 5}]
schedule:
  description: The escalation schedule of the priority, each step with C(level), C(who), C(title), C(after_minutes) and C(at).
  returned: success
  type: list
  elements: dict
  sample: [{level: 2, who: team_lead, title: Senior engineer / team lead, after_minutes: 15, at: "2025-01-15T14:45:00Z"}]
reasons:
  description: Why the level is what it is.
  returned: success
  type: list
  elements: str
  sample: ["P1 not acknowledged 40 min after detection: level 3 is due"]
missing_contacts:
  description: Escalations to notify that have no contact configured.
  returned: success
  type: list
  elements: str
  sample: ["no contact for CTO / VP Engineering (contacts.executive)"]
phase:
  description: The ledger phase of the escalation entries, following the incident's status.
  returned: success
  type: str
  sample: investigate
incident:
  description: The incident record read (fields as RV(trdrhub.incident.incident#module:incident)).
  returned: success
  type: dict
  sample: {incident_id: INC-2025-0042, priority: P1, status: investigating, acknowledged: false}
entries:
  description: The ledger entries appended, exactly as stored; empty in check mode.
  returned: success
  type: list
  elements: dict
  sample: []
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
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._incident.escalation_store import ESCALATE_ARGS, manage_escalation
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import controller_module


def hide_routing_keys(module: t.Any) -> None:
    """The contacts' PagerDuty routing keys: never in the result or its invocation."""
    for group in ('contacts', 'external_contacts'):
        for contact in (module.params[group] or {}).values():
            if isinstance(contact, dict) and contact.get('pagerduty_routing_key'):
                module.no_log_values.add(str(contact['pagerduty_routing_key']))


# Normally the action plugin of the same name does this on the controller; main() runs when the module is
# executed directly on a host (for example by ansible-test).
_MODULE = controller_module(ESCALATE_ARGS, manage_escalation, prepare=hide_routing_keys)
argument_spec = _MODULE.argument_spec
main = _MODULE.main


if __name__ == '__main__':
    main()
