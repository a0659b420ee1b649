"""ServiceNow: error bodies, reference fields, and the plan for a record in each state."""
from __future__ import annotations

import types

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.servicenow import ServiceNow, servicenow_error
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import TicketError


def params(**kw):
    base = {'system': 'servicenow', 'url': 'https://x.service-now.com', 'username': 'u', 'api_token': 'p',
            'incident_id': 'INC-2025-0042', 'state': 'present', 'close_code': 'Solved (Permanently)'}
    base.update(kw)
    return base


def record(**kw):
    base = {'sys_id': 'a' * 32, 'number': 'INC0010001', 'state': '2', 'short_description': 'Queue lag', 'impact': '1',
            'urgency': '1', 'close_code': '', 'close_notes': '', 'assignment_group': {'value': 'grp', 'link': 'x'}}
    base.update(kw)
    return base


def test_error_body_is_message_and_detail():
    resp = types.SimpleNamespace(text='{"error": {"message": "Operation Failed", "detail": "Data Policy Exception"},'
                                      ' "status": "failure"}', headers={})
    assert servicenow_error(resp) == 'Operation Failed - Data Policy Exception'


def test_create_carries_correlation_id_priority_and_note():
    (step,) = ServiceNow('https://x').plan(None, None, params(summary='Queue lag', priority='P2', comment='hi'))
    assert step.kind == 'create'
    assert step.payload['correlation_id'] == 'INC-2025-0042' and step.payload['state'] == '2'
    assert (step.payload['impact'], step.payload['urgency'], step.payload['work_notes']) == ('1', '2', 'hi')


def test_reference_fields_compare_by_value_and_known_notes_are_not_added_again():
    snow = ServiceNow('https://x')
    snow.notes = ['hi']
    assert snow.plan(None, record(), params(priority='P1', assignment_group='grp', comment='hi',
                                            status='identified')) == []


def test_resolve_sets_state_code_and_notes_once():
    snow = ServiceNow('https://x')
    (step,) = snow.plan(None, record(), params(state='resolved', resolution='Pool raised'))
    assert step.payload == {'state': '6', 'close_code': 'Solved (Permanently)', 'close_notes': 'Pool raised'}
    done = record(state='6', close_code='Solved Remotely (Permanently)', close_notes='Pool raised')
    assert snow.plan(None, done, params(state='resolved', resolution='Pool raised')) == []


def test_a_new_incident_needs_a_summary():
    with pytest.raises(TicketError, match='summary is required'):
        ServiceNow('https://x').plan(None, None, params(comment='hi'))
