"""A Jira Cloud REST API v3 double that enforces the documented contract for incident tickets.

Basic authentication with an account e-mail and an API token (401 otherwise). Endpoints:
``POST /rest/api/3/issue`` (``fields.project.key`` of a known project, ``fields.issuetype.name``
of its issue types, ``fields.summary`` required; ``description`` must be an Atlassian Document
Format document; labels without spaces) -> 201 ``{id, key, self}``; ``GET``/``PUT
/rest/api/3/issue/{key}``; ``GET /rest/api/3/search/jql`` with ``labels = "X"`` (optionally
``project = "P" AND``, ``ORDER BY created ASC|DESC``), while the removed ``/rest/api/3/search``
answers 410; ``GET``/``POST /rest/api/3/issue/{key}/transitions`` (only a transition offered
from the issue's status, -> 204); ``GET``/``POST /rest/api/3/issue/{key}/comment`` (ADF body,
-> 201); ``POST /rest/api/3/issueLink`` (a known link type, both issues exist, -> 201).
Errors come as ``{"errorMessages": [...], "errors": {...}}``: 400, 401, 404; ``fail_next``
injects 429 (with Retry-After) or 5xx answers for one project.

The workflow: To Do (11) -> In Progress (21) -> Done (31), each status reachable from the others.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
from typing import Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from ._inproc import Answer, InProcessHTTPServer, json_answer

API = "/rest/api/3"
STATUSES = {"11": "To Do", "21": "In Progress", "31": "Done"}
LINK_TYPES = ("Relates", "Blocks", "Duplicate", "Cloners")
_JQL = re.compile(r'^\s*(?:project\s*=\s*"?(?P<project>[A-Z][A-Z0-9_]*)"?\s+AND\s+)?labels\s*=\s*"(?P<label>[^"]+)"'
                  r'(?:\s+ORDER\s+BY\s+created\s+(?P<order>ASC|DESC))?\s*$', re.I)


def errors(status: int, *messages: str, **fields: str) -> Answer:
    return json_answer(status, {"errorMessages": list(messages), "errors": fields})


def is_adf(doc) -> bool:
    return isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1 \
        and isinstance(doc.get("content"), list)


class JiraServer(InProcessHTTPServer):
    name = "jira"

    def __init__(self) -> None:
        super().__init__()
        self.accounts: Dict[str, str] = {}
        self.projects: Dict[str, List[str]] = {}
        self.issues: Dict[str, dict] = {}
        self.links: List[dict] = []
        self._ids = itertools.count(10001)
        self._seq: Dict[str, itertools.count] = {}

    # -- test API ------------------------------------------------------------
    def add_account(self, email: Optional[str] = None) -> tuple:
        email = email or f"bot-{secrets.token_hex(3)}@trdrhub.example"
        token = "ATATT" + secrets.token_hex(12)
        with self.lock:
            self.accounts[email] = token
        return email, token

    def add_project(self, key: Optional[str] = None, issue_types=("Incident", "Task")) -> str:
        key = key or "T" + secrets.token_hex(3).upper().replace("0", "A")
        with self.lock:
            self.projects[key] = list(issue_types)
            self._seq[key] = itertools.count(1)
        return key

    def add_issue(self, project: str, summary: str, labels=()) -> str:
        """An issue made outside the module (another ticket to link to, a duplicate label)."""
        with self.lock:
            return self._create(project, "Task", summary, list(labels), None)["key"]

    def fail_next(self, project: str, status: int = 429, count: int = 1, retry_after: str = "1") -> None:
        answer = errors(status, "Rate limit exceeded." if status == 429 else "Internal server error")
        if status == 429:
            answer[1]["Retry-After"] = retry_after
        self.inject(project, answer, count)

    def issue(self, key: str) -> Optional[dict]:
        with self.lock:
            found = self.issues.get(key)
            return json.loads(json.dumps(found)) if found else None

    def by_label(self, label: str) -> List[dict]:
        with self.lock:
            return [json.loads(json.dumps(i)) for i in self.issues.values() if label in i["fields"]["labels"]]

    def writes(self) -> List[tuple]:
        """(method, path) of every write received so far; a test compares counts before and after."""
        with self.lock:
            return [(m, p) for m, p, _h, _b in self.requests if m != "GET"]

    # -- the API ---------------------------------------------------------------
    def _create(self, project: str, issue_type: str, summary: str, labels: list, description) -> dict:
        issue_id = str(next(self._ids))
        key = f"{project}-{next(self._seq[project])}"
        issue = {"id": issue_id, "key": key, "self": f"{self.url}{API}/issue/{issue_id}",
                 "fields": {"project": {"key": project}, "issuetype": {"name": issue_type}, "summary": summary,
                            "labels": labels, "description": description, "status": {"id": "11", "name": "To Do"},
                            "issuelinks": []},
                 "comments": [], "transitions": []}
        self.issues[key] = issue
        return issue

    def _authorized(self, headers: Dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            email, _sep, token = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return self.accounts.get(email) == token and bool(token)

    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Answer:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        route = url.path
        if not route.startswith(API + "/"):
            return errors(404, "Not found")
        if not self._authorized(headers):
            return json_answer(401, {"errorMessages": ["You are not authenticated. Authentication required to perform "
                                                       "this operation."], "errors": {}},
                               {"WWW-Authenticate": 'Basic realm="protected-area"'})
        payload = None
        if method in ("POST", "PUT"):
            try:
                payload = json.loads(body.decode("utf-8") or "null")
            except (UnicodeDecodeError, ValueError):
                return errors(400, "Unexpected character in the request body: not JSON.")
        with self.lock:
            return self._route(method, route[len(API):], query, payload)

    def _route(self, method: str, route: str, query: dict, payload) -> Answer:
        if route == "/search":
            return errors(410, "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.")
        if route == "/search/jql" and method == "GET":
            return self._search(query)
        if route == "/issue" and method == "POST":
            return self._post_issue(payload)
        if route == "/issueLink" and method == "POST":
            return self._link(payload)
        found = re.match(r"^/issue/([^/]+)(/transitions|/comment)?$", route)
        if not found:
            return errors(404, "Not found")
        issue = self.issues.get(found.group(1))
        if issue is None:
            return errors(404, "Issue does not exist or you do not have permission to see it.")
        project = issue["fields"]["project"]["key"]
        injected = self.injected(project)
        if injected is not None:
            return injected
        sub = found.group(2)
        if sub is None:
            if method == "GET":
                return json_answer(200, self._public(issue))
            if method == "PUT":
                return self._edit(issue, payload)
        elif sub == "/transitions":
            if method == "GET":
                return json_answer(200, {"transitions": self._transitions(issue)})
            if method == "POST":
                return self._transition(issue, payload)
        elif sub == "/comment":
            if method == "GET":
                comments = issue["comments"]
                return json_answer(200, {"startAt": 0, "maxResults": 100, "total": len(comments), "comments": comments})
            if method == "POST":
                if not isinstance(payload, dict) or not is_adf(payload.get("body")):
                    return errors(400, "Comment body is not valid. Comment body must be an Atlassian Document Format "
                                       "document.")
                comment = {"id": str(next(self._ids)), "body": payload["body"]}
                issue["comments"].append(comment)
                return json_answer(201, comment)
        return errors(405, f"Method {method} is not allowed here.")

    def _public(self, issue: dict) -> dict:
        return {k: issue[k] for k in ("id", "key", "self", "fields")}

    def _search(self, query: dict) -> Answer:
        jql = query.get("jql") or ""
        match = _JQL.match(jql)
        if not match:
            return errors(400, f"Error in the JQL Query: this server understands labels = \"X\" only, got {jql!r}.")
        project = match.group("project")
        if project and project not in self.projects:
            return errors(400, f"The value '{project}' does not exist for the field 'project'.")
        if project:
            injected = self.injected(project)
            if injected is not None:
                return injected
        found = [i for i in self.issues.values() if match.group("label") in i["fields"]["labels"]
                 and (not project or i["fields"]["project"]["key"] == project)]
        found.sort(key=lambda i: int(i["id"]), reverse=(match.group("order") or "").upper() == "DESC")
        wanted = [f for f in (query.get("fields") or "").split(",") if f]
        issues = [{"id": i["id"], "key": i["key"], "self": i["self"],
                   "fields": {f: i["fields"].get(f) for f in wanted}} for i in found]
        return json_answer(200, {"issues": issues[:int(query.get("maxResults") or 50)], "isLast": True})

    def _post_issue(self, payload) -> Answer:
        fields = payload.get("fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return errors(400, "fields is required.")
        project = (fields.get("project") or {}).get("key") if isinstance(fields.get("project"), dict) else None
        bad = {}
        if project not in self.projects:
            bad["project"] = "Specify a valid project ID or key"
        issue_type = (fields.get("issuetype") or {}).get("name") if isinstance(fields.get("issuetype"), dict) else None
        if project in self.projects and issue_type not in self.projects[project]:
            bad["issuetype"] = "Specify a valid issue type"
        if not isinstance(fields.get("summary"), str) or not fields["summary"].strip():
            bad["summary"] = "You must specify a summary of the issue."
        labels = fields.get("labels") or []
        if not isinstance(labels, list) or any(not isinstance(x, str) or " " in x or not x for x in labels):
            bad["labels"] = "The label must not contain spaces."
        if fields.get("description") is not None and not is_adf(fields["description"]):
            bad["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)."
        if bad:
            return errors(400, **bad)
        injected = self.injected(project)
        if injected is not None:
            return injected
        issue = self._create(project, issue_type, fields["summary"], labels, fields.get("description"))
        return json_answer(201, {"id": issue["id"], "key": issue["key"], "self": issue["self"]})

    def _edit(self, issue: dict, payload) -> Answer:
        fields = payload.get("fields") if isinstance(payload, dict) else None
        if not isinstance(fields, dict):
            return errors(400, "fields is required.")
        if "summary" in fields and (not isinstance(fields["summary"], str) or not fields["summary"].strip()):
            return errors(400, summary="You must specify a summary of the issue.")
        unknown = sorted(set(fields) - {"summary", "labels"})
        if unknown:
            return errors(400, **{f: f"Field '{f}' cannot be set. It is not on the appropriate screen, or unknown."
                                  for f in unknown})
        issue["fields"].update(fields)
        return 204, {}, b""

    def _transitions(self, issue: dict) -> List[dict]:
        current = issue["fields"]["status"]["id"]
        return [{"id": tid, "name": name, "to": {"id": tid, "name": name}, "hasScreen": False}
                for tid, name in STATUSES.items() if tid != current]

    def _transition(self, issue: dict, payload) -> Answer:
        tid = str(((payload or {}).get("transition") or {}).get("id") or "") if isinstance(payload, dict) else ""
        if tid not in {t["id"] for t in self._transitions(issue)}:
            return errors(400, f"Transition id '{tid}' is not valid for this issue.")
        issue["fields"]["status"] = {"id": tid, "name": STATUSES[tid]}
        issue["transitions"].append(STATUSES[tid])
        return 204, {}, b""

    def _link(self, payload) -> Answer:
        if not isinstance(payload, dict):
            return errors(400, "The request body is not a link.")
        kind = (payload.get("type") or {}).get("name") if isinstance(payload.get("type"), dict) else None
        if kind not in LINK_TYPES:
            return errors(404, f"No issue link type with name '{kind}' found.")
        keys = [((payload.get(side) or {}).get("key") if isinstance(payload.get(side), dict) else None)
                for side in ("inwardIssue", "outwardIssue")]
        if any(k not in self.issues for k in keys):
            return errors(404, f"Issue does not exist or you do not have permission to see it: {keys}.")
        inward, outward = (self.issues[k] for k in keys)
        inward["fields"]["issuelinks"].append({"type": {"name": kind}, "outwardIssue": {"key": outward["key"]}})
        outward["fields"]["issuelinks"].append({"type": {"name": kind}, "inwardIssue": {"key": inward["key"]}})
        self.links.append({"type": kind, "inward": keys[0], "outward": keys[1]})
        return 201, {}, b""
