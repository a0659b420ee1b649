"""A throwaway Redis server on a free loopback port, persisting nothing.

Beyond a plain server (optionally with ``requirepass``) it can start:

* a replica of another harness server: ``RedisServer(replica_of=primary)``
  (``--replicaof``; ``--masterauth`` is the primary's password);
* ACL users: ``RedisServer(users={"ops": "on >secret ~* +ping +info"})``, the value
  being the rules of one ``user`` directive (``{"default": "off"}`` disables the
  default user);
* TLS only (the plain port is closed): ``RedisServer(tls=True)`` creates a private CA
  (``certs.TestCA``), a server certificate for 127.0.0.1/localhost and a client
  certificate in its work directory (``ca_path``, ``client_cert``, ``client_key``;
  needs the ``cryptography`` package); ``tls_auth_clients`` is
  Redis' ``tls-auth-clients`` (``"no"`` by default, ``"yes"`` demands the client certificate).
"""
from __future__ import annotations

import datetime
import socket
import ssl
import time
from pathlib import Path
from typing import Dict, Optional

from ._common import HarnessError, ServiceProcess, find_binary, free_port


class RedisServer(ServiceProcess):
    name = "redis"

    def __init__(self, password: Optional[str] = None, *, replica_of: Optional["RedisServer"] = None,
                 users: Optional[Dict[str, str]] = None, tls: bool = False, tls_auth_clients: str = "no") -> None:
        super().__init__()
        self.binary = find_binary(["redis-server", "/usr/bin/redis-server"], "TRDRHUB_REDIS_SERVER")
        self.host = "127.0.0.1"
        self.port = 0
        self.password = password
        self.replica_of = replica_of
        self.users = dict(users or {})
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.ca_path: Optional[str] = None
        self.client_cert: Optional[str] = None
        self.client_key: Optional[str] = None
        if replica_of is not None and replica_of.tls:
            raise HarnessError("the harness cannot start a replica of a TLS primary")

    def start(self) -> "RedisServer":
        self.port = free_port()
        argv = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                "--protected-mode", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        for user, rules in self.users.items():
            argv += ["--user", user, *rules.split()]
        if self.replica_of is not None:
            argv += ["--replicaof", self.replica_of.host, str(self.replica_of.port)]
            if self.replica_of.password:
                argv += ["--masterauth", self.replica_of.password]
        if self.tls:
            self._make_certs()
            argv[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            argv += ["--tls-cert-file", str(self.tls_dir / "server.crt"), "--tls-key-file", str(self.tls_dir / "server.key"),
                     "--tls-ca-cert-file", self.ca_path, "--tls-auth-clients", self.tls_auth_clients]
        self._spawn(argv)
        self._wait_ready(self._probe)
        return self

    # -- TLS -------------------------------------------------------------------
    @property
    def tls_dir(self) -> Path:
        return self.workdir / "tls"

    def _make_certs(self) -> None:
        """A private CA (``certs.TestCA``) with a server certificate for 127.0.0.1/localhost and a client certificate."""
        from .certs import TestCA  # needs the cryptography package, like every TLS test of the harness

        ca = TestCA("trdrhub harness Redis CA")
        ca.ca.write(self.tls_dir, "ca")
        ca.issue("127.0.0.1", sans=("127.0.0.1", "localhost")).write(self.tls_dir, "server")
        _client_certificate(ca).write(self.tls_dir, "client")
        self.ca_path = str(self.tls_dir / "ca.crt")
        self.client_cert = str(self.tls_dir / "client.crt")
        self.client_key = str(self.tls_dir / "client.key")

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_path)
        context.load_cert_chain(self.client_cert, self.client_key)
        return context

    # -- readiness -----------------------------------------------------------------
    def _probe(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as raw:
            sock = self.ssl_context().wrap_socket(raw, server_hostname=self.host) if self.tls else raw
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    def client(self, **kwargs):
        """A redis-py client as the server's administrator (the default user, with its password)."""
        import redis  # the harness itself does not need redis-py; tests that call this do

        kwargs.setdefault("password", self.password)
        kwargs.setdefault("decode_responses", True)
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=self.ca_path, ssl_certfile=self.client_cert, ssl_keyfile=self.client_key)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def wait_replicating(self, timeout: float = 20.0) -> dict:
        """For a replica: wait until the link to its primary is up; returns INFO replication."""
        deadline = time.monotonic() + timeout
        info: dict = {}
        with self.client() as conn:
            while time.monotonic() < deadline:
                info = conn.info("replication")
                if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                    return info
                time.sleep(0.1)
        raise HarnessError(f"replica on port {self.port} not in sync after {timeout:.0f}s: {info}\n{self.log_tail()}")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}{self.host}:{self.port}/0"

    def env(self) -> dict:
        return {"TRDRHUB_REDIS_URL": self.url, "TRDRHUB_REDIS_HOST": self.host, "TRDRHUB_REDIS_PORT": str(self.port)}


def _client_certificate(ca):
    """A clientAuth certificate signed by ``ca`` (``TestCA.issue`` makes serverAuth ones only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from .certs import Issued

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trdrhub harness client")]))
            .issuer_name(ca.ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.ca.key.public_key()), critical=False)
            .sign(ca.ca.key, hashes.SHA256()))
    return Issued(cert, key)
