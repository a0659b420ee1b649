# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""http_health_info: JSON path checks, endpoint validation and the probe results (no network)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http
from ansible_collections.trdrhub.incident.plugins.modules import http_health_info as mod

BASE = 'http://api.trdrhub.test:8000'
READY_OK = {'status': 'ok', 'checks': {'database': {'status': 'ok'}, 's3': {'status': 'ok'}}, 'overall_healthy': True}
READY_DB_DOWN = {
    'status': 'error', 'overall_healthy': False,
    'checks': {'database': {'status': 'error', 'message': 'connection refused'}, 's3': {'status': 'ok'}},
}
BODY = {'status': 'ok', 'checks': {'database': {'status': 'ok', 'response_time_ms': 3}},
        'items': [{'name': 'a'}, {'name': 'b'}], 'count': 2, 'flag': True, 'nothing': None}


@pytest.mark.parametrize('path, expected', [
    ('status', 'ok'), ('checks.database.status', 'ok'), ('checks.database.response_time_ms', 3),
    ('items.1.name', 'b'), ('items.-1.name', 'b'), ('nothing', None),
    ('checks.s3.status', mod._MISSING), ('items.2.name', mod._MISSING), ('status.deeper', mod._MISSING),
    ('items.x', mod._MISSING),
])
def test_lookup(path, expected):
    assert mod.lookup(BODY, path) is expected or mod.lookup(BODY, path) == expected


@pytest.mark.parametrize('check, failure', [
    ({'path': 'status', 'equals': 'ok'}, None),
    ({'path': 'status', 'equals': 'error'}, "status is 'ok', expected 'error'"),
    ({'path': 'status', 'not_equals': 'drift'}, None),
    ({'path': 'status', 'not_equals': 'ok'}, "status is 'ok', expected anything but 'ok'"),
    ({'path': 'checks.database.status', 'in': ['ok', 'degraded']}, None),
    ({'path': 'checks.database.status', 'in': ['degraded']}, "checks.database.status is 'ok', expected one of ['degraded']"),
    ({'path': 'checks.s3.status', 'equals': 'ok'}, 'checks.s3.status is missing'),
    ({'path': 'checks.s3.status', 'not_equals': 'drift'}, 'checks.s3.status is missing'),
    ({'path': 'count', 'equals': '2'}, None),          # a templated "2" equals the number 2
    ({'path': 'flag', 'equals': 1}, 'flag is True, expected 1'),    # but true is not 1
    ({'path': 'flag', 'equals': True}, None),
])
def test_json_checks(check, failure):
    assert mod.run_check(BODY, check) == failure


@pytest.mark.parametrize('endpoint, needle', [
    ({'path': 'healthz'}, 'path must start with /'),
    ({'path': '/x', 'expect_status': 'ok'}, 'expect_status must be an HTTP status code'),
    ({'path': '/x', 'expect_status': [200, 999]}, 'HTTP status codes (100-599)'),
    ({'path': '/x', 'json_checks': [{'path': 'status'}]}, 'needs exactly one of equals, not_equals, in, got none'),
    ({'path': '/x', 'json_checks': [{'path': 'status', 'equals': 'ok', 'in': ['ok']}]}, 'got equals, in'),
    ({'path': '/x', 'method': 'HEAD', 'json_checks': [{'path': 'status', 'equals': 'ok'}]}, 'HEAD request has no body'),
    ({'path': '/x', 'method': 'HEAD', 'json_body': {'test': True}}, 'json_body is only sent with method POST, got method HEAD'),
])
def test_bad_endpoints(endpoint, needle):
    with pytest.raises(_http.HttpInputError) as caught:
        mod.normalize_endpoint(endpoint)
    assert needle in str(caught.value)


def test_endpoint_defaults_and_single_status():
    assert mod.normalize_endpoint({'path': '/x', 'expect_status': 204}) == {
        'path': '/x', 'method': 'GET', 'expect_status': [204], 'json_checks': [], 'timeout': None, 'json_body': None}


class App:
    """TRDR Hub's health routes; ``ready`` and ``raw`` override answers per path."""

    def __init__(self):
        self.ready = (200, READY_OK)
        self.raw = {}
        self.calls = []

    def __call__(self, method, url, params, body):
        path = urlsplit(url).path
        self.calls.append(path)
        if path in self.raw:
            out = self.raw[path]
            return out() if callable(out) else out
        if path == '/health/ready':
            return FakeResponse(self.ready[0], self.ready[1])
        answers = {'/healthz': {'status': 'ok'}, '/health/live': {'status': 'ok', 'version': '1.4.2'},
                   '/health/db-schema': {'status': 'ok'}}
        return FakeResponse(200, answers[path]) if path in answers else FakeResponse(404, {'detail': 'Not Found'})


@pytest.fixture
def app(monkeypatch):
    handler = App()
    monkeypatch.setattr(_http.requests, 'Session', lambda: FakeSession(handler))
    sleeps = []
    monkeypatch.setattr(_http, '_sleep', sleeps.append)
    handler.sleeps = sleeps
    return handler


def test_all_healthy(run_module, app):
    res = run_module(mod, {'base_url': BASE}, check_mode=True)
    assert res['healthy'] is True and res['changed'] is False
    assert [e['path'] for e in res['endpoints']] == ['/healthz', '/health/live', '/health/ready', '/health/db-schema']
    assert all(e['ok'] and e['status'] == 200 and e['error'] is None and e['failed_checks'] == [] for e in res['endpoints'])
    assert res['endpoints'][1]['json'] == {'status': 'ok', 'version': '1.4.2'}
    assert res['endpoints'][0]['url'] == BASE + '/healthz'
    assert 'tls' not in res
    assert res['requests'] == ['GET /healthz', 'GET /health/live', 'GET /health/ready', 'GET /health/db-schema']


def test_database_down_is_retried_then_reported(run_module, app):
    app.ready = (503, READY_DB_DOWN)
    res = run_module(mod, {'base_url': BASE, 'retry_delay': 0.5})
    ready = res['endpoints'][2]
    assert res['healthy'] is False and ready['ok'] is False
    assert ready['status'] == 503 and ready['attempts'] == 3 and app.sleeps == [0.5, 1.0]
    assert ready['failed_checks'] == ['HTTP status 503, expected 200', "checks.database.status is 'error', expected 'ok'"]
    assert ready['json']['checks']['database']['message'] == 'connection refused'


def test_fail_on_unhealthy_lists_every_failure_in_one_message(run_module, app):
    app.ready = (503, READY_DB_DOWN)
    app.raw['/health/db-schema'] = FakeResponse(200, {'status': 'drift'})
    res = run_module(mod, {'base_url': BASE, 'retries': 0, 'fail_on_unhealthy': True})
    assert res['failed'] is True
    assert res['msg'] == ("http://api.trdrhub.test:8000 is unhealthy - /health/ready: HTTP status 503, expected 200; "
                          "checks.database.status is 'error', expected 'ok' | /health/db-schema: status is 'drift', "
                          "expected anything but 'drift'")
    assert res['healthy'] is False and len(res['endpoints']) == 4


def test_malformed_json_is_an_endpoint_error(run_module, app):
    app.raw['/healthz'] = FakeResponse(200, text='{"status": "ok"', headers={'Content-Type': 'application/json'})
    res = run_module(mod, {'base_url': BASE})
    healthz = res['endpoints'][0]
    assert healthz['ok'] is False and healthz['json'] is None
    assert healthz['error'].startswith('GET /healthz answered malformed JSON')
    assert res['endpoints'][1]['ok'] is True


def test_unreachable_stops_after_the_first_endpoint(run_module, app):
    def refused():
        exc = requests.exceptions.ConnectionError('Max retries exceeded')
        exc.__context__ = ConnectionRefusedError(111, 'Connection refused')
        return exc

    app.raw.update({p: refused for p in ('/healthz', '/health/live', '/health/ready', '/health/db-schema')})
    res = run_module(mod, {'base_url': BASE, 'retries': 1})
    first, rest = res['endpoints'][0], res['endpoints'][1:]
    assert first['error'] == ('Cannot reach http://api.trdrhub.test:8000: GET /healthz failed: Connection refused '
                              '(after 2 attempts)')
    assert first['status'] is None and first['attempts'] == 2
    assert all(e['error'].startswith('not requested, the server was unreachable') for e in rest)
    assert app.calls == ['/healthz', '/healthz']
    assert res['healthy'] is False
    failed = run_module(mod, {'base_url': BASE, 'retries': 0, 'fail_on_unhealthy': True})
    assert failed['msg'] == ('http://api.trdrhub.test:8000 is unhealthy - /healthz: Cannot reach '
                             'http://api.trdrhub.test:8000: GET /healthz failed: Connection refused '
                             '| 3 more endpoint(s) not requested')


def test_custom_endpoints_head_and_status_lists(run_module, app):
    app.raw['/prefix/metrics'] = FakeResponse(204, text='')
    res = run_module(mod, {'base_url': BASE + '/prefix', 'endpoints': [
        {'path': '/metrics', 'method': 'HEAD', 'expect_status': [200, 204]},
    ]})
    assert app.calls == ['/prefix/metrics']
    assert res['endpoints'][0]['ok'] is True and res['endpoints'][0]['status'] == 204


def test_huge_bodies_are_truncated(run_module, app):
    app.raw['/big'] = FakeResponse(200, {'status': 'ok', 'blob': 'x' * 40000})
    res = run_module(mod, {'base_url': BASE, 'endpoints': [
        {'path': '/big', 'json_checks': [{'path': 'status', 'equals': 'ok'}]}]})
    big = res['endpoints'][0]
    assert big['ok'] is True and big['json_truncated'] is True and len(big['json']) == mod.JSON_MAX_CHARS


def test_bad_input_fails_cleanly(run_module, app):
    res = run_module(mod, {'base_url': 'api.trdrhub.test'})
    assert res['failed'] is True and res['msg'].startswith('base_url must be an http:// or https:// URL')
    res = run_module(mod, {'base_url': BASE, 'endpoints': [{'path': 'nope'}]})
    assert res['failed'] is True and 'path must start with /' in res['msg']
    assert app.calls == []
