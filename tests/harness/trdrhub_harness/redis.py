"""A throwaway Redis server on a free loopback port, persisting nothing."""
from __future__ import annotations

import socket
from typing import Optional

from ._common import ServiceProcess, find_binary, free_port


class RedisServer(ServiceProcess):
    name = "redis"

    def __init__(self, password: Optional[str] = None) -> None:
        super().__init__()
        self.binary = find_binary(["redis-server", "/usr/bin/redis-server"], "TRDRHUB_REDIS_SERVER")
        self.host = "127.0.0.1"
        self.port = 0
        self.password = password

    def start(self) -> "RedisServer":
        self.port = free_port()
        argv = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                "--protected-mode", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self._spawn(argv)
        self._wait_ready(self._probe)
        return self

    def _probe(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def env(self) -> dict:
        return {"TRDRHUB_REDIS_URL": self.url, "TRDRHUB_REDIS_HOST": self.host, "TRDRHUB_REDIS_PORT": str(self.port)}
