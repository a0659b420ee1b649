"""The runbook's priority matrix, deadlines and policy overrides (module_utils/_incident/priority.py)."""
from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._incident import priority as _priority
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    AssessmentError,
    add_minutes,
    assess,
    deadline,
    parse_time,
)

UTC = datetime.timezone.utc
WEDNESDAY = '2025-01-15T14:30:00Z'


def alert(name: str, severity: str | None = 'P1', state: str = 'active', silenced=(), inhibited=(), **labels) -> dict:
    labels = dict(labels, alertname=name)
    if severity is not None:
        labels['severity'] = severity
    return {'labels': labels, 'annotations': {}, 'fingerprint': name.lower(),
            'status': {'state': state, 'silencedBy': list(silenced), 'inhibitedBy': list(inhibited)}}


def endpoint(path: str, ok: bool, status: int | None = 200) -> dict:
    return {'url': f'https://api.trdrhub.example{path}', 'ok': ok, 'status': status}


HEALTHY = {'healthy': True, 'endpoints': [endpoint('/healthz', True), endpoint('/health/ready', True),
                                          endpoint('/health/db-schema', True)]}


def health(**failures) -> dict:
    """HEALTHY with some endpoints failing: health(ready=503, db_schema=None)."""
    paths = {'healthz': '/healthz', 'ready': '/health/ready', 'db_schema': '/health/db-schema'}
    endpoints = [endpoint(paths[name], False, status) if name in failures else endpoint(paths[name], True)
                 for name in paths for status in [failures.get(name)]]
    return {'healthy': not failures, 'endpoints': endpoints}


MATRIX = [
    # id, alerts, health, impact, scope, expected
    ('nothing-at-all', [], None, None, None, 'P4'),
    ('healthy-no-alerts', [], HEALTHY, None, None, 'P4'),
    ('alert-P1', [alert('QueueLagCritical', 'P1', component='queue')], None, None, None, 'P1'),
    ('alert-P2', [alert('QueueLagHigh', 'P2')], None, None, None, 'P2'),
    ('alert-P3', [alert('ReportsSlow', 'P3')], None, None, None, 'P3'),
    ('alert-lowercase-label', [alert('ReportsSlow', 'p2')], None, None, None, 'P2'),
    ('highest-alert-wins', [alert('A', 'P3'), alert('B', 'P2'), alert('C', 'P3')], None, None, None, 'P2'),
    ('suppressed-P1-ignored', [alert('AllWorkersDown', 'P1', state='suppressed', silenced=['s1'])], None, None, None, 'P4'),
    ('silenced-but-state-active', [alert('AllWorkersDown', 'P1', silenced=['s1'])], None, None, None, 'P4'),
    ('inhibited-P1-ignored', [alert('AllWorkersDown', 'P1', state='suppressed', inhibited=['fp'])], None, None, None, 'P4'),
    ('silenced-P1-live-P3', [alert('AllWorkersDown', 'P1', state='suppressed', silenced=['s1']), alert('Slow', 'P3')],
     None, None, None, 'P3'),
    ('unprocessed-counts', [alert('NotificationDeliveryCompleteFailure', 'P1', state='unprocessed')], None, None, None, 'P1'),
    ('webhook-firing', [{'labels': {'alertname': 'X', 'severity': 'P2'}, 'status': 'firing'}], None, None, None, 'P2'),
    ('webhook-resolved', [{'labels': {'alertname': 'X', 'severity': 'P1'}, 'status': 'resolved'}], None, None, None, 'P4'),
    ('all-endpoints-unreachable', [], {'healthy': False, 'endpoints': [endpoint('/healthz', False, None),
                                                                       endpoint('/health/ready', False, None)]},
     None, None, 'P1'),
    ('all-endpoints-failing', [], health(healthz=503, ready=503, db_schema=503), None, None, 'P1'),
    ('ready-503', [], health(ready=503), None, None, 'P2'),
    ('healthz-unreachable', [], health(healthz=None), None, None, 'P2'),
    ('db-schema-drift-only', [], health(db_schema=200), None, None, 'P3'),
    ('unhealthy-without-endpoints', [], {'healthy': False}, None, None, 'P2'),
    ('endpoints-as-dict', [], {'healthy': False, 'endpoints': {
        'ready': {'path': '/health/ready', 'ok': False, 'status': 503},
        'live': {'path': '/health/live', 'ok': True, 'status': 200}}}, None, None, 'P2'),
    ('customer-facing-all', [], None, 'customer-facing', 'all', 'P1'),
    ('customer-facing-some', [], None, 'customer-facing', 'some', 'P2'),
    ('customer-facing-none', [], None, 'customer-facing', 'none', 'P3'),
    ('customer-facing-unknown-scope', [], None, 'customer-facing', None, 'P2'),
    ('customer_facing-spelling', [], None, 'Customer_Facing', 'all', 'P1'),
    ('security', [], None, 'security', None, 'P1'),
    ('security-no-customers', [], None, ['security'], 'none', 'P1'),
    ('data-loss', [], None, 'data_loss', 'some', 'P1'),
    ('data-integrity', [], None, 'data_integrity', None, 'P2'),
    ('data-integrity-hyphen', [], None, 'data-integrity', 'all', 'P2'),
    ('compliance', [], None, 'compliance', None, 'P2'),
    ('internal', [], None, 'internal', 'none', 'P3'),
    ('cosmetic', [], None, 'cosmetic', 'none', 'P4'),
    ('scope-all-implies-customer-facing', [], None, None, 'all', 'P1'),
    ('scope-some-implies-customer-facing', [], None, None, 'some', 'P2'),
    ('scope-none-alone', [], None, None, 'none', 'P4'),
    ('impact-list-highest-wins', [], None, ['internal', 'data_integrity'], None, 'P2'),
    ('P3-alert-but-security', [alert('Slow', 'P3')], None, 'security', None, 'P1'),
    ('P1-alert-but-cosmetic', [alert('AllWorkersDown', 'P1')], None, 'cosmetic', None, 'P1'),
    ('P3-alert-ready-down', [alert('Slow', 'P3')], health(ready=503), 'internal', None, 'P2'),
]


@pytest.mark.parametrize('alerts, health_result, impact, scope, expected', [m[1:] for m in MATRIX], ids=[m[0] for m in MATRIX])
def test_priority_matrix(alerts, health_result, impact, scope, expected):
    result = assess(alerts=alerts, health=health_result, impact=impact, scope=scope, detected_at=WEDNESDAY)
    assert result['priority'] == expected
    assert result['assessed_priority'] == expected
    assert result['overridden'] is False
    assert result['reasons'], 'every assessment says why'
    assert result['reasons'][0].endswith(f'-> {expected}')
    assert [s['priority'] for s in result['signals']] == sorted(s['priority'] for s in result['signals'])


def test_reasons_name_the_signals():
    result = assess(alerts=[alert('QueueLagCritical', 'P1', component='queue'),
                            alert('AllWorkersDown', 'P1', state='suppressed', silenced=['s1'])],
                    health=health(ready=503), detected_at=WEDNESDAY)
    assert result['reasons'] == [
        'alert QueueLagCritical (severity P1, component queue) is firing -> P1',
        'critical health endpoint https://api.trdrhub.example/health/ready (HTTP 503) is failing -> P2',
    ]
    assert result['ignored'] == ['alert AllWorkersDown (severity P1) is suppressed: not counted']
    assert result['signals'][0] == {'source': 'alert', 'priority': 'P1', 'alertname': 'QueueLagCritical',
                                    'fingerprint': 'queuelagcritical',
                                    'reason': 'alert QueueLagCritical (severity P1, component queue) is firing'}
    assert result['findings'] == []


def test_all_unreachable_reason():
    endpoints = [{'url': 'https://x/healthz', 'ok': False, 'status': None, 'error': 'connection refused'},
                 {'url': 'https://x/health/ready', 'ok': False, 'reachable': False}]
    result = assess(health={'healthy': False, 'endpoints': endpoints})
    assert result['reasons'] == ['all 2 health endpoints unreachable: https://x/healthz (unreachable: connection refused), '
                                 'https://x/health/ready (unreachable) -> P1']


def test_nothing_known_is_P4_with_a_reason():
    result = assess(detected_at=WEDNESDAY)
    assert result['reasons'] == ['no firing alert, failing health check or impact given -> P4']
    assert result['escalation'] == []
    assert result['notify'] == ['ticket']
    assert result['update_cadence'] == {'internal_minutes': None, 'customer_minutes': None}


@pytest.mark.parametrize('priority, minutes, notify, cadence, levels', [
    ('P1', 15, ['on_call', 'incident_commander', 'engineering_manager', 'status_page', 'customers'], (15, 30),
     [(1, 0, 'on_call'), (2, 15, 'team_lead'), (3, 30, 'engineering_manager'), (4, 60, 'executive')]),
    ('P2', 60, ['on_call', 'team_lead', 'status_page'], (30, 60),
     [(1, 0, 'on_call'), (2, 60, 'team_lead'), (3, 120, 'engineering_manager')]),
    ('P3', 240, ['on_call', 'team_channel'], (120, None), [(1, 0, 'on_call'), (2, 240, 'team_lead')]),
    ('P4', 1440, ['ticket'], (None, None), []),
])
def test_schedule_per_priority(priority, minutes, notify, cadence, levels):
    result = assess(override={'priority': priority, 'reason': 'table test'}, detected_at=WEDNESDAY)
    start = parse_time(WEDNESDAY)
    assert result['response_minutes'] == minutes
    assert result['response_deadline'] == _priority.iso(start + datetime.timedelta(minutes=minutes))
    assert result['notify'] == notify
    assert (result['update_cadence']['internal_minutes'], result['update_cadence']['customer_minutes']) == cadence
    assert [(e['level'], e['after_minutes'], e['who']) for e in result['escalation']] == levels
    for step in result['escalation']:
        assert step['at'] == _priority.iso(start + datetime.timedelta(minutes=step['after_minutes']))
        assert step['title']


# -- deadlines -----------------------------------------------------------------------------------
@pytest.mark.parametrize('priority, detected, due', [
    ('P1', '2025-01-15T14:30:00Z', '2025-01-15T14:45:00Z'),
    ('P2', '2025-01-15T14:30:00Z', '2025-01-15T15:30:00Z'),
    ('P3', '2025-01-15T22:30:00Z', '2025-01-16T02:30:00Z'),
    ('P1', '2025-01-18T10:00:00Z', '2025-01-18T10:15:00Z'),    # P1 on a Saturday: the weekend counts
    ('P3', '2025-01-17T22:00:00Z', '2025-01-18T02:00:00Z'),    # so does P3's
    ('P4', '2025-01-16T14:00:00Z', '2025-01-17T14:00:00Z'),    # Thursday -> Friday
    ('P4', '2025-01-17T14:00:00Z', '2025-01-20T14:00:00Z'),    # Friday -> Monday, across the weekend
    ('P4', '2025-01-17T23:59:30Z', '2025-01-20T23:59:30Z'),    # Friday just before midnight
    ('P4', '2025-01-18T10:00:00Z', '2025-01-21T00:00:00Z'),    # Saturday: clock starts Monday 00:00
    ('P4', '2025-01-19T23:00:00Z', '2025-01-21T00:00:00Z'),    # Sunday night likewise
    ('P4', '2025-01-20T00:00:00Z', '2025-01-21T00:00:00Z'),    # Monday midnight exactly
    ('P4', '2025-01-17T16:00:00+02:00', '2025-01-20T14:00:00Z'),  # offsets are converted to UTC first
    ('p2', '2025-01-15T14:30:00', '2025-01-15T15:30:00Z'),      # no offset means UTC; priority case-insensitive
])
def test_response_deadline(priority, detected, due):
    assert deadline(priority, detected) == due


def test_business_day_counting_is_in_weekday_time():
    friday = datetime.datetime(2025, 1, 17, 14, 0, tzinfo=UTC)
    # Friday's remaining 10 hours end at Friday 24:00; one minute more is Monday 00:01.
    assert add_minutes(friday, 600, True) == datetime.datetime(2025, 1, 18, 0, 0, tzinfo=UTC)
    assert add_minutes(friday, 601, True) == datetime.datetime(2025, 1, 20, 0, 1, tzinfo=UTC)
    assert add_minutes(friday, 2 * 1440, True) == datetime.datetime(2025, 1, 21, 14, 0, tzinfo=UTC)
    assert add_minutes(friday, 0, True) == friday
    assert add_minutes(friday, 1440, False) == datetime.datetime(2025, 1, 18, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize('value, expected', [
    ('2025-01-15T14:30:00Z', datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    ('2025-01-15T14:30:00.123456+00:00', datetime.datetime(2025, 1, 15, 14, 30, 0, 123456, tzinfo=UTC)),
    ('2025-01-15T15:30:00+01:00', datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    (datetime.datetime(2025, 1, 15, 14, 30), datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
    (1736951400, datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)),
])
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_detected_at_defaults_to_now():
    now = datetime.datetime(2025, 1, 17, 14, 0, tzinfo=UTC)
    result = assess(impact='cosmetic', now=now)
    assert result['detected_at'] == '2025-01-17T14:00:00Z'
    assert result['response_deadline'] == '2025-01-20T14:00:00Z'
    assert result['business_days_only'] is True
    real = parse_time(assess()['detected_at'])
    assert abs((datetime.datetime.now(UTC) - real).total_seconds()) < 5


# -- overrides -----------------------------------------------------------------------------------
def test_override_up_is_recorded():
    result = assess(alerts=[alert('Slow', 'P3')], override={'priority': 'P1', 'reason': 'Largest customer escalated'},
                    detected_at=WEDNESDAY)
    assert (result['priority'], result['assessed_priority'], result['overridden']) == ('P1', 'P3', True)
    assert result['override'] == {'priority': 'P1', 'reason': 'Largest customer escalated'}
    assert result['reasons'][0] == 'overridden from P3 to P1: Largest customer escalated'
    assert result['reasons'][1] == 'alert Slow (severity P3) is firing -> P3'
    assert result['response_deadline'] == '2025-01-15T14:45:00Z'
    assert len(result['escalation']) == 4


def test_override_to_the_assessed_priority_is_not_called_a_change():
    result = assess(alerts=[alert('Down', 'P1')], override={'priority': 'P1', 'reason': 'the P1 procedure'},
                    detected_at=WEDNESDAY)
    assert (result['priority'], result['assessed_priority']) == ('P1', 'P1')
    assert result['reasons'][0] == 'set to P1 (as assessed): the P1 procedure'
    assert 'overridden' not in ' '.join(result['reasons'])


def test_override_down():
    result = assess(alerts=[alert('QueueLagCritical', 'P1')], override={'priority': 'p3', 'reason': 'test queue only'},
                    detected_at=WEDNESDAY)
    assert (result['priority'], result['assessed_priority'], result['label']) == ('P3', 'P1', 'Medium')


# -- policy --------------------------------------------------------------------------------------
def test_policy_overrides_one_table():
    policy = {
        'P2': {'response_minutes': 30, 'notify': ['on_call'], 'escalation': [{'level': 2, 'after_minutes': 10, 'who': 'lead'}]},
        'severity_map': {'critical': 'P1', 'warning': 'P3'},
        'impact': {'payments': {'all': 'P1', 'some': 'P1', 'none': 'P2', 'unknown': 'P1'}, 'internal': {'all': 'P2'}},
        'critical_endpoints': ['/healthz'],
    }
    p2 = assess(alerts=[alert('X', 'P2')], policy=policy, detected_at=WEDNESDAY)
    assert p2['response_deadline'] == '2025-01-15T15:00:00Z'
    assert p2['notify'] == ['on_call']
    assert p2['escalation'] == [{'level': 2, 'after_minutes': 10, 'who': 'lead', 'at': '2025-01-15T14:40:00Z'}]
    assert p2['update_cadence'] == {'internal_minutes': 30, 'customer_minutes': 60}  # untouched keys stay
    assert assess(alerts=[alert('X', 'critical')], policy=policy)['priority'] == 'P1'
    assert assess(alerts=[alert('X', 'WARNING')], policy=policy)['priority'] == 'P3'
    assert assess(impact='payments', scope='none', policy=policy)['priority'] == 'P2'
    assert assess(impact='internal', scope='all', policy=policy)['priority'] == 'P2'
    assert assess(impact='internal', scope='some', policy=policy)['priority'] == 'P3'
    # /health/ready is no longer critical under this policy
    assert assess(health=health(ready=503), policy=policy)['priority'] == 'P3'
    assert _priority.DEFAULT_POLICY['P2']['response_minutes'] == 60, 'the default table is never modified'


def test_policy_can_drop_business_days():
    assert deadline('P4', '2025-01-17T14:00:00Z', {'P4': {'business_days_only': False}}) == '2025-01-18T14:00:00Z'


# -- bad input: one clear message each -----------------------------------------------------------
@pytest.mark.parametrize('kwargs, message', [
    ({'alerts': {'labels': {}}}, 'alerts must be a list of Alertmanager alerts, got a mapping'),
    ({'alerts': ['QueueLagCritical']}, "alerts[0] is not an alert (a dict with labels), got 'QueueLagCritical'"),
    ({'impact': 'outage'}, "impact 'outage' is not one of customer-facing, data_loss, security, data_integrity, compliance, "
                           "internal, cosmetic"),
    ({'impact': ['internal', 'bogus']}, "impact 'bogus' is not one of"),
    ({'scope': 'everyone'}, "scope must be one of all, some, none (customers affected), got 'everyone'"),
    ({'health': 'down'}, 'health must be a mapping like the result of http_health_info, got a string'),
    ({'override': {'priority': 'P1'}}, 'override needs a priority and a reason'),
    ({'override': {'priority': 'P0', 'reason': 'x'}}, "override.priority must be one of P1, P2, P3, P4, got 'P0'"),
    ({'detected_at': 'yesterday'}, "detected_at must be an ISO 8601 time such as 2025-01-15T14:30:00Z, got 'yesterday'"),
    ({'policy': {'P5': {}}}, "policy has unknown key 'P5'"),
    ({'policy': {'P2': {'response_minuts': 30}}}, "policy.P2 has unknown key 'response_minuts'"),
    ({'policy': {'P2': {'response_minutes': -1}}}, 'policy.P2.response_minutes must not be negative, got -1'),
    ({'policy': {'P2': {'response_minutes': '30'}}}, "policy.P2.response_minutes has the wrong type: '30'"),
    ({'policy': {'P1': {'escalation': [{'level': 2}]}}}, 'policy.P1.escalation[0] needs who and after_minutes'),
    ({'policy': {'severity_map': {'critical': 'urgent'}}},
     "policy.severity_map.critical must be one of P1, P2, P3, P4 or ignore, got 'urgent'"),
    ({'policy': {'severity_map': {'info': None}}}, "policy.severity_map.info must be one of P1, P2, P3, P4 or ignore, got None"),
    ({'health': {'endpoints': 'down'}},
     "health.endpoints must be a list (or a dict by name) of endpoint results like those of http_health_info, got 'down'"),
    ({'health': {'healthy': 'no', 'endpoints': []}}, "health.healthy must be true or false, got 'no'"),
    ({'health': {'endpoints': ['down']}}, "health endpoint 0 must be a result with ok (true or false)"),
    ({'health': {'endpoints': [{'url': 'https://x/healthz', 'ok': 'yes'}]}}, 'health endpoint 0 must be a result with ok'),
    ({'health': {'status': 'down'}}, 'health must be a result of http_health_info, with healthy and endpoints; '
                                     'got one with keys status'),
    ({'health': {'endpoints': []}}, 'health must be a result of http_health_info'),
    ({'policy': {'impact': {'payments': {'most': 'P1'}}}}, "policy.impact.payments has unknown scope 'most'"),
    ({'policy': []}, 'policy must be a mapping, got a list'),
])
def test_bad_input_is_one_clear_message(kwargs, message):
    with pytest.raises(AssessmentError) as caught:
        assess(**kwargs)
    assert message in str(caught.value)
    assert '\n' not in str(caught.value)


def test_unknown_severity_of_a_silenced_alert_is_harmless():
    result = assess(alerts=[alert('Old', 'critical', state='suppressed', silenced=['s'])])
    assert result['priority'] == 'P4'
    assert result['ignored'] == ['alert Old (severity critical) is suppressed: not counted']


def test_expired_certificate_with_answering_endpoints():
    result = assess(health={'healthy': False, 'endpoints': [endpoint('/healthz', True)],
                            'tls': {'hostname': 'api.trdrhub.example', 'expired': True}})
    assert result['reasons'] == ['the TLS certificate of api.trdrhub.example has expired -> P2']


def test_http_health_info_result_shape():
    """The endpoints of http_health_info: path, url, status, ok, error, failed_checks."""
    result = {'healthy': False, 'endpoints': [
        {'path': '/healthz', 'url': 'https://api/healthz', 'status': 200, 'ok': True, 'failed_checks': [], 'error': None},
        {'path': '/health/ready', 'url': 'https://api/health/ready', 'status': 503, 'ok': False, 'error': None,
         'failed_checks': ['HTTP status 503, expected 200', "checks.database.status is 'error', expected 'ok'"]},
        {'path': '/health/db-schema', 'url': 'https://api/health/db-schema', 'status': 200, 'ok': False, 'error': None,
         'failed_checks': ["status is 'drift', expected not 'drift'"]},
    ]}
    assert assess(health=result)['reasons'] == [
        "critical health endpoint https://api/health/ready (HTTP 503: checks.database.status is 'error', expected 'ok') "
        "is failing -> P2",
        "health endpoint https://api/health/db-schema (HTTP 200: status is 'drift', expected not 'drift') is failing -> P3",
    ]


# -- the severity table: foreign alerts never stop the assessment --------------------------------
@pytest.mark.parametrize('severity, expected', [
    ('P1', 'P1'), ('P2', 'P2'), ('P3', 'P3'), ('P4', 'P4'), ('p2', 'P2'),
    ('critical', 'P1'), ('Critical', 'P1'), ('warning', 'P3'), (' warning ', 'P3'),
    ('info', 'ignore'), ('none', 'ignore'), ('NONE', 'ignore'),
    ('page', 'finding'), (None, 'finding'),
])
def test_default_severity_table(severity, expected):
    result = assess(alerts=[alert('A', severity)], detected_at=WEDNESDAY)
    if expected.startswith('P'):
        assert [s['priority'] for s in result['signals']] == [expected]
        assert result['ignored'] == result['findings'] == []
    elif expected == 'ignore':
        assert result['signals'] == [] and result['findings'] == []
        assert result['ignored'] == [f'alert A (severity {severity}) is ignored by policy.severity_map: not counted']
        assert result['reasons'] == ['no firing alert, failing health check or impact given -> P4']
    else:
        assert result['signals'] == [] and result['ignored'] == []
        label = f'severity label {severity!r}' if severity else 'no severity label'
        assert result['findings'] == [f'alert A is firing with {label}, which policy.severity_map does not classify: '
                                      'not counted (map it to a priority or to ignore)']
        assert result['reasons'] == ['no firing alert, failing health check or impact given; 1 input(s) could not be '
                                     'assessed (see findings) -> P4']


def test_watchdog_beside_a_P1_and_a_warning():
    """kube-prometheus' always-firing Watchdog (severity none) next to TRDR Hub's P1: the P1 decides."""
    result = assess(alerts=[alert('Watchdog', 'none'), alert('AllWorkersDown', 'P1', component='queue'),
                            alert('KubePodCrashLooping', 'warning'), alert('Custom', 'page')], detected_at=WEDNESDAY)
    assert result['priority'] == 'P1'
    assert [(s['alertname'], s['priority']) for s in result['signals']] == [('AllWorkersDown', 'P1'),
                                                                            ('KubePodCrashLooping', 'P3')]
    assert result['ignored'] == ['alert Watchdog (severity none) is ignored by policy.severity_map: not counted']
    assert [f.split(' is firing', maxsplit=1)[0] for f in result['findings']] == ['alert Custom']


def test_severity_table_is_overridden_by_the_policy():
    policy = {'severity_map': {'warning': 'P2', 'none': 'P4', 'info': 'IGNORE', 'page': 'p1', 'critical': 'ignore'}}
    result = assess(alerts=[alert('W', 'warning'), alert('Watchdog', 'none'), alert('C', 'critical'), alert('I', 'info')],
                    policy=policy)
    assert [(s['alertname'], s['priority']) for s in result['signals']] == [('W', 'P2'), ('Watchdog', 'P4')]
    assert [i.split(' (')[0] for i in result['ignored']] == ['alert C', 'alert I']
    assert assess(alerts=[alert('X', 'page')], policy=policy)['priority'] == 'P1'
    assert _priority.DEFAULT_POLICY['severity_map']['warning'] == 'P3', 'the default table is never modified'


# -- health input: unusable input fails, an unanswered probe is a finding --------------------------
@pytest.mark.parametrize('probe', [
    {'failed': True, 'msg': 'base_url must be an http(s) URL', 'requests': []},
    {'failed': False, 'failed_when_result': False, 'msg': 'Cannot connect to https://api: timed out'},
    {'skipped': True, 'skip_reason': 'Conditional result was False', 'changed': False},
])
def test_a_probe_without_result_is_a_finding_not_health(probe):
    result = assess(health=probe, detected_at=WEDNESDAY)
    [finding] = result['findings']
    assert finding.startswith('health is unknown: the probe gave no endpoint result (')
    assert result['signals'] == [] and result['priority'] == 'P4'
    assert result['reasons'][0].endswith('1 input(s) could not be assessed (see findings) -> P4')


def test_a_failed_probe_with_endpoints_still_counts():
    """http_health_info with fail_on_unhealthy fails, and its endpoints say why."""
    probe = dict(health(ready=503), failed=True, msg='https://api is unhealthy - /health/ready: HTTP 503')
    result = assess(health=probe)
    assert result['priority'] == 'P2' and result['findings'] == []


# -- critical dependencies -------------------------------------------------------------------------
def ready_answer(database: str = 'ok', s3: str = 'ok', message: str | None = None) -> dict:
    """/health/ready as TRDR Hub answers it: HTTP 503 when the database or S3 is down."""
    down = database != 'ok' or s3 != 'ok'
    body = {'status': 'error' if down else 'ok', 'overall_healthy': not down,
            'checks': {'database': {'status': database, 'response_time_ms': 2.0, 'message': message},
                       's3': {'status': s3, 'response_time_ms': 4.0, 'message': None},
                       'document_ai': {'status': 'degraded', 'response_time_ms': 900.0, 'message': 'slow'}}}
    return dict(endpoint('/health/ready', not down, 503 if down else 200), json=body)


def test_database_down_behind_a_live_process_is_P1():
    """/healthz and /health/live answer, /health/ready says the database is down: nothing can be served."""
    result = assess(health={'healthy': False, 'endpoints': [
        endpoint('/healthz', True), endpoint('/health/live', True),
        ready_answer(database='error', message='connection refused')]}, detected_at=WEDNESDAY)
    assert result['priority'] == 'P1'
    assert result['reasons'][0] == ('https://api.trdrhub.example/health/ready reports database error: connection refused '
                                    '(the application cannot serve without its database) -> P1')
    assert [s['priority'] for s in result['signals']] == ['P1', 'P2']   # the failing readiness endpoint still counts


def test_a_dependency_not_listed_stays_P2_and_degraded_is_up():
    s3_down = assess(health={'healthy': False, 'endpoints': [endpoint('/healthz', True), ready_answer(s3='error')]})
    assert s3_down['priority'] == 'P2'
    assert assess(health={'healthy': True, 'endpoints': [endpoint('/healthz', True), ready_answer()]})['priority'] == 'P4'


def test_policy_names_the_critical_dependencies():
    answer = {'healthy': False, 'endpoints': [endpoint('/healthz', True), ready_answer(s3='error')]}
    assert assess(health=answer, policy={'critical_dependencies': ['database', 's3']})['priority'] == 'P1'
    db_down = {'healthy': False, 'endpoints': [endpoint('/healthz', True), ready_answer(database='error')]}
    assert assess(health=db_down, policy={'critical_dependencies': []})['priority'] == 'P2'
    with pytest.raises(AssessmentError, match='policy.critical_dependencies must be a list of check names'):
        assess(health=db_down, policy={'critical_dependencies': 'database'})
