"""A Slack incoming-webhook double that answers as Slack does.

Webhooks live at secret paths ``/services/T.../B.../<token>``. Slack's answers are
short text bodies, not JSON: ``200 ok``; ``400 invalid_payload`` (not JSON, or not an
object), ``400 no_text`` (neither ``text`` nor ``blocks``), ``400 invalid_blocks``;
``403 invalid_token`` (known team and hook, wrong token); ``404 no_service`` (unknown
hook); ``410 channel_is_archived``; ``429 rate_limited`` with ``Retry-After``
(``rate_limit`` messages per ``rate_window`` seconds per webhook, 1/s by Slack's
documentation, relaxed by default so tests are not throttled by accident).
Accepted messages are stored per webhook.

    with SlackServer() as slack:
        url = slack.start().add_webhook()
        ...  # POST url
        slack.messages(url)[0]["text"]
"""
from __future__ import annotations

import collections
import json
import re
import secrets
import string
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from ._inproc import Answer, InProcessHTTPServer, text_answer

_PATH = re.compile(r"^/services/(?P<team>T[A-Z0-9]+)/(?P<hook>B[A-Z0-9]+)/(?P<token>[A-Za-z0-9]+)$")


def _rand(alphabet: str, size: int) -> str:
    return "".join(secrets.choice(alphabet) for dummy in range(size))


class SlackServer(InProcessHTTPServer):
    name = "slack"

    def __init__(self, rate_limit: int = 100, rate_window: float = 1.0, retry_after: int = 1) -> None:
        super().__init__()
        self.rate_limit, self.rate_window, self.retry_after = rate_limit, rate_window, retry_after
        self.team = "T" + _rand(string.ascii_uppercase + string.digits, 8)
        self.hooks: Dict[str, dict] = {}   # hook id -> {"token", "archived"}
        self._messages: Dict[str, List[dict]] = collections.defaultdict(list)

    # -- test API ------------------------------------------------------------
    def add_webhook(self, archived: bool = False) -> str:
        hook = "B" + _rand(string.ascii_uppercase + string.digits, 10)
        token = _rand(string.ascii_letters + string.digits, 24)
        with self.lock:
            self.hooks[hook] = {"token": token, "archived": archived}
        return f"{self.url}/services/{self.team}/{hook}/{token}"

    def archive(self, webhook_url: str) -> None:
        with self.lock:
            self.hooks[self._hook_id(webhook_url)]["archived"] = True

    def fail_next(self, webhook_url: str, status: int = 429, count: int = 1, retry_after: Optional[int] = None) -> None:
        """The next ``count`` posts to this webhook get ``status``: 429 ``rate_limited`` or a 5xx."""
        if status == 429:
            answer = text_answer(429, "rate_limited", {"Retry-After": str(self.retry_after if retry_after is None else retry_after)})
        else:
            answer = text_answer(status, "internal_error")
        self.inject(self._hook_id(webhook_url), answer, count)

    def messages(self, webhook_url: str) -> List[dict]:
        with self.lock:
            return [json.loads(json.dumps(m)) for m in self._messages.get(self._hook_id(webhook_url), [])]

    @staticmethod
    def _hook_id(webhook_url: str) -> str:
        match = _PATH.match(urlsplit(webhook_url).path)
        if not match:
            raise ValueError("not a webhook URL of this server")
        return match["hook"]

    # -- the API ---------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Answer:
        match = _PATH.match(path.split("?", 1)[0])
        with self.lock:
            hook = self.hooks.get(match["hook"]) if match and match["team"] == self.team else None
            if hook is None:
                return text_answer(404, "no_service")
            if method != "POST":
                return text_answer(405, "invalid_method")
            if not secrets.compare_digest(match["token"], hook["token"]):
                return text_answer(403, "invalid_token")
            if hook["archived"]:
                return text_answer(410, "channel_is_archived")
            answer = self.injected(match["hook"])
            if answer is not None:
                return answer
            if self.throttled(match["hook"], self.rate_limit, self.rate_window):
                return text_answer(429, "rate_limited", {"Retry-After": str(self.retry_after)})
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return text_answer(400, "invalid_payload")
        if not isinstance(message, dict):
            return text_answer(400, "invalid_payload")
        if not message.get("text") and not message.get("blocks"):
            return text_answer(400, "no_text")
        blocks = message.get("blocks")
        if blocks is not None and (not isinstance(blocks, list)
                                   or not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)):
            return text_answer(400, "invalid_blocks")
        with self.lock:
            self._messages[match["hook"]].append(message)
        return text_answer(200, "ok")
