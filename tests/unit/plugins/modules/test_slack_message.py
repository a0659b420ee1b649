"""slack_message reports success only for Slack's documented answer.

Run in-process against the Slack contract server, with a proxy-like answer injected: an HTML page
or JSON of another shape with the success status code.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip('requests')
_HARNESS = str(Path(__file__).resolve().parents[3] / 'harness')
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

from ansible_collections.trdrhub.incident.plugins.modules import slack_message  # noqa: E402
from trdrhub_harness._inproc import json_answer, text_answer  # noqa: E402
from trdrhub_harness.slack import SlackServer  # noqa: E402

NGINX = '<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>'


@pytest.fixture(scope='module')
def slack():
    with SlackServer() as server:
        yield server.start()


def test_slack_ok_is_sent(run_module, slack):
    hook = slack.add_webhook()
    result = run_module(slack_message, {'webhook_url': hook, 'text': 'workers scaled up', 'retries': 0})
    assert result.get('failed') is not True and result['changed'] is True
    assert [m['text'] for m in slack.messages(hook)] == ['workers scaled up']


@pytest.mark.parametrize('answer, shown', [
    (text_answer(200, NGINX), "an HTML page ('Welcome to nginx!')"),
    (json_answer(200, {'status': 'ok'}), 'JSON {"status": "ok"}'),
])
def test_slack_200_that_is_not_ok_is_not_sent(run_module, slack, answer, shown):
    hook = slack.add_webhook()
    slack.inject(slack._hook_id(hook), answer)
    result = run_module(slack_message, {'webhook_url': hook, 'text': 'workers scaled up', 'retries': 0})
    assert result['failed'] is True and result.get('changed') is not True
    assert f'answered 200 OK with {shown} instead of ok, so the message was not delivered' in result['msg']
    assert hook.rsplit('/', 1)[-1] not in str(result)
