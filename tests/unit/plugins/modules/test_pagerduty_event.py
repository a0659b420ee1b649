"""pagerduty_event reports success only for the Events API's documented answer.

Run in-process against the PagerDuty contract server, with a proxy-like answer injected: an HTML
page or JSON of another shape with the success status code.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip('requests')
_HARNESS = str(Path(__file__).resolve().parents[3] / 'harness')
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

from ansible_collections.trdrhub.incident.plugins.modules import pagerduty_event  # noqa: E402
from trdrhub_harness._inproc import json_answer, text_answer  # noqa: E402
from trdrhub_harness.pagerduty import PagerDutyServer  # noqa: E402

NGINX = '<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>'


@pytest.fixture(scope='module')
def pagerduty():
    with PagerDutyServer() as server:
        yield server.start()


def test_pagerduty_success_is_accepted(run_module, pagerduty):
    key = pagerduty.add_routing_key()
    result = run_module(pagerduty_event, {'routing_key': key, 'api_url': pagerduty.url, 'dedup_key': 'INC-PD-SHAPE',
                                          'summary': 'Queue lag', 'source': 'trdrhub-api', 'severity': 'critical',
                                          'retries': 0})
    assert result.get('failed') is not True and result['changed'] is True


@pytest.mark.parametrize('answer, shown', [
    (json_answer(202, {'status': 'queued'}), 'JSON {"status": "queued"}'),
    (text_answer(202, NGINX), "an HTML page ('Welcome to nginx!')"),
])
def test_pagerduty_202_without_success_is_not_accepted(run_module, pagerduty, answer, shown):
    key = pagerduty.add_routing_key()
    pagerduty.inject(key, answer)
    result = run_module(pagerduty_event, {'routing_key': key, 'api_url': pagerduty.url, 'dedup_key': 'INC-PD-SHAPE',
                                          'summary': 'Queue lag', 'source': 'trdrhub-api', 'severity': 'critical',
                                          'retries': 0})
    assert result['failed'] is True and result.get('changed') is not True
    assert f'with 202 Accepted and {shown}, not the Events API v2 answer' in result['msg']
    assert key not in str(result)
