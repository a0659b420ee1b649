# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alertmanager_alerts_info
short_description: List Prometheus Alertmanager alerts with severity counts and the firing P1 alerts
version_added: 1.0.0
description:
  - Reads C(GET /api/v2/alerts) of a Prometheus Alertmanager, optionally filtered by state, label matchers and
    receiver, and returns the alerts with what an incident responder asks first - how many per severity, how many
    firing or suppressed, and which P1 alerts are firing.
  - Speaks Alertmanager API v2 only. The runbook's C(/api/v1/alerts) is gone since Alertmanager 0.27.0 (it answers
    C(410)); a server that does not serve API v2 is reported as such.
  - Label matchers are validated before anything is sent; a bad one is reported by itself.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  url:
    description:
      - Base URL of Alertmanager, for example V(http://alertmanager:9093).
      - May include a path prefix when Alertmanager runs behind a reverse proxy or with C(--web.route-prefix), for
        example V(https://ops.example.com/alertmanager); C(/api/v2/...) is appended to it.
      - Must not contain credentials; use O(url_username) and O(url_password) or O(bearer_token).
    type: str
    required: true
  active:
    description:
      - Include active (firing, not suppressed) alerts. When omitted, Alertmanager's default (V(true)) applies.
    type: bool
  silenced:
    description:
      - Include silenced alerts. When omitted, Alertmanager's default (V(true)) applies.
    type: bool
  inhibited:
    description:
      - Include inhibited alerts. When omitted, Alertmanager's default (V(true)) applies.
    type: bool
  unprocessed:
    description:
      - Include alerts Alertmanager has received but not yet processed. When omitted, Alertmanager's default (V(true))
        applies.
    type: bool
  filter:
    description:
      - Label matchers every returned alert must satisfy, in Alertmanager's syntax - C(<label><op>"<value>") with
        C(op) one of C(=), C(!=), C(=~) (regular expression, anchored) and C(!~).
      - For example V(severity="P1"), V(alertname=~"Queue.*") or V(component!="reports").
    type: list
    elements: str
    default: []
  receiver:
    description:
      - Only alerts routed to a receiver whose name matches this regular expression (anchored).
    type: str
  p1_alertnames:
    description:
      - Alert names that count as P1 in RV(firing_p1) even without a C(severity="P1") label.
      - Defaults to TRDR Hub's P1 rules.
    type: list
    elements: str
    default: [QueueLagCritical, AllWorkersDown, NotificationDeliveryCompleteFailure]
extends_documentation_fragment:
  - trdrhub.incident.http_api.alertmanager
notes:
  - TRDR Hub's Prometheus rules label alerts with C(severity) V(P1), V(P2) or V(P3); alerts without that label are
    counted as V(none) in RV(counts_by_severity).
seealso:
  - module: trdrhub.incident.alertmanager_silence
  - name: Alertmanager API v2 specification
    description: The OpenAPI definition of the endpoints used here.
    link: https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml
"""

EXAMPLES = r"""
- name: What is firing right now
  trdrhub.incident.alertmanager_alerts_info:
    url: http://alertmanager.monitoring:9093
    silenced: false
    inhibited: false
  register: am

- name: Page summary
  ansible.builtin.debug:
    msg: "{{ am.counts_by_severity.P1 }} P1 alert(s); firing: {{ am.firing_p1 | join(', ') }}"

- name: Queue alerts of the notifications component, through an authenticating proxy
  trdrhub.incident.alertmanager_alerts_info:
    url: https://ops.trdrhub.example/alertmanager
    url_username: oncall
    url_password: "{{ vault_alertmanager_password }}"
    filter:
      - alertname=~"Queue.*"
      - component="notifications"
  register: queue_alerts
"""

RETURN = r"""
alerts:
  description: The matching alerts, P1 first, then by start time.
  returned: always
  type: list
  elements: dict
  contains:
    labels:
      description: The alert's labels.
      type: dict
      sample: {"alertname": "QueueLagCritical", "severity": "P1", "component": "queue", "service": "lcpilot"}
    annotations:
      description: The alert's annotations, for example C(runbook_url).
      type: dict
      sample: {"runbook_url": "https://runbooks.trdrhub.example/queue-lag"}
    startsAt:
      description: When the alert started firing (RFC 3339).
      type: str
      sample: "2025-01-15T14:25:40.118Z"
    endsAt:
      description: When the alert resolves unless it is sent again (RFC 3339).
      type: str
      sample: "2025-01-15T14:35:40.118Z"
    updatedAt:
      description: When Alertmanager last received the alert (RFC 3339).
      type: str
      sample: "2025-01-15T14:30:40.118Z"
    fingerprint:
      description: Alertmanager's identifier of the label set.
      type: str
      sample: 1daa10365c329f30
    generatorURL:
      description: Link to the expression that produced the alert, when the sender set one.
      type: str
      sample: "http://prometheus:9090/graph?g0.expr=..."
    receivers:
      description: Names of the receivers the alert is routed to.
      type: list
      elements: str
      sample: [pagerduty-p1]
    status:
      description: Alertmanager's view of the alert.
      type: dict
      contains:
        state:
          description: V(active) (firing, notifications go out), V(suppressed) (silenced or inhibited) or V(unprocessed).
          type: str
          sample: active
        silencedBy:
          description: Ids of the silences muting the alert.
          type: list
          elements: str
          sample: []
        inhibitedBy:
          description: Fingerprints of the alerts inhibiting it.
          type: list
          elements: str
          sample: []
count:
  description: Number of RV(alerts).
  returned: always
  type: int
  sample: 3
counts_by_severity:
  description:
    - Alerts per C(severity) label. V(P1), V(P2), V(P3) and V(none) (no severity label) are always present; other
      severities appear under their own name.
  returned: always
  type: dict
  sample: {"P1": 1, "P2": 2, "P3": 0, "none": 0}
counts_by_state:
  description: Alerts per RV(alerts[].status.state); V(active), V(suppressed) and V(unprocessed) are always present.
  returned: always
  type: dict
  sample: {"active": 2, "suppressed": 1, "unprocessed": 0}
firing_p1:
  description:
    - Sorted names of the firing (V(active), not suppressed) alerts that are P1 - a C(severity="P1") label, or a name
      listed in O(p1_alertnames).
  returned: always
  type: list
  elements: str
  sample: [QueueLagCritical]
outside_query:
  description:
    - Firing alerts the query left out, when O(filter), O(receiver) or a state option narrowed it; null otherwise.
    - Read with a second request for every firing alert, so a narrow query never hides a firing P1 silently. When a
      firing P1 is outside the query, the module warns and names it.
  returned: always
  type: dict
  contains:
    count:
      description: Number of firing alerts that the query did not return.
      type: int
      sample: 3
    firing_p1:
      description: Names of the firing P1 alerts among them (the rule of RV(firing_p1)).
      type: list
      elements: str
      sample: [AllWorkersDown]
requests:
  description: HTTP requests the module made, as C(METHOD /path), without query strings.
  returned: always
  type: list
  elements: str
  sample: ["GET /api/v2/alerts"]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._alertmanager import AlertmanagerClient, check_regex, matcher_text, parse_matcher
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HTTP_API_ARGS, HTTP_API_CONSTRAINTS, REQUESTS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, request_log, run_module

SEVERITIES = ('P1', 'P2', 'P3')
STATES = ('active', 'suppressed', 'unprocessed')
STATE_FILTERS = ('active', 'silenced', 'inhibited', 'unprocessed')
P1_ALERTNAMES = ('QueueLagCritical', 'AllWorkersDown', 'NotificationDeliveryCompleteFailure')


def argument_spec() -> dict[str, t.Any]:
    spec = dict(HTTP_API_ARGS)
    spec.update(
        url={'type': 'str', 'required': True},
        active={'type': 'bool'},
        silenced={'type': 'bool'},
        inhibited={'type': 'bool'},
        unprocessed={'type': 'bool'},
        filter={'type': 'list', 'elements': 'str', 'default': []},
        receiver={'type': 'str'},
        p1_alertnames={'type': 'list', 'elements': 'str', 'default': list(P1_ALERTNAMES)},
    )
    return spec


def build_query(params: dict[str, t.Any]) -> list[tuple[str, str]]:
    """Query parameters; matchers are re-serialised so what is sent is exactly what was validated."""
    query = [(name, 'true' if params[name] else 'false') for name in STATE_FILTERS if params.get(name) is not None]
    query += [('filter', matcher_text(parse_matcher(text))) for text in params.get('filter') or []]
    if params.get('receiver'):
        check_regex(params['receiver'], 'receiver')
        query.append(('receiver', params['receiver']))
    return query


def alert_view(alert: dict[str, t.Any]) -> dict[str, t.Any]:
    status = alert.get('status') or {}
    return {
        'labels': alert.get('labels') or {},
        'annotations': alert.get('annotations') or {},
        'startsAt': alert.get('startsAt'),
        'endsAt': alert.get('endsAt'),
        'updatedAt': alert.get('updatedAt'),
        'fingerprint': alert.get('fingerprint'),
        'generatorURL': alert.get('generatorURL'),
        'receivers': [r.get('name') if isinstance(r, dict) else r for r in alert.get('receivers') or []],
        'status': {'state': status.get('state') or 'unknown', 'silencedBy': status.get('silencedBy') or [],
                   'inhibitedBy': status.get('inhibitedBy') or []},
    }


def _order(alert: dict[str, t.Any]) -> tuple[int, str, str]:
    severity = str(alert['labels'].get('severity', ''))
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return rank, str(alert.get('startsAt') or ''), str(alert['labels'].get('alertname', ''))


def summarize(alerts: list[dict[str, t.Any]], p1_alertnames: t.Iterable[str] = P1_ALERTNAMES) -> dict[str, t.Any]:
    """Alerts sorted, plus the counts and the firing P1 names."""
    views = sorted((alert_view(a) for a in alerts), key=_order)
    by_severity = dict.fromkeys(SEVERITIES + ('none',), 0)
    by_state = dict.fromkeys(STATES, 0)
    p1_names, firing = set(p1_alertnames), set()
    for alert in views:
        severity = alert['labels'].get('severity')
        key = str(severity) if severity not in (None, '') else 'none'
        by_severity[key] = by_severity.get(key, 0) + 1
        state = alert['status']['state']
        by_state[state] = by_state.get(state, 0) + 1
        name = alert['labels'].get('alertname')
        if state == 'active' and (severity == 'P1' or name in p1_names):
            firing.add(str(name or alert['fingerprint']))
    return {'alerts': views, 'count': len(views), 'counts_by_severity': by_severity, 'counts_by_state': by_state,
            'firing_p1': sorted(firing)}


FIRING_QUERY = [('active', 'true'), ('silenced', 'false'), ('inhibited', 'false'), ('unprocessed', 'false')]


def narrows(params: dict[str, t.Any]) -> bool:
    """True when the query can leave out a firing alert (a matcher, a receiver, or active=false)."""
    return bool(params.get('filter') or params.get('receiver') or params.get('active') is False)


def outside_query(params: dict[str, t.Any], client: AlertmanagerClient,
                  returned: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """Firing alerts a narrowed query did not return: a filter must not hide a firing P1."""
    if not narrows(params):
        return None
    seen = {alert.get('fingerprint') for alert in returned}
    others = [a for a in client.alerts(FIRING_QUERY) if a.get('fingerprint') not in seen]
    summary = summarize(others, params.get('p1_alertnames') or [])
    return {'count': summary['count'], 'firing_p1': summary['firing_p1']}


def alerts_info(params: dict[str, t.Any], client: AlertmanagerClient) -> dict[str, t.Any]:
    query = build_query(params)
    result = summarize(client.alerts(query), params.get('p1_alertnames') or [])
    outside = outside_query(params, client, result['alerts'])
    warnings = []
    if outside and outside['firing_p1']:
        warnings.append(f"{len(outside['firing_p1'])} firing P1 alert(s) are outside the query (filter, receiver or "
                        f"state options) and not in the result: {', '.join(outside['firing_p1'])}")
    return dict(changed=False, requests=client.requests, outside_query=outside, warnings=warnings, **result)


class AlertsInfo(Worker):
    """The worker: matchers checked when built (before any connection), the alerts read when run."""

    def check(self) -> None:
        build_query(self.params)

    def run(self, client: t.Any) -> dict[str, t.Any]:
        result = alerts_info(self.params, client)
        self.warnings = result.pop('warnings')
        return result


def main() -> None:
    run_module(argument_spec(), lambda module: AlertsInfo(module.params), lambda module, worker: AlertmanagerClient(module.params),
               requires=[REQUESTS], error_extra=request_log, **HTTP_API_CONSTRAINTS)


if __name__ == '__main__':
    main()
