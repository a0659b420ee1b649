# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Unit tests of the notification module_utils: PagerDuty events, Slack webhooks, SMTP email."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpInputError,
    HttpStatusError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import email as _email
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import pagerduty as _pagerduty
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import slack as _slack
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK, mask_secrets, tag_incident

KEY = 'k' * 32
TRIGGER = {'routing_key': KEY, 'event_action': 'trigger', 'incident_id': 'INC-1', 'summary': 'lag', 'source': 'api',
           'severity': 'critical', 'retries': 2, 'retry_delay': 1, 'timeout': 5, 'validate_certs': True}


@pytest.mark.parametrize('text,incident,expected', [
    ('lag', 'INC-1', '[INC-1] lag'), ('INC-1 lag', 'INC-1', 'INC-1 lag'), ('lag', None, 'lag'), (None, 'INC-1', '[INC-1]'),
])
def test_tag_incident(text, incident, expected):
    assert tag_incident(text, incident) == expected


def test_mask_secrets_longest_first():
    assert mask_secrets('a secret-long and secret', ['secret', 'secret-long', None, 'ab']) == f'a {MASK} and {MASK}'


def test_build_event_trigger():
    event, warnings = _pagerduty.build_event(dict(TRIGGER, event_class='QueueLagCritical', component='queue',
                                                  custom_details={'lag': 742}))
    assert warnings == []
    assert event == {'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'INC-1', 'payload': {
        'summary': 'lag', 'source': 'api', 'severity': 'critical', 'component': 'queue', 'class': 'QueueLagCritical',
        'custom_details': {'lag': 742, 'incident_id': 'INC-1'}}}
    assert _pagerduty.masked(event)['routing_key'] == MASK and event['routing_key'] == KEY


def test_build_event_resolve_ignores_payload_with_warning():
    event, warnings = _pagerduty.build_event({'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'ext-7',
                                              'incident_id': 'INC-1', 'summary': 'x'})
    assert event == {'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'ext-7'}
    assert 'summary only apply to event_action=trigger' in warnings[0]


@pytest.mark.parametrize('change,message', [
    ({'severity': 'P1'}, 'severity must be one of critical, error, warning, info'),
    ({'summary': 's' * 1025}, 'summary must be at most 1024'),
    ({'incident_id': None}, 'incident_id or dedup_key is required'),
    ({'dedup_key': 'd' * 256}, 'dedup_key must be at most 255'),
    ({'source': None}, 'event_action=trigger requires source'),
    ({'routing_key': ' '}, 'routing_key is required'),
    ({'event_action': 'snooze'}, 'event_action must be one of'),
])
def test_build_event_rejects(change, message):
    with pytest.raises(HttpInputError, match=message):
        _pagerduty.build_event(dict(TRIGGER, **change))


def _pd(script, retries=2):
    sleeps: list[float] = []
    client = _pagerduty.PagerDutyClient(dict(TRIGGER, retries=retries, api_url='https://events.example'),
                                        session=FakeSession(script), sleep=sleeps.append)
    return client, sleeps


ACCEPTED = FakeResponse(202, {'status': 'success', 'message': 'Event processed', 'dedup_key': 'INC-1'})


def test_pagerduty_retries_429_and_5xx_with_backoff():
    client, sleeps = _pd([FakeResponse(429, {'status': 'throttle event'}), FakeResponse(500, {}), ACCEPTED])
    event, _w = _pagerduty.build_event(TRIGGER)
    assert client.enqueue(event)['message'] == 'Event processed'
    assert client.attempts == 3 and sleeps == [1, 2] and client.requests == ['POST /v2/enqueue'] * 3


def test_pagerduty_honours_retry_after():
    client, sleeps = _pd([FakeResponse(429, {}, headers={'Retry-After': '7'}), ACCEPTED])
    client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert sleeps == [7.0]


def test_pagerduty_400_quotes_errors_without_the_key():
    body = {'status': 'invalid event', 'message': 'Event object is invalid', 'errors': [f'Invalid routing key {KEY}']}
    client, sleeps = _pd([FakeResponse(400, body, reason='Bad Request')])
    with pytest.raises(HttpStatusError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert str(caught.value) == ("PagerDuty rejected the trigger event for dedup_key 'INC-1' with 400 Bad Request: "
                                 f'Event object is invalid: Invalid routing key {MASK}')
    assert sleeps == [] and caught.value.details['status'] == 400


def test_pagerduty_gives_up_after_retries():
    client, _sleeps = _pd([FakeResponse(503, {})] * 2, retries=1)
    with pytest.raises(HttpStatusError, match=r'answered 503 Service Unavailable.*\(after 2 attempts\)'):
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])


@pytest.mark.parametrize('answer, shown', [
    (FakeResponse(202, text=''), 'an empty body'),
    (FakeResponse(202, {'ok': True}), 'JSON {"ok": true}'),
    (FakeResponse(202, {'status': 'invalid event'}), 'JSON {"status": "invalid event"}'),
    (FakeResponse(202, text='<html><title>Proxy</title></html>', headers={'Content-Type': 'text/html'}),
     "an HTML page ('Proxy')"),
    (FakeResponse(202, [1, 2]), 'JSON [1, 2]'),
])
def test_pagerduty_202_without_success_is_not_accepted(answer, shown):
    client, sleeps = _pd([answer])
    with pytest.raises(HttpApiMismatchError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert str(caught.value) == ("https://events.example answered the trigger event for dedup_key 'INC-1' with 202 and "
                                 f'{shown}, not the Events API v2 answer {{"status": "success", ...}}, so PagerDuty did '
                                 'not confirm it - check api_url')
    assert KEY not in str(caught.value) and sleeps == []


def test_pagerduty_answer_echoing_the_key_is_masked():
    client, _sleeps = _pd([FakeResponse(202, {'note': 'n' * 60, 'routing_key': KEY})])
    with pytest.raises(HttpApiMismatchError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert 'kkkk' not in str(caught.value)


HOOK = 'https://hooks.slack.com/services/T0001/B0001/s3cr3tt0k3n'


def test_slack_display_and_split():
    assert _slack.display_webhook(HOOK) == f'https://hooks.slack.com/services/{MASK}'
    assert _slack.split_webhook(HOOK) == ('https://hooks.slack.com', '/services/T0001/B0001/s3cr3tt0k3n')
    for bad in ('hooks.slack.com/services/x', 'https://hooks.slack.com/', 'https://u:p@hooks.slack.com/services/x'):
        with pytest.raises(HttpInputError) as caught:
            _slack.split_webhook(bad)
        assert 's3cr3t' not in str(caught.value)


def test_slack_build_message():
    blocks = [{'type': 'section', 'text': {'type': 'mrkdwn', 'text': 'x'}}]
    assert _slack.build_message({'text': 'up', 'incident_id': 'INC-1'}) == {'text': '[INC-1] up'}
    assert _slack.build_message({'blocks': blocks}) == {'blocks': blocks}
    assert _slack.build_message({'blocks': blocks, 'incident_id': 'INC-1'}) == {'text': '[INC-1]', 'blocks': blocks}
    with pytest.raises(HttpInputError, match='text or blocks'):
        _slack.build_message({'incident_id': 'INC-1'})
    with pytest.raises(HttpInputError, match=r'blocks\[0\]'):
        _slack.build_message({'blocks': [{'text': 'no type'}]})


def _hook(script):
    sleeps: list[float] = []
    params = {'webhook_url': HOOK, 'retries': 2, 'retry_delay': 1, 'timeout': 5, 'validate_certs': True}
    return _slack.SlackWebhook(params, session=FakeSession(script), sleep=sleeps.append), sleeps


def test_slack_retries_429_after_retry_after():
    hook, sleeps = _hook([FakeResponse(429, text='rate_limited', headers={'Retry-After': '3'}), FakeResponse(200, text='ok')])
    assert hook.post({'text': 'x'}) == 'ok'
    assert sleeps == [3.0] and hook.attempts == 2 and hook.requests == [f'POST /services/{MASK}']


@pytest.mark.parametrize('status,code,hint', [
    (403, 'invalid_token', 'revoked'), (404, 'no_service', 'no such webhook'), (410, 'channel_is_archived', 'archived'),
    (400, 'no_text', 'text or blocks'), (500, 'internal_error', None),
])
def test_slack_errors_explain_the_code(status, code, hint):
    hook, sleeps = _hook([FakeResponse(status, text=code)])
    with pytest.raises(Exception) as caught:
        hook.post({'text': 'x'})
    text = str(caught.value)
    assert code in text and 's3cr3t' not in text and caught.value.details['code'] == code
    assert hint is None or hint in text
    assert sleeps == []  # a 500 may have been posted: never retried


@pytest.mark.parametrize('answer, shown', [
    (FakeResponse(200, text='<html><head><title>Welcome to nginx!</title></head><body>x</body></html>',
                  headers={'Content-Type': 'text/html'}), "an HTML page ('Welcome to nginx!')"),
    (FakeResponse(200, {'status': 'ok', 'proxied': True}), 'JSON {"proxied": true, "status": "ok"}'),
    (FakeResponse(200, text=''), 'an empty body'),
    (FakeResponse(200, text='OK, queued ' + 'x' * 200), "'OK, queued " + 'x' * 66 + "...'"),
])
def test_slack_200_without_ok_is_not_sent(answer, shown):
    hook, sleeps = _hook([answer])
    with pytest.raises(HttpApiMismatchError) as caught:
        hook.post({'text': 'x'})
    assert str(caught.value) == (f'Slack webhook https://hooks.slack.com/services/{MASK} answered 200 OK with {shown} '
                                 'instead of ok, so the message was not delivered - check that webhook_url is a Slack '
                                 'incoming webhook')
    assert sleeps == [] and hook.attempts == 1


def test_slack_answer_echoing_the_webhook_is_masked():
    hook, _sleeps = _hook([FakeResponse(200, text=f'forwarded by the gateway to {HOOK}')])  # cut inside the token
    with pytest.raises(HttpApiMismatchError) as caught:
        hook.post({'text': 'x'})
    assert 's3c' not in str(caught.value) and 'T0001' not in str(caught.value)


def test_slack_transport_error_masks_the_path():
    import requests  # pylint: disable=import-outside-toplevel
    hook, _sleeps = _hook([requests.exceptions.ReadTimeout('Read timed out: /services/T0001/B0001/s3cr3tt0k3n')])
    with pytest.raises(Exception) as caught:
        hook.post({'text': 'x'})
    assert 's3cr3t' not in str(caught.value) and 'Cannot reach' in str(caught.value)


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
