# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""PagerDuty Events API v2: the event built from the options, retries and Retry-After, refusals quoted without the routing key."""

from __future__ import annotations

import pytest
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpInputError,
    HttpStatusError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import pagerduty as _pagerduty
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK

KEY = 'k' * 32


TRIGGER = {'routing_key': KEY, 'event_action': 'trigger', 'incident_id': 'INC-1', 'summary': 'lag', 'source': 'api',
           'severity': 'critical', 'retries': 2, 'retry_delay': 1, 'timeout': 5, 'validate_certs': True}


def test_build_event_trigger():
    event, warnings = _pagerduty.build_event(dict(TRIGGER, event_class='QueueLagCritical', component='queue',
                                                  custom_details={'lag': 742}))
    assert warnings == []
    assert event == {'routing_key': KEY, 'event_action': 'trigger', 'dedup_key': 'INC-1', 'payload': {
        'summary': 'lag', 'source': 'api', 'severity': 'critical', 'component': 'queue', 'class': 'QueueLagCritical',
        'custom_details': {'lag': 742, 'incident_id': 'INC-1'}}}
    assert _pagerduty.masked(event)['routing_key'] == MASK and event['routing_key'] == KEY


def test_build_event_resolve_ignores_payload_with_warning():
    event, warnings = _pagerduty.build_event({'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'ext-7',
                                              'incident_id': 'INC-1', 'summary': 'x'})
    assert event == {'routing_key': KEY, 'event_action': 'resolve', 'dedup_key': 'ext-7'}
    assert 'summary only apply to event_action=trigger' in warnings[0]


@pytest.mark.parametrize('change,message', [
    ({'severity': 'P1'}, 'severity must be one of critical, error, warning, info'),
    ({'summary': 's' * 1025}, 'summary must be at most 1024'),
    ({'incident_id': None}, 'incident_id or dedup_key is required'),
    ({'dedup_key': 'd' * 256}, 'dedup_key must be at most 255'),
    ({'source': None}, 'event_action=trigger requires source'),
    ({'routing_key': ' '}, 'routing_key is required'),
    ({'event_action': 'snooze'}, 'event_action must be one of'),
])
def test_build_event_rejects(change, message):
    with pytest.raises(HttpInputError, match=message):
        _pagerduty.build_event(dict(TRIGGER, **change))


def _pd(script, retries=2):
    sleeps: list[float] = []
    client = _pagerduty.PagerDutyClient(dict(TRIGGER, retries=retries, api_url='https://events.example'),
                                        session=FakeSession(script), sleep=sleeps.append)
    return client, sleeps


ACCEPTED = FakeResponse(202, {'status': 'success', 'message': 'Event processed', 'dedup_key': 'INC-1'})


def test_pagerduty_retries_429_and_5xx_with_backoff():
    client, sleeps = _pd([FakeResponse(429, {'status': 'throttle event'}), FakeResponse(500, {}), ACCEPTED])
    event, _w = _pagerduty.build_event(TRIGGER)
    assert client.enqueue(event)['message'] == 'Event processed'
    assert client.attempts == 3 and sleeps == [1, 2] and client.requests == ['POST /v2/enqueue'] * 3


def test_pagerduty_honours_retry_after():
    client, sleeps = _pd([FakeResponse(429, {}, headers={'Retry-After': '7'}), ACCEPTED])
    client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert sleeps == [7.0]


def test_pagerduty_400_quotes_errors_without_the_key():
    body = {'status': 'invalid event', 'message': 'Event object is invalid', 'errors': [f'Invalid routing key {KEY}']}
    client, sleeps = _pd([FakeResponse(400, body, reason='Bad Request')])
    with pytest.raises(HttpStatusError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert str(caught.value) == ("PagerDuty rejected the trigger event for dedup_key 'INC-1' with 400 Bad Request: "
                                 f'Event object is invalid: Invalid routing key {MASK}')
    assert sleeps == [] and caught.value.details['status'] == 400


def test_pagerduty_gives_up_after_retries():
    client, _sleeps = _pd([FakeResponse(503, {})] * 2, retries=1)
    with pytest.raises(HttpStatusError, match=r'answered 503 Service Unavailable.*\(after 2 attempts\)'):
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])


@pytest.mark.parametrize('answer, shown', [
    (FakeResponse(202, text=''), 'an empty body'),
    (FakeResponse(202, {'ok': True}), 'JSON {"ok": true}'),
    (FakeResponse(202, {'status': 'invalid event'}), 'JSON {"status": "invalid event"}'),
    (FakeResponse(202, text='<html><title>Proxy</title></html>', headers={'Content-Type': 'text/html'}),
     "an HTML page ('Proxy')"),
    (FakeResponse(202, [1, 2]), 'JSON [1, 2]'),
])
def test_pagerduty_202_without_success_is_not_accepted(answer, shown):
    client, sleeps = _pd([answer])
    with pytest.raises(HttpApiMismatchError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert str(caught.value) == ("https://events.example answered the trigger event for dedup_key 'INC-1' with 202 and "
                                 f'{shown}, not the Events API v2 answer {{"status": "success", ...}}, so PagerDuty did '
                                 'not confirm it - check api_url')
    assert KEY not in str(caught.value) and sleeps == []


def test_pagerduty_answer_echoing_the_key_is_masked():
    client, _sleeps = _pd([FakeResponse(202, {'note': 'n' * 60, 'routing_key': KEY})])
    with pytest.raises(HttpApiMismatchError) as caught:
        client.enqueue(_pagerduty.build_event(TRIGGER)[0])
    assert 'kkkk' not in str(caught.value)
