"""What Jira and ServiceNow tickets share: options checked before any request (each refusal one sentence naming
the option), the status asked for, text compared without whitespace noise, the oldest of duplicate tickets."""
from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HttpInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import desired_status, normalize, oldest, validate


def params(**kw):
    base = {'system': 'jira', 'url': 'https://x.atlassian.net', 'username': 'a@b', 'api_token': 't',
            'incident_id': 'INC-2025-0042', 'state': 'present', 'issue_type': 'Incident', 'close_code': 'x'}
    base.update(kw)
    return base


@pytest.mark.parametrize('change, says', [
    ({'incident_id': 'INC 42'}, 'incident_id must be'),
    ({'bearer_token': 'b', 'api_token': None}, 'bearer_token is for ServiceNow'),
    ({'links': [{'key': 'ops-1', 'type': 'Relates'}]}, 'not a Jira issue key'),
    ({'jira_statuses': {'fixed': 'Done'}}, 'jira_statuses maps'),
    ({'state': 'resolved', 'status': 'identified'}, 'cannot be combined'),
    ({'resolution': 'done'}, 'only taken with state=resolved'),
    ({'username': None}, 'username is required'),
])
def test_bad_requests_are_one_sentence(change, says):
    with pytest.raises(HttpInputError, match=says):
        validate(params(**change))


@pytest.mark.parametrize('change, says', [
    ({'api_token': 't', 'bearer_token': 'b', 'system': 'servicenow'}, 'mutually exclusive'),
    ({'api_token': None}, 'or bearer_token is required to reach the ticket system'),
    ({'summary': '   '}, 'summary must not be empty'),
    ({'system': 'servicenow', 'project': 'OPS'}, 'project is a Jira option; ServiceNow does not take it'),
])
def test_more_refusals_name_the_option(change, says):
    with pytest.raises(HttpInputError, match=says):
        validate(params(**change))


def test_good_options_pass_for_both_systems():
    validate(params())
    validate(params(system='servicenow', api_token=None, username=None, bearer_token='b'))


def test_desired_status_is_resolved_for_state_resolved_else_the_status():
    assert desired_status({'state': 'resolved', 'status': None}) == 'resolved'
    assert desired_status({'state': 'present', 'status': 'identified'}) == 'identified'
    assert desired_status({'state': 'present'}) is None


def test_normalize_ignores_line_endings_and_trailing_blanks():
    assert normalize('  Queue lag \r\nsecond line   \n') == 'Queue lag\nsecond line'
    assert normalize(None) == ''


def test_oldest_of_several_tickets_warns_naming_the_others():
    warnings = []
    found = [{'key': 'OPS-1'}, {'key': 'OPS-7'}, {'key': 'OPS-9'}]
    assert oldest(found, lambda r: r['key'], 'issues carry INC-1', warnings) == {'key': 'OPS-1'}
    assert warnings == ['3 issues carry INC-1; working on the oldest (OPS-1), not OPS-7, OPS-9']
    assert oldest([], lambda r: r['key'], 'issues', warnings) is None and len(warnings) == 1
