# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""ServiceNow Table API: the ``incident`` record whose ``correlation_id`` is the incident id.

Find: ``GET /api/now/table/incident?sysparm_query=correlation_id=<id>``. Create: ``POST`` with
short description, impact and urgency (from the priority), state In Progress. Update: ``PATCH
/api/now/table/incident/{sys_id}`` with the fields that differ and a work note; resolving sets
state 6 (Resolved) with ``close_code`` and ``close_notes``, which a default instance requires.
A work note is added once: the record's work notes (``sys_journal_field``) are read first.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    condense,
    describe_json,
    server_reason,
    status_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import Step, TicketClient, TicketError, desired_status, normalize, oldest

TABLE = '/api/now/table/incident'
JOURNAL = '/api/now/table/sys_journal_field'
FIELDS = 'sys_id,number,state,short_description,correlation_id,impact,urgency,close_code,close_notes,assignment_group'
STATE_NAMES = {'1': 'New', '2': 'In Progress', '3': 'On Hold', '6': 'Resolved', '7': 'Closed', '8': 'Canceled'}
STATE_OF = {'investigating': '2', 'identified': '2', 'monitoring': '2', 'resolved': '6'}
# ServiceNow's priority is computed from impact and urgency (1 high - 3 low).
IMPACT_URGENCY = {'P1': ('1', '1'), 'P2': ('1', '2'), 'P3': ('2', '2'), 'P4': ('2', '3')}


def servicenow_error(resp: t.Any) -> str:
    """ServiceNow's own words: ``{"error": {"message": ..., "detail": ...}, "status": "failure"}``, else the body."""
    try:
        body = json.loads(resp.text or '')
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get('error'), dict):
        err = body['error']
        words = [str(err.get(k)).strip() for k in ('message', 'detail') if err.get(k)]
        return condense(' - '.join(words))
    return server_reason(resp)


def _value(field: t.Any) -> str:
    """A field as a string: the Table API answers a reference as ``{"value": ..., "link": ...}``."""
    if isinstance(field, dict):
        field = field.get('value')
    return '' if field is None else str(field)


class ServiceNowClient(TicketClient):
    """Basic auth or an OAuth bearer token; ServiceNow's error bodies."""

    SERVICE = 'ServiceNow Table API'
    TRANSPORT = TicketClient.TRANSPORT + ('bearer_token',)
    AUTH_HINT = 'check username and api_token (or bearer_token), and the roles of the account'

    def error_text(self, resp: t.Any) -> str:
        return servicenow_error(resp)

    def refused(self, resp: t.Any, req: str, said: str) -> Exception | None:
        if resp.status_code == 403 and 'data policy' in said.lower():
            return TicketError(f'{self.where()} rejected {req} with {status_text(resp)}{said}', status=resp.status_code)
        return None

    def result(self, method: str, path: str, *, ok: t.Iterable[int] = (200,), missing: str = 'object',
               **kwargs: t.Any) -> t.Any:
        out = self.request_json(method, path, ok=ok, missing=missing, **kwargs)
        if not isinstance(out, dict) or 'result' not in out:
            raise HttpApiMismatchError(f'{self.where()}: {method} {self.prefix}{path} answered {describe_json(out)}, '
                                       'not a Table API result - check url')
        return out['result']


class ServiceNow:
    """The ServiceNow side of the ticket manager."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip('/')
        self.notes: list[str] = []

    def find(self, client: ServiceNowClient, params: dict[str, t.Any], warnings: list[str]) -> dict[str, t.Any] | None:
        found = client.result('GET', TABLE, missing='api', params={
            'sysparm_query': f"correlation_id={params['incident_id']}^ORDERBYsys_created_on",
            'sysparm_fields': FIELDS, 'sysparm_limit': 10})
        if not isinstance(found, list) or not all(isinstance(r, dict) and r.get('sys_id') for r in found):
            raise HttpApiMismatchError(f'{client.where()}: the incident query answered {describe_json(found)}, not a '
                                       'list of records - check url')
        record = oldest(found, lambda r: str(r.get('number')), f"ServiceNow incidents carry correlation_id {params['incident_id']}",
                        warnings)
        if record is None:
            return None
        notes = client.result('GET', JOURNAL, params={
            'sysparm_query': f"element_id={record['sys_id']}^element=work_notes", 'sysparm_fields': 'value',
            'sysparm_limit': 1000})
        self.notes = [normalize(_value(n.get('value'))) for n in notes or [] if isinstance(n, dict)]
        return record

    def plan(self, client: ServiceNowClient, record: dict[str, t.Any] | None, params: dict[str, t.Any]) -> list[Step]:
        status = desired_status(params)
        wanted: dict[str, str] = {}
        if params.get('summary'):
            wanted['short_description'] = params['summary']
        if params.get('priority'):
            wanted['impact'], wanted['urgency'] = IMPACT_URGENCY[params['priority']]
        if params.get('assignment_group'):
            wanted['assignment_group'] = params['assignment_group']
        if status:
            wanted['state'] = STATE_OF[status]
        if status == 'resolved':
            wanted['close_code'] = params['close_code']
            wanted['close_notes'] = params.get('resolution') or (record or {}).get('close_notes') or 'Resolved'
        note = params.get('comment')
        if record is None:
            if not params.get('summary'):
                raise TicketError(f"summary is required to open the ServiceNow incident of {params['incident_id']} (no "
                                  'incident carries its correlation_id yet)')
            fields = dict(wanted, correlation_id=params['incident_id'], correlation_display='trdrhub.incident')
            fields.setdefault('state', '2')
            if params.get('description'):
                fields['description'] = params['description']
            if note:
                fields['work_notes'] = note
            return [Step('create', fields, 'create an incident')]
        changed = {k: v for k, v in wanted.items() if _value(record.get(k)) != v}
        if _value(record.get('state')) in ('6', '7'):
            changed.pop('close_code', None)   # a resolved incident keeps the code it was closed with
        steps = []
        if changed:
            steps.append(Step('update', changed, 'set ' + ', '.join(sorted(changed))))
        if note and normalize(note) not in self.notes:
            steps.append(Step('comment', note, f'add the work note {condense(note, 60)!r}'))
        return steps

    def apply(self, client: ServiceNowClient, record: dict[str, t.Any] | None, steps: list[Step],
              params: dict[str, t.Any]) -> dict[str, t.Any]:
        query = {'sysparm_fields': FIELDS}
        for step in steps:
            if step.kind == 'create':
                record = client.result('POST', TABLE, ok=(201,), params=query, json_body=step.payload)
            elif step.kind == 'update':
                record = client.result('PATCH', f"{TABLE}/{record['sys_id']}", params=query, json_body=step.payload)
            elif step.kind == 'comment':
                record = client.result('PATCH', f"{TABLE}/{record['sys_id']}", params=query,
                                       json_body={'work_notes': step.payload})
            if not isinstance(record, dict) or not record.get('sys_id'):
                raise HttpApiMismatchError(f'{client.where()}: the incident write answered {describe_json(record)}, not '
                                           'a record - check url')
        return record or {}

    def view(self, record: dict[str, t.Any] | None) -> dict[str, t.Any]:
        if not record:
            return {}
        state = _value(record.get('state'))
        return {'key': _value(record.get('number')) or None, 'id': _value(record.get('sys_id')) or None,
                'url': f"{self.url}/nav_to.do?uri=incident.do?sys_id={_value(record.get('sys_id'))}",
                'summary': _value(record.get('short_description')) or None, 'status': STATE_NAMES.get(state, state or None),
                'state': state or None, 'impact': _value(record.get('impact')) or None,
                'urgency': _value(record.get('urgency')) or None, 'close_code': _value(record.get('close_code')) or None}

    def predict(self, record: dict[str, t.Any] | None, steps: list[Step], params: dict[str, t.Any]) -> dict[str, t.Any]:
        merged = dict(record or {'sys_id': '', 'number': ''})
        for step in steps:
            if step.kind in ('create', 'update'):
                merged.update(step.payload)
        view = self.view(merged)
        if record is None:
            view['url'] = None
        return view
