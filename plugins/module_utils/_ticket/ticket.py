# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""One ticket per incident in Jira or ServiceNow: the shared options, the plan and its application.

The TRDR Hub incident id is the key (a Jira label, the ServiceNow ``correlation_id``), so a
re-run finds the ticket it opened. A system module (``jira.py``, ``servicenow.py``) reads the
ticket and turns the request into ``Step``s; the manager applies them unless in check mode,
where the steps are the prediction and nothing is sent.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HTTP_API_ARGS, HttpClient, status_text
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_errors import (
    HttpApiMismatchError,
    HttpAuthError,
    HttpInputError,
    HttpNotFoundError,
    HttpStatusError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker

SYSTEMS = ('jira', 'servicenow')
STATUSES = ('investigating', 'identified', 'monitoring', 'resolved')
PRIORITIES = ('P1', 'P2', 'P3', 'P4')
# Jira status each incident status moves the issue to; the transition is the one that leads there.
JIRA_STATUSES = {'investigating': 'In Progress', 'identified': 'In Progress', 'monitoring': 'In Progress',
                 'resolved': 'Done'}
_INCIDENT_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$')
_JIRA_KEY = re.compile(r'^[A-Z][A-Z0-9_]+-[1-9][0-9]*$')

TRANSPORT_ARGS: dict[str, dict[str, t.Any]] = {
    k: HTTP_API_ARGS[k] for k in ('validate_certs', 'ca_path', 'timeout', 'retries', 'retry_delay')}


def argument_spec() -> dict[str, t.Any]:
    spec: dict[str, t.Any] = dict(TRANSPORT_ARGS)
    spec.update(
        system={'type': 'str', 'required': True, 'choices': list(SYSTEMS)},
        url={'type': 'str', 'required': True},
        username={'type': 'str'},
        api_token={'type': 'str', 'no_log': True, 'aliases': ['password']},
        bearer_token={'type': 'str', 'no_log': True},
        incident_id={'type': 'str', 'required': True},
        state={'type': 'str', 'choices': ['present', 'resolved'], 'default': 'present'},
        summary={'type': 'str'},
        description={'type': 'str'},
        status={'type': 'str', 'choices': list(STATUSES)},
        priority={'type': 'str', 'choices': list(PRIORITIES)},
        comment={'type': 'str'},
        resolution={'type': 'str'},
        project={'type': 'str'},
        issue_type={'type': 'str', 'default': 'Incident'},
        jira_statuses={'type': 'dict'},
        links={'type': 'list', 'elements': 'dict', 'options': {
            'key': {'type': 'str', 'required': True, 'no_log': False},
            'type': {'type': 'str', 'default': 'Relates'},
        }},
        assignment_group={'type': 'str'},
        close_code={'type': 'str', 'default': 'Solved (Permanently)'},
    )
    return spec


class TicketError(HttpInputError):
    """A request the ticket system cannot carry out (no transition to the status, a field refused)."""


class TicketClient(HttpClient):
    """HttpClient of a ticket system: basic auth (username, api_token), JSON answers, one message per refused request.

    A system says its ``SERVICE``, which ``TRANSPORT`` options it takes, what to check after a
    C(401)/C(403) (``AUTH_HINT``), how to read its error body (``error_text``) and any answer
    it refuses in its own way (``refused``).
    """

    SERVICE = ''
    TRANSPORT: tuple[str, ...] = ('validate_certs', 'ca_path', 'timeout', 'retries', 'retry_delay')
    AUTH_HINT = ''

    def __init__(self, params: dict[str, t.Any], **kwargs: t.Any) -> None:
        transport = {k: params.get(k) for k in self.TRANSPORT}
        transport.update(url_username=params.get('username'), url_password=params.get('api_token'))
        super().__init__(transport, params['url'], service=self.SERVICE, **kwargs)
        self.session.headers['Accept'] = 'application/json'

    def error_text(self, resp: t.Any) -> str:
        raise NotImplementedError

    def refused(self, resp: t.Any, req: str, said: str) -> Exception | None:   # pylint: disable=unused-argument
        """The system's own failure for this answer, if it has one (checked before the common ones)."""
        return None

    def check(self, resp: t.Any, method: str, path: str, *, ok: t.Iterable[int] = (200,), missing: str = 'object') -> None:
        status = resp.status_code
        if status in tuple(ok):
            return
        req, said = f'{method} {self.prefix}{path}', self.mask(self.error_text(resp))
        said = f': {said}' if said else ''
        own = self.refused(resp, req, said)
        if own is not None:
            raise own
        if status in (401, 403):
            raise HttpAuthError(f'{self.where()} refused {req} with {status_text(resp)}{said} - {self.AUTH_HINT}', status=status)
        if status == 404 and missing == 'object':
            raise HttpNotFoundError(f'{self.where()}: {req} answered {status_text(resp)}{said}', status=status)
        if status in (404, 410):
            raise HttpApiMismatchError(f'{self.display} is not {self.service_name()}: {req} answered '
                                       f'{status_text(resp)}{said} - check url', status=status)
        if status == 400:
            raise TicketError(f'{self.where()} rejected {req} with {status_text(resp)}{said}', status=status)
        prefix = 'rate limited: ' if status == 429 else ''
        raise HttpStatusError(f'{self.where()}: {prefix}{req} answered {status_text(resp)}{said}'
                              f'{self._attempts(self.last_attempts)}', status=status)


def oldest(found: list[dict[str, t.Any]], name: t.Callable[[dict[str, t.Any]], str], what: str,
           warnings: list[str]) -> dict[str, t.Any] | None:
    """The oldest of the tickets ``found`` for the incident, None if none; more than one is a warning naming the others."""
    if len(found) > 1:
        warnings.append(f"{len(found)} {what}; working on the oldest ({name(found[0])}), not {', '.join(name(r) for r in found[1:])}")
    return found[0] if found else None


def validate(params: dict[str, t.Any]) -> None:
    incident_id = (params.get('incident_id') or '').strip()
    if not _INCIDENT_ID.match(incident_id):
        raise HttpInputError(f'incident_id must be a TRDR Hub incident id such as INC-2025-0042 (letters, digits, '
                             f'".", "_", ":", "-"), got {params.get("incident_id")!r}')
    if params.get('api_token') and params.get('bearer_token'):
        raise HttpInputError('api_token and bearer_token are mutually exclusive; give one of them')
    if not params.get('api_token') and not params.get('bearer_token'):
        raise HttpInputError('api_token (with username) or bearer_token is required to reach the ticket system')
    if params.get('api_token') and not params.get('username'):
        raise HttpInputError('username is required with api_token (the account e-mail in Jira, the user in ServiceNow)')
    if params.get('state') == 'resolved' and params.get('status') not in (None, 'resolved'):
        raise HttpInputError(f"state=resolved cannot be combined with status={params['status']}")
    if params.get('resolution') is not None and desired_status(params) != 'resolved':
        raise HttpInputError('resolution is only taken with state=resolved')
    for name in ('summary', 'comment', 'resolution'):
        if params.get(name) is not None and not params[name].strip():
            raise HttpInputError(f'{name} must not be empty')
    if params['system'] == 'jira':
        if params.get('bearer_token'):
            raise HttpInputError('bearer_token is for ServiceNow; Jira takes username (the account e-mail) and api_token')
        for status, name in (params.get('jira_statuses') or {}).items():
            if status not in STATUSES or not isinstance(name, str) or not name.strip():
                raise HttpInputError(f'jira_statuses maps an incident status ({", ".join(STATUSES)}) to a Jira status '
                                     f'name, got {status!r}: {name!r}')
        for link in params.get('links') or []:
            if not _JIRA_KEY.match(link['key']):
                raise HttpInputError(f"links: {link['key']!r} is not a Jira issue key such as OPS-12")
    else:
        for name in ('project', 'jira_statuses', 'links'):
            if params.get(name):
                raise HttpInputError(f'{name} is a Jira option; ServiceNow does not take it')


def desired_status(params: dict[str, t.Any]) -> str | None:
    return 'resolved' if params.get('state') == 'resolved' else params.get('status')


def normalize(text: str | None) -> str:
    return '\n'.join(line.rstrip() for line in (text or '').replace('\r\n', '\n').strip().split('\n'))


class Step:
    """One write: ``kind`` (create, update, transition, comment, link), its payload and a sentence for ``changes``."""

    def __init__(self, kind: str, payload: t.Any, says: str) -> None:
        self.kind, self.payload, self.says = kind, payload, says


class TicketManager(Worker):
    """Find the incident's ticket, plan the steps, apply them (not in check mode), report."""

    def __init__(self, params: dict[str, t.Any], system: t.Any, check_mode: bool = False, diff: bool = False) -> None:
        validate(params)
        super().__init__(dict(params, incident_id=params['incident_id'].strip()), check_mode, diff)
        self.system = system

    def run(self, client: t.Any) -> dict[str, t.Any]:
        ticket = self.system.find(client, self.params, self.warnings)
        steps = self.system.plan(client, ticket, self.params)
        before = self.system.view(ticket)
        if ticket is None and not steps:
            after = before
        elif self.check_mode:
            after = self.system.predict(ticket, steps, self.params)
        else:
            ticket = self.system.apply(client, ticket, steps, self.params)
            after = self.system.view(ticket)
        action = 'none'
        if steps:
            action = 'created' if steps[0].kind == 'create' else (
                'resolved' if desired_status(self.params) == 'resolved' and before.get('status') != after.get('status')
                else 'updated')
        out: dict[str, t.Any] = {'changed': bool(steps), 'action': action, 'incident_id': self.params['incident_id'],
                                 'system': self.params['system'], 'ticket': after or None,
                                 'changes': [s.says for s in steps], 'requests': client.requests}
        if self.diff:
            out['diff'] = {'before': before, 'after': after}
        return out
