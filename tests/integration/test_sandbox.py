"""The sandbox (trdrhub_harness.sandbox): its command, its seeded services, its faults, its page in a real browser.

``python -m trdrhub_harness sandbox`` runs from the venv without PYTHONPATH, writes the env file the
sandbox inventory reads, and removes everything on SIGTERM. The seeded database has the application's
schema and a valid audit chain; the backup is a real custom-format dump with its checksum; the health
server follows the database; the page shows a status page incident in headless chromium.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from trdrhub_harness.sandbox import AUDIT_ROWS, Sandbox, app_entry_hash

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def read_env(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _eq, value = line[len("export "):].partition("=")
            out[key] = value.strip("'")
    return out


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with Sandbox(tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox


def test_sandbox_command_runs_without_pythonpath_and_cleans_up(tmp_path):
    python = str(VENV_PY) if VENV_PY.exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    state = tmp_path / "state"
    proc = subprocess.Popen([python, "-m", "trdrhub_harness", "sandbox", "--dir", str(state), "--no-kubernetes"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (state / "ready").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the sandbox was not ready within 90s"
            time.sleep(0.2)
        exported = read_env(state / "env")
        assert exported["TRDRHUB_LEDGER_DIR"] == str((state / "incidents").resolve())
        status, body = get(exported["TRDRHUB_BASE_URL"] + "/health/ready")
        assert status == 200 and body["overall_healthy"] is True
        assert "TRDRHUB_KUBECONFIG" not in exported
        pg_dir = Path(exported["TRDRHUB_PG_SOCKET_DIR"]).parent
        assert pg_dir.is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "stopping every service" in output
    assert not (state / "env").exists() and not (state / "ready").exists()
    assert not pg_dir.exists(), "the PostgreSQL work directory was left behind"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(exported["TRDRHUB_BASE_URL"] + "/healthz", timeout=3)


def test_seeded_database_backup_and_health_follow_faults(box):
    conn = box.pg.connect(dbname="trdrhub")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchall() == [("7c1f0e2a9b44",)]
            cur.execute("SELECT count(*) FROM secret_rotation_logs")
            assert cur.fetchone() == (0,)
            cur.execute("SELECT sequence_number, tenant_id, actor_id, resource_type, resource_id, action, before_hash,"
                        " after_hash, prev_entry_hash, created_at, entry_hash FROM audit_log_entries ORDER BY 1")
            rows = cur.fetchall()
    finally:
        conn.close()
    assert len(rows) == AUDIT_ROWS
    heads: dict = {}
    for row in rows:
        record = dict(zip(("sequence_number", "tenant_id", "actor_id", "resource_type", "resource_id", "action",
                           "before_hash", "after_hash", "prev_entry_hash", "created_at"), row[:10]))
        assert record["prev_entry_hash"] == heads.get(record["tenant_id"])
        assert app_entry_hash(record) == row[10]
        heads[record["tenant_id"]] = row[10]
    assert len(heads) == 3

    backup = box.backup
    assert backup.name.startswith("trdrhub_backup_") and backup.name.endswith(".sql.gz")
    assert backup.read_bytes()[:5] == b"PGDMP"
    digest, name = Path(str(backup) + ".sha256").read_text().split()
    assert (digest, name) == (hashlib.sha256(backup.read_bytes()).hexdigest(), backup.name)

    assert get(box.health.url + "/health/ready")[0] == 200
    box.stop_postgres()
    try:
        status, body = get(box.health.url + "/health/ready")
        assert status == 503 and body["checks"]["database"]["status"] == "error"
        assert get(box.health.url + "/healthz") == (200, {"status": "ok"})
    finally:
        box.start_postgres()
    assert get(box.health.url + "/health/ready")[0] == 200

    box.bad_deploy()
    status, body = get(box.health.url + "/healthz")
    assert status == 503 and "trdrhub-api" in body["detail"]
    assert box.deployment_image().endswith(":1.3.0")


def _png_pixels_vary(data: bytes) -> bool:
    """A PNG whose decompressed scanlines hold more than a handful of distinct byte values."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat))) > 16


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Debian's chromium is not installed (scripts/bootstrap.sh --dev installs it)")
def test_sandbox_page_shows_the_incident_in_a_browser(box, tmp_path):
    import requests

    name = "Document uploads failing [INC-PAGE-1]"
    resp = requests.post(f"{box.statuspage.url}/pages/{box.page.id}/incidents",
                         headers={"Authorization": f"OAuth {box.statuspage.api_key}"},
                         json={"incident": {"name": name, "status": "investigating", "body": "We are investigating.",
                                            "components": {box.page.component_id("API"): "major_outage"}}},
                         timeout=10)
    assert resp.status_code == 201
    assert requests.post(box.webhook, json={"text": "INC-PAGE-1 declared P1"}, timeout=10).text == "ok"

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}"]
    url = box.dashboard.url + "/"
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True).stdout
    assert name in dom
    assert "Major outage" in dom and "INC-PAGE-1 declared P1" in dom
    shot = tmp_path / "page.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,900", url], capture_output=True,
                   timeout=90, check=True)
    data = shot.read_bytes()
    assert len(data) > 1000
    assert _png_pixels_vary(data)
