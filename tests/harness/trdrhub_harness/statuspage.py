"""A local Atlassian Statuspage REST v1 contract server: an in-process HTTP server that enforces the API.

It is not a recorder: it refuses what the real API refuses, with the real API's
JSON error shape (``{"error": "..."}``), so a module that passes against it speaks
the documented contract (``FACTS.md``, "Atlassian Statuspage REST v1"):

- ``Authorization: OAuth <api_key>`` on every request (401 otherwise);
- page ids and incident ids (404 for unknown ones);
- the ``{"incident": {...}}`` envelope (400 without it), the incident status, impact
  and component status enums, known component ids and a non-empty name (422);
- ``POST /pages/{page}/incidents`` (201), ``PATCH /pages/{page}/incidents/{id}``,
  ``GET /pages/{page}/incidents/unresolved``, ``GET /pages/{page}/incidents/{id}``,
  ``GET /pages/{page}/components``;
- a rate limit per API key (requests per window, 60 per minute by default); over it
  the answer is 420 or 429 with ``Retry-After`` (alternating, or forced per key);
- injectable failures (``fail_next``) and forced rate-limit answers (``throttle_next``).

    with StatuspageServer() as sp:
        page = sp.add_page({"API": "operational", "Notifications": "operational"})
        ... sp.url, sp.api_key, page.id, page.component_id("API") ...
        sp.incidents(page.id)     # deep copies of the stored incidents, newest first
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple

UTC = datetime.timezone.utc
PREFIX = "/v1"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
IMPACTS = ("none", "minor", "major", "critical")
INCIDENT_FIELDS = frozenset(("name", "status", "impact_override", "body", "component_ids", "components",
                             "deliver_notifications", "metadata"))
# Impact Statuspage derives from the worst affected component when there is no override.
_DERIVED_IMPACT = {"major_outage": "critical", "partial_outage": "major", "degraded_performance": "minor"}
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 420: "Enhance Your Calm", 422: "Unprocessable Entity",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def now_text() -> str:
    when = datetime.datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def new_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for dummy in range(12))


@dataclass
class ApiKey:
    """An accepted key with its own rate-limit window; ``over_limit`` is 'alternate', '420' or '429'."""

    rate_limit: int = 60
    window: float = 60.0
    over_limit: str = "alternate"
    recent: Deque[float] = field(default_factory=deque)
    rejected: int = 0


@dataclass
class Page:
    id: str
    components: Dict[str, Dict[str, Any]] = field(default_factory=dict)   # by id, in position order
    incidents: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def component_id(self, name: str) -> str:
        for comp in self.components.values():
            if comp["name"] == name:
                return comp["id"]
        raise KeyError(name)


class ApiError(Exception):
    def __init__(self, status: int, error: Any, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(error)
        self.status, self.error, self.headers = status, error, dict(headers or {})


class StatuspageServer:
    """The contract server on a free loopback port, in a background thread; state under ``lock``."""

    def __init__(self, rate_limit: int = 60, window: float = 60.0, over_limit: str = "alternate") -> None:
        self.lock = threading.RLock()
        self.pages: Dict[str, Page] = {}
        self.keys: Dict[str, ApiKey] = {}
        self.api_key = self.add_key(rate_limit=rate_limit, window=window, over_limit=over_limit)
        # (method, path, status, "auth" or "-"): what the server saw and answered, in order.
        self.requests: List[Tuple[str, str, int, str]] = []
        self._failures: Deque[Tuple[int, Optional[float], Optional[str], bool]] = deque()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "StatuspageServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="statuspage-contract", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> "StatuspageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The API base URL, the module's ``api_url``."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    # -- test controls -------------------------------------------------------
    def add_key(self, rate_limit: int = 60, window: float = 60.0, over_limit: str = "alternate") -> str:
        """A new accepted API key with its own rate-limit window (``over_limit``: alternate, 420 or 429)."""
        if over_limit not in ("alternate", "420", "429"):
            raise ValueError(f"over_limit must be alternate, 420 or 429, not {over_limit!r}")
        key = "itest-sp-" + secrets.token_hex(16)
        with self.lock:
            self.keys[key] = ApiKey(rate_limit=rate_limit, window=window, over_limit=over_limit)
        return key

    def add_page(self, components: Optional[Dict[str, str]] = None, page_id: Optional[str] = None) -> Page:
        """A page with components ``{name: status}`` (all operational when only names matter)."""
        page = Page(page_id or new_id())
        stamp = now_text()
        for position, (name, status) in enumerate((components or {}).items(), start=1):
            if status not in COMPONENT_STATUSES:
                raise ValueError(f"unknown component status {status!r}")
            comp_id = new_id()
            page.components[comp_id] = {
                "id": comp_id, "page_id": page.id, "group_id": None, "created_at": stamp, "updated_at": stamp,
                "group": False, "name": name, "description": None, "position": position, "status": status,
                "showcase": True, "only_show_if_degraded": False, "automation_email": f"component+{comp_id}@notifications.statuspage.io",
                "start_date": None,
            }
        with self.lock:
            self.pages[page.id] = page
        return page

    def fail_next(self, count: int, status: int = 503, method: Optional[str] = None, after_processing: bool = False) -> None:
        """Answer the next ``count`` authenticated requests (of ``method``, when given) with ``status``.

        With ``after_processing`` the request is carried out first and only its answer
        is replaced: the write landed, the client cannot know it.
        """
        with self.lock:
            self._failures.extend([(status, None, method, after_processing)] * count)

    def throttle_next(self, count: int, status: int = 429, retry_after: Optional[float] = 1) -> None:
        """Answer the next ``count`` authenticated requests as rate limited (420, or 429 with Retry-After)."""
        if status not in (420, 429):
            raise ValueError("status must be 420 or 429")
        with self.lock:
            self._failures.extend([(status, retry_after if status == 429 else None, None, False)] * count)

    def clear_failures(self) -> None:
        """Drop the injected answers not used yet."""
        with self.lock:
            self._failures.clear()

    def incidents(self, page_id: str) -> List[Dict[str, Any]]:
        with self.lock:
            page = self.pages[page_id]
            return [self._view(page, inc) for inc in sorted(page.incidents.values(), key=lambda i: i["_seq"], reverse=True)]

    def components(self, page_id: str) -> Dict[str, str]:
        """{component name: status} of a page."""
        with self.lock:
            return {c["name"]: c["status"] for c in self.pages[page_id].components.values()}

    def writes(self, page_id: str) -> List[Tuple[str, str, int]]:
        """(method, path, status) of the POST/PATCH requests to one page."""
        marker = f"{PREFIX}/pages/{page_id}/"
        with self.lock:
            return [(m, p, s) for m, p, s, _k in self.requests if m in ("POST", "PATCH") and p.startswith(marker)]

    # -- request handling ----------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> Tuple[int, Any, Dict[str, str]]:
        key = self._authenticate(headers.get("Authorization"))
        with self.lock:
            failure = next((f for f in self._failures if f[2] in (None, method)), None)
            if failure is not None:
                self._failures.remove(failure)
                status, retry_after, _method, after_processing = failure
                if status in (420, 429):
                    self._rate_limited(status, retry_after)
                if after_processing:
                    self._route(method, path, raw)
                raise ApiError(status, f"{status} {_REASONS.get(status, 'Error')}")
            self._rate_limit(key)
            return self._route(method, path, raw)

    def _authenticate(self, header: Optional[str]) -> ApiKey:
        match = re.fullmatch(r"OAuth (\S+)", (header or "").strip())
        with self.lock:
            key = self.keys.get(match.group(1)) if match else None
        if key is None:
            raise ApiError(401, "Could not authenticate")
        return key

    def _rate_limit(self, key: ApiKey) -> None:
        clock = time.monotonic()
        while key.recent and key.recent[0] <= clock - key.window:
            key.recent.popleft()
        if len(key.recent) < key.rate_limit:
            key.recent.append(clock)
            return
        key.rejected += 1
        status = {"420": 420, "429": 429}.get(key.over_limit, 429 if key.rejected % 2 else 420)
        wait = max(1, math.ceil(key.recent[0] + key.window - clock))
        self._rate_limited(status, wait)

    @staticmethod
    def _rate_limited(status: int, retry_after: Optional[float]) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if status == 429 and retry_after is not None else {}
        raise ApiError(status, "Rate limit exceeded: slow down" if status == 420 else "Too many requests", headers)

    def _route(self, method: str, path: str, raw: bytes) -> Tuple[int, Any, Dict[str, str]]:
        if not path.startswith(PREFIX + "/"):
            raise ApiError(404, "Not found")
        parts = path[len(PREFIX) + 1:].strip("/").split("/")
        if len(parts) < 3 or parts[0] != "pages":
            raise ApiError(404, "Not found")
        page = self.pages.get(parts[1])
        if page is None:
            raise ApiError(404, "Not found")
        rest = parts[2:]
        if rest == ["components"]:
            self._allow(method, "GET")
            return 200, [copy.deepcopy(c) for c in page.components.values()], {}
        if rest[0] != "incidents" or len(rest) > 2:
            raise ApiError(404, "Not found")
        if len(rest) == 1:
            self._allow(method, "POST")
            return 201, self._create(page, self._envelope(raw)), {}
        if rest[1] == "unresolved":
            self._allow(method, "GET")
            found = [i for i in page.incidents.values() if i["status"] != "resolved"]
            return 200, [self._view(page, i) for i in sorted(found, key=lambda i: i["_seq"], reverse=True)], {}
        incident = page.incidents.get(rest[1])
        if incident is None:
            raise ApiError(404, "Not found")
        self._allow(method, "GET", "PATCH", "PUT")
        if method == "GET":
            return 200, self._view(page, incident), {}
        return 200, self._update(page, incident, self._envelope(raw)), {}

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(405, f"Method {method} not allowed here")

    @staticmethod
    def _envelope(raw: bytes) -> Dict[str, Any]:
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"Malformed JSON body: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("incident"), dict) or not body["incident"]:
            raise ApiError(400, "param is missing or the value is empty: incident")
        return body["incident"]

    def _validate(self, page: Page, fields: Dict[str, Any], creating: bool) -> None:
        errors = []
        unknown = sorted(set(fields) - INCIDENT_FIELDS)
        if unknown:
            errors.append(f"Unpermitted parameters: {', '.join(unknown)}")
        if "name" in fields or creating:
            name = fields.get("name")
            if not isinstance(name, str) or not name.strip():
                errors.append("Name can't be blank")
        if "status" in fields and fields["status"] not in INCIDENT_STATUSES:
            errors.append(f"Status {fields['status']!r} is not a valid incident status ({', '.join(INCIDENT_STATUSES)})")
        if fields.get("impact_override") is not None and fields["impact_override"] not in IMPACTS:
            errors.append(f"Impact override {fields['impact_override']!r} is not included in the list ({', '.join(IMPACTS)})")
        if "body" in fields and fields["body"] is not None and not isinstance(fields["body"], str):
            errors.append("Body must be a string")
        if "deliver_notifications" in fields and not isinstance(fields["deliver_notifications"], bool):
            errors.append("Deliver notifications must be true or false")
        ids = fields.get("component_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            errors.append("Component ids must be a list of component ids")
            ids = []
        comps = fields.get("components", {})
        if not isinstance(comps, dict):
            errors.append("Components must be an object of component id to status")
            comps = {}
        missing = sorted({i for i in list(ids) + list(comps) if i not in page.components})
        if missing:
            errors.append(f"Components not found on this page: {', '.join(missing)}")
        for status in comps.values():
            if status not in COMPONENT_STATUSES:
                errors.append(f"Component status {status!r} is not valid ({', '.join(COMPONENT_STATUSES)})")
        if errors:
            raise ApiError(422, errors if len(errors) > 1 else errors[0])

    def _create(self, page: Page, fields: Dict[str, Any]) -> Dict[str, Any]:
        self._validate(page, fields, creating=True)
        stamp = now_text()
        inc_id = new_id()
        incident = {
            "id": inc_id, "page_id": page.id, "name": fields["name"], "status": fields.get("status") or "investigating",
            "impact_override": fields.get("impact_override"), "shortlink": f"https://stspg.io/{inc_id[:6]}",
            "created_at": stamp, "updated_at": stamp, "started_at": stamp, "monitoring_at": None, "resolved_at": None,
            "metadata": copy.deepcopy(fields.get("metadata") or {}), "component_ids": [], "incident_updates": [],
            "_seq": time.monotonic_ns(),
        }
        self._apply_components(page, incident, fields, stamp)
        self._add_update(incident, fields, stamp)
        self._stamp_status(incident, stamp)
        page.incidents[inc_id] = incident
        return self._view(page, incident)

    def _update(self, page: Page, incident: Dict[str, Any], fields: Dict[str, Any]) -> Dict[str, Any]:
        self._validate(page, fields, creating=False)
        stamp = now_text()
        old_status = incident["status"]
        if "name" in fields:
            incident["name"] = fields["name"]
        if "status" in fields:
            incident["status"] = fields["status"]
        if "impact_override" in fields:
            incident["impact_override"] = fields["impact_override"]
        if "metadata" in fields:
            incident["metadata"] = copy.deepcopy(fields["metadata"] or {})
        self._apply_components(page, incident, fields, stamp)
        if fields.get("body") or incident["status"] != old_status:
            self._add_update(incident, fields, stamp)
        self._stamp_status(incident, stamp)
        incident["updated_at"] = stamp
        return self._view(page, incident)

    @staticmethod
    def _apply_components(page: Page, incident: Dict[str, Any], fields: Dict[str, Any], stamp: str) -> None:
        if "component_ids" in fields:
            incident["component_ids"] = list(dict.fromkeys(fields["component_ids"]))
        for comp_id, status in (fields.get("components") or {}).items():
            if comp_id not in incident["component_ids"]:
                incident["component_ids"].append(comp_id)
            comp = page.components[comp_id]
            if comp["status"] != status:
                comp["status"], comp["updated_at"] = status, stamp

    @staticmethod
    def _add_update(incident: Dict[str, Any], fields: Dict[str, Any], stamp: str) -> None:
        incident["incident_updates"].insert(0, {
            "id": new_id(), "incident_id": incident["id"], "status": incident["status"], "body": fields.get("body") or "",
            "created_at": stamp, "updated_at": stamp, "display_at": stamp,
            "deliver_notifications": fields.get("deliver_notifications", True),
            "affected_components": [{"code": c, "new_status": s} for c, s in (fields.get("components") or {}).items()],
        })

    @staticmethod
    def _stamp_status(incident: Dict[str, Any], stamp: str) -> None:
        if incident["status"] == "resolved":
            incident["resolved_at"] = incident["resolved_at"] or stamp
        else:
            incident["resolved_at"] = None
        if incident["status"] == "monitoring" and not incident["monitoring_at"]:
            incident["monitoring_at"] = stamp

    @staticmethod
    def _view(page: Page, incident: Dict[str, Any]) -> Dict[str, Any]:
        view = {k: copy.deepcopy(v) for k, v in incident.items() if not k.startswith("_") and k != "component_ids"}
        view["components"] = [copy.deepcopy(page.components[c]) for c in incident["component_ids"]]
        worst = [_DERIVED_IMPACT.get(c["status"], "none") for c in view["components"]]
        derived = max(worst, key=IMPACTS.index) if worst else "none"
        view["impact"] = incident["impact_override"] or derived
        return view


def _handler_for(server: StatuspageServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "statuspage-contract/1"

        def log_message(self, *args) -> None:  # quiet: tests read server.requests instead
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            who = "auth" if self.headers.get("Authorization") else "-"
            try:
                status, body, headers = server.handle(self.command, path, self.headers, raw)
            except ApiError as exc:
                status, body, headers = exc.status, {"error": exc.error}, exc.headers
            except Exception as exc:  # noqa: BLE001 - a bug in the double must show as a 500, not a hang
                status, body, headers = 500, {"error": f"contract server bug: {exc!r}"}, {}
            with server.lock:
                server.requests.append((self.command, path, status, who))
            payload = json.dumps(body).encode()
            self.send_response(status, _REASONS.get(status))
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler
