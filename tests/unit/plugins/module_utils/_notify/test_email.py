# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Email notifications: the message and its recipients, header injection refused, SMTP failures as one clear message."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import email as _email

MAIL = {'host': 'smtp.example', 'port': None, 'security': 'starttls', 'username': 'u', 'password': 'pw-s3cret',
        'sender': 'Status <status@trdrhub.example>', 'to': ['a@customer.example'], 'cc': ['b@customer.example'],
        'bcc': ['A@customer.example', 'c@customer.example'], 'subject': 'Delayed', 'body': 'text', 'html': '<p>x</p>',
        'incident_id': 'INC-1', 'validate_certs': True, 'ca_path': None, 'timeout': 5, 'reply_to': None}


def test_email_message_and_recipients():
    msg = _email.build_message(MAIL)
    assert msg['Subject'] == '[INC-1] Delayed' and msg['X-TRDRHub-Incident'] == 'INC-1' and msg['Bcc'] is None
    assert msg['Message-ID'].endswith('@trdrhub.example>') and msg.get_content_type() == 'multipart/alternative'
    assert _email.recipients(MAIL) == ['a@customer.example', 'b@customer.example', 'c@customer.example']
    view = _email.message_view(msg, MAIL)
    assert view['bcc'] == MAIL['bcc'] and view['headers']['To'] == 'a@customer.example' and 'pw-s3cret' not in str(view)


@pytest.mark.parametrize('change,message', [
    ({'to': ['nobody']}, 'not an email address'),
    ({'subject': 'a\r\nBcc: x@evil.example'}, 'line breaks'),
    ({'sender': 'x@y\nBcc: z@evil.example'}, 'line breaks'),
])
def test_email_rejects_header_injection(change, message):
    with pytest.raises(_email.EmailError, match=message):
        _email.build_message(dict(MAIL, **change))


class FakeSMTP:
    """Stand-in for smtplib.SMTP; ``fail`` maps a step to the exception it raises."""

    fail: dict = {}
    sent: list = []

    def __init__(self, host, port, timeout=None, context=None):
        self.where = (host, port)
        self.features = {'starttls', 'auth'}
        if 'connect' in self.fail:
            raise self.fail['connect']

    def ehlo(self):
        return 250, b'ok'

    def has_extn(self, name):
        return name in self.features

    def starttls(self, context=None):
        if 'starttls' in self.fail:
            raise self.fail['starttls']

    def login(self, user, password):
        if 'login' in self.fail:
            raise self.fail['login']

    def send_message(self, msg, to_addrs=None):
        if 'send' in self.fail:
            raise self.fail['send']
        self.sent.append((msg, to_addrs))
        return {}

    def quit(self):
        pass

    def close(self):
        pass


@pytest.fixture
def fake_smtp(monkeypatch):
    FakeSMTP.fail, FakeSMTP.sent = {}, []
    monkeypatch.setattr(_email.SmtpSender, 'smtp_class', FakeSMTP)
    monkeypatch.setattr(_email.SmtpSender, 'smtp_ssl_class', FakeSMTP)
    return FakeSMTP


@pytest.mark.parametrize('step,exc,message', [
    ('login', smtplib.SMTPAuthenticationError(535, b'5.7.8 Authentication credentials invalid'),
     'refused the login of u: 535 5.7.8 Authentication credentials invalid'),
    ('starttls', ssl.SSLError(1, '[SSL: WRONG_VERSION_NUMBER] wrong version number'), 'TLS with SMTP server'),
    ('send', smtplib.SMTPRecipientsRefused({'a@customer.example': (550, b'5.1.1 User unknown')}),
     'refused every recipient, nothing was sent: a@customer.example: 550 5.1.1 User unknown'),
    ('connect', ConnectionRefusedError(111, 'Connection refused'), 'Cannot reach SMTP server smtp.example:587: Connection refused'),
])
def test_smtp_failures_are_one_clear_message(fake_smtp, step, exc, message):
    fake_smtp.fail = {step: exc}
    with pytest.raises(_email.EmailError) as caught:
        _email.SmtpSender(MAIL).send(_email.build_message(MAIL), ['a@customer.example'])
    assert message in str(caught.value) and 'pw-s3cret' not in str(caught.value)


def test_smtp_refuses_password_without_tls_and_defaults_ports(fake_smtp):
    with pytest.raises(_email.EmailError, match='without TLS'):
        _email.SmtpSender(dict(MAIL, security='none'))
    assert _email.SmtpSender(dict(MAIL, security='tls')).port == 465
    sender = _email.SmtpSender(MAIL)
    assert sender.send(_email.build_message(MAIL), ['a@customer.example']) == {}
    assert sender.steps == ['connect', 'starttls', 'auth', 'send'] and len(fake_smtp.sent) == 1
