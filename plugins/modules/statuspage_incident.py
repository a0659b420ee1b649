# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: statuspage_incident
short_description: Open, update and resolve the Atlassian Statuspage incident of a TRDR Hub incident, idempotently
version_added: 1.0.0
description:
  - Keeps one public Statuspage incident per TRDR Hub incident (O(incident_id)) as requested - opens it, changes its
    status, impact, affected components and posts an update, or resolves it - through the Statuspage REST API v1.
  - "Finding the incident: the Statuspage incident name carries the TRDR Hub id as a tag, C([INC-2025-0042]). The
    module appends it to O(name) (unless O(name) already contains it) and, on every run, lists the page's unresolved
    incidents (C(GET /pages/{page_id}/incidents/unresolved)) and works on the one whose name contains that exact tag.
    A re-run therefore updates the open incident instead of opening a second one. Keep the tag when renaming an
    incident in the Statuspage UI; if several unresolved incidents carry it, the newest is used and a warning names the
    others."
  - "Idempotent: nothing is sent when the incident already has the requested name, status, impact override and
    component statuses and the requested O(body) equals the body of its latest update. Bodies are compared after
    unifying line endings and trimming surrounding whitespace, against the newest update that has a body (a
    status-only update has none), so posting the same body twice does not add a second update."
  - A resolved incident is not reopened. After it is resolved, O(state=resolved) changes nothing, and O(state=present)
    opens a new incident for the same O(incident_id).
author:
  - TRDR Hub SRE (@trdrhub)
options:
  page_id:
    description:
      - Id of the Statuspage page, as in the page's URL in the Statuspage dashboard.
    type: str
    required: true
  api_key:
    description:
      - "Statuspage API key, sent as C(Authorization: OAuth <api_key>). Falls back to E(STATUSPAGE_API_KEY)."
      - Never shown in results or error messages.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the Statuspage REST API v1.
      - Must not contain credentials.
    type: str
    default: https://api.statuspage.io/v1
  incident_id:
    description:
      - The TRDR Hub incident id, for example V(INC-2025-0042) - the key of the Statuspage incident (see above).
      - Letters, digits, C(.), C(_), C(:), C(/) and C(-) only.
    type: str
    required: true
  name:
    description:
      - Title of the Statuspage incident, without the tag; C( [<incident_id>]) is appended.
      - Required when no unresolved incident carries the tag yet (one is opened); when set on later runs the
        incident is renamed if its name differs.
    type: str
  status:
    description:
      - Incident status. Defaults to V(investigating) for a new incident; an existing incident keeps its status when
        this is not set.
      - V(resolved) does the same as O(state=resolved).
    type: str
    choices: [investigating, identified, monitoring, resolved]
  state:
    description:
      - V(present) opens or updates the incident; V(resolved) resolves it (nothing to do when no unresolved incident
        carries the tag).
    type: str
    choices: [present, resolved]
    default: present
  body:
    description:
      - Text of an incident update. Posted when it differs from the body of the latest update (see above); a new
        incident starts with it.
    type: str
  impact_override:
    description:
      - Impact shown on the page, overriding the one Statuspage computes. Compared with the incident's current override.
    type: str
    choices: [none, minor, major, critical]
  components:
    description:
      - "Affected components and the status to set, as C({component_id: status}); status is one of V(operational),
        V(degraded_performance), V(partial_outage), V(major_outage) or V(under_maintenance)."
      - Components are added to the incident's affected components; components not listed are left as they are.
      - Statuses are checked before anything is sent; an unknown component id is refused by Statuspage (in check mode,
        checked against C(GET /pages/{page_id}/components)).
    type: dict
  deliver_notifications:
    description:
      - Whether Statuspage notifies the page's subscribers of the change. Sent with every create and update.
    type: bool
    default: true
  retries:
    description:
      - How many times a request is repeated when Statuspage is rate limiting (C(420), or C(429) with C(Retry-After)),
        answers C(5xx), or cannot be reached, with exponential backoff from O(retry_delay) (at most 30 s between tries).
      - A C(Retry-After) header is honoured; when it asks for more than 60 seconds the module gives up at once and says so.
      - A create or update that may have been applied (C(500), C(502), C(504), timeout) is not simply repeated - the
        module reads the unresolved incidents again and plans again, so a write that did land is not posted twice.
      - V(0) disables retries.
    type: int
    default: 3
extends_documentation_fragment:
  - trdrhub.incident.notify_http
attributes:
  check_mode:
    details:
      - Reads the unresolved incidents (and the page's components when O(components) is set) and reports what would
        be done; creates and updates nothing.
  diff_mode:
    support: full
    details:
      - Shows name, status, impact, component statuses and the latest update body before and after.
notes:
  - The Statuspage API allows about 60 requests a minute per key; a run makes two requests (list, then create or
    update), three in check mode with O(components).
  - An answer larger than 16 MiB (or declaring more) is not read - reading stops there and the task fails saying so.
seealso:
  - name: Statuspage REST API
    description: Incidents and components of the Statuspage REST API v1.
    link: https://developer.statuspage.io/
"""

EXAMPLES = r"""
- name: Tell customers we are investigating
  trdrhub.incident.statuspage_incident:
    page_id: "{{ statuspage_page_id }}"
    api_key: "{{ statuspage_api_key }}"
    incident_id: INC-2025-0042
    name: Delayed document processing
    status: investigating
    impact_override: minor
    body: We are investigating delays in document processing.
    components:
      "{{ statuspage_components.api }}": degraded_performance
  register: statuspage

- name: Cause found (the API key comes from STATUSPAGE_API_KEY)
  trdrhub.incident.statuspage_incident:
    page_id: "{{ statuspage_page_id }}"
    incident_id: INC-2025-0042
    status: identified
    body: A stuck queue consumer delayed processing; workers are being restarted.

- name: Resolve it and bring the component back
  trdrhub.incident.statuspage_incident:
    page_id: "{{ statuspage_page_id }}"
    incident_id: INC-2025-0042
    state: resolved
    body: Processing is back to normal.
    components:
      "{{ statuspage_components.api }}": operational
"""

RETURN = r"""
action:
  description:
    - What was done - V(created), V(updated), V(resolved) or V(none) (already as requested, or nothing to resolve).
    - In check mode, what would be done.
  returned: always
  type: str
  sample: created
incident_id:
  description: The TRDR Hub incident id the Statuspage incident is tagged with.
  returned: always
  type: str
  sample: INC-2025-0042
incident:
  description:
    - The Statuspage incident as it now is (in check mode, as it would be - with a null id for one that would be
      opened). Null when there is no unresolved incident and none was opened.
  returned: always
  type: dict
  contains:
    id:
      description: Statuspage incident id.
      type: str
      sample: p31zjtct2jer
    name:
      description: Name, with the C([incident_id]) tag.
      type: str
      sample: Delayed document processing [INC-2025-0042]
    status:
      description: V(investigating), V(identified), V(monitoring) or V(resolved).
      type: str
      sample: investigating
    impact:
      description: Impact shown on the page.
      type: str
      sample: minor
    impact_override:
      description: Impact override, null when Statuspage computes the impact.
      type: str
      sample: minor
    shortlink:
      description: Short public link to the incident.
      type: str
      sample: https://stspg.io/p31zjt
    created_at:
      description: When the incident was opened.
      type: str
      sample: "2025-01-15T14:30:00.123Z"
    updated_at:
      description: When it last changed.
      type: str
      sample: "2025-01-15T14:45:10.456Z"
    resolved_at:
      description: When it was resolved; null while open.
      type: str
      sample: null
    components:
      description: Affected components with their current status.
      type: list
      elements: dict
      sample: [{"id": "8kbf7d35c070", "name": "API", "status": "degraded_performance"}]
    incident_updates:
      description: The incident's updates, newest first, each with C(id), C(status), C(body) and C(created_at).
      type: list
      elements: dict
      sample: [{"id": "k4yhjvydd4wq", "status": "investigating", "body": "We are investigating.",
                "created_at": "2025-01-15T14:30:00.123Z"}]
    last_body:
      description: Body of the newest update that has one - the body O(body) is compared with.
      type: str
      sample: We are investigating delays in document processing.
requests:
  description: HTTP requests the module made, as C(METHOD /path) (one entry per request, however many retries).
  returned: always
  type: list
  elements: str
  sample: ["GET /v1/pages/kctbh9vrtdwd/incidents/unresolved", "POST /v1/pages/kctbh9vrtdwd/incidents"]
"""

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import REQUESTS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.statuspage import IncidentManager, StatuspageClient, argument_spec


def main() -> None:
    run_module(argument_spec(), lambda module: IncidentManager(module.params, check_mode=module.check_mode, diff=module._diff),
               lambda module, manager: StatuspageClient(module.params), requires=[REQUESTS], error_extra=request_log,
               secret_options=['api_key'])


if __name__ == '__main__':
    main()
