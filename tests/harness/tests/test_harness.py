"""The service harness itself: real services on loopback, and nothing left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from trdrhub_harness import HarnessError, Services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HARNESS_DIR = Path(__file__).resolve().parents[1]


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_services_answer_and_are_removed_on_exit():
    with Services() as svc:
        with svc.postgres.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW port")
            assert int(cur.fetchone()[0]) == svc.postgres.port
            cur.execute("SELECT current_setting('data_directory')")
            assert cur.fetchone()[0].startswith(str(svc.postgres.workdir))
        assert redis.Redis.from_url(svc.redis.url).ping() is True
        with urllib.request.urlopen(svc.alertmanager.url + "/api/v2/status", timeout=5) as resp:
            status = json.load(resp)
        assert status["cluster"]["status"] == "disabled"
        env = svc.env()
        assert env["TRDRHUB_PG_PORT"] == str(svc.postgres.port)
        assert env["TRDRHUB_ALERTMANAGER_URL"] == svc.alertmanager.url
        procs = [svc.postgres.proc.pid, svc.redis.proc.pid, svc.alertmanager.proc.pid]
        dirs = [svc.postgres.workdir, svc.redis.workdir, svc.alertmanager.workdir]
        # Never the machine's own instances: private ports, not 5432 / 6379 / 9093.
        assert {svc.postgres.port, svc.redis.port, svc.alertmanager.port}.isdisjoint({5432, 6379, 9093})
    assert all(_gone(pid) for pid in procs)
    assert not any(d.exists() for d in dirs)


def test_cleanup_also_when_the_body_fails():
    with pytest.raises(RuntimeError, match="boom"):
        with Services(("postgres",)) as svc:
            pid, workdir = svc.postgres.proc.pid, svc.postgres.workdir
            raise RuntimeError("boom")
    assert _gone(pid)
    assert not workdir.exists()


def test_tcp_needs_the_password(pg_server):
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        pg_server.connect(host="127.0.0.1", password="wrong")
    pg_server.connect(host="127.0.0.1", password=pg_server.password).close()


def test_unknown_service_is_one_clear_error():
    with pytest.raises(HarnessError, match="unknown service"):
        Services(("postgres", "mysql"))


def test_services_die_with_a_killed_harness(tmp_path):
    """SIGKILL gives no chance to clean up: the kernel's parent-death signal stops the servers."""
    script = (
        "import json, sys, time\n"
        "from trdrhub_harness import Services\n"
        "svc = Services(('postgres', 'redis')).start()\n"
        "print(json.dumps([svc.postgres.proc.pid, svc.redis.proc.pid]), flush=True)\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(HARNESS_DIR)})
    try:
        pids = json.loads(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert all(_gone(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_command_gets_the_environment_and_its_exit_code():
    code = ("import os, sys; "
            "sys.exit(0 if os.environ['TRDRHUB_PG_PORT'] and os.environ['TRDRHUB_REDIS_URL'] else 1)")
    res = subprocess.run([sys.executable, "-m", "trdrhub_harness", "run", "--services", "postgres,redis", "--",
                          sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(HARNESS_DIR)},
                         capture_output=True, text=True, timeout=90, check=False)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "trdrhub_harness", "run", "--services", "redis", "--",
                          sys.executable, "-c", "raise SystemExit(7)"],
                         env={**os.environ, "PYTHONPATH": str(HARNESS_DIR)}, capture_output=True, text=True,
                         timeout=90, check=False)
    assert res.returncode == 7
