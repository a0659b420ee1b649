# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Customer email over SMTP: compose the message and deliver it with STARTTLS or TLS and AUTH.

Every failure is one ``EmailError`` whose text is the final ``msg``: it names the server
and quotes its reply (``535 5.7.8 Authentication credentials invalid``), never the
password. The password is refused over a connection without TLS.
"""

from __future__ import annotations

import email.policy
import email.utils
import smtplib
import socket
import ssl
import typing as t
from email.message import EmailMessage

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import INCIDENT_HEADER, mask_secrets, tag_incident

SECURITY = ('starttls', 'tls', 'none')
DEFAULT_PORTS = {'starttls': 587, 'tls': 465, 'none': 25}


class EmailError(TrdrhubError):
    """``str(exc)`` is the final ``msg``; ``details`` are extra result keys."""


def _address(value: str, option: str) -> str:
    if any(ch in value for ch in '\r\n'):
        raise EmailError(f'{option} must not contain line breaks: {value!r}')
    _name, addr = email.utils.parseaddr(value)
    if not addr or '@' not in addr or addr.startswith('@') or addr.endswith('@'):
        raise EmailError(f'{option} is not an email address: {value!r}')
    return value


def recipients(params: dict[str, t.Any]) -> list[str]:
    """Bare addresses of to, cc and bcc, in order, without duplicates."""
    out: list[str] = []
    for option in ('to', 'cc', 'bcc'):
        for value in params.get(option) or []:
            addr = email.utils.parseaddr(_address(value, option))[1]
            if addr.lower() not in (a.lower() for a in out):
                out.append(addr)
    if not out:
        raise EmailError('at least one recipient is required in to, cc or bcc')
    return out


def build_message(params: dict[str, t.Any], now: float | None = None) -> EmailMessage:
    """The message as it will be sent; Bcc recipients are not in its headers."""
    sender = _address(params['sender'], 'sender')
    subject = tag_incident(params.get('subject'), params.get('incident_id'))
    if any(ch in subject for ch in '\r\n'):
        raise EmailError('subject must not contain line breaks')
    msg = EmailMessage(policy=email.policy.SMTP)
    msg['From'] = sender
    if params.get('to'):
        msg['To'] = ', '.join(_address(a, 'to') for a in params['to'])
    if params.get('cc'):
        msg['Cc'] = ', '.join(_address(a, 'cc') for a in params['cc'])
    if params.get('reply_to'):
        msg['Reply-To'] = _address(params['reply_to'], 'reply_to')
    msg['Subject'] = subject
    msg['Date'] = email.utils.formatdate(now, localtime=False)
    domain = email.utils.parseaddr(sender)[1].rpartition('@')[2] or None
    msg['Message-ID'] = email.utils.make_msgid(domain=domain)
    if params.get('incident_id'):
        if any(ch in params['incident_id'] for ch in '\r\n'):
            raise EmailError('incident_id must not contain line breaks')
        msg[INCIDENT_HEADER] = params['incident_id']
    msg.set_content(params.get('body') or '')
    if params.get('html'):
        msg.add_alternative(params['html'], subtype='html')
    return msg


def message_view(msg: EmailMessage, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the module reports: headers, the Bcc list (not a header) and both bodies."""
    return {
        'headers': {key: str(value) for key, value in msg.items()
                    if key.lower() not in ('content-type', 'mime-version', 'content-transfer-encoding')},
        'bcc': list(params.get('bcc') or []),
        'subject': str(msg['Subject']),
        'message_id': str(msg['Message-ID']),
        'body': params.get('body') or '',
        'html': params.get('html'),
    }


def tls_context(params: dict[str, t.Any]) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=params.get('ca_path') or None)
    except (OSError, ssl.SSLError) as exc:
        raise EmailError(f"Cannot use ca_path {params.get('ca_path')}: {exc}") from None
    if not params.get('validate_certs', True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply(code: int, text: t.Any) -> str:
    text = text.decode('utf-8', 'replace') if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"


class SmtpSender:
    """Delivers one message; ``smtp_class``/``smtp_ssl_class`` are replaceable for the unit tests."""

    smtp_class: t.Any = smtplib.SMTP
    smtp_ssl_class: t.Any = smtplib.SMTP_SSL

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.security = params.get('security') or 'starttls'
        if self.security not in SECURITY:
            raise EmailError(f"security must be one of {', '.join(SECURITY)}, got {self.security!r}")
        self.host = params['host']
        self.port = params.get('port') or DEFAULT_PORTS[self.security]
        self.where = f'SMTP server {self.host}:{self.port}'
        if params.get('username') and self.security == 'none':
            raise EmailError(f'refusing to send the password for {params["username"]} to {self.where} without TLS: '
                             'use security=starttls or security=tls')
        self.steps: list[str] = []

    def send(self, msg: EmailMessage, rcpts: list[str]) -> dict[str, str]:
        """Deliver; the recipients the server refused (``{address: reply}``) when others were accepted."""
        try:
            return self._send(msg, rcpts)
        except EmailError as exc:
            raise EmailError(mask_secrets(str(exc), [self.params.get('password')]), **exc.details) from None

    def _send(self, msg: EmailMessage, rcpts: list[str]) -> dict[str, str]:
        timeout = self.params.get('timeout') or 10
        smtp = None
        try:
            if self.security == 'tls':
                self.steps.append('connect (TLS)')
                smtp = self.smtp_ssl_class(self.host, self.port, timeout=timeout, context=tls_context(self.params))
            else:
                self.steps.append('connect')
                smtp = self.smtp_class(self.host, self.port, timeout=timeout)
            smtp.ehlo()
            if self.security == 'starttls':
                if not smtp.has_extn('starttls'):
                    raise EmailError(f'{self.where} does not offer STARTTLS; use security=tls for an implicit TLS port '
                                     '(usually 465)')
                self.steps.append('starttls')
                smtp.starttls(context=tls_context(self.params))
                smtp.ehlo()
            if self.params.get('username'):
                if not smtp.has_extn('auth'):
                    raise EmailError(f'{self.where} does not offer AUTH (SMTP authentication) on this connection')
                self.steps.append('auth')
                smtp.login(self.params['username'], self.params.get('password') or '')
            self.steps.append('send')
            refused = smtp.send_message(msg, to_addrs=rcpts)
            smtp.quit()
            return {addr: _reply(*reply) for addr, reply in (refused or {}).items()}
        except smtplib.SMTPAuthenticationError as exc:
            raise EmailError(f"{self.where} refused the login of {self.params.get('username')}: "
                             f'{_reply(exc.smtp_code, exc.smtp_error)} - check username and password', smtp_code=exc.smtp_code) from None
        except smtplib.SMTPRecipientsRefused as exc:
            refused = {addr: _reply(*reply) for addr, reply in exc.recipients.items()}
            listed = '; '.join(f'{addr}: {reply}' for addr, reply in refused.items())
            raise EmailError(f'{self.where} refused every recipient, nothing was sent: {listed}', refused=refused) from None
        except smtplib.SMTPSenderRefused as exc:
            raise EmailError(f'{self.where} refused the sender {exc.sender}: {_reply(exc.smtp_code, exc.smtp_error)}',
                             smtp_code=exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise EmailError(f'{self.where} does not support {exc}') from None
        except smtplib.SMTPResponseException as exc:
            raise EmailError(f'{self.where} refused {self.steps[-1] if self.steps else "the connection"}: '
                             f'{_reply(exc.smtp_code, exc.smtp_error)}', smtp_code=exc.smtp_code) from None
        except ssl.SSLCertVerificationError as exc:
            raise EmailError(f'TLS with {self.where} failed: certificate verify failed: {exc.verify_message or exc} (set '
                             'ca_path to the CA that signed the server certificate, or validate_certs=false)') from None
        except ssl.SSLError as exc:
            raise EmailError(f'TLS with {self.where} failed during {self.steps[-1]}: {getattr(exc, "reason", None) or exc} - is '
                             f'security={self.security} right for port {self.port}?') from None
        except smtplib.SMTPServerDisconnected as exc:
            raise EmailError(f'{self.where} closed the connection during {self.steps[-1] if self.steps else "connect"}: '
                             f'{exc or "no reason given"} - is security={self.security} right for port {self.port}?') from None
        except (socket.timeout, TimeoutError):
            raise EmailError(f'Cannot reach {self.where}: timed out after {timeout:g} s during '
                             f'{self.steps[-1] if self.steps else "connect"}') from None
        except OSError as exc:
            raise EmailError(f'Cannot reach {self.where}: {exc.strerror or exc}') from None
        finally:
            if smtp is not None:
                try:
                    smtp.close()
                except OSError:
                    pass
