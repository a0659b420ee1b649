# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Slack incoming webhooks: build the message and post it without ever showing the URL.

The whole webhook URL is the credential (anyone with it can post), so it is shown only
as ``https://hooks.slack.com/services/********`` - in messages, in ``requests`` and in
the reasons of transport errors, which would otherwise quote the path.
Slack answers with short text codes, not JSON; each code is explained in the message.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiError,
    HttpApiMismatchError,
    HttpAuthError,
    HttpClient,
    HttpInputError,
    HttpStatusError,
    answer_summary,
    condense,
    retry_after_seconds,
    status_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK, mask_secrets, tag_incident

# What Slack's answer codes mean for the operator.
CODE_HINTS = {
    'invalid_payload': 'the message is not valid JSON for Slack',
    'no_text': 'the message needs text or blocks',
    'invalid_blocks': 'the blocks are not valid Block Kit',
    'invalid_blocks_format': 'the blocks are not valid Block Kit',
    'invalid_token': 'the webhook URL is wrong or was revoked - create a new one in the Slack app',
    'no_service': 'no such webhook - the URL is wrong or the app was removed from the workspace',
    'no_active_hooks': 'the webhook is disabled',
    'channel_not_found': 'the webhook channel no longer exists',
    'channel_is_archived': 'the webhook channel is archived - unarchive it or create a webhook for another channel',
    'action_prohibited': 'a workspace admin restricted posting to this channel',
    'posting_to_general_channel_denied': 'only admins may post to this channel',
    'team_disabled': 'the Slack workspace is disabled',
    'rate_limited': 'too many messages for this webhook (Slack allows about 1 per second)',
}


def display_webhook(url: str) -> str:
    """``scheme://host/services/********``: enough to tell which service, nothing that lets anyone post."""
    parts = urlsplit(url or '')
    first = parts.path.strip('/').split('/', 1)[0]
    host = parts.hostname or '?'
    if parts.port:
        host = f'{host}:{parts.port}'
    return urlunsplit((parts.scheme or '?', host, f'/{first}/{MASK}' if first else f'/{MASK}', '', ''))


def split_webhook(url: str) -> tuple[str, str]:
    """(scheme://host[:port], /secret/path) of a webhook URL; refuses what cannot be a webhook."""
    text = (url or '').strip()
    parts = urlsplit(text)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise HttpInputError(f'webhook_url must be an https:// URL ({display_webhook(text)}); set it or the '
                             'SLACK_WEBHOOK_URL environment variable')
    if parts.username or parts.password or parts.fragment or parts.path.strip('/') == '':
        raise HttpInputError(f'webhook_url is not an incoming webhook URL ({display_webhook(text)}): it needs the '
                             'path Slack gave (/services/T.../B.../...) and no credentials or fragment')
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise HttpInputError(f'webhook_url has an invalid port ({display_webhook(text)})') from None
    path = parts.path + (f'?{parts.query}' if parts.query else '')
    return urlunsplit((parts.scheme, parts.netloc, '', '', '')), path


def build_message(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The JSON body: ``text`` (tagged with the incident id) and/or ``blocks``.

    With blocks, ``text`` is what notifications and screen readers show, so it is always
    set when there is an incident id, even if only to ``[<incident_id>]``.
    """
    text, blocks, incident = params.get('text'), params.get('blocks'), params.get('incident_id')
    if not text and not blocks:
        raise HttpInputError('text or blocks is required: Slack refuses an empty message (no_text)')
    for index, block in enumerate(blocks or []):
        if not isinstance(block, dict) or not isinstance(block.get('type'), str):
            raise HttpInputError(f"blocks[{index}] must be a dict with a 'type' (Block Kit), got {condense(repr(block), 80)}")
    message: dict[str, t.Any] = {}
    if text or incident:
        message['text'] = tag_incident(text, incident)
    if blocks:
        message['blocks'] = blocks
    return message


class SlackWebhook:
    """Posts to one incoming webhook; ``requests`` lists what was posted, with the path masked."""

    def __init__(self, params: dict[str, t.Any], session: t.Any = None, sleep: t.Callable[[float], None] | None = None) -> None:
        self.url = params.get('webhook_url') or ''
        self.display = display_webhook(self.url)
        origin, self.path = split_webhook(self.url)
        self.http = HttpClient(params, origin, service='Slack webhook', option='webhook_url', session=session, sleep=sleep)
        self.requests: list[str] = []

    @property
    def attempts(self) -> int:
        return self.http.last_attempts

    def post(self, message: dict[str, t.Any]) -> str:
        """Send the message; Slack's answer (``ok``). 429 and 503 are retried, honouring Retry-After."""
        self.requests.append(f'POST {urlsplit(self.display).path}')
        try:
            resp = self.http.send('POST', self.path, json_body=message)
            return self._check(resp)
        except HttpApiError as exc:
            secrets = [self.url, self.path, self.path.rsplit('/', 1)[-1]]
            # The details (Slack's code) are result keys too: a server may echo the webhook path in them.
            details = {key: mask_secrets(value, secrets) if isinstance(value, str) else value
                       for key, value in exc.details.items()}
            raise type(exc)(mask_secrets(str(exc), secrets), **details) from None

    def _check(self, resp: t.Any) -> str:
        code = condense(resp.text or '', 100)
        if resp.status_code == 200:
            if code == 'ok':
                return code
            # A proxy, a captive portal or a URL that is not a webhook can answer 200 too.
            raise HttpApiMismatchError(f'Slack webhook {self.display} answered {status_text(resp)} with '
                                       f'{answer_summary(resp, secrets=[self.url, self.path])} instead of ok, so the message was not delivered - check '
                                       'that webhook_url is a Slack incoming webhook', status=200)
        if code.startswith('<'):
            code = answer_summary(resp, secrets=[self.url, self.path])   # a proxy's error page: its title, not its markup
        hint = CODE_HINTS.get(code)
        said = f'{code} ({hint})' if hint else (code or 'no reason given')
        where = f'Slack webhook {self.display}'
        tries = f' (after {self.attempts} attempts)' if self.attempts > 1 else ''
        if resp.status_code == 429:
            wait = retry_after_seconds(resp.headers.get('Retry-After'))
            asked = f'; Slack asked to retry after {wait:.0f} s' if wait is not None else ''
            raise HttpStatusError(f'{where} refused the message with {status_text(resp)}: {said}{tries}{asked}',
                                  status=429, code=code)
        if resp.status_code in (401, 403):
            raise HttpAuthError(f'{where} refused the message with {status_text(resp)}: {said}', status=resp.status_code,
                                code=code)
        if resp.status_code == 404 and code != 'channel_not_found':
            raise HttpApiMismatchError(f'{where} refused the message with {status_text(resp)}: {said}',
                                       status=404, code=code)
        raise HttpStatusError(f'{where} refused the message with {status_text(resp)}: {said}{tries}',
                              status=resp.status_code, code=code)

    def close(self) -> None:
        self.http.close()
