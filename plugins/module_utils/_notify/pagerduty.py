# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""PagerDuty Events API v2: build, validate and send one event.

Every event carries a ``dedup_key`` (the incident id), which is what makes sending it
again safe: PagerDuty folds a repeated trigger into the open incident and acknowledge
and resolve are idempotent. So unlike other POSTs, an event is retried after a ``5xx``
or a lost connection too, not only after ``429`` (PagerDuty drops a throttled event).
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    MAX_RETRY_AFTER,
    HttpApiError,
    HttpApiMismatchError,
    HttpClient,
    HttpInputError,
    HttpStatusError,
    HttpTlsError,
    HttpUnreachableError,
    answer_summary,
    backoff_delay,
    condense,
    retry_after_seconds,
    server_reason,
    status_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK, mask_secrets

DEFAULT_API_URL = 'https://events.pagerduty.com'
ENQUEUE = '/v2/enqueue'
ACTIONS = ('trigger', 'acknowledge', 'resolve')
SEVERITIES = ('critical', 'error', 'warning', 'info')
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PAYLOAD_OPTIONS = ('summary', 'source', 'severity', 'component', 'group', 'event_class', 'custom_details', 'timestamp')


def build_event(params: dict[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
    """The Events API v2 body for the module's options, and warnings; raises HttpInputError when invalid."""
    action = params.get('event_action') or 'trigger'
    if action not in ACTIONS:
        raise HttpInputError(f"event_action must be one of {', '.join(ACTIONS)}, got {action!r}")
    key = (params.get('routing_key') or '').strip()
    if not key:
        raise HttpInputError('routing_key is required (or set the PAGERDUTY_ROUTING_KEY environment variable)')
    dedup = params.get('dedup_key') or params.get('incident_id')
    if not dedup:
        raise HttpInputError('incident_id or dedup_key is required: it is the dedup_key that ties trigger, '
                             'acknowledge and resolve to one PagerDuty incident')
    if len(dedup) > MAX_DEDUP_KEY:
        raise HttpInputError(f'dedup_key must be at most {MAX_DEDUP_KEY} characters, got {len(dedup)}')
    event: dict[str, t.Any] = {'routing_key': key, 'event_action': action, 'dedup_key': dedup}
    warnings: list[str] = []
    if action != 'trigger':
        ignored = [name for name in PAYLOAD_OPTIONS if params.get(name) not in (None, {}, '')]
        if ignored:
            warnings.append(f"{', '.join(ignored)} only apply to event_action=trigger; PagerDuty ignores them "
                            f'for {action}, so they were not sent')
        return event, warnings
    missing = [name for name in ('summary', 'source', 'severity') if not params.get(name)]
    if missing:
        raise HttpInputError(f"event_action=trigger requires {', '.join(missing)}")
    if params['severity'] not in SEVERITIES:
        raise HttpInputError(f"severity must be one of {', '.join(SEVERITIES)}, got {params['severity']!r}")
    if len(params['summary']) > MAX_SUMMARY:
        raise HttpInputError(f"summary must be at most {MAX_SUMMARY} characters, got {len(params['summary'])}")
    payload: dict[str, t.Any] = {name: params[name] for name in ('summary', 'source', 'severity')}
    for name in ('component', 'group', 'timestamp'):
        if params.get(name):
            payload[name] = params[name]
    if params.get('event_class'):
        payload['class'] = params['event_class']
    details = dict(params.get('custom_details') or {})
    if params.get('incident_id'):
        details.setdefault('incident_id', params['incident_id'])
    if details:
        payload['custom_details'] = details
    event['payload'] = payload
    return event, warnings


def masked(event: dict[str, t.Any]) -> dict[str, t.Any]:
    """The event as it may be shown: the routing key replaced by the mask."""
    return dict(event, routing_key=MASK)


class PagerDutyClient:
    """Sends events to one Events API endpoint; ``attempts`` and ``requests`` say what happened."""

    def __init__(self, params: dict[str, t.Any], session: t.Any = None, sleep: t.Callable[[float], None] | None = None) -> None:
        self.http = HttpClient(params, params.get('api_url') or DEFAULT_API_URL, service='PagerDuty Events API',
                               option='api_url', session=session, sleep=sleep)
        self.retries = self.http.retries
        self.sleep = sleep if sleep is not None else self.http._sleep   # pylint: disable=protected-access
        self.attempts = 0

    @property
    def requests(self) -> list[str]:
        return self.http.requests

    def enqueue(self, event: dict[str, t.Any]) -> dict[str, t.Any]:
        """POST the event, retrying throttling, 5xx and lost connections; the parsed 202 answer."""
        secret = event.get('routing_key')
        try:
            resp = self._post(event)
            return self._check(resp, event)
        except HttpApiError as exc:
            details = {key: [mask_secrets(str(item), [secret]) for item in value] if isinstance(value, list) else value
                       for key, value in exc.details.items()}
            raise type(exc)(mask_secrets(str(exc), [secret]), **details) from None

    def _post(self, event: dict[str, t.Any]) -> t.Any:
        while True:
            self.attempts += 1
            try:
                resp = self.http.send('POST', ENQUEUE, json_body=event, retries=0)
            except HttpTlsError:
                raise
            except HttpUnreachableError as exc:
                if self.attempts > self.retries:
                    raise HttpUnreachableError(f'{exc} (after {self.attempts} attempts)') from None
                self.sleep(backoff_delay(self.attempts, self.http.retry_delay))
                continue
            if resp.status_code not in RETRY_STATUSES or self.attempts > self.retries:
                return resp
            wait = retry_after_seconds(resp.headers.get('Retry-After'))
            if wait is not None and wait > MAX_RETRY_AFTER:
                return resp
            self.sleep(backoff_delay(self.attempts, self.http.retry_delay, wait))

    def _check(self, resp: t.Any, event: dict[str, t.Any]) -> dict[str, t.Any]:
        what = f"{event['event_action']} event for dedup_key {event['dedup_key']!r}"
        tries = f' (after {self.attempts} attempts)' if self.attempts > 1 else ''
        status = resp.status_code
        body = _json(resp)
        if 200 <= status < 300:   # 202 is the documented answer; another 2xx is judged by its body the same way
            if isinstance(body, dict) and body.get('status') == 'success':
                return body
            shown = answer_summary(resp, secrets=[event.get('routing_key')])
            raise HttpApiMismatchError(f'{self.http.display} answered the {what} with {status_text(resp)} and {shown}, '
                                       'not the Events API v2 answer {"status": "success", ...}, so PagerDuty did not '
                                       'confirm it - check api_url', status=status)
        if status == 400:
            errors = [condense(str(e)) for e in body.get('errors') or []] if isinstance(body, dict) else []
            said = (body.get('message') if isinstance(body, dict) else None) or server_reason(resp) or 'invalid event'
            detail = f": {'; '.join(errors)}" if errors else ''
            raise HttpStatusError(f'PagerDuty rejected the {what} with {status_text(resp)}: {said}{detail}',
                                  status=status, errors=errors)
        if status == 429:
            raise HttpStatusError(f'PagerDuty throttled the {what} ({status_text(resp)}: {server_reason(resp)}){tries}; '
                                  'the event was not accepted - too many events for this routing key, retry later',
                                  status=status)
        if status in (404, 405):
            raise HttpApiMismatchError(f'{self.http.display} is not the PagerDuty Events API v2: POST {ENQUEUE} answered '
                                       f'{status_text(resp)} - check api_url', status=status)
        said = server_reason(resp)
        raise HttpStatusError(f'PagerDuty did not accept the {what}: {self.http.where()} answered {status_text(resp)}'
                              f"{': ' + said if said else ''}{tries}", status=status)

    def close(self) -> None:
        self.http.close()


def _json(resp: t.Any) -> t.Any:
    try:
        return json.loads(resp.text or '')
    except ValueError:
        return None
