# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: slack_message
short_description: Post an incident message to Slack through an incoming webhook
version_added: 1.0.0
description:
  - Posts one message (O(text) and/or Block Kit O(blocks)) to the channel of a Slack incoming webhook.
  - With O(incident_id) the text starts with C([<incident_id>]) (unless it already contains the id), so every message
    of an incident can be found with Slack search.
  - Slack allows about one message per second per webhook; a C(429) is retried after the C(Retry-After) Slack sends,
    and so is a C(503). Other C(5xx) answers are not retried - Slack may have posted the message, and a retry could
    post it twice.
  - Every refusal fails with Slack's answer code explained, for example C(403 invalid_token) (the URL was revoked),
    C(404 no_service), C(410 channel_is_archived), C(400 no_text). The webhook URL is never shown, only
    C(https://hooks.slack.com/services/********).
  - The message counts as sent only when the webhook answers C(200) with the body C(ok). A C(200) with any other body
    (a web server's or proxy's page, JSON from a gateway) is not a delivered message - the task fails and names what
    came back.
  - "Incoming webhooks cannot reply in a thread, edit or delete a message, or choose the channel: a webhook posts a new
    message to the one channel chosen when it was created. Threaded incident updates need the Slack Web API
    (C(chat.postMessage) with C(thread_ts) and a bot token), which this module does not use."
  - "Not idempotent: Slack has no way to tell whether a message was already posted, so every run posts again and
    reports C(changed)."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  webhook_url:
    description:
      - The incoming webhook URL, C(https://hooks.slack.com/services/T.../B.../...). It is a secret - anyone with it
        can post - so it is never shown in results or error messages.
      - Taken from the E(SLACK_WEBHOOK_URL) environment variable when not set.
    type: str
    required: true
  text:
    description:
      - Message text (Slack C(mrkdwn)). With O(blocks) it is the notification and accessibility fallback.
      - One of O(text) and O(blocks) is required.
    type: str
  blocks:
    description:
      - Block Kit blocks, each a dict with a C(type), for example a C(section) with C(mrkdwn) text; see the examples.
    type: list
    elements: dict
  incident_id:
    description:
      - TRDR Hub incident id, for example V(INC-2025-0042); prefixed to the text as C([<incident_id>]).
    type: str
extends_documentation_fragment:
  - trdrhub.incident.notify_http
attributes:
  check_mode:
    details:
      - Posts nothing; returns the payload that would be sent (RV(payload)) and reports C(changed).
seealso:
  - module: trdrhub.incident.pagerduty_event
  - module: trdrhub.incident.email_notify
  - name: Slack incoming webhooks
    description: Sending messages using incoming webhooks, and their error codes.
    link: https://api.slack.com/messaging/webhooks
"""

EXAMPLES = r"""
- name: Tell the incident channel
  trdrhub.incident.slack_message:
    webhook_url: "{{ vault_slack_incident_webhook }}"
    incident_id: INC-2025-0042
    text: ":rotating_light: P1 QueueLagCritical - workers scaled to 6, investigating"

- name: A formatted update (webhook URL from SLACK_WEBHOOK_URL)
  trdrhub.incident.slack_message:
    incident_id: INC-2025-0042
    text: P1 mitigated
    blocks:
      - type: section
        text:
          type: mrkdwn
          text: "*INC-2025-0042 mitigated* - queue lag back under 60 s"
      - type: context
        elements:
          - type: mrkdwn
            text: "Runbook: <https://runbooks.trdrhub.example/queue-lag|queue lag>"
"""

RETURN = r"""
payload:
  description: The JSON body posted (or, in check mode, that would be posted).
  returned: always
  type: dict
  sample: {"text": "[INC-2025-0042] P1 QueueLagCritical - investigating"}
response:
  description: Slack's answer, V(ok) on success; null in check mode.
  returned: always
  type: str
  sample: ok
webhook:
  description: The webhook URL with its secret part masked.
  returned: always
  type: str
  sample: https://hooks.slack.com/services/********
attempts:
  description: How many times the message was posted (more than 1 after C(429) or C(503)); 0 in check mode.
  returned: always
  type: int
  sample: 1
requests:
  description: HTTP requests the module made, as C(METHOD /path) with the secret path masked.
  returned: always
  type: list
  elements: str
  sample: ["POST /services/********"]
"""

import typing as t

from ansible.module_utils.basic import env_fallback
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import REQUESTS
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import NOTIFY_HTTP_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.slack import SlackWebhook, build_message, display_webhook, split_webhook


def argument_spec() -> dict[str, t.Any]:
    spec = dict(NOTIFY_HTTP_ARGS)
    spec.update(
        webhook_url={'type': 'str', 'required': True, 'no_log': True, 'fallback': (env_fallback, ['SLACK_WEBHOOK_URL'])},
        text={'type': 'str'},
        blocks={'type': 'list', 'elements': 'dict'},
        incident_id={'type': 'str'},
    )
    return spec


class SlackPost:
    """The worker: the message built (and in check mode the webhook URL checked) before any request."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool) -> None:
        self.message = build_message(params)
        self.check_mode = check_mode
        self.display = display_webhook(params['webhook_url'])
        if check_mode:
            split_webhook(params['webhook_url'])

    def run(self, webhook: t.Any) -> dict[str, t.Any]:
        if self.check_mode:
            return {'changed': True, 'payload': self.message, 'response': None, 'webhook': self.display, 'attempts': 0,
                    'requests': []}
        answer = webhook.post(self.message)
        return {'changed': True, 'payload': self.message, 'response': answer, 'webhook': self.display,
                'attempts': webhook.attempts, 'requests': webhook.requests}


def main() -> None:
    run_module(argument_spec(), lambda module: SlackPost(module.params, module.check_mode),
               lambda module, post: None if module.check_mode else SlackWebhook(module.params), requires=[REQUESTS],
               error_extra=lambda module, webhook: {'webhook': display_webhook(module.params['webhook_url']),
                                                    'requests': webhook.requests if webhook else [],
                                                    'attempts': webhook.attempts if webhook else 0},
               required_one_of=[['text', 'blocks']])


if __name__ == '__main__':
    main()
