"""Every HTTP-speaking module against a misbehaving server: one clear message, nothing claimed.

Each module runs in-process through its entry point against ``FaultServer`` (refused,
untrusted TLS, no answer, error statuses, HTML, broken and unexpected JSON, a body far
larger than any API answer). For every case: the task fails, ``changed`` is not true, the
message is one line without a traceback, a Python type name or a secret, and it says what
went wrong. Timeouts are 0.5 s and sleeps are recorded instead of slept, so the whole
matrix runs in seconds.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip('requests')
pytest.importorskip('kubernetes')
pytest.importorskip('cryptography')
_HARNESS = str(Path(__file__).resolve().parents[3] / 'harness')
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import client as _k8s  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.modules import (  # noqa: E402
    alertmanager_alerts_info,
    alertmanager_silence,
    http_health_info,
    incident_ticket,
    k8s_rollout,
    k8s_workload_info,
    pagerduty_event,
    slack_message,
    statuspage_incident,
)
from trdrhub_harness.faultserver import FAULTS, FaultServer  # noqa: E402

SECRET = 'S3cr3tTok3nZZqv8w1'
WEBHOOK_SECRET = 'hookSecretQ7x9'
ROUTING_KEY = 'R0ut1ngK3y' + 'a' * 22
BODY_CAP = 256 * 1024   # the matrix lowers the cap so the "huge" cases stay quick; the rule is the same


def _args(module, url):
    """Arguments of one real request per module; timeout 0.5 s, one retry, secrets where it takes one."""
    quick = {'timeout': 0.5, 'retries': 1, 'retry_delay': 0.01}
    if module is alertmanager_alerts_info:
        return dict(quick, url=url, bearer_token=SECRET)
    if module is alertmanager_silence:
        return dict(quick, url=url, bearer_token=SECRET, matchers=['alertname="QueueLagCritical"'], duration='1h',
                    incident_id='INC-9', comment='workers scaled')
    if module is statuspage_incident:
        return dict(quick, api_url=url, api_key=SECRET, page_id='pg1', incident_id='INC-9', name='Queue lag',
                    status='investigating', body='Looking into it')
    if module is incident_ticket:
        return dict(quick, system='jira', url=url, username='bot@trdrhub.example', api_token=SECRET, project='OPS',
                    incident_id='INC-9', summary='Queue lag', status='investigating')
    if module is pagerduty_event:
        return dict(quick, api_url=url, routing_key=ROUTING_KEY, dedup_key='INC-9', summary='Queue lag',
                    source='trdrhub-api', severity='critical')
    if module is slack_message:
        return dict(quick, webhook_url=f'{url}/services/T0001/B0001/{WEBHOOK_SECRET}', text='workers scaled up')
    if module is http_health_info:
        return dict(quick, base_url=url, bearer_token=SECRET, fail_on_unhealthy=True,
                    endpoints=[{'path': '/healthz', 'json_checks': [{'path': 'status', 'equals': 'ok'}]}])
    k8s = {'host': url, 'api_key': SECRET, 'request_timeout': 0.5, 'namespace': 'trdrhub'}
    if module is k8s_workload_info:
        return k8s
    return dict(k8s, name='trdrhub-api', action='restart')


MODULES = [alertmanager_alerts_info, alertmanager_silence, statuspage_incident, pagerduty_event, slack_message,
           incident_ticket, http_health_info, k8s_workload_info, k8s_rollout]
IDS = [m.__name__.rsplit('.', 1)[-1] for m in MODULES]

# What the message must say, per fault (a regular expression, case-insensitive).
SAYS = {
    'refused': r'refused',
    'tls': r'certificate verify failed.*(ca_path|ca_cert)',
    'timeout': r'timed out',
    '401': r'401',
    '403': r'403',
    '404': r'404',
    '429': r'429',
    '429_retry_after': r'429',
    '500': r'500',
    '502': r'502',
    '503': r'503',
    'html': r'HTML page',
    'malformed_json': r'malformed JSON|not JSON|not the Events API v2 answer|instead of ok',
    'wrong_shape': r'unexpected|not (a|an|the)\b|instead of|status.*(missing|expected|equal)',
    'huge': r'larger than',
    'huge_declared': r'larger than',
}
LEAKS = re.compile(r'Traceback|Module failed|HTTPConnectionPool|HTTPSConnectionPool|urllib3|object at 0x|<class |'
                   r'\b(Value|Type|Key|Attribute|Index)Error\b|\bdict\b|\bNoneType\b')


@pytest.fixture(scope='module')
def certs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('faultcerts')


@pytest.fixture
def sleeps(monkeypatch):
    """Sleeps asked for by the modules' retry loops, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(_http, '_sleep', asked.append)
    monkeypatch.setattr(_k8s, '_sleep', asked.append)
    monkeypatch.setattr(_http, 'MAX_BODY_BYTES', BODY_CAP)
    monkeypatch.setattr(_k8s, 'MAX_BODY_BYTES', BODY_CAP)
    for var in ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'SSL_CERT_FILE', 'K8S_AUTH_HOST', 'K8S_AUTH_API_KEY',
                'KUBECONFIG', 'STATUSPAGE_API_KEY', 'PAGERDUTY_ROUTING_KEY', 'SLACK_WEBHOOK_URL'):
        monkeypatch.delenv(var, raising=False)
    return asked


@pytest.mark.parametrize('fault', FAULTS)
@pytest.mark.parametrize('module', MODULES, ids=IDS)
def test_misbehaving_server(run_module, sleeps, certs_dir, module, fault):
    with FaultServer(fault, certs_dir=certs_dir) as server:
        result = run_module(module, _args(module, server.url))
    msg = result.get('msg') or ''
    shown = json.dumps(result)
    assert result.get('failed') is True, result
    assert result.get('changed') is not True, result
    assert msg and '\n' not in msg, msg
    assert not LEAKS.search(msg), msg
    assert SECRET not in shown and WEBHOOK_SECRET not in shown and ROUTING_KEY not in shown, msg
    assert re.search(SAYS[fault], msg, re.I), msg
    if fault in ('huge', 'huge_declared'):
        assert f'{BODY_CAP}' in msg.replace(',', '') or '256 KiB' in msg, msg


@pytest.mark.parametrize('module', MODULES, ids=IDS)
def test_429_with_retry_after_is_retried_after_the_asked_delay(run_module, sleeps, module):
    with FaultServer('429_retry_after', retry_after='7') as server:
        result = run_module(module, _args(module, server.url))
        hits = server.hits()
    assert result['failed'] is True
    assert 7.0 in sleeps, sleeps
    assert hits >= 2   # the documented retry happened, then the module gave up with the 429


@pytest.mark.parametrize('module', [k8s_workload_info, k8s_rollout], ids=['k8s_workload_info', 'k8s_rollout'])
def test_kubernetes_waits_no_longer_than_a_minute_for_retry_after(run_module, sleeps, module):
    with FaultServer('429_retry_after', retry_after='3600') as server:
        result = run_module(module, _args(module, server.url))
        hits = server.hits()
    assert result['failed'] is True and '429' in result['msg']
    assert all(s <= _http.MAX_RETRY_AFTER for s in sleeps), sleeps
    assert hits == 2   # retried once after a short backoff, not after an hour


@pytest.mark.parametrize('module', [k8s_workload_info, k8s_rollout], ids=['k8s_workload_info', 'k8s_rollout'])
def test_kubernetes_429_without_retry_after_is_not_retried(run_module, sleeps, module):
    with FaultServer('429') as server:
        result = run_module(module, _args(module, server.url))
        hits = server.hits()
    assert result['failed'] is True and '429' in result['msg'] and hits == 1


@pytest.mark.parametrize('module', [m for m in MODULES if m not in (k8s_workload_info, k8s_rollout)],
                         ids=[i for i in IDS if not i.startswith('k8s')])
def test_429_without_retry_after_backs_off(run_module, sleeps, module):
    with FaultServer('429') as server:
        result = run_module(module, _args(module, server.url))
        hits = server.hits()
    assert result['failed'] is True
    assert sleeps and all(0 < s <= _http.MAX_BACKOFF for s in sleeps), sleeps
    assert hits >= 2


@pytest.mark.parametrize('module', [slack_message], ids=['slack_message'])
def test_a_write_that_timed_out_is_not_replayed(run_module, sleeps, module):
    """A POST may have been processed when no answer came: it is sent once, and the task fails.

    (PagerDuty events are repeated on purpose - a repeated dedup_key is folded into the open incident.)
    """
    with FaultServer('timeout') as server:
        result = run_module(module, _args(module, server.url))
        posts = server.hits('POST')
    assert result['failed'] is True and result.get('changed') is not True
    assert posts <= 1
