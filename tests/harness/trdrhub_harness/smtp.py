"""A real SMTP server (aiosmtpd) on a loopback port: STARTTLS, then AUTH, then delivery.

As a submission server (port 587 style) it offers STARTTLS with a certificate from a
throwaway CA (``ca_path`` for clients), refuses MAIL before STARTTLS (530), offers
AUTH PLAIN and LOGIN only after STARTTLS and refuses mail without it (530); wrong
credentials answer 535. ``implicit_tls=True`` serves TLS from the first byte instead
(port 465 style). Recipients in ``refused`` are rejected with 550. Accepted messages
are kept in ``messages`` with the envelope and the authenticated user.

    with SmtpServer() as smtp:
        smtp.start()
        ...  # smtplib.SMTP(smtp.host, smtp.port).starttls(...); login(smtp.username, smtp.password)
        smtp.messages[0]["message"]["X-TRDRHub-Incident"]
"""
from __future__ import annotations

import email
import email.policy
import secrets
import shutil
import ssl
import tempfile
import threading
import warnings
from pathlib import Path
from typing import List, Optional, Set

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ._common import free_port
from .certs import TestCA


class _Handler:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook name
        if address.lower() in self.server.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        raw = envelope.original_content or envelope.content
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        entry = {
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "raw": raw,
            "message": email.message_from_bytes(raw, policy=email.policy.default),
            "login": login, "tls": session.ssl is not None or self.server.implicit_tls,
        }
        with self.server.lock:
            self.server.messages.append(entry)
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    name = "smtp"

    def __init__(self, username: str = "trdrhub-notify", password: Optional[str] = None, implicit_tls: bool = False,
                 refused: Optional[Set[str]] = None) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.username = username
        self.password = password or "smtp-" + secrets.token_hex(12)
        self.implicit_tls = implicit_tls
        self.refused = {r.lower() for r in (refused or ())}
        self.messages: List[dict] = []
        self.lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="trdrhub-smtp-"))
        ca = TestCA()
        ca.ca.write(self.workdir, "ca")
        self.ca_path = str(ca.ca.cert_path)
        self.cert = ca.issue("localhost", ("localhost", "127.0.0.1")).write(self.workdir, "server")
        self.controller: Optional[Controller] = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and secrets.compare_digest(auth_data.password, self.password.encode()))
        # handled=False: aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> "SmtpServer":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert.cert_path), str(self.cert.key_path))
        self.port = free_port()
        common = {"hostname": self.host, "port": self.port, "server_hostname": "localhost",
                  "authenticator": self._authenticate, "auth_required": True, "auth_exclude_mechanism": ["CRAM-MD5"]}
        if self.implicit_tls:
            # The whole connection is TLS; aiosmtpd's auth_require_tls only knows about STARTTLS.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            self.controller = Controller(_Handler(self), ssl_context=context, auth_require_tls=False, **common)
        else:
            self.controller = Controller(_Handler(self), tls_context=context, require_starttls=True,
                                         auth_require_tls=True, **common)
        self.controller.start()
        return self

    def received_by(self, address: str) -> List[dict]:
        with self.lock:
            return [m for m in self.messages if address in m["rcpt_tos"]]

    def stop(self) -> None:
        controller, self.controller = self.controller, None
        if controller is not None:
            controller.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def env(self) -> dict:
        return {"TRDRHUB_SMTP_HOST": self.host, "TRDRHUB_SMTP_PORT": str(self.port)}

    def __enter__(self) -> "SmtpServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
