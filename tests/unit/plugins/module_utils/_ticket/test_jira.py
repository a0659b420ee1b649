"""Jira: ADF both ways, Jira's error bodies, and the plan for an issue in each state."""
from __future__ import annotations

import types

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.jira import Jira, adf, adf_text, jira_error
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import TicketError


def params(**kw):
    base = {'system': 'jira', 'url': 'https://x.atlassian.net', 'username': 'a@b', 'api_token': 't',
            'incident_id': 'INC-2025-0042', 'state': 'present', 'issue_type': 'Incident', 'close_code': 'x'}
    base.update(kw)
    return base


@pytest.mark.parametrize('text', ['one line', 'first\nsecond', 'para one\n\npara two\nwith break'])
def test_adf_round_trip(text):
    doc = adf(text)
    assert doc['type'] == 'doc' and doc['version'] == 1
    assert adf_text(doc) == text


def test_jira_error_joins_messages_and_field_errors():
    resp = types.SimpleNamespace(text='{"errorMessages": ["Bad"], "errors": {"summary": "You must specify"}}',
                                 headers={})
    assert jira_error(resp) == 'Bad; summary: You must specify'


def issue(status='In Progress', summary='Queue lag', links=()):
    return {'key': 'OPS-1', 'id': '1', 'fields': {'summary': summary, 'status': {'name': status}, 'labels': [],
                                                  'issuelinks': list(links)}}


def test_plan_for_a_new_issue_creates_with_the_label_then_transitions():
    steps = Jira('https://x').plan(None, None, params(summary='Queue lag', project='OPS', status='identified'))
    assert [s.kind for s in steps] == ['create', 'transition']
    assert steps[0].payload['fields']['labels'] == ['INC-2025-0042'] and steps[1].payload == 'In Progress'


def test_plan_is_empty_when_the_issue_is_as_asked():
    jira = Jira('https://x')
    jira.comments = ['Incident commander: ic:maria']
    assert jira.plan(None, issue(), params(status='monitoring', comment='Incident commander: ic:maria\n')) == []


def test_plan_resolves_with_a_resolution_comment_and_a_mapped_status():
    steps = Jira('https://x').plan(None, issue(), params(state='resolved', resolution='Pool raised',
                                                         jira_statuses={'resolved': 'Resolved'}))
    assert [(s.kind, s.payload) for s in steps] == [('transition', 'Resolved'), ('comment', 'Resolution: Pool raised')]


def test_plan_adds_only_missing_links():
    have = issue(links=[{'type': {'name': 'Relates'}, 'outwardIssue': {'key': 'OPS-7'}}])
    links = [{'key': 'OPS-7', 'type': 'Relates'}, {'key': 'OPS-8', 'type': 'Blocks'}]
    steps = Jira('https://x').plan(None, have, params(links=links))
    assert [s.payload['key'] for s in steps] == ['OPS-8']


def test_a_new_issue_needs_summary_and_project():
    with pytest.raises(TicketError, match='summary and project are required'):
        Jira('https://x').plan(None, None, params(summary='Queue lag'))
