# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""_statuspage: incident matching, the update plan and body comparison, retries and Retry-After, error messages."""

from __future__ import annotations

import datetime
import email.utils

import pytest
import requests
from _http_fakes import FakeResponse, FakeSession
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpAuthError,
    HttpInputError,
    HttpNotFoundError,
    HttpStatusError,
    HttpUnreachableError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._notify import statuspage as sp

KEY = 'sp-unit-secret-key-0123456789'
PAGE = 'kctbh9vrtdwd'
IID = 'INC-2025-0042'


def params(**kw):
    out = {'page_id': PAGE, 'api_key': KEY, 'api_url': 'https://api.statuspage.io/v1', 'incident_id': IID,
           'name': None, 'status': None, 'state': 'present', 'body': None, 'impact_override': None, 'components': None,
           'deliver_notifications': True, 'timeout': 10, 'retries': 3, 'retry_delay': 1, 'validate_certs': True,
           'ca_path': None}
    out.update(kw)
    return out


def incident(inc_id='abc', name=f'Delays [{IID}]', status='investigating', created='2025-01-15T14:30:00.000Z',
             bodies=('We are investigating.',), components=None, impact='minor', override='minor'):
    return {'id': inc_id, 'name': name, 'status': status, 'impact': impact, 'impact_override': override,
            'shortlink': f'https://stspg.io/{inc_id}', 'created_at': created, 'updated_at': created, 'resolved_at': None,
            'components': [{'id': c, 'name': c.upper(), 'status': s} for c, s in (components or {}).items()],
            'incident_updates': [{'id': f'u{i}', 'status': status, 'body': b, 'created_at': created}
                                 for i, b in enumerate(bodies)]}


def resp(status, body=None, headers=None, reason=''):
    reasons = {201: 'Created', 400: 'Bad Request', 420: 'Enhance Your Calm', 422: 'Unprocessable Entity', 502: 'Bad Gateway'}
    out = FakeResponse(status, body, reason=reason or reasons.get(status, ''))
    out.headers.update(headers or {})
    return out


def client(script, **kw):
    sleeps = []
    cl = sp.StatuspageClient(params(**kw), session=FakeSession(script), sleep=sleeps.append)
    return cl, sleeps


# -- matching ------------------------------------------------------------------

@pytest.mark.parametrize('name, given, expected', [
    ('Delays', IID, f'Delays [{IID}]'),
    (f'[{IID}] Delays', IID, f'[{IID}] Delays'),           # the tag anywhere is kept where it is
    ('  Delays  ', IID, f'Delays [{IID}]'),
])
def test_compose_name(name, given, expected):
    assert sp.compose_name(name, given) == expected


def test_find_open_matches_the_exact_tag_and_prefers_the_newest():
    incidents = [
        incident('other', name='Delays [INC-2025-00421]'),                    # a longer id is another incident
        incident('bare', name=f'Delays {IID}'),                               # untagged mention
        incident('done', status='resolved'),
        incident('old', created='2025-01-15T10:00:00.000Z'),
        incident('new', name=f'[{IID}] renamed by hand', created='2025-01-15T12:00:00.000Z'),
    ]
    found, others = sp.find_open(incidents, IID)
    assert found['id'] == 'new' and [o['id'] for o in others] == ['old']
    assert sp.find_open(incidents, 'INC-2025-9999') == (None, [])


def test_last_body_skips_status_only_updates():
    inc = incident(bodies=('', 'Cause found.', 'We are investigating.'))
    assert sp.last_body(inc) == 'Cause found.'
    assert sp.last_body(incident(bodies=('', '  '))) is None


# -- planning ------------------------------------------------------------------

def test_nothing_to_send_when_everything_matches():
    inc = incident(components={'c1': 'degraded_performance'}, bodies=('We are investigating.\r\n',))
    want = params(name='Delays', status='investigating', impact_override='minor', body='  We are investigating.\n',
                  components={'c1': 'degraded_performance'})
    assert sp.update_fields(inc, want) == {}


@pytest.mark.parametrize('change, expected', [
    ({'status': 'identified'}, {'status': 'identified'}),
    ({'state': 'resolved'}, {'status': 'resolved'}),
    ({'status': 'resolved'}, {'status': 'resolved'}),
    ({'name': 'Slow uploads'}, {'name': f'Slow uploads [{IID}]'}),
    ({'impact_override': 'major'}, {'impact_override': 'major'}),
    ({'body': 'New text.'}, {'body': 'New text.'}),
    ({'components': {'c2': 'major_outage'}}, {'component_ids': ['c1', 'c2'], 'components': {'c2': 'major_outage'}}),
    ({'components': {'c1': 'operational'}}, {'component_ids': ['c1'], 'components': {'c1': 'operational'}}),
])
def test_update_fields_sends_only_what_differs(change, expected):
    inc = incident(components={'c1': 'degraded_performance'})
    fields = sp.update_fields(inc, params(**change))
    assert fields == dict(expected, deliver_notifications=True)


def test_override_compared_with_the_computed_impact_when_the_api_has_no_override_field():
    inc = incident(impact='major')
    del inc['impact_override']
    assert sp.update_fields(inc, params(impact_override='major')) == {}


def test_create_fields_and_name_required():
    fields = sp.create_fields(params(name='Delays', body='Looking.', impact_override='minor', components={'c1': 'major_outage'},
                                     deliver_notifications=False))
    assert fields == {'name': f'Delays [{IID}]', 'status': 'investigating', 'body': 'Looking.', 'impact_override': 'minor',
                      'component_ids': ['c1'], 'components': {'c1': 'major_outage'}, 'deliver_notifications': False}
    with pytest.raises(HttpInputError, match='name is required'):
        sp.create_fields(params(status='identified'))


@pytest.mark.parametrize('bad, message', [
    ({'incident_id': 'INC 1'}, 'incident_id must be'),
    ({'incident_id': '[INC-1]'}, 'incident_id must be'),
    ({'name': '  '}, 'name must not be empty'),
    ({'state': 'resolved', 'status': 'monitoring'}, 'state=resolved cannot be combined'),
    ({'components': {'c1': 'down'}}, "status 'down' of component 'c1'"),
])
def test_validate_request(bad, message):
    with pytest.raises(HttpInputError, match=message):
        sp.validate_request(params(**bad))


def test_predict_and_diff_view():
    inc = incident(components={'c1': 'degraded_performance'})
    would = sp.predict(inc, {'status': 'resolved', 'components': {'c1': 'operational', 'c2': 'operational'}})
    assert sp.diff_view(would) == {'name': inc['name'], 'status': 'resolved', 'impact': 'minor',
                                   'components': {'c1': 'operational', 'c2': 'operational'}, 'body': 'We are investigating.'}
    new = sp.predict(None, {'name': 'X', 'status': 'investigating', 'body': 'Hi.'})
    assert new['id'] is None and sp.last_body(new) == 'Hi.'


# -- retries and Retry-After ---------------------------------------------------------

def test_429_honours_retry_after_seconds_and_http_date():
    later = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=20),
                                        usegmt=True)
    cl, sleeps = client([resp(429, {'error': 'slow'}, {'Retry-After': '7'}), resp(429, {}, {'Retry-After': later}),
                         resp(200, [])])
    assert cl.unresolved() == []
    assert sleeps[0] == 7 and 17 <= sleeps[1] <= 20
    assert cl.requests == [f'GET /v1/pages/{PAGE}/incidents/unresolved']


def test_420_backs_off_and_a_post_is_repeated():
    cl, sleeps = client([resp(420, {'error': 'calm'}), resp(420, {'error': 'calm'}), resp(201, incident())])
    assert cl.create({'name': 'X'})['id'] == 'abc'
    assert sleeps == [1, 2]


def test_retry_after_beyond_the_cap_gives_up_at_once():
    cl, sleeps = client([resp(429, {'error': 'Too many requests'}, {'Retry-After': '600'})])
    with pytest.raises(HttpStatusError, match=r'rate limited: .*429.*longer than 60 s'):
        cl.unresolved()
    assert sleeps == []


def test_rate_limit_exhausted():
    cl, _sleeps = client([resp(420, {'error': 'calm'})] * 3, retries=2)
    with pytest.raises(HttpStatusError, match=r'rate limited: GET .* answered 420 Enhance Your Calm: calm \(after 3 attempts\)'):
        cl.unresolved()


def test_get_retries_5xx_and_connection_errors():
    cl, sleeps = client([resp(502, {}), requests.exceptions.ConnectionError('refused'), resp(200, [])])
    assert cl.unresolved() == [] and sleeps == [1, 2]


def test_unreachable_is_one_message():
    cl, _sleeps = client([requests.exceptions.ConnectionError('Connection refused')] * 2, retries=1)
    with pytest.raises(HttpUnreachableError, match=r'^Cannot reach Statuspage API at .*\(after 2 attempts\)$'):
        cl.unresolved()


def test_a_write_answered_500_is_not_replayed_but_replanned():
    script = [resp(200, [incident()]), resp(500, {'error': 'boom'}, reason='Internal Server Error'),
              resp(200, [incident(status='identified')])]
    cl, sleeps = client(script)
    result = sp.IncidentManager(params(status='identified'), diff=True).run(cl)
    assert result['changed'] is True and result['action'] == 'updated'
    assert result['diff']['before']['status'] == 'investigating' and result['diff']['after']['status'] == 'identified'
    assert [c['method'] for c in cl.session.calls] == ['GET', 'PATCH', 'GET'] and sleeps == [1]


def test_uncertain_write_exhausted():
    script = [resp(200, [incident()]), resp(500, {'error': 'boom'}, reason='Internal Server Error')] * 2
    cl, _sleeps = client(script, retries=1)
    with pytest.raises(HttpStatusError, match='may or may not have been applied'):
        sp.IncidentManager(params(status='identified')).run(cl)


# -- error messages ----------------------------------------------------------------

@pytest.mark.parametrize('answer, exc, text', [
    (resp(401, {'error': 'Could not authenticate'}, reason='Unauthorized'), HttpAuthError,
     'refused GET /v1/pages/kctbh9vrtdwd/incidents/unresolved with 401 Unauthorized: Could not authenticate - check api_key'),
    (resp(404, {'error': 'Not found'}, reason='Not Found'), HttpNotFoundError, "page 'kctbh9vrtdwd' not found"),
    (resp(422, {'error': ['Name can\'t be blank', 'Components not found on this page: x']}), sp.StatuspageRejectedError,
     "with 422 Unprocessable Entity: Name can't be blank; Components not found on this page: x"),
])
def test_error_messages(answer, exc, text):
    cl, _sleeps = client([answer])
    with pytest.raises(exc) as caught:
        cl.unresolved()
    assert text in str(caught.value) and KEY not in str(caught.value) and '\n' not in str(caught.value)


def test_auth_header_and_check_mode_component_check():
    cl, _sleeps = client([resp(200, [incident()]), resp(200, [{'id': 'c1', 'status': 'operational'}])])
    assert cl.session.headers['Authorization'] == f'OAuth {KEY}'
    with pytest.raises(HttpInputError, match="no component 'nope' on page"):
        sp.IncidentManager(params(components={'nope': 'major_outage'}), check_mode=True).run(cl)
    assert [c['method'] for c in cl.session.calls] == ['GET', 'GET']


def test_several_open_incidents_warn_and_resolve_twice_is_none():
    cl, _sleeps = client([resp(200, [incident('a', created='2025-01-15T15:00:00.000Z'), incident('b')]),
                          resp(200, dict(incident('a', status='resolved'), resolved_at='2025-01-15T13:00:00.000Z')),
                          resp(200, [])])
    manager = sp.IncidentManager(params(state='resolved'))
    assert manager.run(cl)['action'] == 'resolved'
    assert manager.warnings and "working on the newest (a), not b" in manager.warnings[0]
    again = sp.IncidentManager(params(state='resolved')).run(cl)
    assert again['changed'] is False and again['action'] == 'none' and again['incident'] is None


# -- success is the documented answer, not a status code -------------------------------------

@pytest.mark.parametrize('answer, shown', [
    (resp(201, {}), 'JSON {}'),
    (resp(201, {'ok': True}), 'JSON {"ok": true}'),
    (resp(201, [incident()]), 'JSON [{"components": [], '),
    (resp(201), 'an empty body'),
])
def test_a_write_answered_without_an_incident_is_not_success(answer, shown):
    cl, _sleeps = client([resp(200, []), answer])
    with pytest.raises(HttpApiMismatchError) as caught:
        sp.IncidentManager(params(name='Delays', status='investigating')).run(cl)
    text = str(caught.value)
    assert text.startswith('Statuspage API at https://api.statuspage.io/v1: ') and text.endswith(' - check api_url')
    assert f'the incident write answered {shown}' in text and 'not an incident, so Statuspage did not confirm it' in text
    assert KEY not in text and '\n' not in text


@pytest.mark.parametrize('method', ['unresolved', 'components'])
@pytest.mark.parametrize('answer, shown', [
    (resp(200, {'incidents': []}), 'JSON {"incidents": []}'),
    (resp(200, ['x']), 'JSON ["x"]'),
])
def test_a_list_answered_with_another_shape_is_named(method, answer, shown):
    cl, _sleeps = client([answer])
    with pytest.raises(HttpApiMismatchError) as caught:
        getattr(cl, method)()
    assert f'answered {shown}, not a list of {"incidents" if method == "unresolved" else "components"}' in str(caught.value)
