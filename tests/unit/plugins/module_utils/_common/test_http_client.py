# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTTP client: base URLs, Retry-After and backoff, and one clear exception per failure kind."""

from __future__ import annotations

import datetime
import ssl

import pytest
import requests
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpAuthError,
    HttpClient,
    HttpInputError,
    HttpMalformedJsonError,
    HttpNotFoundError,
    HttpStatusError,
    HttpTlsError,
    HttpUnreachableError,
)

SECRET = 'Sup3r$ecret'
UTC = datetime.timezone.utc


def params(**overrides):
    base = {name: spec.get('default') for name, spec in _http.HTTP_API_ARGS.items()}
    base.update(overrides)
    return base


def client(handler, sleeps=None, **overrides):
    session = FakeSession(handler)
    made = HttpClient(params(**overrides), overrides.pop('url', 'http://am.example:9093'), service='Alertmanager API v2',
                      session=session, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return made, session


@pytest.mark.parametrize('url, origin, prefix', [
    ('http://am:9093', 'http://am:9093', ''),
    ('http://am:9093/', 'http://am:9093', ''),
    ('https://ops.example.com/alertmanager/', 'https://ops.example.com', '/alertmanager'),
    ('  http://[::1]:9093/am  ', 'http://[::1]:9093', '/am'),
])
def test_base_url_split(url, origin, prefix):
    assert _http.split_base_url(url) == (origin, prefix)


@pytest.mark.parametrize('url, needle', [
    ('am:9093', 'must be an http:// or https:// URL'),
    ('ftp://am', 'must be an http:// or https:// URL'),
    ('http://', 'must be an http:// or https:// URL'),
    (f'http://ops:{SECRET}@am:9093', 'must not contain credentials'),
    ('http://am:9093/?x=1', 'query string'),
    ('http://am:99999', 'invalid port'),
])
def test_bad_base_url_is_one_clear_message_without_the_password(url, needle):
    with pytest.raises(HttpInputError, match=needle) as caught:
        _http.split_base_url(url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize('header, expected', [
    (None, None), ('', None), ('7', 7.0), (' 1.5 ', 1.5), ('-3', None), ('soon', None),
    ('Wed, 15 Jan 2025 14:30:30 GMT', 30.0), ('Wed, 15 Jan 2025 14:00:00 GMT', 0.0),
])
def test_retry_after_seconds_and_http_dates(header, expected):
    now = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)
    assert _http.retry_after_seconds(header, now=now) == expected


def test_backoff_is_exponential_capped_and_retry_after_wins():
    assert [_http.backoff_delay(n, 1) for n in (1, 2, 3, 6, 10)] == [1, 2, 4, 30, 30]
    assert _http.backoff_delay(3, 1, retry_after=7) == 7


def test_retry_after_is_honoured_on_429_then_success():
    sleeps = []
    made, session = client([FakeResponse(429, text='slow down', headers={'Retry-After': '3'}),
                            FakeResponse(503, text='busy'), FakeResponse(200, [])], sleeps=sleeps, retry_delay=0.5)
    assert made.request_json('GET', '/api/v2/alerts') == []
    assert sleeps == [3.0, 1.0]          # Retry-After, then the second backoff step (0.5 * 2)
    assert len(session.calls) == 3
    assert made.requests == ['GET /api/v2/alerts']   # one logical request
    assert made.last_attempts == 3


def test_retries_exhausted_quote_the_server_and_count_attempts():
    made, _session = client([FakeResponse(503, text='overloaded')] * 3)
    with pytest.raises(HttpStatusError) as caught:
        made.request_json('GET', '/api/v2/alerts')
    assert str(caught.value) == ('Alertmanager API v2 at http://am.example:9093: GET /api/v2/alerts answered '
                                 '503 Service Unavailable: overloaded (after 3 attempts)')
    assert caught.value.details == {'status': 503}


def test_a_long_retry_after_gives_up_at_once_and_says_so():
    sleeps = []
    made, session = client([FakeResponse(429, text='quota', headers={'Retry-After': '3600'})], sleeps=sleeps)
    with pytest.raises(HttpStatusError, match='asked to retry after 3600 s'):
        made.request_json('GET', '/api/v2/alerts')
    assert sleeps == [] and len(session.calls) == 1


def test_post_is_not_replayed_after_a_500_but_is_after_429():
    made, session = client([FakeResponse(500, text='boom')])
    with pytest.raises(HttpStatusError, match='500'):
        made.request_json('POST', '/api/v2/silences', json_body={})
    assert len(session.calls) == 1
    made, session = client([FakeResponse(429, text=''), FakeResponse(200, {'silenceID': 'x'})])
    assert made.request_json('POST', '/api/v2/silences', json_body={}) == {'silenceID': 'x'}


def test_post_is_not_replayed_after_a_read_timeout():
    made, session = client([requests.exceptions.ReadTimeout('read timed out')] * 3)
    with pytest.raises(HttpUnreachableError, match='timed out after 10 s'):
        made.request_json('POST', '/api/v2/silences', json_body={})
    assert len(session.calls) == 1


def _refused():
    inner = ConnectionRefusedError(111, 'Connection refused')
    outer = requests.exceptions.ConnectionError('HTTPConnectionPool: Max retries exceeded')
    outer.__context__ = inner
    return outer


def test_unreachable_names_the_url_and_the_reason_after_retries():
    made, session = client([_refused(), _refused(), _refused()])
    with pytest.raises(HttpUnreachableError) as caught:
        made.request_json('GET', '/api/v2/alerts')
    assert str(caught.value) == ('Cannot reach Alertmanager API v2 at http://am.example:9093: GET /api/v2/alerts '
                                 'failed: Connection refused (after 3 attempts)')


def test_tls_verification_failure_is_its_own_message_and_not_retried():
    cause = ssl.SSLCertVerificationError(1, 'certificate verify failed')
    cause.verify_message = 'self-signed certificate'
    exc = requests.exceptions.SSLError('bad handshake')
    exc.__context__ = cause
    made, session = client([exc], url='https://am.example')
    with pytest.raises(HttpTlsError, match='certificate verify failed: self-signed certificate.*ca_path'):
        made.request_json('GET', '/api/v2/alerts')
    assert len(session.calls) == 1


@pytest.mark.parametrize('resp, missing, exc_type, needle', [
    (FakeResponse(401, text='Unauthorized\n'), 'api', HttpAuthError,
     'refused GET /api/v2/alerts with 401 Unauthorized: Unauthorized - check url_username'),
    (FakeResponse(403, {'message': 'forbidden for oncall'}), 'api', HttpAuthError, 'forbidden for oncall'),
    (FakeResponse(410, text='gone'), 'api', HttpApiMismatchError,
     'http://am.example:9093 is not an Alertmanager API v2: GET /api/v2/alerts answered 410 Gone: gone'),
    (FakeResponse(404, {'code': 404, 'message': 'path /api/v2/alerts was not found'}), 'api', HttpApiMismatchError,
     'is not an Alertmanager API v2'),
    (FakeResponse(404, text=''), 'object', HttpNotFoundError, 'answered 404 Not Found'),
    (FakeResponse(400, text='"silence invalid: at least one matcher must not match the empty string"'), 'api',
     HttpStatusError, '400: silence invalid: at least one matcher must not match the empty string'),
    (FakeResponse(200, text='<html>login</html>', headers={'Content-Type': 'text/html'}), 'api', HttpApiMismatchError,
     'answered an HTML page, not JSON'),
    (FakeResponse(200, text='[{"labels": ', headers={'Content-Type': 'application/json'}), 'api',
     HttpMalformedJsonError, 'answered malformed JSON'),
])
def test_each_failure_kind_is_one_exception_with_one_message(resp, missing, exc_type, needle):
    made, _session = client([resp])
    with pytest.raises(exc_type) as caught:
        made.request_json('GET', '/api/v2/alerts', missing=missing)
    assert needle in str(caught.value)
    assert caught.type is exc_type   # the exact kind, not merely a subclass


def test_auth_options_reach_the_session_and_never_the_requests_list():
    made, session = client([FakeResponse(200, [])], url_username='ops', url_password=SECRET)
    made.request_json('GET', '/api/v2/alerts')
    assert session.auth == ('ops', SECRET)
    assert 'Authorization' not in session.headers
    made, session = client([FakeResponse(200, [])], bearer_token=SECRET)
    made.request_json('GET', '/api/v2/alerts')
    assert session.headers['Authorization'] == f'Bearer {SECRET}'
    assert SECRET not in repr(made.requests)


@pytest.mark.parametrize('overrides, verify, cert', [
    ({}, True, None),
    ({'validate_certs': False, 'ca_path': '/ca.pem'}, False, None),
    ({'ca_path': '/ca.pem'}, '/ca.pem', None),
    ({'client_cert': '/c.pem'}, True, '/c.pem'),
    ({'client_cert': '/c.pem', 'client_key': '/k.pem'}, True, ('/c.pem', '/k.pem')),
])
def test_tls_options_go_with_every_request(overrides, verify, cert):
    made, session = client([FakeResponse(200, [])], **overrides)
    made.request_json('GET', '/api/v2/alerts')
    # per request: a session-level verify would lose against REQUESTS_CA_BUNDLE in the environment
    assert (session.calls[0]['verify'], session.calls[0]['cert']) == (verify, cert)


def test_path_prefix_is_kept_in_urls_and_requests():
    made, session = client([FakeResponse(200, [])], url='https://ops.example.com/alertmanager/')
    made.request_json('GET', '/api/v2/alerts', params=[('active', 'true')])
    assert session.calls[0]['url'] == 'https://ops.example.com/alertmanager/api/v2/alerts'
    assert session.calls[0]['params'] == [('active', 'true')]
    assert made.requests == ['GET /alertmanager/api/v2/alerts']


def test_empty_answer_is_none():
    made, _session = client([FakeResponse(200, text='')])
    assert made.request_json('DELETE', '/api/v2/silence/x', missing='object') is None


# -- a body far larger than any answer is never read whole ------------------------------

class CountingResponse(FakeResponse):
    """Counts the chunks handed out, to prove reading stopped at the cap."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chunks_read = 0

    def iter_content(self, chunk_size=1):
        for chunk in super().iter_content(chunk_size):
            self.chunks_read += 1
            yield chunk


def test_a_body_over_the_cap_stops_the_read_and_says_so():
    resp = CountingResponse(200, text='[' + '{"a": 1},' * 200_000 + '{}]')
    made, dummy = client(lambda *a: resp)
    made.max_body = 128 * 1024
    with pytest.raises(_http.HttpTooLargeError) as caught:
        made.request_json('GET', '/api/v2/alerts')
    assert resp.chunks_read == 3 and resp.closed   # 64 KiB chunks: two kept, the third crosses the cap
    assert str(caught.value) == ('Alertmanager API v2 at http://am.example:9093: GET /api/v2/alerts answered 200 OK with a '
                                 'body larger than 128 KiB (131072 bytes), far more than any answer of this API; reading '
                                 'stopped there - check the URL')


def test_a_declared_length_over_the_cap_reads_nothing():
    resp = CountingResponse(200, text='[]', headers={'Content-Length': str(1 << 30), 'Content-Type': 'application/json'})
    made, dummy = client(lambda *a: resp)
    with pytest.raises(_http.HttpTooLargeError, match=r'larger than 16 MiB \(16777216 bytes; it declares 1 GiB\)'):
        made.request_json('GET', '/api/v2/alerts')
    assert resp.chunks_read == 0


def test_a_body_under_the_cap_is_read_as_usual():
    made, dummy = client(lambda *a: FakeResponse(200, body=[{'labels': {}}] * 1000))
    assert len(made.request_json('GET', '/api/v2/alerts')) == 1000


@pytest.mark.parametrize('text, reason', [
    ("HTTPConnectionPool(host='127.0.0.1', port=9093): Read timed out. (read timeout=0.5)", 'Read timed out.'),
    ("HTTPSConnectionPool(host='k8s', port=6443): Max retries exceeded with url: /version (Caused by "
     "ReadTimeoutError(\"HTTPSConnectionPool(host='k8s', port=6443): Read timed out. (read timeout=0.49)\"))",
     'Read timed out.'),
    ("('Connection broken: IncompleteRead(1073741725 bytes read, 99 more expected)', IncompleteRead(...))",
     'the connection broke in the middle of the answer (IncompleteRead)'),
    ('Connection refused', 'Connection refused'),
])
def test_transport_reasons_lose_the_pool_noise(text, reason):
    assert _http.clean_reason(text) == reason


def test_credentials_a_server_echoes_are_masked():
    echo = FakeResponse(401, body={'message': 'token Bearer t0ps3cr3t-bearer is not valid'})
    made, dummy = client(lambda *a: echo, bearer_token='t0ps3cr3t-bearer')
    with pytest.raises(_http.HttpAuthError) as caught:
        made.request_json('GET', '/api/v2/alerts')
    assert 't0ps3cr3t-bearer' not in str(caught.value) and 'Bearer ********' in str(caught.value)


def test_an_html_error_page_is_named_by_its_title():
    page = FakeResponse(502, text='<html><head><title>502 Bad Gateway</title></head><body>...</body></html>',
                        headers={'Content-Type': 'text/html'})
    made, dummy = client(lambda *a: page, retries=0)
    with pytest.raises(_http.HttpStatusError, match=r"answered 502: an HTML page \('502 Bad Gateway'\)$"):
        made.request_json('GET', '/api/v2/alerts')


@pytest.mark.parametrize('service, named', [('Alertmanager API v2', 'an Alertmanager API v2'),
                                            ('Statuspage API', 'a Statuspage API')])
def test_the_service_gets_its_article(service, named):
    made = HttpClient(params(), 'http://x.example', service=service, session=FakeSession([]))
    assert made.service_name() == named
