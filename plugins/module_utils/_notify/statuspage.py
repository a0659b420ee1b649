# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Atlassian Statuspage REST v1: find the open incident of a TRDR Hub incident, plan and apply one change.

The TRDR Hub incident id is the key: it is carried in the Statuspage incident name as
a ``[INC-2025-0042]`` tag, and the open incident is the unresolved one whose name
contains that exact tag. Everything the module decides is computed by pure functions
here (matching, planning, diff views), so check mode is the plan without the write.

Retries: every request is repeated on 420 and 429 (rate limited, honouring
Retry-After) and 503 (not processed); a GET also on 500/502/504 and connection
errors. A write that may have been processed (500/502/504, timeout) is never simply
replayed, which could post the same update twice: the manager re-reads the open
incidents and plans again, so an applied write leaves nothing more to do.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible.module_utils.basic import env_fallback
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HTTP_API_ARGS,
    MAX_RETRY_AFTER,
    HttpApiError,
    HttpApiMismatchError,
    HttpAuthError,
    HttpClient,
    HttpInputError,
    HttpNotFoundError,
    HttpStatusError,
    HttpTlsError,
    HttpUnreachableError,
    backoff_delay,
    condense,
    describe_json,
    retry_after_seconds,
    server_reason,
    status_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker

DEFAULT_API_URL = 'https://api.statuspage.io/v1'
SERVICE = 'Statuspage API'
INCIDENT_STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
COMPONENT_STATUSES = ('operational', 'degraded_performance', 'partial_outage', 'major_outage', 'under_maintenance')
IMPACTS = ('none', 'minor', 'major', 'critical')
RATE_LIMITED = frozenset({420, 429})
# Answers that mean the request was not processed: any method may be repeated.
NOT_PROCESSED = RATE_LIMITED | {503}
# Answers after which a write may or may not have happened: only reads are repeated.
MAYBE_PROCESSED = frozenset({500, 502, 504})
_INCIDENT_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$')

TRANSPORT_ARGS: dict[str, dict[str, t.Any]] = {k: HTTP_API_ARGS[k] for k in ('validate_certs', 'ca_path', 'timeout', 'retry_delay')}


def argument_spec() -> dict[str, t.Any]:
    spec: dict[str, t.Any] = dict(TRANSPORT_ARGS)
    spec.update(
        page_id={'type': 'str', 'required': True},
        api_key={'type': 'str', 'required': True, 'no_log': True, 'fallback': (env_fallback, ['STATUSPAGE_API_KEY'])},
        api_url={'type': 'str', 'default': DEFAULT_API_URL},
        incident_id={'type': 'str', 'required': True},
        name={'type': 'str'},
        status={'type': 'str', 'choices': list(INCIDENT_STATUSES)},
        state={'type': 'str', 'choices': ['present', 'resolved'], 'default': 'present'},
        body={'type': 'str'},
        impact_override={'type': 'str', 'choices': list(IMPACTS)},
        components={'type': 'dict'},
        deliver_notifications={'type': 'bool', 'default': True},
        retries=dict(HTTP_API_ARGS['retries'], default=3),
    )
    return spec


class StatuspageRejectedError(HttpStatusError):
    """400/422: Statuspage refused the incident as sent; the message quotes its reason."""


class UncertainWriteError(HttpApiError):
    """A POST/PATCH got no answer or a 500/502/504: it may or may not have been applied."""


# -- pure helpers: matching, planning, views ---------------------------------

def tag(incident_id: str) -> str:
    return f'[{incident_id}]'


def compose_name(name: str, incident_id: str) -> str:
    """The Statuspage name: ``name`` with `` [incident_id]`` appended unless it already carries the tag."""
    name = name.strip()
    return name if tag(incident_id) in name else f'{name} {tag(incident_id)}'


def find_open(incidents: list[dict[str, t.Any]], incident_id: str) -> tuple[dict[str, t.Any] | None, list[dict[str, t.Any]]]:
    """(the newest unresolved incident whose name carries the tag, the other matches)."""
    found = [i for i in incidents if i.get('status') != 'resolved' and tag(incident_id) in (i.get('name') or '')]
    found.sort(key=lambda i: str(i.get('created_at') or ''), reverse=True)
    return (found[0] if found else None), found[1:]


def normalize_body(text: t.Any) -> str:
    """Bodies compare equal after line endings are unified and surrounding whitespace is trimmed."""
    return str(text or '').replace('\r\n', '\n').replace('\r', '\n').strip()


def last_body(incident: dict[str, t.Any]) -> str | None:
    """Body of the newest incident update that has one (a status-only update has an empty body).

    Statuspage lists ``incident_updates`` newest first; that order is trusted, as two
    updates can share a timestamp.
    """
    for update in incident.get('incident_updates') or []:
        if isinstance(update, dict) and normalize_body(update.get('body')):
            return update.get('body')
    return None


def component_statuses(incident: dict[str, t.Any]) -> dict[str, str]:
    return {c['id']: c.get('status') for c in incident.get('components') or [] if isinstance(c, dict) and c.get('id')}


def current_override(incident: dict[str, t.Any]) -> str | None:
    return incident['impact_override'] if 'impact_override' in incident else incident.get('impact')


def diff_view(incident: dict[str, t.Any] | None) -> dict[str, t.Any]:
    if not incident:
        return {}
    return {'name': incident.get('name'), 'status': incident.get('status'), 'impact': incident.get('impact'),
            'components': component_statuses(incident), 'body': last_body(incident)}


def incident_view(incident: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    """What the module returns of an incident: the fields a playbook uses, component names included."""
    if incident is None:
        return None
    keys = ('id', 'name', 'status', 'impact', 'impact_override', 'shortlink', 'created_at', 'updated_at', 'resolved_at')
    view = {k: incident.get(k) for k in keys}
    view['components'] = [{'id': c.get('id'), 'name': c.get('name'), 'status': c.get('status')}
                          for c in incident.get('components') or [] if isinstance(c, dict)]
    view['incident_updates'] = [{'id': u.get('id'), 'status': u.get('status'), 'body': u.get('body'),
                                 'created_at': u.get('created_at')} for u in incident.get('incident_updates') or []]
    view['last_body'] = last_body(incident)
    return view


def validate_request(params: dict[str, t.Any]) -> None:
    incident_id = (params.get('incident_id') or '').strip()
    if not _INCIDENT_ID.match(incident_id):
        raise HttpInputError(f'incident_id must be a TRDR Hub incident id such as INC-2025-0042 (letters, digits, '
                             f'".", "_", ":", "/", "-"; no spaces or brackets), got {params.get("incident_id")!r}')
    if params.get('name') is not None and not params['name'].strip():
        raise HttpInputError('name must not be empty')
    if params.get('state') == 'resolved' and params.get('status') not in (None, 'resolved'):
        raise HttpInputError(f"state=resolved cannot be combined with status={params['status']}")
    for comp_id, status in (params.get('components') or {}).items():
        if status not in COMPONENT_STATUSES:
            raise HttpInputError(f'components: status {status!r} of component {comp_id!r} is not one of '
                                 f'{", ".join(COMPONENT_STATUSES)}')


def desired_status(params: dict[str, t.Any]) -> str | None:
    return 'resolved' if params.get('state') == 'resolved' else params.get('status')


def create_fields(params: dict[str, t.Any]) -> dict[str, t.Any]:
    if not params.get('name'):
        raise HttpInputError(f"name is required to open the Statuspage incident for {params['incident_id']} "
                             '(no unresolved incident carries its tag)')
    fields: dict[str, t.Any] = {'name': compose_name(params['name'], params['incident_id']),
                                'status': desired_status(params) or 'investigating'}
    if params.get('body') is not None:
        fields['body'] = params['body']
    if params.get('impact_override'):
        fields['impact_override'] = params['impact_override']
    if params.get('components'):
        fields['component_ids'] = list(params['components'])
        fields['components'] = dict(params['components'])
    fields['deliver_notifications'] = params.get('deliver_notifications', True)
    return fields


def update_fields(incident: dict[str, t.Any], params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The PATCH that brings ``incident`` to what was asked for; empty when it already is."""
    fields: dict[str, t.Any] = {}
    if params.get('name'):
        name = compose_name(params['name'], params['incident_id'])
        if name != incident.get('name'):
            fields['name'] = name
    status = desired_status(params)
    if status and status != incident.get('status'):
        fields['status'] = status
    if params.get('impact_override') and params['impact_override'] != current_override(incident):
        fields['impact_override'] = params['impact_override']
    wanted = params.get('components') or {}
    current = component_statuses(incident)
    if any(current.get(cid) != st for cid, st in wanted.items()):
        fields['component_ids'] = list(dict.fromkeys(list(current) + list(wanted)))
        fields['components'] = dict(wanted)
    if params.get('body') is not None and normalize_body(params['body']) != normalize_body(last_body(incident)):
        fields['body'] = params['body']
    if fields:
        fields['deliver_notifications'] = params.get('deliver_notifications', True)
    return fields


def predict(incident: dict[str, t.Any] | None, fields: dict[str, t.Any]) -> dict[str, t.Any]:
    """The incident as it would be after ``fields`` were sent (check mode); ids and times unknown stay null."""
    out = dict(incident or {'id': None, 'shortlink': None, 'created_at': None, 'updated_at': None,
                            'resolved_at': None, 'impact': None, 'impact_override': None, 'components': [],
                            'incident_updates': []})
    for key in ('name', 'status'):
        if key in fields:
            out[key] = fields[key]
    if 'impact_override' in fields:
        out['impact_override'] = out['impact'] = fields['impact_override']
    if 'components' in fields:
        comps = {c['id']: dict(c) for c in out.get('components') or []}
        for cid, status in fields['components'].items():
            comps.setdefault(cid, {'id': cid, 'name': None})['status'] = status
        out['components'] = list(comps.values())
    if fields.get('body') or 'status' in fields:
        update = {'id': None, 'status': out.get('status'), 'body': fields.get('body') or '', 'created_at': None}
        out['incident_updates'] = [update] + list(out.get('incident_updates') or [])
    return out


# -- the API client ----------------------------------------------------------

def statuspage_error(resp: t.Any) -> str:
    """Statuspage's own words: ``{"error": "..."}`` or ``{"error": ["...", ...]}``, else the body."""
    try:
        body = json.loads(resp.text or '')
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get('error'):
        err = body['error']
        return condense('; '.join(str(e) for e in err) if isinstance(err, list) else str(err))
    return server_reason(resp)


class StatuspageClient(HttpClient):
    """HttpClient with ``Authorization: OAuth <api_key>`` and Statuspage's retry and error rules."""

    def __init__(self, params: dict[str, t.Any], **kwargs: t.Any) -> None:
        transport = {k: params.get(k) for k in ('validate_certs', 'ca_path', 'timeout', 'retries', 'retry_delay')}
        super().__init__(transport, params.get('api_url') or DEFAULT_API_URL, service=SERVICE, option='api_url', **kwargs)
        self.page_id = params['page_id']
        self.session.headers['Authorization'] = f"OAuth {params['api_key']}"
        self.session.headers['Accept'] = 'application/json'

    def send(self, method: str, path: str, *, params: t.Any = None, json_body: t.Any = None,
             timeout: float | None = None, retries: int | None = None) -> t.Any:
        retries = self.retries if retries is None else retries
        mark = len(self.requests)
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = super().send(method, path, params=params, json_body=json_body, timeout=timeout, retries=0)
            except (HttpTlsError, HttpInputError):
                raise
            except HttpUnreachableError as exc:
                if method == 'GET' and attempt <= retries:
                    self._sleep(backoff_delay(attempt, self.retry_delay))
                    continue
                msg = f'{exc}{self._attempts(attempt)}'
                raise (UncertainWriteError(msg) if method != 'GET' else HttpUnreachableError(msg)) from None
            finally:
                del self.requests[mark + 1:]   # one entry per logical request, however many attempts
            self.last_attempts = attempt
            retry = resp.status_code in NOT_PROCESSED or (method == 'GET' and resp.status_code in MAYBE_PROCESSED)
            if not retry or attempt > retries:
                return resp
            wait = retry_after_seconds(resp.headers.get('Retry-After'))
            if wait is not None and wait > MAX_RETRY_AFTER:
                return resp
            self._sleep(backoff_delay(attempt, self.retry_delay, wait))

    def check(self, resp: t.Any, method: str, path: str, *, ok: t.Iterable[int] = (200,), missing: str = 'object') -> None:
        status = resp.status_code
        if status in tuple(ok):
            return
        req, said = f'{method} {self.prefix}{path}', statuspage_error(resp)
        said = f': {said}' if said else ''
        answered = f'{req} answered {status_text(resp)}{said}'
        if status in (401, 403):
            raise HttpAuthError(f'{self.where()} refused {req} with {status_text(resp)}{said} - check api_key '
                                f'(or STATUSPAGE_API_KEY) and that it may manage page {self.page_id}', status=status)
        if status == 404:
            what = f'page {self.page_id!r}'
            found = re.search(r'/incidents/([^/]+)$', path)
            if found and found.group(1) != 'unresolved':
                what = f'incident {found.group(1)!r} on page {self.page_id!r}'
            raise HttpNotFoundError(f'{self.where()}: {what} not found ({answered}) - check page_id', status=status)
        if status in (400, 422):
            raise StatuspageRejectedError(f'{self.where()} rejected {req} with {status_text(resp)}{said}', status=status)
        extra = self._attempts(self.last_attempts)
        wait = retry_after_seconds(resp.headers.get('Retry-After'))
        if wait is not None and wait > MAX_RETRY_AFTER:
            extra += f' (the server asked to retry after {wait:.0f} s, longer than {MAX_RETRY_AFTER:.0f} s)'
        prefix = 'rate limited: ' if status in RATE_LIMITED else ''
        if method != 'GET' and status in MAYBE_PROCESSED:
            raise UncertainWriteError(f'{self.where()}: {prefix}{answered}{extra}', status=status)
        raise HttpStatusError(f'{self.where()}: {prefix}{answered}{extra}', status=status)

    def _page(self, suffix: str) -> str:
        return f'/pages/{self.page_id}{suffix}'

    def unresolved(self) -> list[dict[str, t.Any]]:
        path = self._page('/incidents/unresolved')
        out = self.request_json('GET', path)
        return self._list(path, 'incidents', out)

    def components(self) -> list[dict[str, t.Any]]:
        path = self._page('/components')
        return self._list(path, 'components', self.request_json('GET', path))

    def _list(self, path: str, what: str, out: t.Any) -> list[dict[str, t.Any]]:
        if not isinstance(out, list) or not all(isinstance(item, dict) for item in out):
            raise HttpApiMismatchError(f'{self.where()}: GET {self.prefix}{path} answered {describe_json(out)}, not a list '
                                       f'of {what} - check api_url')
        return out

    def create(self, fields: dict[str, t.Any]) -> dict[str, t.Any]:
        return self.request_json('POST', self._page('/incidents'), ok=(200, 201), json_body={'incident': fields})

    def update(self, incident_id: str, fields: dict[str, t.Any]) -> dict[str, t.Any]:
        return self.request_json('PATCH', self._page(f'/incidents/{incident_id}'), json_body={'incident': fields})


# -- the manager -------------------------------------------------------------

class IncidentManager(Worker):
    """Plans and applies one change to the Statuspage incident of one TRDR Hub incident."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> None:
        validate_request(params)
        super().__init__(dict(params, incident_id=params['incident_id'].strip()), check_mode, diff)
        self._pending: tuple[str, dict[str, t.Any]] | None = None

    def run(self, client: StatuspageClient) -> dict[str, t.Any]:
        rounds = 0
        while True:
            rounds += 1
            try:
                result = self.once(client)
            except UncertainWriteError as exc:
                if rounds > client.retries:
                    raise HttpStatusError(f'{exc}; the change may or may not have been applied - re-run the task') from None
                client._sleep(backoff_delay(rounds, client.retry_delay))
                continue
            if self._pending and result['action'] == 'none':
                # An earlier attempt's write did land: report it, not "nothing to do".
                result.update(changed=True, action=self._pending[0])
                if self.diff:
                    result['diff']['before'] = self._pending[1]
            result['requests'] = client.requests
            return result

    def once(self, client: StatuspageClient) -> dict[str, t.Any]:
        incident_id = self.params['incident_id']
        target, others = find_open(client.unresolved(), incident_id)
        if others:
            self.warnings.append(f'{len(others) + 1} unresolved Statuspage incidents carry {tag(incident_id)}; '
                                 f"working on the newest ({target['id']}), not {', '.join(str(o.get('id')) for o in others)}")
        before = diff_view(target)
        if target is None:
            if desired_status(self.params) == 'resolved':
                return self.result('none', False, None, before, before)
            fields, action = create_fields(self.params), 'created'
        else:
            fields = update_fields(target, self.params)
            if not fields:
                return self.result('none', False, target, before, before)
            action = 'resolved' if fields.get('status') == 'resolved' else 'updated'
        if self.check_mode:
            self.check_components(client)
            would = predict(target, fields)
            return self.result(action, True, would, before, diff_view(would))
        if self._pending is None:
            self._pending = (action, before)
        stored = client.create(fields) if target is None else client.update(target['id'], fields)
        if not isinstance(stored, dict) or not stored.get('id'):
            raise HttpApiMismatchError(f'{client.where()}: the incident write answered {describe_json(stored)}, not an '
                                       'incident, so Statuspage did not confirm it - check api_url')
        return self.result(action, True, stored, before, diff_view(stored))

    def check_components(self, client: StatuspageClient) -> None:
        """Check mode sends nothing Statuspage could refuse, so component ids are checked against the page."""
        wanted = self.params.get('components') or {}
        if not wanted:
            return
        known = {c.get('id') for c in client.components() if isinstance(c, dict)}
        unknown = sorted(cid for cid in wanted if cid not in known)
        if unknown:
            raise HttpInputError(f"components: no component {', '.join(map(repr, unknown))} on page {client.page_id!r}")

    def result(self, action: str, changed: bool, incident: dict[str, t.Any] | None, before: dict[str, t.Any],
               after: dict[str, t.Any]) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'changed': changed, 'action': action, 'incident': incident_view(incident),
                                 'incident_id': self.params['incident_id']}
        if self.diff:
            out['diff'] = {'before': before, 'after': after}
        return out
