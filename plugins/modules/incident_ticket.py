# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: incident_ticket
short_description: Open, update and resolve the Jira issue or ServiceNow incident of a TRDR Hub incident, idempotently
version_added: 1.1.0
description:
  - Keeps one ticket per TRDR Hub incident (O(incident_id)) in Jira Cloud (REST API v3) or ServiceNow (Table API on
    C(incident)) - opens it, changes its summary and status, adds comments (work notes in ServiceNow), links it to
    other Jira issues, and resolves it.
  - "Finding the ticket: in Jira the issue carries the incident id as a label, found with the JQL
    C(labels = \"INC-2025-0042\") through C(GET /rest/api/3/search/jql); in ServiceNow the incident's
    C(correlation_id) is the incident id, found with C(GET /api/now/table/incident?sysparm_query=correlation_id=...).
    A re-run therefore updates the ticket it opened instead of opening a second one."
  - "Idempotent: nothing is sent when the ticket already has the requested summary, status and links, and the
    requested O(comment) (and, in Jira, the O(resolution) comment) is already among its comments or work notes."
  - "Status in Jira: the issue moves through the transition whose target status is the one O(jira_statuses) maps the
    incident status to (by default V(investigating), V(identified) and V(monitoring) to C(In Progress), V(resolved)
    to C(Done)). Status in ServiceNow: C(state) 2 (In Progress) while open, 6 (Resolved) with O(close_code) and
    C(close_notes) (O(resolution)) when resolved."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  system:
    description:
      - The ticket system.
    type: str
    choices: [jira, servicenow]
    required: true
  url:
    description:
      - Base URL of the Jira site (V(https://example.atlassian.net)) or the ServiceNow instance
        (V(https://example.service-now.com)). Must not contain credentials.
    type: str
    required: true
  username:
    description:
      - Jira - the Atlassian account e-mail; ServiceNow - the user name for basic authentication.
    type: str
  api_token:
    description:
      - Jira - the account's API token; ServiceNow - the password. Sent with basic authentication.
      - Never shown in results or error messages.
    type: str
    aliases: [password]
  bearer_token:
    description:
      - ServiceNow only - an OAuth access token, instead of O(username) and O(api_token).
    type: str
  incident_id:
    description:
      - The TRDR Hub incident id, for example V(INC-2025-0042) - the key of the ticket (see above).
      - Letters, digits, C(.), C(_), C(:) and C(-) only.
    type: str
    required: true
  state:
    description:
      - V(present) opens or updates the ticket; V(resolved) resolves it.
    type: str
    choices: [present, resolved]
    default: present
  summary:
    description:
      - Title of the ticket. Required when no ticket carries the incident id yet; a different summary on a later run
        renames the ticket.
    type: str
  description:
    description:
      - Longer text for a new ticket (sent as Atlassian Document Format to Jira). Not changed on later runs.
    type: str
  status:
    description:
      - Incident status the ticket's status follows (see above). V(resolved) does the same as O(state=resolved).
    type: str
    choices: [investigating, identified, monitoring, resolved]
  priority:
    description:
      - ServiceNow - sets C(impact) and C(urgency) (V(P1) 1/1, V(P2) 1/2, V(P3) 2/2, V(P4) 2/3), from which ServiceNow
        computes its priority. Jira - not sent (priority schemes differ per site).
    type: str
    choices: [P1, P2, P3, P4]
  comment:
    description:
      - "A comment (Jira) or work note (ServiceNow), added unless the ticket already has one with the same text, for
        example V(Incident commander: ic:maria)."
    type: str
  resolution:
    description:
      - "How the incident was resolved, with O(state=resolved). ServiceNow - C(close_notes); Jira - a comment
        C(Resolution: <text>)."
    type: str
  project:
    description:
      - Jira project key, for example V(OPS). Required to open an issue; narrows the search by label when set.
    type: str
  issue_type:
    description:
      - Jira issue type of a new issue.
    type: str
    default: Incident
  jira_statuses:
    description:
      - "Jira status name for each incident status, for workflows whose names differ, for example
        C(resolved: Resolved). Merged over the defaults above."
    type: dict
  links:
    description:
      - Jira issues to link the ticket to (C(POST /rest/api/3/issueLink)); a link of the same type to the same issue
        is not added twice.
    type: list
    elements: dict
    suboptions:
      key:
        description: Key of the other issue, for example V(OPS-12).
        type: str
        required: true
      type:
        description: Name of the link type.
        type: str
        default: Relates
  assignment_group:
    description:
      - ServiceNow - the C(assignment_group) (sys_id or name, as the instance accepts it).
    type: str
  close_code:
    description:
      - ServiceNow - the C(close_code) of a resolved incident (a choice of the instance).
    type: str
    default: Solved (Permanently)
  retries:
    description:
      - How many times a request is repeated when the system is rate limiting (C(429), honouring C(Retry-After) up to
        60 seconds) or answers C(503); a read also on other C(5xx) answers and connection errors. V(0) disables retries.
    type: int
    default: 2
extends_documentation_fragment:
  - trdrhub.incident.notify_http
attributes:
  check_mode:
    details:
      - Reads the ticket (search, comments or work notes; the transitions are not read) and reports what would be
        done; writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the ticket's key, summary, status and links (Jira) or state, impact and urgency (ServiceNow) before and
        after.
notes:
  - Jira Cloud answers C(429) with C(Retry-After) when rate limiting; ServiceNow answers C(429) when an instance's
    rate limit rule applies.
seealso:
  - name: Jira Cloud platform REST API v3
    description: Issues, issue search, transitions, comments and issue links.
    link: https://developer.atlassian.com/cloud/jira/platform/rest/v3/
  - name: ServiceNow Table API
    description: Create, read and update records of the incident table.
    link: https://www.servicenow.com/docs/bundle/zurich-api-reference/page/integrate/inbound-rest/concept/c_TableAPI.html
"""

EXAMPLES = r"""
- name: Open the Jira issue of the incident
  trdrhub.incident.incident_ticket:
    system: jira
    url: https://trdrhub.atlassian.net
    username: sre-bot@trdrhub.example
    api_token: "{{ jira_api_token }}"
    project: OPS
    incident_id: INC-2025-0042
    summary: "P1: API returns 503 on /health/ready"
    description: Readiness fails since 14:30 UTC; database checks time out.
    status: investigating
  register: ticket

- name: Record the commander on it
  trdrhub.incident.incident_ticket:
    system: jira
    url: https://trdrhub.atlassian.net
    username: sre-bot@trdrhub.example
    api_token: "{{ jira_api_token }}"
    incident_id: INC-2025-0042
    comment: "Incident commander: ic:maria"

- name: Resolve the ServiceNow incident
  trdrhub.incident.incident_ticket:
    system: servicenow
    url: https://trdrhub.service-now.com
    username: trdrhub.integration
    api_token: "{{ servicenow_password }}"
    incident_id: INC-2025-0042
    state: resolved
    resolution: Runaway sessions terminated; connection pool size raised to 40
"""

RETURN = r"""
action:
  description:
    - What was done - V(created), V(updated), V(resolved) or V(none) (already as requested). In check mode, what
      would be done.
  returned: always
  type: str
  sample: created
incident_id:
  description: The TRDR Hub incident id the ticket carries.
  returned: always
  type: str
  sample: INC-2025-0042
system:
  description: V(jira) or V(servicenow).
  returned: always
  type: str
  sample: jira
ticket:
  description:
    - The ticket as it now is (in check mode, as it would be - with null C(key), C(id) and C(url) for one that would
      be opened). Null when there is no ticket and none was opened.
  returned: always
  type: dict
  contains:
    key:
      description: Jira issue key or ServiceNow incident number.
      type: str
      sample: OPS-17
    id:
      description: Jira issue id or ServiceNow C(sys_id).
      type: str
      sample: "10042"
    url:
      description: Link to the ticket for people.
      type: str
      sample: https://trdrhub.atlassian.net/browse/OPS-17
    summary:
      description: Summary (Jira) or short description (ServiceNow).
      type: str
      sample: "P1: API returns 503 on /health/ready"
    status:
      description: Jira status name, or the name of the ServiceNow state (C(New), C(In Progress), C(Resolved)...).
      type: str
      sample: In Progress
    labels:
      description: Jira only - the issue's labels.
      type: list
      elements: str
      sample: [INC-2025-0042]
    links:
      description: Jira only - linked issues, each with C(key) and C(type).
      type: list
      elements: dict
      sample: [{"key": "OPS-12", "type": "Relates"}]
    state:
      description: ServiceNow only - the C(state) value.
      type: str
      sample: "2"
    impact:
      description: ServiceNow only - C(impact) (1 high - 3 low).
      type: str
      sample: "1"
    urgency:
      description: ServiceNow only - C(urgency) (1 high - 3 low).
      type: str
      sample: "1"
    close_code:
      description: ServiceNow only - C(close_code) of a resolved incident.
      type: str
      sample: Solved (Permanently)
changes:
  description: What was (or in check mode would be) sent, one sentence per write.
  returned: always
  type: list
  elements: str
  sample: ["create a Incident in OPS", "move to In Progress"]
requests:
  description: HTTP requests the module made, as C(METHOD /path) (one entry per request, however many retries).
  returned: always
  type: list
  elements: str
  sample: ["GET /rest/api/3/search/jql", "POST /rest/api/3/issue"]
"""

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import REQUESTS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.jira import Jira, JiraClient
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.servicenow import ServiceNow, ServiceNowClient
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import TicketManager, argument_spec


class Worker(TicketManager):
    """The manager bound to the chosen system; ``client`` makes the matching HTTP client."""

    def __init__(self, module: IncidentModule) -> None:
        params = module.params
        system = Jira(params['url']) if params['system'] == 'jira' else ServiceNow(params['url'])
        super().__init__(params, system, check_mode=module.check_mode, diff=module._diff)

    def client(self) -> JiraClient | ServiceNowClient:
        kind = JiraClient if self.params['system'] == 'jira' else ServiceNowClient
        return kind(self.params)


def main() -> None:
    run_module(argument_spec(), Worker, lambda module, worker: worker.client(), requires=[REQUESTS], error_extra=request_log)


if __name__ == '__main__':
    main()
