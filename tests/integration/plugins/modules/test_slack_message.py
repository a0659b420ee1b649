"""slack_message through ansible-playbook against the Slack incoming-webhook contract server."""
from __future__ import annotations

import time

import pytest
import requests
from _itest_batch import run_batch
from trdrhub_harness.slack import SlackServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FAST = {"retry_delay": 0.1}


def _token(url):
    return url.rsplit("/", 1)[-1]


def test_server_answers_as_slack_does(slack_server):
    hook = slack_server.add_webhook()
    base = hook.rsplit("/", 1)[0]

    def post(url, **kw):
        resp = requests.post(url, timeout=5, **kw)
        return resp.status_code, resp.text

    assert post(hook, json={"text": "hello"}) == (200, "ok")
    assert post(base + "/wrongtoken123", json={"text": "x"}) == (403, "invalid_token")
    assert post(slack_server.url + "/services/T000/B000/abc", json={"text": "x"}) == (404, "no_service")
    assert post(hook, data=b"text=x") == (400, "invalid_payload")
    assert post(hook, json={"username": "bot"}) == (400, "no_text")
    assert post(hook, json={"blocks": [{"text": "no type"}]}) == (400, "invalid_blocks")
    assert post(slack_server.add_webhook(archived=True), json={"text": "x"}) == (410, "channel_is_archived")
    assert [m["text"] for m in slack_server.messages(hook)] == ["hello"]


def test_server_rate_limits_with_retry_after():
    with SlackServer(rate_limit=1, rate_window=60, retry_after=7) as server:
        hook = server.start().add_webhook()
        assert requests.post(hook, json={"text": "1"}, timeout=5).status_code == 200
        limited = requests.post(hook, json={"text": "2"}, timeout=5)
        assert (limited.status_code, limited.text, limited.headers["Retry-After"]) == (429, "rate_limited", "7")


def test_slack_message_module(ansible, slack_server):
    slack = slack_server
    hook, throttled, broken, archived = (slack.add_webhook() for dummy in range(4))
    slack.archive(archived)
    revoked = hook.rsplit("/", 1)[0] + "/revokedtoken0123456789ab"
    slack.fail_next(throttled, 429, count=1, retry_after=1)
    slack.fail_next(broken, 503, count=1)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*P1* queue lag"}}]
    started = time.monotonic()
    runs = run_batch(ansible, {
        "check": ("slack_message", {"webhook_url": hook, "text": "checking", "incident_id": "INC-SL-1"}, {"check_mode": True}),
        "post": ("slack_message", {"webhook_url": hook, "text": "workers scaled up", "incident_id": "INC-SL-1",
                                   "blocks": blocks}),
        "blocks_only": ("slack_message", {"webhook_url": hook, "blocks": blocks, "incident_id": "INC-SL-1"}),
        "throttled_then_ok": ("slack_message", {"webhook_url": throttled, "text": "after 429", **FAST}),
        "503_then_ok": ("slack_message", {"webhook_url": broken, "text": "after 503", **FAST}),
        "revoked": ("slack_message", {"webhook_url": revoked, "text": "x"}),
        "archived": ("slack_message", {"webhook_url": archived, "text": "x"}),
        "bad_block": ("slack_message", {"webhook_url": hook, "blocks": [{"text": "no type"}]}),
        "nothing": ("slack_message", {"webhook_url": hook}),
        "not_a_url": ("slack_message", {"webhook_url": "hooks.example/services/" + _token(hook), "text": "x"}),
    })
    elapsed = time.monotonic() - started

    check = runs["check"]
    assert not check.failed and check["changed"] is True and check["attempts"] == 0 and check["response"] is None
    assert check["payload"] == {"text": "[INC-SL-1] checking"}
    assert check["webhook"] == slack.url + "/services/********"

    post = runs["post"]
    assert not post.failed, post.output
    assert post["response"] == "ok" and post["attempts"] == 1 and post["requests"] == ["POST /services/********"]
    received = slack.messages(hook)
    # check mode posted nothing; the two real posts arrived as sent
    assert received == [{"text": "[INC-SL-1] workers scaled up", "blocks": blocks},
                        {"text": "[INC-SL-1]", "blocks": blocks}]

    assert runs["throttled_then_ok"]["attempts"] == 2 and not runs["throttled_then_ok"].failed
    assert [m["text"] for m in slack.messages(throttled)] == ["after 429"]
    assert elapsed >= 1  # Retry-After: 1 was honoured
    assert runs["503_then_ok"]["attempts"] == 2 and [m["text"] for m in slack.messages(broken)] == ["after 503"]

    revoked_run = runs["revoked"]
    assert revoked_run.failed and revoked_run["status"] == 403 and revoked_run["code"] == "invalid_token"
    assert revoked_run["msg"] == (f"Slack webhook {slack.url}/services/******** refused the message with 403 Forbidden: "
                                  "invalid_token (the webhook URL is wrong or was revoked - create a new one in the Slack app)")
    assert "channel_is_archived" in runs["archived"]["msg"] and runs["archived"]["status"] == 410
    assert runs["bad_block"].failed and "blocks[0]" in runs["bad_block"]["msg"]
    assert runs["nothing"].failed and "text" in runs["nothing"]["msg"]
    assert runs["not_a_url"].failed and "webhook_url must be an https:// URL" in runs["not_a_url"]["msg"]

    for secret in (hook, throttled, broken, archived, revoked):
        assert _token(secret) not in post.output


def test_slack_server_side_validation_and_env(ansible, slack_server):
    hook = slack_server.add_webhook()
    unknown = slack_server.url + "/services/T0000/B0000/unknowntoken"
    ok = ansible.run("slack_message", {"text": "from env"}, extra_env={"SLACK_WEBHOOK_URL": hook})
    assert not ok.failed, ok.output
    assert [m["text"] for m in slack_server.messages(hook)] == ["from env"]
    missing = ansible.run("slack_message", {"webhook_url": unknown, "text": "x", "retries": 0})
    assert missing.failed and missing["status"] == 404 and "no_service" in missing["msg"]
    assert "unknowntoken" not in missing.output and _token(hook) not in ok.output
