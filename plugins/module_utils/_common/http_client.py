# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""HTTP API client shared by the collection's HTTP modules (Alertmanager, health probes).

The option spec lives here once (``HTTP_API_ARGS``) and is documented once in the
``trdrhub.incident.http_api`` doc fragment. Every failure a user can meet is raised
as one ``HttpApiError`` subclass whose text is the final ``msg``: it names the URL
(never with credentials), the request, and quotes the server's reason, so a
module's ``main()`` needs a single ``except`` and no traceback reaches a playbook.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import re
import ssl
import time
import typing as t
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_errors import (  # noqa: F401  # pylint: disable=unused-import
    HttpApiError,
    HttpApiMismatchError,
    HttpAuthError,
    HttpInputError,
    HttpMalformedJsonError,
    HttpNotFoundError,
    HttpStatusError,
    HttpTlsError,
    HttpTooLargeError,
    HttpUnreachableError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import mask_secrets
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Library
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded

with Library.optional('requests') as REQUESTS:
    import requests

USER_AGENT = 'trdrhub.incident (ansible module)'
MAX_BACKOFF = 30.0
# A server asking for a longer pause than this is treated as "not now": waiting
# minutes inside one task would hold the whole incident playbook.
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses that mean "not processed": safe to retry even for a non-idempotent POST.
RETRY_STATUSES_UNSAFE = frozenset({429, 503})
IDEMPOTENT = frozenset({'GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'})
REASON_MAX = 300
# No API answer this collection reads comes near this; a larger body is not read into
# memory (a proxy's error page in a loop, a wrong URL serving a file, a broken server).
MAX_BODY_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024
_sleep = time.sleep  # replaced by the unit tests

HTTP_API_ARGS: dict[str, dict[str, t.Any]] = {
    'url_username': {'type': 'str', 'aliases': ['user']},
    'url_password': {'type': 'str', 'no_log': True, 'aliases': ['password']},
    'bearer_token': {'type': 'str', 'no_log': True},
    'validate_certs': {'type': 'bool', 'default': True},
    'ca_path': {'type': 'path'},
    'client_cert': {'type': 'path'},
    'client_key': {'type': 'path'},
    'timeout': bounded({'type': 'float', 'default': 10}, above=0, maximum=MAX_SOCKET_TIMEOUT),
    'retries': bounded({'type': 'int', 'default': 2}, minimum=0),
    'retry_delay': bounded({'type': 'float', 'default': 1}, minimum=0),
}
HTTP_API_MUTUALLY_EXCLUSIVE: list[list[str]] = [['url_username', 'bearer_token'], ['url_password', 'bearer_token']]
HTTP_API_REQUIRED_TOGETHER: list[list[str]] = [['url_username', 'url_password']]
HTTP_API_REQUIRED_BY: dict[str, list[str]] = {'client_key': ['client_cert']}
# The three above as the module keywords (run_module(..., **HTTP_API_CONSTRAINTS)).
HTTP_API_CONSTRAINTS: dict[str, t.Any] = dict(mutually_exclusive=HTTP_API_MUTUALLY_EXCLUSIVE, required_together=HTTP_API_REQUIRED_TOGETHER,
                                              required_by=HTTP_API_REQUIRED_BY)


def size_text(count: int) -> str:
    """A byte count in words: ``16 MiB``, ``256 KiB``, ``900 bytes``."""
    for unit, size in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if count >= size:
            value = count / size
            return f'{value:.0f} {unit}' if value == int(value) else f'{value:.1f} {unit}'
    return f'{count} bytes'


def split_base_url(url: str, option: str = 'url') -> tuple[str, str]:
    """(scheme://host:port, /prefix) of a base URL; credentials in it are refused.

    A URL with user:password@ would put the password in the task's invocation and
    in every error message, so it must come through the no_log options instead.
    """
    text = (url or '').strip()
    parts = urlsplit(text)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise HttpInputError(f'{option} must be an http:// or https:// URL with a host name, got {display_url(text)!r}')
    if parts.username or parts.password:
        raise HttpInputError(f'{option} must not contain credentials ({display_url(text)}); '
                             'use url_username/url_password or bearer_token')
    if parts.query or parts.fragment:
        raise HttpInputError(f'{option} must not have a query string or fragment, got {display_url(text)!r}')
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise HttpInputError(f'{option} has an invalid port: {display_url(text)!r} ({exc})') from None
    return urlunsplit((parts.scheme, parts.netloc, '', '', '')), parts.path.rstrip('/')


def display_url(url: str) -> str:
    """The URL with any user:password@ replaced, for messages."""
    parts = urlsplit(url)
    if '@' not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, '***@' + parts.netloc.rpartition('@')[2], parts.path, parts.query, parts.fragment))


def retry_after_seconds(value: str | None, now: datetime.datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP-date); None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, base: float, retry_after: float | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): Retry-After wins, else exponential."""
    if retry_after is not None:
        return retry_after
    return min(MAX_BACKOFF, base * (2 ** (attempt - 1)))


_POOL_PREFIX = re.compile(r"HTTPS?ConnectionPool\(host=[^)]*\): ")
_CAUSED_BY = re.compile(r"Max retries exceeded with url: \S+ \(Caused by \w+\((['\"])(.*)\1\)\)$")
_TIMEOUT_SUFFIX = re.compile(r" \((read|connect) timeout=[^)]*\)")
_CONNECTION_BROKEN = re.compile(r"^\(?'?Connection broken: (\w+)\(.*$")


def clean_reason(text: str) -> str:
    """urllib3's text without its pool, URL and repr noise: ``Read timed out.``"""
    text = condense(text)
    found = _CAUSED_BY.search(_POOL_PREFIX.sub('', text))
    if found:
        text = found.group(2)
    text = _TIMEOUT_SUFFIX.sub('', _POOL_PREFIX.sub('', text))
    broken = _CONNECTION_BROKEN.match(text)
    if broken:
        text = f'the connection broke in the middle of the answer ({broken.group(1)})'
    return text


def transport_reason(exc: BaseException) -> str:
    """The innermost human reason of a requests/urllib3 exception chain ("Connection refused")."""
    seen: set[int] = set()
    todo: list[t.Any] = [exc]
    best = ''
    while todo:
        cur = todo.pop(0)
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return f'certificate verify failed: {cur.verify_message}' if cur.verify_message else str(cur)
        if isinstance(cur, OSError) and getattr(cur, 'strerror', None) and not isinstance(cur, ssl.SSLError):
            return str(cur.strerror)
        if isinstance(cur, BaseException):
            best = best or clean_reason(str(cur))
            todo.extend([cur.__cause__, cur.__context__, getattr(cur, 'reason', None)])
            todo.extend(arg for arg in cur.args if isinstance(arg, BaseException))
    return best or type(exc).__name__


_TITLE = re.compile(r'<title[^>]*>(.*?)</title>', re.I | re.S)


def condense(text: str, limit: int = REASON_MAX) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def server_reason(resp: t.Any) -> str:
    """What the server said: a JSON ``message``/``error`` field, a JSON string, an HTML page's title, or the text."""
    text = resp.text or ''
    if text.lstrip()[:1] == '<' or 'html' in (resp.headers.get('Content-Type', '') or '').lower():
        title = _TITLE.search(text)
        return f'an HTML page ({condense(title.group(1), 80)!r})' if title else 'an HTML page'
    try:
        body = json.loads(text)
    except ValueError:
        return condense(text)
    if isinstance(body, dict):
        for key in ('message', 'error', 'detail', 'msg'):
            if body.get(key):
                return condense(str(body[key]))
    if isinstance(body, str):
        return condense(body)
    return condense(text)


def describe_json(body: t.Any, limit: int = 80) -> str:
    """A parsed JSON answer in words, short: ``an empty body``, ``JSON {"status": "ok"}``."""
    if body is None:
        return 'an empty body'
    return f'JSON {condense(json.dumps(body, sort_keys=True, default=str), limit)}'


def answer_summary(resp: t.Any, limit: int = 80, secrets: t.Iterable[str | None] = ()) -> str:
    """What a server sent back, in a few words: an HTML page (with its title), JSON or text, cut short.

    ``secrets`` are masked before the text is cut, so no part of one can remain.
    """
    text = mask_secrets(resp.text or '', secrets, min_length=1)
    if not text.strip():
        return 'an empty body'
    ctype = (resp.headers.get('Content-Type', '') or '').lower()
    if 'html' in ctype or text.lstrip()[:1] == '<':
        title = _TITLE.search(text)
        return f'an HTML page ({condense(title.group(1), limit)!r})' if title else 'an HTML page'
    try:
        return describe_json(json.loads(text), limit)
    except ValueError:
        return repr(condense(text, limit))


def status_text(resp: t.Any) -> str:
    return f'{resp.status_code} {resp.reason}'.strip() if getattr(resp, 'reason', None) else str(resp.status_code)


class HttpClient:
    """A requests session bound to one base URL, plus the requests made (reported as ``requests``)."""

    def __init__(self, params: dict[str, t.Any], base_url: str, service: str = 'HTTP API', option: str = 'url',
                 session: t.Any = None, sleep: t.Callable[[float], None] | None = None) -> None:
        self.origin, self.prefix = split_base_url(base_url, option)
        self.display = self.origin + self.prefix
        self.service = service
        self.timeout = params.get('timeout') or 10
        self.retries = params.get('retries') if params.get('retries') is not None else 2
        self.retry_delay = params.get('retry_delay') if params.get('retry_delay') is not None else 1
        self.requests: list[str] = []
        # Masked in every message: a server may echo the credentials it was sent.
        self.secrets: list[str] = sorted(filter(None, [params.get('bearer_token'), params.get('url_password')]),
                                         key=len, reverse=True)
        self.max_body = MAX_BODY_BYTES
        self.last_attempts = 0
        self.last_latency_ms: float | None = None
        self._sleep = sleep if sleep is not None else _sleep
        self.session = session if session is not None else requests.Session()
        self.session.headers['User-Agent'] = USER_AGENT
        if params.get('url_username') is not None:
            self.session.auth = (params['url_username'], params.get('url_password') or '')
        if params.get('bearer_token'):
            self.session.headers['Authorization'] = f"Bearer {params['bearer_token']}"
        # Passed with every request, not set on the session: requests lets REQUESTS_CA_BUNDLE and
        # CURL_CA_BUNDLE override a session's verify, which would silently ignore ca_path.
        self.verify: t.Any = (params.get('ca_path') or True) if params.get('validate_certs', True) else False
        self.cert: t.Any = None
        if params.get('client_cert'):
            cert = params['client_cert']
            self.cert = (cert, params['client_key']) if params.get('client_key') else cert

    def service_name(self) -> str:
        """The service with its article: ``an Alertmanager API v2``, ``a Statuspage API``."""
        return f"{'an' if self.service[:1].lower() in 'aeiou' else 'a'} {self.service}" if self.service else 'the API'

    def url_for(self, path: str) -> str:
        return self.origin + self.prefix + path

    def where(self) -> str:
        return f'{self.service} at {self.display}' if self.service else self.display

    def send(self, method: str, path: str, *, params: t.Any = None, json_body: t.Any = None,
             timeout: float | None = None, retries: int | None = None) -> t.Any:
        """One logical request: retried on connection errors, 5xx and 429 (honouring Retry-After).

        A POST is retried only when the server cannot have processed it (connection
        refused, 429, 503): replaying a POST that timed out could create a duplicate.
        Returns the last response, whatever its status; raises only when there was none.
        """
        self.requests.append(f'{method} {self.prefix}{path}')
        retries = self.retries if retries is None else retries
        timeout = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            attempt += 1
            self.last_attempts = attempt
            started = time.monotonic()
            try:
                resp = self.session.request(method, self.url_for(path), params=params, json=json_body, timeout=timeout,
                                            verify=self.verify, cert=self.cert, allow_redirects=True, stream=True)
                self._read_capped(resp, method, path)
            except requests.exceptions.SSLError as exc:
                raise HttpTlsError(f'TLS handshake with {self.where()} failed for {method} {self.prefix}{path}: '
                                   f'{transport_reason(exc)} (set ca_path to the CA that signed the server '
                                   'certificate, or validate_certs=false to skip verification)') from None
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                raise HttpInputError(f'Invalid URL for {self.where()}: {transport_reason(exc)}') from None
            except requests.exceptions.RequestException as exc:
                retry_ok = method in IDEMPOTENT or isinstance(exc, requests.exceptions.ConnectTimeout) or (
                    isinstance(exc, requests.exceptions.ConnectionError)
                    and not isinstance(exc, requests.exceptions.ReadTimeout)
                    and 'refused' in transport_reason(exc).lower())
                if attempt <= retries and retry_ok:
                    self._sleep(backoff_delay(attempt, self.retry_delay))
                    continue
                reason = transport_reason(exc)
                if isinstance(exc, requests.exceptions.Timeout):
                    reason = f'timed out after {timeout:g} s ({reason})'
                raise HttpUnreachableError(f'Cannot reach {self.where()}: {method} {self.prefix}{path} failed: '
                                           f'{reason}{self._attempts(attempt)}') from None
            except OSError as exc:
                # requests raises plain OSError for an unreadable ca_path/client_cert/client_key.
                raise HttpInputError(f'Cannot use the TLS files for {self.where()}: {condense(str(exc))}') from None
            self.last_latency_ms = round((time.monotonic() - started) * 1000, 3)
            allowed = RETRY_STATUSES if method in IDEMPOTENT else RETRY_STATUSES_UNSAFE
            if attempt > retries or resp.status_code not in allowed:
                return resp
            wait = retry_after_seconds(resp.headers.get('Retry-After'))
            if wait is not None and wait > MAX_RETRY_AFTER:
                return resp
            self._sleep(backoff_delay(attempt, self.retry_delay, wait))

    def _read_capped(self, resp: t.Any, method: str, path: str) -> None:
        """Read the body into ``resp`` (as requests would), but never more than ``max_body`` bytes."""
        limit = self.max_body
        declared = (resp.headers.get('Content-Length') or '').strip()
        total, chunks = 0, []
        if not (declared.isdigit() and int(declared) > limit):
            for chunk in resp.iter_content(_CHUNK):
                total += len(chunk)
                if total > limit:
                    break
                chunks.append(chunk)
            else:
                resp._content = b''.join(chunks)   # pylint: disable=protected-access
                return
        resp.close()
        size = f'; it declares {size_text(int(declared))}' if declared.isdigit() and total <= limit else ''
        raise HttpTooLargeError(f'{self.where()}: {method} {self.prefix}{path} answered {status_text(resp)} with a body '
                                f'larger than {size_text(limit)} ({limit} bytes{size}), far more than any answer of this '
                                'API; reading stopped there - check the URL', status=resp.status_code)

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.secrets, min_length=1)

    @staticmethod
    def _attempts(attempt: int) -> str:
        return f' (after {attempt} attempts)' if attempt > 1 else ''

    def request_json(self, method: str, path: str, *, ok: t.Iterable[int] = (200,), missing: str = 'api',
                     **kwargs: t.Any) -> t.Any:
        """Send and return the parsed JSON answer (None for an empty one); map every failure.

        ``missing`` says what a 404/410 means here: ``api`` (the server does not
        serve this API at all) or ``object`` (the API is there, the object is not).
        """
        resp = self.send(method, path, **kwargs)
        self.check(resp, method, path, ok=ok, missing=missing)
        return self.parse_json(resp, method, path)

    def check(self, resp: t.Any, method: str, path: str, *, ok: t.Iterable[int] = (200,), missing: str = 'api') -> None:
        status, req = resp.status_code, f'{method} {self.prefix}{path}'
        if status in tuple(ok):
            return
        said = self.mask(server_reason(resp))
        said = f': {said}' if said else ''
        if status in (401, 403):
            raise HttpAuthError(f'{self.where()} refused {req} with {status_text(resp)}{said} - check url_username/'
                                'url_password or bearer_token', status=status)
        if status in (404, 410) and missing == 'api':
            raise HttpApiMismatchError(f'{self.display} is not {self.service_name()}: {req} answered {status_text(resp)}'
                                       f'{said}', status=status)
        if status == 404:
            raise HttpNotFoundError(f'{self.where()}: {req} answered {status_text(resp)}{said}', status=status)
        extra = self._attempts(self.last_attempts)
        wait = retry_after_seconds(resp.headers.get('Retry-After')) if status in RETRY_STATUSES else None
        if wait is not None and wait > MAX_RETRY_AFTER:
            extra += f' (the server asked to retry after {wait:.0f} s, longer than {MAX_RETRY_AFTER:.0f} s)'
        raise HttpStatusError(f'{self.where()}: {req} answered {status_text(resp)}{said}{extra}', status=status)

    def parse_json(self, resp: t.Any, method: str, path: str) -> t.Any:
        text = resp.text or ''
        if not text.strip():
            return None
        ctype = resp.headers.get('Content-Type', '') or ''
        try:
            return json.loads(text)
        except ValueError as exc:
            req = f'{method} {self.prefix}{path}'
            if 'json' in ctype.lower():
                raise HttpMalformedJsonError(f'{self.where()}: {req} answered malformed JSON ({exc}): '
                                             f'{self.mask(condense(text, 120))!r}') from None
            raise HttpApiMismatchError(f'{self.display} is not {self.service_name()}: {req} answered '
                                       f'{answer_summary(resp, secrets=self.secrets)}, not JSON') from None

    def close(self) -> None:
        self.session.close()
