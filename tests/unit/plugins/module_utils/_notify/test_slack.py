# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Slack incoming webhooks: the message built and split, retries, Slack's error codes explained, the webhook path masked."""

from __future__ import annotations

import pytest
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import slack as _slack
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK

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
