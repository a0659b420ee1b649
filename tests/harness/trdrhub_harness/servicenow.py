"""A ServiceNow Table API double for the ``incident`` table that enforces the documented contract.

Basic authentication (user and password) or an OAuth bearer token; anything else answers 401
``{"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth
information"}, "status": "failure"}``. Endpoints: ``GET /api/now/table/incident`` with
``sysparm_query`` (``field=value`` terms joined by ``^``, ``ORDERBY``/``ORDERBYDESC``),
``sysparm_fields`` and ``sysparm_limit``; ``POST`` (201); ``GET``/``PATCH
/api/now/table/incident/{sys_id}`` (404 ``No Record found`` for an unknown one); and ``GET
/api/now/table/sys_journal_field`` for the work notes a ``PATCH`` with ``work_notes`` added.
Field values are checked: ``state`` 1, 2, 3, 6, 7 or 8, ``impact`` and ``urgency`` 1-3, unknown
fields refused with 400 (the double has no free columns); ``short_description`` is mandatory
and a Resolved or Closed state needs ``close_code`` and ``close_notes`` (a default instance's
data policy: 403 ``Data Policy Exception``). ``fail_next`` injects 429 (Retry-After) or 5xx.
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import uuid
from typing import Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from ._inproc import Answer, InProcessHTTPServer, json_answer

TABLE = "/api/now/table/incident"
JOURNAL = "/api/now/table/sys_journal_field"
STATES = ("1", "2", "3", "6", "7", "8")
CLOSE_CODES = ("Solved (Work Around)", "Solved (Permanently)", "Solved Remotely (Work Around)",
               "Solved Remotely (Permanently)", "Not Solved (Not Reproducible)", "Not Solved (Too Costly)",
               "Closed/Resolved by Caller")
WRITABLE = ("short_description", "description", "impact", "urgency", "state", "correlation_id", "correlation_display",
            "caller_id", "assignment_group", "close_code", "close_notes", "work_notes", "comments")


def failure(status: int, message: str, detail: str = "") -> Answer:
    return json_answer(status, {"error": {"message": message, "detail": detail}, "status": "failure"})


class ServiceNowServer(InProcessHTTPServer):
    name = "servicenow"

    def __init__(self) -> None:
        super().__init__()
        self.users: Dict[str, str] = {}
        self.tokens: set = set()
        self.records: Dict[str, dict] = {}
        self.journal: List[dict] = []
        self._numbers = itertools.count(10001)
        self._clock = itertools.count(1)

    # -- test API ------------------------------------------------------------
    def add_user(self) -> tuple:
        user, password = f"trdrhub.{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        with self.lock:
            self.users[user] = password
        return user, password

    def add_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return token

    def fail_next(self, correlation_id: str, status: int = 429, count: int = 1, retry_after: str = "1") -> None:
        """The next ``count`` requests about that correlation id (query, create) get ``status``."""
        answer = failure(status, "Too Many Requests" if status == 429 else "Internal Server Error",
                         "Rate limit exceeded" if status == 429 else "")
        if status == 429:
            answer[1]["Retry-After"] = retry_after
        self.inject(correlation_id, answer, count)

    def by_correlation(self, correlation_id: str) -> List[dict]:
        with self.lock:
            return [dict(r) for r in self.records.values() if r["correlation_id"] == correlation_id]

    def work_notes(self, sys_id: str) -> List[str]:
        with self.lock:
            return [j["value"] for j in self.journal if j["element_id"] == sys_id and j["element"] == "work_notes"]

    def writes(self) -> List[tuple]:
        with self.lock:
            return [(m, p) for m, p, _h, _b in self.requests if m != "GET"]

    # -- the API ---------------------------------------------------------------
    def _authorized(self, headers: Dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] in self.tokens
        if not auth.startswith("Basic "):
            return False
        try:
            user, _sep, password = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return bool(password) and self.users.get(user) == password

    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Answer:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not url.path.startswith("/api/now/table/"):
            return failure(400, "Requested URI does not represent any resource", url.path)
        if not self._authorized(headers):
            return failure(401, "User Not Authenticated", "Required to provide Auth information")
        payload = None
        if method in ("POST", "PATCH", "PUT"):
            try:
                payload = json.loads(body.decode("utf-8") or "null")
            except (UnicodeDecodeError, ValueError):
                return failure(400, "Exception while reading request", "The payload is not valid JSON.")
            if not isinstance(payload, dict):
                return failure(400, "Exception while reading request", "The payload must be a JSON object.")
        with self.lock:
            if url.path == JOURNAL and method == "GET":
                return self._journal(query)
            if url.path == TABLE:
                if method == "GET":
                    return self._list(query)
                if method == "POST":
                    return self._create(payload, query)
            found = re.match(rf"^{TABLE}/([0-9a-f]{{32}})$", url.path)
            if found:
                record = self.records.get(found.group(1))
                if record is None:
                    return failure(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
                injected = self.injected(record["correlation_id"])
                if injected is not None:
                    return injected
                if method == "GET":
                    return json_answer(200, {"result": self._fields(record, query)})
                if method in ("PATCH", "PUT"):
                    return self._update(record, payload, query)
            if url.path.startswith(TABLE):
                return failure(400, "Requested URI does not represent any resource", url.path)
            return failure(400, "Invalid table", url.path.rsplit("/", 1)[-1])

    @staticmethod
    def _terms(text: str) -> tuple:
        terms, order = [], None
        for part in filter(None, (text or "").split("^")):
            if part.startswith("ORDERBYDESC"):
                order = (part[11:], True)
            elif part.startswith("ORDERBY"):
                order = (part[7:], False)
            else:
                name, sep, value = part.partition("=")
                if not sep or not re.match(r"^\w+$", name):
                    return None, None
                terms.append((name, value))
        return terms, order

    def _list(self, query: dict) -> Answer:
        terms, order = self._terms(query.get("sysparm_query", ""))
        if terms is None:
            return failure(400, "Invalid query", query.get("sysparm_query", ""))
        for name, value in terms:
            if name == "correlation_id":
                injected = self.injected(value)
                if injected is not None:
                    return injected
        found = [r for r in self.records.values() if all(str(r.get(n, "")) == v for n, v in terms)]
        if order:
            found.sort(key=lambda r: str(r.get(order[0], "")), reverse=order[1])
        limit = int(query.get("sysparm_limit") or 10000)
        return json_answer(200, {"result": [self._fields(r, query) for r in found[:limit]]})

    def _journal(self, query: dict) -> Answer:
        terms, _order = self._terms(query.get("sysparm_query", ""))
        if terms is None:
            return failure(400, "Invalid query", query.get("sysparm_query", ""))
        found = [j for j in self.journal if all(str(j.get(n, "")) == v for n, v in terms)]
        return json_answer(200, {"result": [self._fields(j, query) for j in found]})

    @staticmethod
    def _fields(record: dict, query: dict) -> dict:
        wanted = [f for f in (query.get("sysparm_fields") or "").split(",") if f]
        return {f: record.get(f, "") for f in wanted} if wanted else dict(record)

    def _check(self, fields: dict, record: Optional[dict]) -> Optional[Answer]:
        unknown = sorted(set(fields) - set(WRITABLE))
        if unknown:
            return failure(400, "Invalid field", f"Field(s) not in table incident: {', '.join(unknown)}")
        for name, allowed in (("state", STATES), ("impact", ("1", "2", "3")), ("urgency", ("1", "2", "3"))):
            if name in fields and str(fields[name]) not in allowed:
                return failure(400, "Invalid value", f"{name} must be one of {', '.join(allowed)}, got {fields[name]!r}")
        merged = dict(record or {}, **{k: str(v) for k, v in fields.items()})
        if not merged.get("short_description", "").strip():
            return failure(403, "Operation Failed", "Data Policy Exception: \n  Short description is mandatory\n")
        if merged.get("state") in ("6", "7"):
            missing = [label for key, label in (("close_code", "Resolution code"), ("close_notes", "Resolution notes"))
                       if not merged.get(key, "").strip()]
            if missing:
                return failure(403, "Operation Failed", "Data Policy Exception: \n" +
                               "".join(f"  {m} is mandatory\n" for m in missing))
            if merged["close_code"] not in CLOSE_CODES:
                return failure(400, "Invalid value", f"close_code {merged['close_code']!r} is not a choice of the field")
        return None

    def _note(self, record: dict, text: str) -> None:
        self.journal.append({"sys_id": uuid.uuid4().hex, "element_id": record["sys_id"], "element": "work_notes",
                             "name": "incident", "value": text, "sys_created_on": str(next(self._clock))})

    def _create(self, payload: dict, query: dict) -> Answer:
        injected = self.injected(str(payload.get("correlation_id") or ""))
        if injected is not None:
            return injected
        bad = self._check(payload, None)
        if bad:
            return bad
        sys_id = uuid.uuid4().hex
        record = {"sys_id": sys_id, "number": f"INC{next(self._numbers):07d}", "state": "1", "impact": "3",
                  "urgency": "3", "short_description": "", "description": "", "correlation_id": "",
                  "correlation_display": "", "assignment_group": "", "close_code": "", "close_notes": "",
                  "sys_created_on": f"{next(self._clock):012d}"}
        note = payload.get("work_notes")
        record.update({k: str(v) for k, v in payload.items() if k not in ("work_notes", "comments")})
        self.records[sys_id] = record
        if note:
            self._note(record, str(note))
        return json_answer(201, {"result": self._fields(record, query)})

    def _update(self, record: dict, payload: dict, query: dict) -> Answer:
        bad = self._check(payload, record)
        if bad:
            return bad
        note = payload.get("work_notes")
        record.update({k: str(v) for k, v in payload.items() if k not in ("work_notes", "comments")})
        if note:
            self._note(record, str(note))
        return json_answer(200, {"result": self._fields(record, query)})
