"""In-process stand-ins for ``requests.Session`` and for Alertmanager's API v2, for the HTTP unit tests.

The fake Alertmanager follows the real one's rules that the modules depend on (verified
against Alertmanager 0.25 in the integration tests): an update with the same matchers of
an active silence keeps its id, any other update expires it and creates a new one, and
an unknown silence id answers 404 with an empty body.
"""
from __future__ import annotations

import datetime
import json
import re
import typing as t
import uuid
from urllib.parse import urlsplit

UTC = datetime.timezone.utc


class FakeResponse:
    def __init__(self, status: int = 200, body: t.Any = None, text: str | None = None,
                 headers: dict[str, str] | None = None, reason: str = '') -> None:
        self.status_code = status
        self.text = json.dumps(body) if text is None and body is not None else (text or '')
        self.headers = dict(headers if headers is not None else
                            ({'Content-Type': 'application/json'} if body is not None else {}))
        self.reason = reason or {200: 'OK', 401: 'Unauthorized', 404: 'Not Found', 410: 'Gone', 429: 'Too Many Requests',
                                 500: 'Internal Server Error', 503: 'Service Unavailable'}.get(status, '')
        self.closed = False

    def iter_content(self, chunk_size: int = 1) -> t.Iterator[bytes]:
        """The body in chunks, as requests streams it (``stream=True``)."""
        data = self.text.encode()
        for start in range(0, len(data), chunk_size):
            yield data[start:start + chunk_size]

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """Records every call; ``handler(method, url, params, json)`` returns a FakeResponse or an exception to raise."""

    def __init__(self, handler: t.Callable[..., t.Any] | list[t.Any]) -> None:
        self.headers: dict[str, str] = {}
        self.auth: t.Any = None
        self.calls: list[dict[str, t.Any]] = []
        self.closed = False
        self._script = list(handler) if isinstance(handler, list) else None
        self._handler = handler if not isinstance(handler, list) else None

    def request(self, method: str, url: str, params: t.Any = None, json: t.Any = None, timeout: t.Any = None,
                verify: t.Any = True, cert: t.Any = None, allow_redirects: bool = True, stream: bool = False) -> FakeResponse:
        self.calls.append({'method': method, 'url': url, 'params': params, 'json': json, 'timeout': timeout,
                           'verify': verify, 'cert': cert})
        out = self._script.pop(0) if self._script is not None else self._handler(method, url, params, json)
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self) -> None:
        self.closed = True


def iso(when: datetime.datetime) -> str:
    return when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.') + f'{when.microsecond // 1000:03d}Z'


def parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


class FakeAlertmanager:
    """Alertmanager API v2 in memory: alerts as given, silences with the real update rules."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, t.Any]] = []
        self.silences: dict[str, dict[str, t.Any]] = {}
        self.posts: list[dict[str, t.Any]] = []
        self.deletes: list[str] = []

    @staticmethod
    def now() -> datetime.datetime:
        return datetime.datetime.now(UTC)

    def state(self, sil: dict[str, t.Any]) -> str:
        now = self.now()
        if parse(sil['endsAt']) <= now:
            return 'expired'
        return 'pending' if parse(sil['startsAt']) > now else 'active'

    def view(self, sil: dict[str, t.Any]) -> dict[str, t.Any]:
        return dict(sil, status={'state': self.state(sil)})

    def add_silence(self, matchers: list[dict[str, t.Any]], created_by: str, comment: str, starts: datetime.datetime,
                    ends: datetime.datetime) -> str:
        sid = str(uuid.uuid4())
        self.silences[sid] = {'id': sid, 'matchers': matchers, 'createdBy': created_by, 'comment': comment,
                              'startsAt': iso(starts), 'endsAt': iso(ends), 'updatedAt': iso(self.now())}
        return sid

    def handle(self, method: str, url: str, params: t.Any, body: t.Any) -> FakeResponse:
        path = urlsplit(url).path
        if method == 'GET' and path.endswith('/api/v2/alerts'):
            return FakeResponse(200, self.alerts)
        if method == 'GET' and path.endswith('/api/v2/silences'):
            return FakeResponse(200, [self.view(s) for s in self.silences.values()])
        found = re.search(r'/api/v2/silence/([^/]+)$', path)
        if found and method == 'GET':
            sil = self.silences.get(found.group(1))
            return FakeResponse(200, self.view(sil)) if sil else FakeResponse(404, text='')
        if found and method == 'DELETE':
            self.deletes.append(found.group(1))
            sil = self.silences.get(found.group(1))
            if sil is None:
                return FakeResponse(500, text='"silence not found"\n', headers={'Content-Type': 'application/json'})
            if self.state(sil) != 'expired':
                sil['endsAt'] = iso(self.now())
            return FakeResponse(200, text='')
        if method == 'POST' and path.endswith('/api/v2/silences'):
            return self.post(body)
        return FakeResponse(404, {'code': 404, 'message': f'path {path} was not found'})

    @staticmethod
    def matches_empty(matcher: dict[str, t.Any]) -> bool:
        hit = re.fullmatch(matcher['value'], '') is not None if matcher['isRegex'] else matcher['value'] == ''
        return hit if matcher['isEqual'] else not hit

    def post(self, body: dict[str, t.Any]) -> FakeResponse:
        self.posts.append(body)
        if all(self.matches_empty(m) for m in body['matchers']):
            return FakeResponse(400, text='"silence invalid: at least one matcher must not match the empty string"',
                                headers={'Content-Type': 'application/json'})
        if parse(body['endsAt']) <= parse(body['startsAt']):
            return FakeResponse(400, text='"Failed to create silence: start time must be before end time"')
        prev = self.silences.get(body.get('id') or '')
        if body.get('id') and prev is None:
            return FakeResponse(404, text='"silence not found"')
        if prev is not None and self.state(prev) == 'active' and prev['matchers'] == body['matchers']:
            prev.update({k: body[k] for k in ('endsAt', 'comment', 'createdBy')}, updatedAt=iso(self.now()))
            return FakeResponse(200, {'silenceID': prev['id']})
        if prev is not None and self.state(prev) != 'expired':
            prev['endsAt'] = iso(self.now())
        starts = max(parse(body['startsAt']), self.now())
        sid = self.add_silence(body['matchers'], body['createdBy'], body['comment'], starts, parse(body['endsAt']))
        return FakeResponse(200, {'silenceID': sid})
