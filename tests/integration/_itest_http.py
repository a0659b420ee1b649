"""Helpers for the HTTP module tests: Alertmanager API calls, stub HTTP(S) servers, TRDR Hub health routes.

Every server here is in-process (a thread), bound to 127.0.0.1 on a free port and shut
down by its context manager; TLS certificates come from ``trdrhub_harness.certs``.
"""
from __future__ import annotations

import datetime
import json
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Tuple, Union

import requests

UTC = datetime.timezone.utc
Answer = Tuple[int, Dict[str, str], bytes]
Route = Union[Answer, Callable[[str, str], Answer]]


def json_answer(status: int, body, headers: Optional[Dict[str, str]] = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


class StubServer:
    """A tiny HTTP(S) server: ``routes`` maps a path to an answer or to ``fn(method, path) -> answer``."""

    def __init__(self, routes: Optional[Dict[str, Route]] = None, default: Optional[Route] = None,
                 cert_file: Optional[str] = None, key_file: Optional[str] = None) -> None:
        self.routes: Dict[str, Route] = dict(routes or {})
        self.default = default or (404, {"Content-Type": "text/plain"}, b"404 page not found\n")
        self.requests: list = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                path = self.path.split("?", 1)[0]
                stub.requests.append((self.command, self.path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                route = stub.routes.get(path, stub.default)
                status, headers, body = route(self.command, path) if callable(route) else route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_HEAD = _answer

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if cert_file:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}"

    def __enter__(self) -> "StubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


class TrdrHubHealth:
    """TRDR Hub's health routes (apps/api): /healthz, /health/live, /health/ready (503 when db or s3 down), /health/db-schema."""

    def __init__(self) -> None:
        self.database = "ok"
        self.s3 = "ok"
        self.schema = "ok"
        self.malformed: set = set()

    def routes(self) -> Dict[str, Route]:
        return {path: self._route for path in ("/healthz", "/health/live", "/health/ready", "/health/db-schema")}

    def _route(self, method: str, path: str) -> Answer:
        if path in self.malformed:
            return 200, {"Content-Type": "application/json"}, b'{"status": "ok", "checks": {'
        now = datetime.datetime.now(UTC).isoformat()
        if path == "/healthz":
            return json_answer(200, {"status": "ok"})
        if path == "/health/live":
            return json_answer(200, {"status": "ok", "timestamp": now, "version": "1.4.2", "environment": "itest",
                                     "uptime_seconds": 42})
        if path == "/health/db-schema":
            return json_answer(200, {"status": self.schema, "timestamp": now})
        checks = {name: {"status": state, "response_time_ms": 2.5, "message": None if state == "ok" else f"{name} down"}
                  for name, state in (("database", self.database), ("s3", self.s3), ("document_ai", "ok"))}
        healthy = self.database == "ok" and self.s3 == "ok"
        return json_answer(200 if healthy else 503, {"status": "ok" if healthy else "error", "timestamp": now,
                                                     "checks": checks, "overall_healthy": healthy})


class KeyFunctionalityContract:
    """The runbook's test endpoint as a contract: POST /api/v1/test with a JSON object holding ``test: true``.

    Anything else is refused the way an API would: 405 for another method, 415 without a JSON
    content type, 400 for a body that is not that object. The bodies it accepted are kept.
    """

    def __init__(self):
        import json as _json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.accepted = []
        contract = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status, body):
                data = _json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(405, {"detail": "Method Not Allowed"})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/api/v1/test":
                    return self._send(404, {"detail": "Not Found"})
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return self._send(415, {"detail": "expected application/json"})
                try:
                    body = _json.loads(raw)
                except ValueError:
                    return self._send(400, {"detail": "malformed JSON"})
                if not isinstance(body, dict) or body.get("test") is not True:
                    return self._send(400, {"detail": "body must be {\"test\": true}"})
                contract.accepted.append(body)
                self._send(200, {"status": "ok", "test": True, "checks": {"queue": "ok"}})

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self):
        import threading
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


# -- Alertmanager ------------------------------------------------------------------------------

def run_label() -> str:
    """A label value no other test uses: alerts and silences of one test never meet another's."""
    return "itest-" + uuid.uuid4().hex[:10]


def post_alerts(url: str, run: str, alerts, auth=None) -> None:
    """POST /api/v2/alerts; each alert is (alertname, severity or None), labelled itest_run=<run>."""
    now = datetime.datetime.now(UTC)
    body = []
    for name, severity in alerts:
        labels = {"alertname": name, "itest_run": run, "service": "lcpilot"}
        if severity:
            labels["severity"] = severity
        body.append({"labels": labels, "annotations": {"runbook_url": f"https://runbooks.trdrhub.example/{name}"},
                     "startsAt": now.isoformat(), "endsAt": (now + datetime.timedelta(minutes=30)).isoformat(),
                     "generatorURL": "http://prometheus.itest/graph"})
    resp = requests.post(url + "/api/v2/alerts", json=body, auth=auth, timeout=10)
    resp.raise_for_status()


def silences(url: str, run: str, auth=None) -> list:
    """The silences whose matchers mention this run's label value."""
    resp = requests.get(url + "/api/v2/silences", auth=auth, timeout=10)
    resp.raise_for_status()
    return [s for s in resp.json() if any(m.get("value") == run for m in s.get("matchers", []))]


def live_silences(url: str, run: str, auth=None) -> list:
    return [s for s in silences(url, run, auth) if s["status"]["state"] in ("active", "pending")]


def expire_all(url: str, run: str, auth=None) -> None:
    for sil in live_silences(url, run, auth):
        requests.delete(f"{url}/api/v2/silence/{sil['id']}", auth=auth, timeout=10)
