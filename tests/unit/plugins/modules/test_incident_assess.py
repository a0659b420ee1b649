"""incident_assess: the module wrapper around module_utils/_incident/priority.py, and its docs against the table."""
from __future__ import annotations

import re

import pytest
import yaml
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import DEFAULT_POLICY
from ansible_collections.trdrhub.incident.plugins.modules import incident_assess

FIRING_P1 = {'labels': {'alertname': 'QueueLagCritical', 'severity': 'P1', 'component': 'queue', 'service': 'lcpilot'},
             'annotations': {'runbook_url': 'https://runbooks/queue'},
             'status': {'state': 'active', 'silencedBy': [], 'inhibitedBy': []}}
SILENCED_P1 = {'labels': {'alertname': 'AllWorkersDown', 'severity': 'P1'},
               'status': {'state': 'suppressed', 'silencedBy': ['6f1e'], 'inhibitedBy': []}}


def test_assessment(run_module):
    result = run_module(incident_assess, {'alerts': [FIRING_P1, SILENCED_P1], 'impact': ['customer-facing'], 'scope': 'some',
                                          'detected_at': '2025-01-15T14:30:00Z'})
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert (result['priority'], result['label'], result['response_deadline']) == ('P1', 'Critical', '2025-01-15T14:45:00Z')
    assert result['reasons'] == ['alert QueueLagCritical (severity P1, component queue) is firing -> P1',
                                 'impact customer-facing, some customers affected -> P2']
    assert result['ignored'] == ['alert AllWorkersDown (severity P1) is suppressed: not counted']
    expected = ['2025-01-15T14:30:00Z', '2025-01-15T14:45:00Z', '2025-01-15T15:00:00Z', '2025-01-15T15:30:00Z']
    assert [step['at'] for step in result['escalation']] == expected


def test_check_mode_is_identical(run_module):
    args = {'alerts': [SILENCED_P1], 'impact': ['internal'], 'detected_at': '2025-01-17T14:00:00Z'}
    assert run_module(incident_assess, args) == run_module(incident_assess, args, check_mode=True)


def test_override_through_the_module(run_module):
    result = run_module(incident_assess, {'impact': ['cosmetic'], 'override': {'priority': 'P2', 'reason': 'VIP customer'},
                                          'detected_at': '2025-01-17T14:00:00Z'})
    assert (result['priority'], result['assessed_priority'], result['overridden']) == ('P2', 'P4', True)
    assert result['reasons'][0] == 'overridden from P4 to P2: VIP customer'


@pytest.mark.parametrize('args, message', [
    ({'health': {'endpoints': 'down'}}, 'health.endpoints must be a list (or a dict by name) of endpoint results'),
    ({'impact': ['outage']}, "impact 'outage' is not one of"),
    ({'scope': 'everyone'}, 'value of scope must be one of: all, some, none, got: everyone'),
    ({'override': {'priority': 'P1'}}, 'missing required arguments: reason found in override'),
    ({'policy': {'P2': {'response_minutes': -5}}}, 'policy.P2.response_minutes must not be negative, got -5'),
    ({'detected_at': 'last tuesday'}, "detected_at must be an ISO 8601 time"),
])
def test_bad_input(run_module, args, message):
    result = run_module(incident_assess, args)
    assert result['failed'] and message in result['msg']


def test_documentation_matches_the_policy_table():
    """The description repeats the default table; it must not drift from DEFAULT_POLICY."""
    doc = yaml.safe_load(incident_assess.DOCUMENTATION)
    text = ' '.join(doc['description'])
    for prio in ('P1', 'P2', 'P3', 'P4'):
        assert f"{prio} {DEFAULT_POLICY[prio]['response_minutes']} min" in text
        notify = ', '.join(f'C({who})' for who in DEFAULT_POLICY[prio]['notify'])
        assert f'{prio} {notify}' in text
    escalation = re.search(r'Escalation \(minutes after detection\) - (.*?); P4 none', text).group(1)
    for prio in ('P1', 'P2', 'P3'):
        minutes = [str(step['after_minutes']) for step in DEFAULT_POLICY[prio]['escalation']]
        part = escalation.split(f'{prio} ', 1)[1].split('; ', 1)[0]
        assert re.findall(r'at (\d+)', part) == minutes
    for category, scopes in DEFAULT_POLICY['impact'].items():
        assert f'C({category})' in text
        if len(set(scopes.values())) > 1:
            assert '/'.join(scopes[s] for s in ('all', 'some', 'none', 'unknown')) in text


def test_unclassified_alert_is_a_finding_and_a_warning(run_module):
    watchdog = {'labels': {'alertname': 'Watchdog', 'severity': 'none'}, 'status': {'state': 'active'}}
    foreign = {'labels': {'alertname': 'X', 'severity': 'sev1'}, 'status': {'state': 'active'}}
    result = run_module(incident_assess, {'alerts': [watchdog, foreign, FIRING_P1]})
    assert not result.get('failed'), result
    assert result['priority'] == 'P1'
    assert result['ignored'] == ['alert Watchdog (severity none) is ignored by policy.severity_map: not counted']
    assert result['findings'] == ["alert X is firing with severity label 'sev1', which policy.severity_map does not "
                                  "classify: not counted (map it to a priority or to ignore)"]
    assert result['warnings'] == result['findings']


def test_failed_health_probe_is_flagged(run_module):
    result = run_module(incident_assess, {'health': {'failed': True, 'msg': 'Cannot connect to https://api'}})
    assert result['priority'] == 'P4'
    assert result['findings'] == ['health is unknown: the probe gave no endpoint result (Cannot connect to https://api): '
                                  'not counted']
    assert 'could not be assessed' in result['reasons'][0]


def test_documentation_shows_the_severity_table():
    doc = yaml.safe_load(incident_assess.DOCUMENTATION)
    text = ' '.join(doc['description'])
    table = DEFAULT_POLICY['severity_map']
    assert all(table[p] == p for p in ('P1', 'P2', 'P3', 'P4'))
    assert f"C(critical) V({table['critical']})" in text and f"C(warning) V({table['warning']})" in text
    assert table['info'] == table['none'] == 'ignore' and 'C(info) and C(none)' in text and 'are ignored' in text
