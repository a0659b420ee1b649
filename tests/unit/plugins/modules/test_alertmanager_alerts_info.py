# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""alertmanager_alerts_info: query building, counts, firing P1s and failures."""

from __future__ import annotations

import pytest
from _http_fakes import FakeAlertmanager, FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http
from ansible_collections.trdrhub.incident.plugins.modules import alertmanager_alerts_info as mod

URL = 'http://am.example:9093'


def alert(name, severity=None, state='active', starts='2025-01-15T14:00:00.000Z', **labels):
    if severity is not None:
        labels['severity'] = severity
    return {'labels': {'alertname': name, **labels}, 'annotations': {'runbook_url': f'https://rb/{name}'},
            'startsAt': starts, 'endsAt': '2025-01-15T15:00:00.000Z', 'updatedAt': starts, 'fingerprint': f'fp-{name}',
            'receivers': [{'name': 'blackhole'}], 'generatorURL': 'http://prometheus/graph',
            'status': {'state': state, 'silencedBy': ['s1'] if state == 'suppressed' else [], 'inhibitedBy': []}}


ALERTS = [
    alert('ReportsSlow', 'P3'),
    alert('QueueLagCritical', 'P1', starts='2025-01-15T14:05:00.000Z'),
    alert('AllWorkersDown', 'P1', state='suppressed'),
    alert('NotificationDeliveryCompleteFailure'),                    # a known P1 name without a severity label
    alert('BulkBacklog', 'P2'),
    alert('Odd', 'critical', state='unprocessed'),
]


def test_summary_counts_and_firing_p1():
    out = mod.summarize(ALERTS)
    assert out['count'] == 6
    assert out['counts_by_severity'] == {'P1': 2, 'P2': 1, 'P3': 1, 'none': 1, 'critical': 1}
    assert out['counts_by_state'] == {'active': 4, 'suppressed': 1, 'unprocessed': 1}
    assert out['firing_p1'] == ['NotificationDeliveryCompleteFailure', 'QueueLagCritical']   # suppressed is not firing
    assert [a['labels']['alertname'] for a in out['alerts']] == [
        'AllWorkersDown', 'QueueLagCritical', 'BulkBacklog', 'ReportsSlow', 'NotificationDeliveryCompleteFailure', 'Odd']
    first = out['alerts'][0]
    assert first['receivers'] == ['blackhole']
    assert first['status'] == {'state': 'suppressed', 'silencedBy': ['s1'], 'inhibitedBy': []}


def test_summary_of_nothing_has_every_key():
    out = mod.summarize([], [])
    assert out == {'alerts': [], 'count': 0, 'counts_by_severity': {'P1': 0, 'P2': 0, 'P3': 0, 'none': 0},
                   'counts_by_state': {'active': 0, 'suppressed': 0, 'unprocessed': 0}, 'firing_p1': []}


def test_query_sends_only_what_was_set_and_normalised_matchers():
    query = mod.build_query({'active': True, 'silenced': False, 'inhibited': None, 'unprocessed': None,
                             'filter': ['severity=P1', 'alertname=~"Queue.*"'], 'receiver': 'pager.*'})
    assert query == [('active', 'true'), ('silenced', 'false'), ('filter', 'severity="P1"'),
                     ('filter', 'alertname=~"Queue.*"'), ('receiver', 'pager.*')]


@pytest.fixture
def am(monkeypatch):
    fake = FakeAlertmanager()
    fake.alerts = ALERTS
    sessions = []

    def session():
        sessions.append(FakeSession(fake.handle))
        return sessions[-1]

    monkeypatch.setattr(_http.requests, 'Session', session)
    monkeypatch.setattr(_http, '_sleep', lambda seconds: None)
    fake.sessions = sessions
    return fake


def test_module_returns_alerts_counts_and_requests(run_module, am):
    res = run_module(mod, {'url': URL + '/am/', 'active': True, 'filter': ['severity="P1"']}, check_mode=True)
    assert res['changed'] is False
    assert res['count'] == 6 and res['firing_p1'] == ['NotificationDeliveryCompleteFailure', 'QueueLagCritical']
    # The filter narrows the query, so every firing alert is read once more (outside_query).
    assert res['requests'] == ['GET /am/api/v2/alerts', 'GET /am/api/v2/alerts']
    assert res['outside_query'] == {'count': 0, 'firing_p1': []}
    call = am.sessions[0].calls[0]
    assert call['url'] == 'http://am.example:9093/am/api/v2/alerts'
    assert call['params'] == [('active', 'true'), ('filter', 'severity="P1"')]
    assert am.sessions[0].closed


@pytest.mark.parametrize('filters, receiver, needle', [
    (['severity="P1'], None, 'invalid matcher \'severity="P1\''),
    (['severity'], None, "invalid matcher 'severity'"),
    ([], 'pager((', "invalid receiver: 'pager(('"),
])
def test_bad_filters_fail_before_any_request(run_module, am, filters, receiver, needle):
    res = run_module(mod, {'url': URL, 'filter': filters, 'receiver': receiver})
    assert res['failed'] is True and needle in res['msg']
    assert am.sessions == []


@pytest.mark.parametrize('answer, needle', [
    (FakeResponse(410, text='gone'), 'is not an Alertmanager API v2: GET /api/v2/alerts answered 410 Gone'),
    (FakeResponse(200, {'status': 'success', 'data': []}), 'answered JSON {"data": [], "status": "success"}, not a list of objects'),
    (FakeResponse(200, text='{"oops', headers={'Content-Type': 'application/json'}), 'malformed JSON'),
    (FakeResponse(401, text='Unauthorized'), 'refused GET /api/v2/alerts with 401 Unauthorized'),
])
def test_server_failures_are_one_message(run_module, monkeypatch, answer, needle):
    monkeypatch.setattr(_http.requests, 'Session', lambda: FakeSession(lambda *a: answer))
    res = run_module(mod, {'url': URL, 'url_username': 'ops', 'url_password': 'Sup3r$ecret'})
    assert res['failed'] is True and needle in res['msg']
    assert 'Sup3r$ecret' not in res['msg']
    assert res['requests'] == ['GET /api/v2/alerts']


class FilteringAlertmanager(FakeAlertmanager):
    """Honours the state switches and equality matchers, as Alertmanager does."""

    def handle(self, method, url, params, body):
        if method != 'GET' or not url.endswith('/api/v2/alerts'):
            return super().handle(method, url, params, body)
        chosen = self.alerts
        for name, value in params or []:
            if name == 'filter':
                label, wanted = value.split('=', 1)
                chosen = [a for a in chosen if a['labels'].get(label) == wanted.strip('"')]
            elif name == 'active' and value == 'true':
                pass
            elif value == 'false':
                state = {'active': 'active', 'silenced': 'suppressed', 'inhibited': 'suppressed',
                         'unprocessed': 'unprocessed'}[name]
                chosen = [a for a in chosen if a['status']['state'] != state]
        return FakeResponse(200, chosen)


@pytest.fixture
def filtering_am(monkeypatch):
    fake = FilteringAlertmanager()
    fake.alerts = ALERTS
    monkeypatch.setattr(_http.requests, 'Session', lambda: FakeSession(fake.handle))
    monkeypatch.setattr(_http, '_sleep', lambda seconds: None)
    return fake


def test_a_filter_never_hides_a_firing_p1_silently(run_module, filtering_am):
    res = run_module(mod, {'url': URL, 'filter': ['severity="P3"']})
    assert [a['labels']['alertname'] for a in res['alerts']] == ['ReportsSlow']
    assert res['firing_p1'] == []
    assert res['outside_query'] == {'count': 3, 'firing_p1': ['NotificationDeliveryCompleteFailure', 'QueueLagCritical']}
    assert any('2 firing P1 alert(s) are outside the query' in str(w) and 'QueueLagCritical' in str(w)
               for w in res.get('warnings', [])), res


def test_firing_alerts_outside_the_filter_without_a_p1_are_counted_quietly(run_module, filtering_am):
    filtering_am.alerts = [a for a in ALERTS if a['labels'].get('severity') != 'P1'
                           and a['labels']['alertname'] != 'NotificationDeliveryCompleteFailure']
    res = run_module(mod, {'url': URL, 'filter': ['severity="P3"']})
    assert res['outside_query'] == {'count': 1, 'firing_p1': []}     # BulkBacklog (P2)
    assert not res.get('warnings')


def test_an_unnarrowed_query_reads_once(run_module, filtering_am):
    res = run_module(mod, {'url': URL})
    assert res['outside_query'] is None
    assert res['requests'] == ['GET /api/v2/alerts']
