"""The incident_priority and response_deadline filters: same core as the module, Ansible errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.filter import priority
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import assess

FILTER_DIR = Path(priority.__file__).parent


def test_filters_are_registered_and_documented():
    filters = priority.FilterModule().filters()
    assert set(filters) == {'incident_priority', 'response_deadline'}
    for name in filters:
        doc = yaml.safe_load((FILTER_DIR / f'{name}.yml').read_text())
        assert doc['DOCUMENTATION']['name'] == name
        assert '_input' in doc['DOCUMENTATION']['options']
        assert f'trdrhub.incident.{name}' in doc['EXAMPLES']
        assert '_value' in doc['RETURN']


def test_incident_priority_is_the_module_core():
    alerts = [{'labels': {'alertname': 'AllWorkersDown', 'severity': 'P1'}, 'status': {'state': 'active'}}]
    kwargs = {'health': {'healthy': True}, 'impact': 'internal', 'detected_at': '2025-01-15T14:30:00Z'}
    assert priority.incident_priority(alerts, **kwargs) == assess(alerts=alerts, **kwargs)
    assert priority.incident_priority([], impact='cosmetic', detected_at='2025-01-17T14:00:00Z')['response_deadline'] == \
        '2025-01-20T14:00:00Z'


@pytest.mark.parametrize('prio, detected, policy, due', [
    ('P2', '2025-01-15T14:30:00Z', None, '2025-01-15T15:30:00Z'),
    ('P4', '2025-01-17T14:00:00Z', None, '2025-01-20T14:00:00Z'),
    ('P2', '2025-01-15T14:30:00Z', {'P2': {'response_minutes': 30}}, '2025-01-15T15:00:00Z'),
])
def test_response_deadline(prio, detected, policy, due):
    assert priority.response_deadline(prio, detected, policy) == due


@pytest.mark.parametrize('call, message', [
    (lambda: priority.response_deadline('P0', '2025-01-15T14:30:00Z'),
     "response_deadline: priority must be one of P1, P2, P3, P4, got 'P0'"),
    (lambda: priority.response_deadline('P1', 'soon'), "response_deadline: detected_at must be an ISO 8601 time"),
    (lambda: priority.incident_priority([], impact='outage'), "incident_priority: impact 'outage' is not one of"),
])
def test_errors_are_ansible_filter_errors(call, message):
    with pytest.raises(AnsibleFilterError) as caught:
        call()
    assert str(caught.value).startswith(message)


def test_unknown_severity_is_a_finding_not_an_error():
    """A label the severity table does not know is reported and not counted; the filter still answers."""
    result = priority.incident_priority([{'labels': {'alertname': 'X', 'severity': 'urgent'}}])
    assert result['priority'] == 'P4' and result['signals'] == []
    assert len(result['findings']) == 1 and "severity label 'urgent'" in result['findings'][0]
