# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Jira Cloud REST API v3: the issue labelled with the incident id, its status, comments and links.

Find: ``GET /rest/api/3/search/jql`` with ``labels = "<incident id>"`` (the enhanced search
that replaced ``/rest/api/3/search``). Create: ``POST /rest/api/3/issue`` with the label and
an Atlassian Document Format description. Status: the transition (``GET``/``POST
/rest/api/3/issue/{key}/transitions``) whose target is the Jira status mapped from the
incident status. Comments are posted once: a comment whose text is already on the issue is
not posted again. Links: ``POST /rest/api/3/issueLink`` for a link the issue does not have.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import HttpApiMismatchError, condense, describe_json, server_reason
from ansible_collections.trdrhub.incident.plugins.module_utils._ticket.ticket import (
    JIRA_STATUSES,
    Step,
    TicketClient,
    TicketError,
    desired_status,
    normalize,
    oldest,
)

API = '/rest/api/3'
FIELDS = 'summary,status,labels,issuelinks'


def adf(text: str) -> dict[str, t.Any]:
    """Plain text as an Atlassian Document Format document: one paragraph per line block."""
    paragraphs = [p for p in normalize(text).split('\n\n') if p.strip()] or ['']
    content = []
    for para in paragraphs:
        nodes: list[dict[str, t.Any]] = []
        for index, line in enumerate(para.split('\n')):
            if index:
                nodes.append({'type': 'hardBreak'})
            if line:
                nodes.append({'type': 'text', 'text': line})
        content.append({'type': 'paragraph', 'content': nodes})
    return {'type': 'doc', 'version': 1, 'content': content}


def adf_text(node: t.Any) -> str:
    """The text of an ADF document (paragraphs separated by a blank line), for comparing comments."""
    if not isinstance(node, dict):
        return ''
    if node.get('type') == 'text':
        return str(node.get('text') or '')
    if node.get('type') == 'hardBreak':
        return '\n'
    parts = [adf_text(child) for child in node.get('content') or []]
    return ('\n\n' if node.get('type') == 'doc' else '').join(parts)


def jira_error(resp: t.Any) -> str:
    """Jira's own words: ``{"errorMessages": [...], "errors": {"field": "..."}}``, else the body."""
    try:
        body = json.loads(resp.text or '')
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get('errorMessages') or body.get('errors')):
        words = [str(m) for m in body.get('errorMessages') or []]
        errors = body.get('errors') if isinstance(body.get('errors'), dict) else {}
        words += [f'{field}: {msg}' for field, msg in errors.items()]
        return condense('; '.join(words))
    return server_reason(resp)


class JiraClient(TicketClient):
    """Basic auth with the account e-mail and an API token; Jira's error bodies."""

    SERVICE = 'Jira Cloud REST API v3'
    AUTH_HINT = 'check username (the account e-mail) and api_token, and that the account may use the project'

    def error_text(self, resp: t.Any) -> str:
        return jira_error(resp)

    def get(self, path: str, params: t.Any = None, missing: str = 'object') -> t.Any:
        out = self.request_json('GET', API + path, params=params, missing=missing)
        if not isinstance(out, dict):
            raise HttpApiMismatchError(f'{self.where()}: GET {self.prefix}{API}{path} answered {describe_json(out)}, '
                                       'not a JSON object - check url')
        return out

    def search(self, jql: str) -> list[dict[str, t.Any]]:
        out = self.get('/search/jql', {'jql': jql, 'fields': FIELDS, 'maxResults': 10}, missing='api')
        issues = out.get('issues')
        if not isinstance(issues, list) or not all(isinstance(i, dict) and i.get('key') for i in issues):
            raise HttpApiMismatchError(f'{self.where()}: the search answered {describe_json(out)}, not a list of '
                                       'issues - check url')
        return issues


def _status(issue: dict[str, t.Any]) -> str | None:
    status = (issue.get('fields') or {}).get('status')
    return status.get('name') if isinstance(status, dict) else None


def _links(issue: dict[str, t.Any]) -> list[dict[str, str]]:
    out = []
    for link in (issue.get('fields') or {}).get('issuelinks') or []:
        other = link.get('outwardIssue') or link.get('inwardIssue') or {}
        out.append({'key': other.get('key'), 'type': (link.get('type') or {}).get('name')})
    return out


class Jira:
    """The Jira side of the ticket manager."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip('/')
        self.comments: list[str] = []

    def find(self, client: JiraClient, params: dict[str, t.Any], warnings: list[str]) -> dict[str, t.Any] | None:
        jql = f'labels = "{params["incident_id"]}"'
        if params.get('project'):
            jql = f'project = "{params["project"]}" AND {jql}'
        issues = client.search(jql + ' ORDER BY created ASC')
        issue = oldest(issues, lambda i: i['key'], f"Jira issues carry the label {params['incident_id']}", warnings)
        if issue is None:
            return None
        comments = client.get(f"/issue/{issue['key']}/comment", {'maxResults': 100})
        self.comments = [normalize(adf_text(c.get('body'))) for c in comments.get('comments') or [] if isinstance(c, dict)]
        return issue

    def wanted_comments(self, params: dict[str, t.Any]) -> list[str]:
        texts = []
        if params.get('resolution'):
            texts.append(f"Resolution: {params['resolution']}")
        if params.get('comment'):
            texts.append(params['comment'])
        return texts

    def plan(self, client: JiraClient, issue: dict[str, t.Any] | None, params: dict[str, t.Any]) -> list[Step]:
        steps: list[Step] = []
        status = desired_status(params)
        if issue is None:
            if not params.get('summary') or not params.get('project'):
                raise TicketError(f"summary and project are required to open the Jira issue of {params['incident_id']} "
                                  '(no issue carries its label yet)')
            fields = {'project': {'key': params['project']}, 'issuetype': {'name': params['issue_type']},
                      'summary': params['summary'], 'labels': [params['incident_id']]}
            if params.get('description'):
                fields['description'] = adf(params['description'])
            steps.append(Step('create', {'fields': fields}, f"create a {params['issue_type']} in {params['project']}"))
        elif params.get('summary') and params['summary'] != (issue.get('fields') or {}).get('summary'):
            steps.append(Step('update', {'fields': {'summary': params['summary']}}, 'change the summary'))
        target = dict(JIRA_STATUSES, **(params.get('jira_statuses') or {})).get(status or '') if status else None
        if target and (issue is None or (_status(issue) or '').lower() != target.lower()):
            steps.append(Step('transition', target, f'move to {target}'))
        for text in self.wanted_comments(params):
            if normalize(text) not in self.comments:
                steps.append(Step('comment', text, f'comment {condense(text, 60)!r}'))
        have = {(lnk['key'], (lnk['type'] or '').lower()) for lnk in _links(issue or {})}
        for link in params.get('links') or []:
            if (link['key'], link['type'].lower()) not in have:
                steps.append(Step('link', link, f"link {link['key']} ({link['type']})"))
        return steps

    def apply(self, client: JiraClient, issue: dict[str, t.Any] | None, steps: list[Step],
              params: dict[str, t.Any]) -> dict[str, t.Any]:
        key = issue['key'] if issue else None
        for step in steps:
            if step.kind == 'create':
                made = client.request_json('POST', API + '/issue', ok=(201,), json_body=step.payload)
                if not isinstance(made, dict) or not made.get('key'):
                    raise HttpApiMismatchError(f'{client.where()}: the issue create answered {describe_json(made)}, '
                                               'not an issue key - check url')
                key = made['key']
            elif step.kind == 'update':
                client.request_json('PUT', f'{API}/issue/{key}', ok=(204,), json_body=step.payload)
            elif step.kind == 'transition':
                self.transition(client, key, step.payload)
            elif step.kind == 'comment':
                client.request_json('POST', f'{API}/issue/{key}/comment', ok=(201,), json_body={'body': adf(step.payload)})
            elif step.kind == 'link':
                body = {'type': {'name': step.payload['type']}, 'inwardIssue': {'key': key},
                        'outwardIssue': {'key': step.payload['key']}}
                client.request_json('POST', API + '/issueLink', ok=(201,), json_body=body)
        return client.get(f'/issue/{key}', {'fields': FIELDS})

    @staticmethod
    def transition(client: JiraClient, key: str, target: str) -> None:
        out = client.get(f'/issue/{key}/transitions')
        found = [tr for tr in out.get('transitions') or []
                 if isinstance(tr, dict) and ((tr.get('to') or {}).get('name') or '').lower() == target.lower()]
        if not found:
            names = sorted({(tr.get('to') or {}).get('name') or '?' for tr in out.get('transitions') or []
                            if isinstance(tr, dict)})
            raise TicketError(f"{client.where()}: issue {key} has no transition to the status {target!r} (it can go to "
                              f"{', '.join(names) or 'no status'}) - set jira_statuses to the workflow's status names")
        client.request_json('POST', f'{API}/issue/{key}/transitions', ok=(204,),
                            json_body={'transition': {'id': str(found[0]['id'])}})

    def view(self, issue: dict[str, t.Any] | None) -> dict[str, t.Any]:
        if not issue:
            return {}
        fields = issue.get('fields') or {}
        return {'key': issue.get('key'), 'id': issue.get('id'), 'url': f"{self.url}/browse/{issue.get('key')}",
                'summary': fields.get('summary'), 'status': _status(issue), 'labels': fields.get('labels') or [],
                'links': _links(issue)}

    def predict(self, issue: dict[str, t.Any] | None, steps: list[Step], params: dict[str, t.Any]) -> dict[str, t.Any]:
        view = self.view(issue) or {'key': None, 'id': None, 'url': None, 'summary': None, 'status': None,
                                    'labels': [params['incident_id']], 'links': []}
        for step in steps:
            if step.kind in ('create', 'update'):
                view['summary'] = step.payload['fields']['summary']
            elif step.kind == 'transition':
                view['status'] = step.payload
            elif step.kind == 'link':
                view['links'] = view['links'] + [dict(step.payload)]
        return view
