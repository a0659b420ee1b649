"""A throwaway PgBouncer in front of a harness PostgreSQL, in transaction pooling mode.

One server connection per database and user (``default_pool_size = 1``), so every client
of the pooler shares the same PostgreSQL session: a setting one client leaves on it is
what the next client sees. Clients authenticate with ``trust``; PgBouncer logs in to
PostgreSQL with the harness superuser's password. Runs as the ``postgres`` OS user when
the harness runs as root (PgBouncer refuses to run as root).
"""
from __future__ import annotations

import os
import pwd
import socket
from typing import Optional

import psycopg2

from ._common import ServiceProcess, find_binary, free_port


class PgBouncerServer(ServiceProcess):
    name = "pgbouncer"

    def __init__(self, postgres, pool_mode: str = "transaction", os_user: Optional[str] = None) -> None:
        super().__init__()
        self.binary = find_binary(["pgbouncer", "/usr/sbin/pgbouncer"], "TRDRHUB_PGBOUNCER")
        self.postgres = postgres
        self.pool_mode = pool_mode
        self.host = "127.0.0.1"
        self.port = 0
        self.stats_user = "trdrhub_stats"
        self.os_user = os_user if os_user is not None else ("postgres" if os.geteuid() == 0 else None)

    def start(self) -> "PgBouncerServer":
        self.port = free_port()
        pg = self.postgres
        ini = self.workdir / "pgbouncer.ini"
        users = self.workdir / "userlist.txt"
        users.write_text(f'"{pg.superuser}" ""\n"{self.stats_user}" ""\n')
        ini.write_text(
            "[databases]\n"
            f"* = host={pg.host} port={pg.port} user={pg.superuser} password={pg.password}\n"
            "[pgbouncer]\n"
            f"listen_addr = {self.host}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\n"
            # The admin console (virtual database pgbouncer): the superuser may run every command,
            # stats_user only the SHOW commands.
            f"admin_users = {pg.superuser}\nstats_users = {self.stats_user}\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = 1\nmin_pool_size = 0\nmax_client_conn = 50\n"
            # The reset query runs only in session mode; transaction mode keeps what a client left.
            "server_reset_query = DISCARD ALL\n"
            f"pidfile = {self.workdir / 'pgbouncer.pid'}\n"
        )
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.workdir, ini, users):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._spawn([self.binary, str(ini)], user=self.os_user)
        self._wait_ready(self._probe)
        return self

    def _probe(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1):
            pass
        self.connect().close()
        return True

    def connect(self, dbname: str = "postgres", autocommit: bool = True, user: Optional[str] = None):
        """A client connection through the pooler, as the harness superuser unless ``user`` is given."""
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=dbname, user=user or self.postgres.superuser,
                                connect_timeout=5)
        conn.autocommit = autocommit
        return conn
