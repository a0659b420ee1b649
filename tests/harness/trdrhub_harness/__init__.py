"""Hermetic service harness for trdrhub.incident tests, drills and benchmarks.

Starts throwaway PostgreSQL, Redis and Alertmanager instances on free loopback ports
and always removes them again. It never uses the machine's own services.

    with Services(("postgres", "redis")) as svc:
        conn = svc.postgres.connect()
        env = svc.env()          # TRDRHUB_PG_HOST, TRDRHUB_PG_PORT, ... for child processes
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Iterable, Optional

from ._common import HarnessError, free_port
from .alertmanager import AlertmanagerServer
from .postgres import PostgresServer
from .redis import RedisServer

ALL_SERVICES = ("postgres", "redis", "alertmanager")
_FACTORIES = {"postgres": PostgresServer, "redis": RedisServer, "alertmanager": AlertmanagerServer}

__all__ = ["ALL_SERVICES", "AlertmanagerServer", "HarnessError", "PostgresServer", "RedisServer",
           "Services", "free_port"]


class Services:
    """Start the named services together; stop all of them whatever happens."""

    def __init__(self, names: Iterable[str] = ALL_SERVICES) -> None:
        self.names = tuple(names)
        unknown = set(self.names) - set(_FACTORIES)
        if unknown:
            raise HarnessError(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL_SERVICES)}")
        self._stack: Optional[ExitStack] = None
        self.postgres: Optional[PostgresServer] = None
        self.redis: Optional[RedisServer] = None
        self.alertmanager: Optional[AlertmanagerServer] = None

    def start(self) -> "Services":
        self._stack = ExitStack()
        try:
            for name in self.names:
                server = self._stack.enter_context(_FACTORIES[name]())
                server.start()
                setattr(self, name, server)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def env(self) -> dict:
        out: dict = {}
        for name in self.names:
            server = getattr(self, name)
            if server is not None:
                out.update(server.env())
        return out

    def __enter__(self) -> "Services":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
