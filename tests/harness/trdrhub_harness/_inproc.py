"""An in-process HTTP server base for API doubles that enforce a contract (PagerDuty, Slack).

The server runs in a daemon thread on a free loopback port; a subclass implements
``handle(method, path, headers, body) -> (status, headers, body)`` and keeps its state
under ``self.lock``. ``fail_next`` queues injected failures (rate limiting, 5xx) for
one scope, so tests sharing a session-wide server never see each other's failures.
"""
from __future__ import annotations

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Deque, Dict, Optional, Tuple

Answer = Tuple[int, Dict[str, str], bytes]


def json_answer(status: int, body, headers: Optional[Dict[str, str]] = None) -> Answer:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def text_answer(status: int, text: str, headers: Optional[Dict[str, str]] = None) -> Answer:
    return status, {"Content-Type": "text/html", **(headers or {})}, text.encode()


class InProcessHTTPServer:
    """Base class: start()/stop(), ``url``, a request log and per-scope injected failures."""

    name = "http"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list = []
        self._injected: Dict[str, Deque[Answer]] = collections.defaultdict(collections.deque)
        self._hits: Dict[str, Deque[float]] = collections.defaultdict(collections.deque)
        self.httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.host, self.port = "127.0.0.1", 0

    # -- to implement --------------------------------------------------------
    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Answer:
        raise NotImplementedError

    # -- failure injection ---------------------------------------------------
    def inject(self, scope: str, answer: Answer, count: int = 1) -> None:
        with self.lock:
            self._injected[scope].extend([answer] * count)

    def injected(self, scope: str) -> Optional[Answer]:
        """The next injected answer for ``scope``, consumed; None when there is none."""
        with self.lock:
            queue = self._injected.get(scope)
            return queue.popleft() if queue else None

    def throttled(self, scope: str, limit: int, window: float) -> bool:
        """Sliding-window rate limit: True when ``scope`` already had ``limit`` requests in ``window`` seconds."""
        now = time.monotonic()
        with self.lock:
            hits = self._hits[scope]
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return True
            hits.append(now)
            return False

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.requests.append((self.command, self.path, headers, body))
                status, out_headers, payload = server.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"trdrhub-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
