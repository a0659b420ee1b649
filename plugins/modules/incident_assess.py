# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_assess
short_description: Assess an incident's priority (P1-P4), response deadline, escalation and communication duties
version_added: 1.0.0
description:
  - Applies the TRDR Hub runbook's priority matrix to what is known about an incident - firing alerts, health check
    results and the responder's judgement of impact - and returns the priority with the reasons for it, the response
    deadline, the escalation schedule, who must be notified and how often updates are due.
  - "The matrix - V(P1) Critical: complete outage, data loss, security breach, customer-facing service down, respond
    within 15 minutes. V(P2) High: major degradation, customer-facing partial, data integrity at risk, 1 hour. V(P3)
    Medium: minor degradation, internal impact, 4 hours. V(P4) Low: cosmetic, no customer impact, 1 business day."
  - "Signals, the highest wins - every firing alert counts with the priority its C(severity) label has in the
    severity table (V(P1) to V(P4) as themselves, C(critical) V(P1), C(warning) V(P3); C(info) and C(none), such as
    kube-prometheus' always-firing C(Watchdog), are ignored); silenced, inhibited or resolved alerts and alerts the
    table ignores are listed in RV(ignored) and do not count. A firing alert whose label the table does not know is
    listed in RV(findings) and does not count; the assessment goes on. When every health endpoint
    fails the service is down - V(P1), and so it is when an endpoint's JSON answer reports a critical dependency down
    (C(checks.database.status) neither C(ok) nor C(degraded), as TRDR Hub's C(/health/ready) answers when the database
    is down while the process still answers C(/healthz)); a failing C(/healthz), C(/health/ready) or C(/health/live) makes it at least
    V(P2), any other failing endpoint (for example C(/health/db-schema)) V(P3); C(healthy=false) without a failing
    endpoint (for example an expired TLS certificate) V(P2). O(impact) and O(scope) follow the impact table below. With no signal at all the priority is V(P4)."
  - "Impact table (scope all / some / none / not given) - C(customer-facing) P1/P2/P3/P2; C(data_loss) and
    C(security) always P1; C(data_integrity) and C(compliance) always P2; C(internal) always P3; C(cosmetic) always P4."
  - "Default policy - response P1 15 min, P2 60 min, P3 240 min, P4 1440 min counted on business days only.
    Escalation (minutes after detection) - P1 level 1 on-call at 0, level 2 senior engineer / team lead at 15, level 3
    engineering manager at 30, level 4 CTO / VP Engineering at 60; P2 on-call at 0, team lead at 60, engineering
    manager at 120; P3 on-call at 0, team lead at 240; P4 none. Notify - P1 C(on_call), C(incident_commander),
    C(engineering_manager), C(status_page), C(customers); P2 C(on_call), C(team_lead), C(status_page); P3 C(on_call),
    C(team_channel); P4 C(ticket). Updates (internal / customers) - P1 every 15 / 30 min, P2 30 / 60 min, P3 120 min
    / none, P4 none."
  - Pure computation on the inputs; it contacts nothing and changes nothing, so it can run on the controller
    (C(delegate_to) V(localhost)) or on any host. The filters P(trdrhub.incident.incident_priority#filter) and
    P(trdrhub.incident.response_deadline#filter) give the same answers inside templates.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  alerts:
    description:
      - Alerts as the Alertmanager API v2 returns them (C(GET /api/v2/alerts)), for example
        RV(trdrhub.incident.alertmanager_alerts_info#module:alerts). Each needs C(labels.severity);
        C(labels.alertname) names it in the reasons.
      - An alert counts when C(status.state) is V(active) or V(unprocessed) (or a plain C(status) of V(firing), as in
        webhook payloads) and it is neither silenced nor inhibited.
      - A firing alert whose severity the policy's C(severity_map) does not classify is reported in RV(findings)
        and as a warning, and does not count.
    type: list
    elements: dict
    default: []
  health:
    description:
      - Health check results, as returned by M(trdrhub.incident.http_health_info) - a dict with C(healthy) (bool) and
        C(endpoints), a list (or a dict by name) of results with C(url) or C(path), C(ok) and C(status) (HTTP status;
        null or V(0) when the endpoint did not answer), optionally C(error) and C(failed_checks) for the reasons.
        C(reachable=false) marks an endpoint that did not answer explicitly.
      - Input that is not such a result (C(endpoints) that is not a list or dict of results with a boolean C(ok), a
        C(healthy) that is not a boolean, neither C(healthy) nor C(endpoints)) fails the module. A probe that gave no
        endpoint result (a failed or skipped M(trdrhub.incident.http_health_info) task, registered) means the
        health is unknown - reported in RV(findings), never read as healthy.
    type: dict
  impact:
    description:
      - The responder's impact categories - V(customer-facing), V(internal), V(data_integrity), V(data_loss),
        V(security), V(compliance) or V(cosmetic), or a category added in O(policy). C(-) and C(_) are interchangeable.
      - When omitted but O(scope) is V(all) or V(some), the impact is V(customer-facing).
    type: list
    elements: str
  scope:
    description:
      - Customers affected - V(all), V(some) or V(none). Grades the V(customer-facing) impact.
    type: str
    choices: [all, some, none]
  override:
    description:
      - Set the priority by hand. The assessed priority and the reason stay in the result (RV(assessed_priority),
        RV(reasons)).
    type: dict
    suboptions:
      priority:
        description: The priority to use.
        type: str
        required: true
        choices: [P1, P2, P3, P4]
      reason:
        description: Why - recorded in RV(reasons) and RV(override).
        type: str
        required: true
  detected_at:
    description:
      - When the incident was detected, ISO 8601 (C(2025-01-15T14:30:00Z)); a time without offset is UTC.
      - Defaults to the time the module runs.
    type: str
  policy:
    description:
      - "Changes to the default policy table (see the description), merged over it. Keys C(P1) to C(P4) take a dict
        with any of C(label), C(response_minutes), C(business_days_only), C(escalation) (a list of C(level),
        C(after_minutes), C(who), C(title)), C(notify) (a list), C(update_internal_minutes) and
        C(update_customer_minutes) (null for none); C(severity_map) maps alert severity labels to priorities or
        to V(ignore) (C({page: P1, debug: ignore}); the default table is in the description); C(impact) adds or changes categories
        (C({payments: {all: P1, some: P1, none: P2, unknown: P1}}));
        C(critical_endpoints) replaces the list of endpoint paths that make a failure at least V(P2);
        C(critical_dependencies) replaces the list of health checks (default C([database])) whose failure is V(P1)."
      - Lists are replaced, not merged. Keep the table in inventory (C(group_vars)) so that every run uses the same.
    type: dict
    default: {}
extends_documentation_fragment:
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - The module only computes, so it runs unchanged in check mode.
notes:
  - "The P4 target of one business day skips Saturday and Sunday in UTC - an incident detected on Friday at 14:00 is
    due on Monday at 14:00, one detected on Saturday at 10:00 on Tuesday at 00:00 (the clock starts on Monday). Public
    holidays are not known to the module; set O(override) or a policy when they matter."
  - Escalation and update times of a priority with C(business_days_only) are counted the same way.
seealso:
  - module: trdrhub.incident.alertmanager_alerts_info
  - module: trdrhub.incident.http_health_info
  - plugin: trdrhub.incident.incident_priority
    plugin_type: filter
  - plugin: trdrhub.incident.response_deadline
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Assess the incident from live signals
  trdrhub.incident.incident_assess:
    alerts: "{{ alertmanager.alerts }}"          # registered from trdrhub.incident.alertmanager_alerts_info
    health: "{{ api_health }}"                   # registered from trdrhub.incident.http_health_info
    impact: customer-facing
    scope: some
  delegate_to: localhost
  register: assessment

- name: Tell the responder
  ansible.builtin.debug:
    msg: >-
      {{ assessment.priority }} ({{ assessment.label }}): respond by {{ assessment.response_deadline }};
      {{ assessment.reasons | join('; ') }}

- name: A security incident reported by a customer, detected earlier
  trdrhub.incident.incident_assess:
    impact: [security]
    detected_at: "2025-01-15T14:30:00Z"
  register: security

- name: Raise the priority by hand, with a reason that is kept
  trdrhub.incident.incident_assess:
    alerts: "{{ alertmanager.alerts }}"
    override:
      priority: P1
      reason: Largest customer escalated to the CEO
    policy: "{{ trdrhub_incident_policy | default({}) }}"   # e.g. {P2: {response_minutes: 30}, severity_map: {warning: P2}}
"""

RETURN = r"""
priority:
  description: The priority, V(P1) to V(P4) - the override when one is given, else RV(assessed_priority).
  returned: always
  type: str
  sample: P1
label:
  description: The priority's name in the policy.
  returned: always
  type: str
  sample: Critical
assessed_priority:
  description: The priority the signals give, before any override.
  returned: always
  type: str
  sample: P1
overridden:
  description: Whether O(override) set the priority.
  returned: always
  type: bool
  sample: false
override:
  description: The override (C(priority), C(reason)), null without one.
  returned: always
  type: dict
  sample: null
reasons:
  description: Human-readable reasons, the override first, then the signals from the most to the least severe.
  returned: always
  type: list
  elements: str
  sample: ["alert QueueLagCritical (severity P1, component queue) is firing -> P1",
           "critical health endpoint https://api.trdrhub.example/health/ready (HTTP 503) is failing -> P2"]
signals:
  description:
    - The signals that counted, most severe first, each with C(source) (V(alert), V(health) or V(impact)), C(priority)
      and C(reason); an alert's signal also has its C(alertname) and C(fingerprint).
  returned: always
  type: list
  elements: dict
  sample: [{"source": "alert", "priority": "P1", "alertname": "QueueLagCritical", "fingerprint": "4f2a9c0e1b7d3a56",
            "reason": "alert QueueLagCritical (severity P1, component queue) is firing"}]
ignored:
  description: Alerts that did not count, and why (silenced, inhibited, resolved, or ignored by the severity table).
  returned: always
  type: list
  elements: str
  sample: ["alert AllWorkersDown (severity P1) is suppressed: not counted",
           "alert Watchdog (severity none) is ignored by policy.severity_map: not counted"]
findings:
  description:
    - Inputs the assessment could not use - firing alerts whose severity the table does not classify, a health
      probe that gave no result. They do not count; each is also a warning. Map a label in the policy's
      C(severity_map) to make it count or to ignore it.
  returned: always
  type: list
  elements: str
  sample: ["alert DiskAlmostFull is firing with severity label 'page', which policy.severity_map does not classify:
           not counted (map it to a priority or to ignore)"]
detected_at:
  description: Detection time used, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2025-01-15T14:30:00Z"
response_minutes:
  description: The response target of the priority in minutes (business minutes when RV(business_days_only)).
  returned: always
  type: int
  sample: 15
business_days_only:
  description: Whether Saturday and Sunday are left out of the priority's clock (P4 by default).
  returned: always
  type: bool
  sample: false
response_deadline:
  description: When the response is due, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2025-01-15T14:45:00Z"
escalation:
  description: Escalation schedule of the priority, empty for V(P4).
  returned: always
  type: list
  elements: dict
  contains:
    level:
      description: Escalation level, 1 (on-call) to 4 (CTO / VP Engineering).
      type: int
      sample: 2
    who:
      description: Role to page.
      type: str
      sample: team_lead
    title:
      description: The role in words.
      type: str
      sample: Senior engineer / team lead
    after_minutes:
      description: Minutes after detection.
      type: int
      sample: 15
    at:
      description: When, ISO 8601 UTC.
      type: str
      sample: "2025-01-15T14:45:00Z"
notify:
  description: Who must be notified, as role names of the policy.
  returned: always
  type: list
  elements: str
  sample: [on_call, incident_commander, engineering_manager, status_page, customers]
update_cadence:
  description: How often status updates are due.
  returned: always
  type: dict
  contains:
    internal_minutes:
      description: Minutes between internal updates; null for none.
      type: int
      sample: 15
    customer_minutes:
      description: Minutes between customer updates (status page); null for none.
      type: int
      sample: 30
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Call, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import PRIORITIES, SCOPES, assess


def argument_spec() -> dict[str, t.Any]:
    return {
        'alerts': {'type': 'list', 'elements': 'dict', 'default': []},
        'health': {'type': 'dict'},
        'impact': {'type': 'list', 'elements': 'str'},
        'scope': {'type': 'str', 'choices': list(SCOPES)},
        'override': {'type': 'dict', 'options': {
            'priority': {'type': 'str', 'required': True, 'choices': list(PRIORITIES)},
            'reason': {'type': 'str', 'required': True},
        }},
        'detected_at': {'type': 'str'},
        'policy': {'type': 'dict', 'default': {}},
    }


def assessment(module: IncidentModule) -> dict[str, t.Any]:
    params = module.params
    result = assess(alerts=params['alerts'], health=params['health'], impact=params['impact'], scope=params['scope'],
                    override=params['override'], detected_at=params['detected_at'], policy=params['policy'])
    for finding in result['findings']:
        module.warn(finding)
    return dict(changed=False, **result)


def main() -> None:
    run_module(argument_spec(), lambda module: Call(assessment, module))


if __name__ == '__main__':
    main()
