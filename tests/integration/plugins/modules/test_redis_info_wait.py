"""redis_info wait_for (runbook Phase 4.2) through ansible-playbook against a real Redis.

A background thread plays the worker: it starts popping jobs only once the module is
connected (seen in CLIENT LIST), so the playbook's start-up time does not matter.
"""
from __future__ import annotations

import re
import threading
import time

import pytest
from _itest_batch import run_batch
from trdrhub_harness.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MODULE_COMMANDS = {"ping", "info", "type", "llen"}


@pytest.fixture(scope="module")
def server():
    with RedisServer() as srv:
        yield srv.start()


class Worker(threading.Thread):
    """Pops ``per_tick`` jobs every ``tick`` seconds from ``key`` once another client runs the module's commands."""

    def __init__(self, server, key: str, per_tick: int = 2, tick: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.conn = server.client()
        self.key, self.per_tick, self.tick = key, per_tick, tick
        self.stop_event = threading.Event()
        self.started_at: float | None = None

    def module_connected(self) -> bool:
        me = self.conn.client_id()
        return any(c["id"] != me and c.get("cmd") in MODULE_COMMANDS for c in self.conn.client_list())

    def run(self) -> None:
        while not self.stop_event.is_set() and not self.module_connected():
            time.sleep(0.05)
        self.started_at = time.monotonic()
        while not self.stop_event.is_set() and self.conn.llen(self.key):
            self.conn.lpop(self.key, self.per_tick)
            time.sleep(self.tick)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


def test_wait_until_a_worker_drains_the_queue(ansible, server):
    key = "itest:drain"
    server.client().rpush(key, *range(100))
    worker = Worker(server, key)
    worker.start()
    try:
        res = ansible.run("redis_info", {"host": server.host, "port": server.port, "queues": [key],
                                         "wait_for": {"queue": key, "below": 20, "timeout": 60, "interval": 0.5}})
    finally:
        worker.stop()
    assert not res.failed, res.output
    wait = res["wait"]
    assert wait["met"] is True and wait["length"] < 20 <= wait["initial_length"]
    assert wait["polls"] >= 3 and wait["polls"] == len(wait["samples"])
    assert wait["waited_s"] == wait["samples"][-1]["elapsed_s"] > 0
    lengths = [s["length"] for s in wait["samples"]]
    assert lengths == sorted(lengths, reverse=True), "the queue only shrinks"
    # the worker pops about 20 jobs/s; a loaded machine slows it down, never speeds it up
    assert 3 < wait["drain_rate"] < 25, wait
    assert res["queues"][key]["length"] <= wait["length"], "queues are measured after the wait"
    assert res["queries"][:3] == ["PING", f"TYPE {key}", f"LLEN {key}"]


def test_a_queue_that_never_drains_times_out(ansible, server):
    key = "itest:stuck"
    server.client().rpush(key, *range(30))
    wait = {"queue": key, "below": 10, "timeout": 1.5, "interval": 0.5}
    args = {"host": server.host, "port": server.port, "wait_for": wait}
    runs = run_batch(ansible, {"apply": ("redis_info", args), "check": ("redis_info", args, {"check_mode": True})})
    pattern = (rf"^queue '{key}' on Redis at 127\.0\.0\.1:{server.port} \(db 0, user default\) still holds 30 items after "
               r"1\.5\d*s \(wanted fewer than 10; started at 30\); not draining \(0 items/s\)$")
    for name in ("apply", "check"):
        res = runs[name]
        assert res.failed, res.output
        assert re.match(pattern, res["msg"]), res["msg"]
        assert res["wait"]["met"] is False and res["wait"]["drain_rate"] == 0.0 and res["wait"]["polls"] in (3, 4)
        assert res["queues"] == {}, "the evidence of the run comes back with the failure"
        assert res["role"] == "master" and res["queries"][0] == "PING"
    assert server.client().llen(key) == 30
