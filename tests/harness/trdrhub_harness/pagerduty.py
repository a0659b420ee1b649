"""A PagerDuty Events API v2 double that enforces the documented contract.

``POST /v2/enqueue`` only. Events are validated as PagerDuty documents them
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/): a 32-character
routing key that belongs to a known integration, ``event_action`` trigger,
acknowledge or resolve, ``dedup_key`` of at most 255 characters (required to
acknowledge or resolve), and for a trigger a ``payload`` with ``summary`` (at most
1024 characters), ``source`` and ``severity`` (critical, error, warning, info).
An invalid event answers 400 ``{"status": "invalid event", "message": "Event object
is invalid", "errors": [...]}``; a valid one 202 ``{"status": "success", "message":
"Event processed", "dedup_key": ...}``.

Incident state is kept per (routing key, dedup_key) - triggered, acknowledged,
resolved - like PagerDuty's alert de-duplication. Each routing key is rate limited
(``rate_limit`` events per ``rate_window`` seconds, 120/min by default) with 429;
``fail_next`` injects 429 or 5xx answers for one routing key.

    with PagerDutyServer() as pd:
        key = pd.start().add_routing_key()
        ...  # POST pd.url + "/v2/enqueue"
        pd.incident(key, "INC-1")["status"]   # "triggered"
"""
from __future__ import annotations

import json
import secrets
import string
import uuid
from typing import Dict, List, Optional

from ._inproc import Answer, InProcessHTTPServer, json_answer

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
PAYLOAD_STRINGS = ("summary", "source", "severity", "timestamp", "component", "group", "class")
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
THROTTLED = {"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}


def invalid(*errors: str) -> Answer:
    return json_answer(400, {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)})


def new_routing_key() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for dummy in range(32))


def validate(event) -> List[str]:
    """PagerDuty's error strings for an event; empty when it is valid (routing key ownership aside)."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is missing or blank" if not action else
                      "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > MAX_DEDUP_KEY):
        errors.append(f"'dedup_key' must be a string of at most {MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors.extend(_validate_payload(event.get("payload")))
    return errors


def _validate_payload(payload) -> List[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    errors = [f"'payload.{name}' is missing or blank" for name in ("summary", "source", "severity") if not payload.get(name)]
    errors += [f"'payload.{name}' must be a string" for name in PAYLOAD_STRINGS
               if payload.get(name) is not None and not isinstance(payload[name], str)]
    if isinstance(payload.get("summary"), str) and len(payload["summary"]) > MAX_SUMMARY:
        errors.append(f"Length of 'payload.summary' is too long (max {MAX_SUMMARY} characters)")
    if isinstance(payload.get("severity"), str) and payload["severity"] and payload["severity"] not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
    return errors


class PagerDutyServer(InProcessHTTPServer):
    name = "pagerduty"

    def __init__(self, rate_limit: int = 120, rate_window: float = 60.0) -> None:
        super().__init__()
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.routing_keys: set = set()
        self.incidents: Dict[tuple, dict] = {}
        self.events: List[dict] = []

    # -- test API ------------------------------------------------------------
    def add_routing_key(self) -> str:
        key = new_routing_key()
        with self.lock:
            self.routing_keys.add(key)
        return key

    def fail_next(self, routing_key: str, status: int = 429, count: int = 1) -> None:
        """The next ``count`` events for this key get ``status`` (429 throttle or a 5xx)."""
        answer = json_answer(429, THROTTLED) if status == 429 else \
            json_answer(status, {"status": "error", "message": "Internal error"})
        self.inject(routing_key, answer, count)

    def incident(self, routing_key: str, dedup_key: str) -> Optional[dict]:
        with self.lock:
            found = self.incidents.get((routing_key, dedup_key))
            return json.loads(json.dumps(found)) if found else None

    def events_for(self, routing_key: str) -> List[dict]:
        with self.lock:
            return [e for e in self.events if e.get("routing_key") == routing_key]

    def env(self) -> dict:
        return {"TRDRHUB_PAGERDUTY_URL": self.url}

    # -- the API ---------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Answer:
        if path.split("?", 1)[0] != "/v2/enqueue":
            return json_answer(404, {"status": "not found", "message": "Not Found"})
        if method != "POST":
            return json_answer(405, {"status": "method not allowed", "message": "Method Not Allowed"})
        try:
            event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return invalid("Invalid JSON")
        errors = validate(event)
        if errors:
            return invalid(*errors)
        key = event["routing_key"]
        with self.lock:
            if key not in self.routing_keys:
                return invalid("Invalid routing key")
            answer = self.injected(key)
            if answer is not None:
                return answer
            if self.throttled(key, self.rate_limit, self.rate_window):
                return json_answer(429, THROTTLED)
            return self._apply(event)

    def _apply(self, event: dict) -> Answer:
        key, action = event["routing_key"], event["event_action"]
        dedup = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append(json.loads(json.dumps(event)))
        state = self.incidents.get((key, dedup))
        if action == "trigger":
            if state is None or state["status"] == "resolved":
                state = {"status": "triggered", "payload": event["payload"], "alerts": 0, "history": []}
                self.incidents[(key, dedup)] = state
            state["alerts"] += 1
        elif state is not None and state["status"] != "resolved":
            # acknowledge or resolve of an unknown or resolved incident is accepted and does nothing.
            state["status"] = "acknowledged" if action == "acknowledge" else "resolved"
        if state is not None:
            state["history"].append(action)
        return json_answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})
