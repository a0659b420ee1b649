"""Triage reads PgBouncer's pools (pgbouncer_info) when trdrhub_pgbouncer_host is set: the headline -
clients waiting, the longest wait, paused databases - is a line of the summary; an unreachable pooler
is a line too, not the end of triage. A real PgBouncer (transaction pooling, one server connection per
pool) in front of the harness PostgreSQL: a client holding a transaction makes the next one wait.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import threading
import time
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_http import StubServer, TrdrHubHealth
from trdrhub_harness.pgbouncer import PgBouncerServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
TRIAGE = REPO_ROOT / "playbooks" / "triage.yml"


@pytest.fixture(scope="module")
def pgbouncer(pg_server):
    if not shutil.which("pgbouncer") and not shutil.which("/usr/sbin/pgbouncer"):
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    with PgBouncerServer(pg_server) as bouncer:
        yield bouncer.start()


def inventory(tmp_path, health_url, bouncer, port=None):
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "trdrhub_base_url": health_url,
            "trdrhub_pgbouncer_host": bouncer.host, "trdrhub_pgbouncer_port": port or bouncer.port,
            "trdrhub_pgbouncer_stats_user": bouncer.stats_user, "triage_acknowledge": False}
    path = tmp_path / f"inventory-{port or bouncer.port}.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": host}}}))
    return path


def test_triage_summary_has_the_pooler_headline(ansible, tmp_path, trdrhub_db, pgbouncer):
    holder = pgbouncer.connect(dbname="trdrhub", autocommit=False)
    waiter = pgbouncer.connect(dbname="trdrhub")
    with holder.cursor() as cur:
        cur.execute("SELECT 1")   # the pool's only server connection stays with this open transaction
    thread = threading.Thread(target=lambda: waiter.cursor().execute("SELECT 1"), daemon=True)
    thread.start()
    time.sleep(1.5)
    try:
        with StubServer(TrdrHubHealth().routes()) as health:
            incident = "INC-POOLT-" + uuid.uuid4().hex[:6]
            res = ansible.run_playbook(TRIAGE, "-i", inventory(tmp_path, health.url(), pgbouncer), "-e",
                                       f"trdrhub_incident_id={incident}", timeout=300)
            assert res.rc == 0, res.output
            text = re.sub(r"\s+", " ", res.output)
            found = re.search(r"PgBouncer: 1 client\(s\) waiting, longest wait ([0-9.]+) s, \d+ active, paused: none - "
                              r"pool trdrhub/postgres: 1 client\(s\) waiting for a server connection", text)
            assert found and float(found.group(1)) >= 1, res.output

            down = ansible.run_playbook(TRIAGE, "-i", inventory(tmp_path, health.url(), pgbouncer, port=9), "-e",
                                        f"trdrhub_incident_id={incident}", timeout=300)
            assert down.rc == 0, down.output
            assert "PgBouncer: not read - " in re.sub(r"\s+", " ", down.output)
    finally:
        holder.rollback()
        thread.join(10)
        holder.close()
        waiter.close()
