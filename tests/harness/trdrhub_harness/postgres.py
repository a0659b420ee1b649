"""A throwaway PostgreSQL server: initdb in a temp dir, its own socket dir, a free port.

When the harness runs as root, the server runs as the unprivileged ``postgres`` OS user
(PostgreSQL refuses to run as root). The machine's own cluster is never touched.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Optional

import psycopg2

from ._common import HarnessError, ServiceProcess, find_binary, free_port

_PG_GLOB = "/usr/lib/postgresql/*/bin/"


class PostgresServer(ServiceProcess):
    name = "postgres"

    def __init__(self, max_connections: int = 400, os_user: Optional[str] = None) -> None:
        super().__init__()
        self.bindir = os.path.dirname(find_binary([_PG_GLOB + "initdb", "initdb"], "TRDRHUB_PG_INITDB"))
        self.host = "127.0.0.1"
        self.superuser = "postgres"
        self.password = "harness-" + secrets.token_hex(12)
        self.max_connections = max_connections
        self.os_user = os_user if os_user is not None else ("postgres" if os.geteuid() == 0 else None)
        self.datadir = self.workdir / "data"
        self.socket_dir = str(self.workdir / "run")
        self.port = 0

    def start(self) -> "PostgresServer":
        os.makedirs(self.socket_dir)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.workdir, self.socket_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        initdb = [
            os.path.join(self.bindir, "initdb"), "-D", str(self.datadir), "-U", self.superuser,
            "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ]
        kwargs = {"user": self.os_user, "group": self.os_user, "extra_groups": []} if self.os_user else {}
        res = subprocess.run(initdb, capture_output=True, text=True, cwd=str(self.workdir), check=False, **kwargs)
        pwfile.unlink()
        if res.returncode != 0:
            raise HarnessError(f"initdb failed: {res.stderr.strip() or res.stdout.strip()}")
        for attempt in range(3):
            self.port = free_port()
            self._spawn([
                os.path.join(self.bindir, "postgres"), "-D", str(self.datadir), "-p", str(self.port),
                "-k", self.socket_dir, "-c", "listen_addresses=127.0.0.1",
                "-c", f"max_connections={self.max_connections}", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
                "-c", "unix_socket_permissions=0777",
            ], user=self.os_user)
            try:
                self._wait_ready(self._probe)
                return self
            except HarnessError:
                if attempt == 2 or "could not bind" not in self.log_tail():
                    raise
                self.proc.wait(timeout=10)
        return self

    @classmethod
    def attach(cls, environ: Optional[dict] = None) -> "PostgresServer":
        """A server started elsewhere (``python -m trdrhub_harness run``), from its TRDRHUB_PG_* variables.

        The result has the same client interface; stopping it leaves the server alone.
        """
        env = os.environ if environ is None else environ
        try:
            port = int(env["TRDRHUB_PG_PORT"])
        except (KeyError, ValueError):
            raise HarnessError("TRDRHUB_PG_PORT is not set: run under "
                               "`python -m trdrhub_harness run --services postgres -- ...`") from None
        server = cls.__new__(cls)
        server.workdir = server.proc = server.log_path = None
        server.host = env.get("TRDRHUB_PG_HOST", "127.0.0.1")
        server.port = port
        server.socket_dir = env.get("TRDRHUB_PG_SOCKET_DIR") or None
        server.superuser = env.get("TRDRHUB_PG_USER", "postgres")
        server.password = env.get("TRDRHUB_PG_PASSWORD") or None
        server.bindir = env.get("TRDRHUB_PG_BINDIR", "")
        server.os_user = None
        server.log_path = Path(env["TRDRHUB_PG_LOG"]) if env.get("TRDRHUB_PG_LOG") else None
        return server

    def _probe(self) -> bool:
        self.connect().close()
        return True

    # -- client helpers ------------------------------------------------------
    def connect(self, dbname: str = "postgres", user: Optional[str] = None, password: Optional[str] = None,
                application_name: Optional[str] = None, host: Optional[str] = None, autocommit: bool = True):
        """A psycopg2 connection; superuser over the unix socket unless told otherwise."""
        user = user or self.superuser
        if password is None and user == self.superuser and not self.socket_dir:
            password = self.password
        params = {"dbname": dbname, "user": user, "port": self.port,
                  "host": host or self.socket_dir or self.host, "connect_timeout": 5}
        if password is not None:
            params["password"] = password
        if application_name:
            params["application_name"] = application_name
        conn = psycopg2.connect(**params)
        conn.autocommit = autocommit
        return conn

    def dsn(self, dbname: str = "postgres", user: Optional[str] = None, password: Optional[str] = None) -> str:
        user = user or self.superuser
        if password is None and user == self.superuser:
            password = self.password
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={dbname}", f"user={user}"]
        if password is not None:
            parts.append(f"password={password}")
        return " ".join(parts)

    def env(self) -> dict:
        return {
            "TRDRHUB_PG_HOST": self.host,
            "TRDRHUB_PG_PORT": str(self.port),
            "TRDRHUB_PG_SOCKET_DIR": self.socket_dir,
            "TRDRHUB_PG_USER": self.superuser,
            "TRDRHUB_PG_PASSWORD": self.password,
            "TRDRHUB_PG_BINDIR": self.bindir,
            "TRDRHUB_PG_LOG": str(self.log_path) if self.log_path else "",
        }

    # SIGINT is PostgreSQL's "fast" shutdown: client sessions are aborted at once.
    stop_signal = signal.SIGINT


def psql_path() -> str:
    return shutil.which("psql") or os.path.join(os.path.dirname(find_binary([_PG_GLOB + "psql"], "TRDRHUB_PSQL")), "psql")
