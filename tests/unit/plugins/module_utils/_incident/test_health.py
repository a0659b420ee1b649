# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The health signals of the priority matrix, from http_health_info results: an outage, a critical dependency down,
critical and other endpoints failing, an unknown health, malformed input (the whole matrix is in test_priority.py)."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import AssessmentError
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.health import dependency_signals, health_signals

POLICY = {'critical_endpoints': ['/health/ready', '/healthz'], 'critical_dependencies': ['database']}


def endpoint(path, ok, status=200, **extra):
    return dict({'url': f'https://api.example{path}', 'ok': ok, 'status_code': status}, **extra)


def test_no_health_input_is_no_signal():
    assert health_signals(None, POLICY) == ([], [])
    assert health_signals({}, POLICY) == ([], [])


def test_every_endpoint_unreachable_is_an_outage():
    signals, notes = health_signals({'healthy': False, 'endpoints': [endpoint('/healthz', False, None),
                                                                     endpoint('/health/ready', False, None)]}, POLICY)
    assert notes == [] and [s['priority'] for s in signals] == ['P1']
    assert signals[0]['reason'].startswith('all 2 health endpoints unreachable: https://api.example/healthz (unreachable)')


def test_a_failing_critical_endpoint_is_p2_and_another_p3():
    health = {'healthy': False, 'endpoints': [endpoint('/healthz', True), endpoint('/health/ready', False, 503),
                                              endpoint('/health/db-schema', False, 500, error='alembic head differs')]}
    signals, _notes = health_signals(health, POLICY)
    assert [(s['priority'], s['reason']) for s in signals] == [
        ('P2', 'critical health endpoint https://api.example/health/ready (HTTP 503) is failing'),
        ('P3', 'health endpoint https://api.example/health/db-schema (HTTP 500: alembic head differs) is failing')]


def test_a_critical_dependency_reported_down_is_p1():
    ready = endpoint('/health/ready', False, 503, json={'checks': {'database': {'status': 'error', 'message': 'timeout'},
                                                                   'redis': {'status': 'ok'}}})
    signals = dependency_signals([ready], POLICY)
    assert signals == [{'source': 'health', 'priority': 'P1', 'dependency': 'database',
                        'reason': 'https://api.example/health/ready reports database error: timeout '
                                  '(the application cannot serve without its database)'}]
    assert dependency_signals([endpoint('/health/ready', True, json={'checks': {'database': {'status': 'degraded'}}})],
                              POLICY) == []


def test_a_probe_that_gave_no_result_is_an_unknown_health_not_healthy():
    signals, notes = health_signals({'failed': True, 'msg': 'connection refused'}, POLICY)
    assert signals == [] and notes == ['health is unknown: the probe gave no endpoint result (connection refused): not counted']


def test_an_expired_certificate_with_all_endpoints_ok_is_p2():
    health = {'healthy': False, 'endpoints': [endpoint('/healthz', True)], 'tls': {'hostname': 'api.example', 'expired': True}}
    signals, _notes = health_signals(health, POLICY)
    assert signals == [{'source': 'health', 'priority': 'P2', 'reason': 'the TLS certificate of api.example has expired'}]


@pytest.mark.parametrize('health, message', [
    ('down', 'health must be a mapping like the result of http_health_info'),
    ({'endpoints': 'all fine'}, 'health.endpoints must be a list'),
    ({'endpoints': [{'url': '/x'}]}, 'health endpoint 0 must be a result with ok (true or false)'),
    ({'healthy': 'yes', 'endpoints': []}, "health.healthy must be true or false, got 'yes'"),
    ({'status': 'green'}, 'health must be a result of http_health_info, with healthy and endpoints; got one with keys status'),
])
def test_malformed_health_input_is_refused_with_one_sentence(health, message):
    with pytest.raises(AssessmentError) as caught:
        health_signals(health, POLICY)
    assert str(caught.value).startswith(message)
