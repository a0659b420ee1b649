# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pagerduty_event
short_description: Trigger, acknowledge or resolve a PagerDuty incident through the Events API v2
version_added: 1.0.0
description:
  - Sends one event to the PagerDuty Events API v2 (C(POST /v2/enqueue)) of the service whose integration key is
    O(routing_key).
  - The incident id is the event's C(dedup_key) (or O(dedup_key) when set), so the trigger, acknowledge and resolve
    sent for one TRDR Hub incident all address the same PagerDuty incident.
  - "Idempotence: the Events API is write-only - it cannot tell whether an incident is open, acknowledged or resolved -
    so the module always sends and always reports C(changed) when it sends. Repeating an event is nevertheless
    harmless: PagerDuty folds a repeated trigger with the same C(dedup_key) into the open incident (one more alert,
    no new page), and acknowledging or resolving twice changes nothing."
  - Because repeating is harmless, the event is retried after C(429) (PagerDuty drops throttled events, about 120 per
    minute per routing key), after a C(5xx) answer and after a lost connection, with exponential backoff.
  - "An event PagerDuty rejects (C(400)) fails with PagerDuty's reasons quoted, for example C(Length of 'routing_key'
    is incorrect (should be 32 characters)) or C(Invalid routing key)."
  - "The event counts as accepted only when PagerDuty answers C(202) with C({\"status\": \"success\", ...}); a C(202)
    with another body (a proxy's page, say) fails the task and names what came back."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  routing_key:
    description:
      - Integration key of the PagerDuty service (Events API v2 integration), 32 characters.
      - Taken from the E(PAGERDUTY_ROUTING_KEY) environment variable when not set.
      - Never shown in results or error messages.
    type: str
    required: true
  event_action:
    description:
      - V(trigger) opens (or adds an alert to) the incident; V(acknowledge) and V(resolve) act on the incident with
        this C(dedup_key).
    type: str
    choices: [trigger, acknowledge, resolve]
    default: trigger
  incident_id:
    description:
      - TRDR Hub incident id, for example V(INC-2025-0042); used as the C(dedup_key) unless O(dedup_key) is set, and
        added to C(custom_details) as C(incident_id) for a trigger.
      - One of O(incident_id) and O(dedup_key) is required.
    type: str
  dedup_key:
    description:
      - Explicit C(dedup_key) (at most 255 characters), for an incident opened by another tool.
    type: str
  summary:
    description:
      - Brief text of the alert, shown as the incident title; at most 1024 characters. Required for V(trigger).
    type: str
  source:
    description:
      - Where the problem is, for example V(trdrhub-api.trdrhub-system) or a host name. Required for V(trigger).
    type: str
  severity:
    description:
      - Severity of the alert; required for V(trigger). TRDR Hub P1 maps to V(critical), P2 to V(error), P3 to
        V(warning).
    type: str
    choices: [critical, error, warning, info]
  component:
    description: Affected part of the system, for example V(queue) or V(notifications).
    type: str
  group:
    description: Logical grouping of components, for example V(lcpilot).
    type: str
  event_class:
    description: Class or type of the event, for example V(QueueLagCritical); sent as C(payload.class).
    type: str
    aliases: [class]
  custom_details:
    description: Free-form details shown with the alert, for example the runbook URL and current metrics.
    type: dict
  timestamp:
    description: When the problem was detected, ISO 8601 (V(2025-01-15T14:30:00Z)); PagerDuty uses the receipt time
      when not set.
    type: str
  api_url:
    description:
      - Base URL of the Events API.
    type: str
    default: https://events.pagerduty.com
extends_documentation_fragment:
  - trdrhub.incident.notify_http
attributes:
  check_mode:
    details:
      - Sends nothing; returns the event that would be sent (RV(event), routing key masked) and reports C(changed).
notes:
  - Only O(summary), O(source), O(severity), O(component), O(group), O(event_class), O(custom_details) and O(timestamp)
    of a trigger are sent; for acknowledge and resolve they are ignored with a warning.
seealso:
  - module: trdrhub.incident.slack_message
  - module: trdrhub.incident.email_notify
  - name: PagerDuty Events API v2
    description: Sending alert events.
    link: https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
"""

EXAMPLES = r"""
- name: Page the on-call engineer for the P1
  trdrhub.incident.pagerduty_event:
    routing_key: "{{ vault_pagerduty_routing_key }}"
    incident_id: INC-2025-0042
    summary: "QueueLagCritical: trdrhub_queue lag above 10 minutes"
    source: trdrhub-worker.trdrhub-system
    severity: critical
    component: queue
    group: lcpilot
    event_class: QueueLagCritical
    custom_details:
      runbook_url: https://runbooks.trdrhub.example/queue-lag
      lag_seconds: 742

- name: Acknowledge it once someone works on it (routing key from PAGERDUTY_ROUTING_KEY)
  trdrhub.incident.pagerduty_event:
    event_action: acknowledge
    incident_id: INC-2025-0042

- name: Resolve it
  trdrhub.incident.pagerduty_event:
    event_action: resolve
    incident_id: INC-2025-0042
"""

RETURN = r"""
event:
  description: The event sent (or, in check mode, that would be sent), with the routing key masked.
  returned: always
  type: dict
  sample:
    routing_key: "********"
    event_action: trigger
    dedup_key: INC-2025-0042
    payload: {"summary": "QueueLagCritical", "source": "trdrhub-worker", "severity": "critical",
              "custom_details": {"incident_id": "INC-2025-0042"}}
dedup_key:
  description: The C(dedup_key) of the incident, as PagerDuty confirmed it (in check mode, as it would be sent).
  returned: always
  type: str
  sample: INC-2025-0042
status:
  description: PagerDuty's C(status) (V(success)); V(not_sent) in check mode.
  returned: always
  type: str
  sample: success
message:
  description: PagerDuty's C(message), for example V(Event processed); null in check mode.
  returned: always
  type: str
  sample: Event processed
attempts:
  description: How many times the event was posted (more than 1 after throttling, a C(5xx) or a lost connection); 0 in
    check mode.
  returned: always
  type: int
  sample: 1
requests:
  description: HTTP requests the module made, as C(METHOD /path), one per attempt.
  returned: always
  type: list
  elements: str
  sample: ["POST /v2/enqueue"]
"""

import typing as t

from ansible.module_utils.basic import env_fallback
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import REQUESTS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import NOTIFY_HTTP_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.pagerduty import (
    ACTIONS,
    DEFAULT_API_URL,
    SEVERITIES,
    PagerDutyClient,
    build_event,
    masked,
)


def argument_spec() -> dict[str, t.Any]:
    spec = dict(NOTIFY_HTTP_ARGS)
    spec.update(
        routing_key={'type': 'str', 'required': True, 'no_log': True, 'fallback': (env_fallback, ['PAGERDUTY_ROUTING_KEY'])},
        event_action={'type': 'str', 'choices': list(ACTIONS), 'default': 'trigger'},
        incident_id={'type': 'str'},
        dedup_key={'type': 'str', 'no_log': False},
        summary={'type': 'str'},
        source={'type': 'str'},
        severity={'type': 'str', 'choices': list(SEVERITIES)},
        component={'type': 'str'},
        group={'type': 'str'},
        event_class={'type': 'str', 'aliases': ['class']},
        custom_details={'type': 'dict'},
        timestamp={'type': 'str'},
        api_url={'type': 'str', 'default': DEFAULT_API_URL},
    )
    return spec


class PagerDutyEvent:
    """The worker: the event built (its warnings kept) before any request; check mode sends nothing."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool) -> None:
        self.event, self.warnings = build_event(params)
        self.check_mode = check_mode

    def run(self, client: t.Any) -> dict[str, t.Any]:
        event = self.event
        result: dict[str, t.Any] = {'changed': True, 'event': masked(event), 'dedup_key': event['dedup_key']}
        if self.check_mode:
            return dict(status='not_sent', message=None, attempts=0, requests=[], **result)
        answer = client.enqueue(event)
        result.update(dedup_key=answer.get('dedup_key') or event['dedup_key'], status=answer.get('status'),
                      message=answer.get('message'), attempts=client.attempts, requests=client.requests)
        return result


def main() -> None:
    run_module(argument_spec(), lambda module: PagerDutyEvent(module.params, module.check_mode),
               lambda module, event: None if module.check_mode else PagerDutyClient(module.params), requires=[REQUESTS],
               error_extra=lambda module, client: dict(request_log(module, client), attempts=client.attempts if client else 0),
               required_one_of=[['incident_id', 'dedup_key']],
               required_if=[('event_action', 'trigger', ('summary', 'source', 'severity'))])


if __name__ == '__main__':
    main()
