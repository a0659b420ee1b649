"""host_resources_info on this machine's real /proc, and TCP reachability to a harness Redis and a closed port."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from trdrhub_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_real_proc_in_check_mode_and_applied(ansible, redis_server, pg_server):
    closed = free_port()   # nothing listens there
    args = {"sample_seconds": 0.5, "top": 5, "connect_attempts": 2, "connect_timeout": 2,
            "targets": [f"{redis_server.host}:{redis_server.port}", f"{pg_server.host}:{pg_server.port}", f"127.0.0.1:{closed}"]}
    checked = ansible.run("host_resources_info", args, check=True)
    res = ansible.run("host_resources_info", args)

    for run in (checked, res):
        assert not run.failed, run.output
        assert run["changed"] is False
    assert res["cpu"]["cores"] == os.cpu_count()
    assert res["cpu"]["busy_percent"] is not None and 0 <= res["cpu"]["busy_percent"] <= 100
    assert 0.4 <= res["sample_seconds"] < 5
    total = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal:"))) * 1024
    assert res["memory"]["total_bytes"] == total
    root = next(f for f in res["filesystems"] if f["mount"] == "/")
    usage = shutil.disk_usage("/")
    assert root["size_bytes"] == usage.total and abs(root["used_bytes"] - usage.used) < 64 * 1024 * 1024
    assert len(res["processes"]["by_memory"]) == 5 and len(res["processes"]["by_cpu"]) == 5
    rss = [p["rss_bytes"] for p in res["processes"]["by_memory"]]
    assert rss == sorted(rss, reverse=True)
    mine = os.getpid()
    assert all(p["pid"] != mine or p["user"] for p in res["processes"]["by_memory"])
    assert any(d["device"] for d in res["disks"]) or res["disks"] == []

    redis_row, pg_row, closed_row = res["reachability"]
    assert redis_row["reachable"] is True and redis_row["latency_ms"] > 0 and len(redis_row["samples_ms"]) == 2
    assert pg_row["reachable"] is True and pg_row["address"] == pg_server.host
    assert closed_row == {"target": f"127.0.0.1:{closed}", "host": "127.0.0.1", "port": closed, "address": "127.0.0.1",
                          "reachable": False, "latency_ms": None, "samples_ms": [], "error": "Connection refused"}
    assert res["unreachable_targets"] == [f"127.0.0.1:{closed}"]
    assert checked["unreachable_targets"] == res["unreachable_targets"]


def test_a_password_on_a_command_line_never_shows(ansible):
    """A process started with a secret on its command line is listed with the secret masked."""
    secret = "cmdline-sentinel-9f2c1e"
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(512 * 1024 * 1024); time.sleep(60)",
                              "--password", secret])
    try:
        res = ansible.run("host_resources_info", {"sample_seconds": 0, "top": 20})
    finally:
        child.kill()
        child.wait()
    assert not res.failed, res.output
    row = next((p for p in res["processes"]["by_memory"] if p["pid"] == child.pid), None)
    assert row is not None, res["processes"]["by_memory"]
    assert row["command"].endswith("--password ********")
    assert secret not in str(res.result)
