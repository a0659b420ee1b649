# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: email_notify
short_description: Send a customer incident email over SMTP with STARTTLS or TLS and authentication
version_added: 1.0.0
description:
  - Composes one email (plain text, optionally with an HTML alternative) and delivers it through an SMTP submission
    server, for customer-facing incident notices.
  - With O(incident_id) the subject starts with C([<incident_id>]) (unless it already contains the id) and the message
    carries the header C(X-TRDRHub-Incident), so replies and bounces can be matched to the incident.
  - O(security=starttls) (the default, port 587) upgrades the connection with STARTTLS before anything else;
    O(security=tls) speaks TLS from the first byte (port 465); O(security=none) is for a local relay only and then
    refuses to send a password.
  - Every failure is one message naming the server and quoting its reply - authentication refused (C(535)), TLS
    handshake or certificate verification failed, every recipient refused - and never the password.
  - When the server refuses only some recipients the message is still delivered to the others; the task succeeds with
    a warning and lists them in RV(refused).
  - "Not idempotent: an email cannot be unsent or looked up, so every run sends again and reports C(changed)."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  host:
    description: SMTP server host name.
    type: str
    required: true
  port:
    description: SMTP port; defaults to V(587) for O(security=starttls), V(465) for V(tls) and V(25) for V(none).
    type: int
  security:
    description:
      - V(starttls) upgrades a plain connection with STARTTLS (fails when the server does not offer it); V(tls) is
        TLS from the start (SMTPS); V(none) sends in clear text and cannot be combined with O(username).
    type: str
    choices: [starttls, tls, none]
    default: starttls
  username:
    description: User name for SMTP AUTH (PLAIN or LOGIN, after TLS). Without it no authentication is attempted.
    type: str
  password:
    description: Password for O(username). Never shown in results or error messages.
    type: str
  sender:
    description: The C(From) address, for example V(TRDR Hub Status <status@trdrhub.example>).
    type: str
    required: true
    aliases: [from]
  to:
    description: C(To) recipients. At least one recipient in O(to), O(cc) or O(bcc) is required.
    type: list
    elements: str
  cc:
    description: C(Cc) recipients.
    type: list
    elements: str
  bcc:
    description: Blind copies - delivered, but not listed in the message headers.
    type: list
    elements: str
  reply_to:
    description: C(Reply-To) address, for example the support desk.
    type: str
  subject:
    description: Subject; prefixed with C([<incident_id>]) when O(incident_id) is set.
    type: str
    required: true
  body:
    description: Plain-text body.
    type: str
    required: true
  html:
    description: Optional HTML version of the body, sent as a C(multipart/alternative) part after the text.
    type: str
  incident_id:
    description: TRDR Hub incident id, for example V(INC-2025-0042); goes into the subject and the C(X-TRDRHub-Incident)
      header.
    type: str
  validate_certs:
    description: Verify the server certificate (chain and host name). Set to V(false) only for a throwaway test server.
    type: bool
    default: true
  ca_path:
    description: PEM file with the certificate authorities that may sign the server certificate, for a private CA.
    type: path
  timeout:
    description: Seconds to wait for the connection and for each server reply.
    type: float
    default: 30
extends_documentation_fragment:
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - Connects to nothing; returns the message that would be sent (RV(message)) and the recipients, and reports
        C(changed).
seealso:
  - module: trdrhub.incident.slack_message
  - module: trdrhub.incident.pagerduty_event
"""

EXAMPLES = r"""
- name: Tell affected customers
  trdrhub.incident.email_notify:
    host: smtp.trdrhub.example
    username: status-notify
    password: "{{ vault_smtp_password }}"
    sender: TRDR Hub Status <status@trdrhub.example>
    to: [ops@customer.example]
    bcc: "{{ affected_customer_contacts }}"
    reply_to: support@trdrhub.example
    incident_id: INC-2025-0042
    subject: Delayed document processing
    body: |
      Document processing is delayed by up to 15 minutes since 14:30 UTC.
      No data is lost; we will update you within the hour.
    html: "<p>Document processing is delayed by up to 15 minutes since 14:30 UTC.</p>"

- name: Through an SMTPS port with a private CA
  trdrhub.incident.email_notify:
    host: mail.internal.example
    port: 465
    security: tls
    ca_path: /etc/pki/trdrhub/ca.pem
    username: status-notify
    password: "{{ vault_smtp_password }}"
    sender: status@trdrhub.example
    to: [ops@customer.example]
    incident_id: INC-2025-0042
    subject: Resolved - delayed document processing
    body: The delay is resolved since 15:10 UTC.
"""

RETURN = r"""
message:
  description: The message sent (or, in check mode, that would be sent).
  returned: always
  type: dict
  contains:
    headers:
      description: Its headers (From, To, Cc, Reply-To, Subject, Date, Message-ID, X-TRDRHub-Incident).
      type: dict
      sample: {"From": "status@trdrhub.example", "To": "ops@customer.example", "Subject": "[INC-2025-0042] Delayed",
               "X-TRDRHub-Incident": "INC-2025-0042"}
    bcc:
      description: Blind-copy recipients (not in the headers).
      type: list
      elements: str
      sample: []
    subject:
      description: Final subject.
      type: str
      sample: "[INC-2025-0042] Delayed document processing"
    message_id:
      description: The C(Message-ID) header.
      type: str
      sample: "<173693940012.4242.1234@trdrhub.example>"
    body:
      description: Plain-text body.
      type: str
      sample: Document processing is delayed.
    html:
      description: HTML body, null when none.
      type: str
      sample: null
recipients:
  description: Every envelope recipient (to, cc and bcc addresses).
  returned: always
  type: list
  elements: str
  sample: ["ops@customer.example"]
refused:
  description: Recipients the server refused, with its reply, while it accepted the others.
  returned: always
  type: dict
  sample: {"old@customer.example": "550 5.1.1 User unknown"}
sent:
  description: Whether the message was handed to the server (false in check mode).
  returned: always
  type: bool
  sample: true
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.email import SECURITY, SmtpSender, build_message, message_view, recipients


def argument_spec() -> dict[str, t.Any]:
    return {
        'host': {'type': 'str', 'required': True},
        'port': bounded({'type': 'int'}, 1, 65535),
        'security': {'type': 'str', 'choices': list(SECURITY), 'default': 'starttls'},
        'username': {'type': 'str'},
        'password': {'type': 'str', 'no_log': True},
        'sender': {'type': 'str', 'required': True, 'aliases': ['from']},
        'to': {'type': 'list', 'elements': 'str'},
        'cc': {'type': 'list', 'elements': 'str'},
        'bcc': {'type': 'list', 'elements': 'str'},
        'reply_to': {'type': 'str'},
        'subject': {'type': 'str', 'required': True},
        'body': {'type': 'str', 'required': True},
        'html': {'type': 'str'},
        'incident_id': {'type': 'str'},
        'validate_certs': {'type': 'bool', 'default': True},
        'ca_path': {'type': 'path'},
        'timeout': bounded({'type': 'float', 'default': 30}, above=0, maximum=MAX_SOCKET_TIMEOUT),
    }


class EmailSend(Worker):
    """The worker: the message and recipients built before any connection; check mode sends nothing."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool) -> None:
        super().__init__(params, check_mode)
        self.msg = build_message(params)
        self.rcpts = recipients(params)
        self.sender = SmtpSender(params)

    def run(self, client: t.Any) -> dict[str, t.Any]:   # pylint: disable=unused-argument
        msg, rcpts = self.msg, self.rcpts
        result: dict[str, t.Any] = {'changed': True, 'message': message_view(msg, self.params), 'recipients': rcpts,
                                    'refused': {}, 'sent': False}
        if not self.check_mode:
            result['refused'] = self.sender.send(msg, rcpts)
            result['sent'] = True
        if result['refused']:
            self.warnings.append(f"{self.sender.where} refused {len(result['refused'])} of {len(rcpts)} recipients; the "
                                 'others got the message: ' + '; '.join(f'{a}: {r}' for a, r in result['refused'].items()))
        return result


def main() -> None:
    run_module(argument_spec(), lambda module: EmailSend(module.params, module.check_mode),
               required_one_of=[['to', 'cc', 'bcc']], required_together=[['username', 'password']])


if __name__ == '__main__':
    main()
