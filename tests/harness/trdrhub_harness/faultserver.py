"""A misbehaving HTTP(S) server for contract tests: one server, one fault.

``FaultServer(fault)`` answers every request the same wrong way - an error status, an
HTML page, broken or unexpected JSON, a body far larger than any API answer, a request
it accepts and never answers - and ``refused`` gives the URL of a port nobody listens
on. ``tls`` serves HTTPS with a certificate from a throwaway CA the client does not
trust. Requests are logged (method, path, headers) so a test can count retries.
"""
from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional, Tuple

from ._common import free_port

NGINX_PAGE = ('<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>'
              '<hr><center>nginx</center></body></html>')
WELCOME_PAGE = '<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>'
HUGE_CHUNK = b'{"padding": "' + b'x' * 65500 + b'"},'

FAULTS = (
    'refused', 'tls', 'timeout', '401', '403', '404', '429', '429_retry_after', '500', '502', '503',
    'html', 'malformed_json', 'wrong_shape', 'huge', 'huge_declared',
)


class FaultServer:
    """Start with ``start()`` (or as a context manager); ``url`` is where to send requests."""

    def __init__(self, fault: str, certs_dir: Optional[Path] = None, retry_after: str = '7') -> None:
        if fault not in FAULTS:
            raise ValueError(f'unknown fault {fault!r}; one of {", ".join(FAULTS)}')
        self.fault = fault
        self.retry_after = retry_after
        self.requests: List[Tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()   # ends the "never answers" waits at stop()
        self.httpd: Optional[ThreadingHTTPServer] = None
        self.host, self.port = '127.0.0.1', 0
        self.scheme = 'https' if fault == 'tls' else 'http'
        self._certs_dir = certs_dir

    def answer(self, method: str, path: str, headers: dict) -> Tuple[int, dict, bytes]:
        """(status, headers, body) of the fault; 401 echoes the credentials it got, as some servers do."""
        fault = self.fault
        auth = headers.get('authorization', '')
        if fault in ('401', '403'):
            said = {'message': f'invalid credentials: {auth or "none"} may not {method} {path}'}
            return int(fault), {'Content-Type': 'application/json'}, json.dumps(said).encode()
        if fault == '404':
            return 404, {'Content-Type': 'text/plain'}, b'404 page not found\n'
        if fault == '429':
            return 429, {'Content-Type': 'application/json'}, b'{"message": "rate limited"}'
        if fault == '429_retry_after':
            return 429, {'Content-Type': 'application/json', 'Retry-After': self.retry_after}, b'{"message": "slow down"}'
        if fault in ('500', '503'):
            return int(fault), {'Content-Type': 'application/json'}, b'{"message": "upstream is sick"}'
        if fault == '502':
            return 502, {'Content-Type': 'text/html'}, NGINX_PAGE.encode()
        if fault == 'html':
            return 200, {'Content-Type': 'text/html'}, WELCOME_PAGE.encode()
        if fault == 'malformed_json':
            return 200, {'Content-Type': 'application/json'}, b'{"status": "success", "items": [1, 2'
        if fault == 'wrong_shape':
            return 200, {'Content-Type': 'application/json'}, b'{"unexpected": ["shape"], "version": 3}'
        return 200, {'Content-Type': 'text/plain'}, b'ok'

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> 'FaultServer':
        if self.fault == 'refused':
            self.port = free_port()   # bound and released: nothing listens there
            return self
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def _answer(self) -> None:
                length = int(self.headers.get('Content-Length') or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.requests.append((self.command, self.path, headers))
                if server.fault == 'timeout':
                    server.release.wait(30)
                    self.close_connection = True
                    return
                if server.fault in ('huge', 'huge_declared'):
                    self._huge()
                    return
                status, out_headers, payload = server.answer(self.command, self.path, headers)
                self.send_response(status)
                for key, value in out_headers.items():
                    self.send_header(key, value)
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(payload)

            def _huge(self) -> None:
                """200 JSON that never ends (until the client hangs up or 1 GiB is sent)."""
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                if server.fault == 'huge_declared':
                    self.send_header('Content-Length', str(1 << 30))
                self.send_header('Connection', 'close')
                self.end_headers()
                self.close_connection = True
                if self.command == 'HEAD':
                    return
                try:
                    self.wfile.write(b'[')
                    for _dummy in range((1 << 30) // len(HUGE_CHUNK)):
                        if server.release.is_set():
                            return
                        self.wfile.write(HUGE_CHUNK)
                except OSError:
                    return

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

            def log_message(self, *args) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (OSError, ssl.SSLError):
                    pass   # the client gave up (timeout, TLS refused, body cut short)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address) -> None:
                pass

        self.httpd = Server((self.host, 0), Handler)
        if self.fault == 'tls':
            self.httpd.socket = self._tls_context().wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05},
                         name=f'trdrhub-fault-{self.fault}', daemon=True).start()
        return self

    def _tls_context(self) -> ssl.SSLContext:
        from .certs import TestCA  # cryptography is needed for this fault only

        directory = self._certs_dir or Path(tempfile.mkdtemp(prefix='trdrhub-faultserver-'))
        cert, key = directory / 'server.crt', directory / 'server.key'
        if not (cert.exists() and key.exists()):   # one certificate per directory, reused by later servers
            TestCA().issue().write(directory, 'server')
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def stop(self) -> None:
        self.release.set()
        httpd, self.httpd = self.httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    @property
    def url(self) -> str:
        return f'{self.scheme}://{self.host}:{self.port}'

    def hits(self, method: Optional[str] = None) -> int:
        with self.lock:
            return sum(1 for m, _p, _h in self.requests if method in (None, m))

    def __enter__(self) -> 'FaultServer':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def connect_refused(url: str) -> bool:
    """True when nothing accepts connections at the host:port of ``url``."""
    host, dummy, port = url.split('://', 1)[1].partition(':')
    try:
        socket.create_connection((host, int(port.split('/')[0])), timeout=0.5).close()
    except OSError:
        return True
    return False
