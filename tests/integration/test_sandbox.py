"""The sandbox (trdrhub_harness.sandbox): its command, its seeded services, its faults, its page in a real browser.

``python -m trdrhub_harness sandbox`` runs from the venv without PYTHONPATH, writes the env file the
sandbox inventory reads, and removes everything on SIGTERM. The seeded database has the application's
schema and a valid audit chain; the backup is a real custom-format dump with its checksum; the health
server follows the database; the page shows a status page incident in headless chromium, in its
DOM and in the screenshot's pixels (the banner turns from operational green to the incident's
colour). ``python -m trdrhub_harness fault`` injects the drills' faults into a running sandbox
and ``clear`` undoes them; the page's ledger timeline shows the key entries, every one on demand.
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
    # Stopped: the files holding its credentials are gone, what a rehearsal leaves to read stays.
    assert not sandbox.kubeconfig.exists() and not sandbox.leaked_secret_file.exists()
    assert sandbox.backup.exists() and sandbox.incidents_dir.is_dir()


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
    assert not (state / "secrets" / "reports.env").exists(), "the leaked-secret file was left behind"
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


OPERATIONAL_GREEN = (0x36, 0xB3, 0x7E)    # .ok / .none banner (dashboard._STYLE)
INCIDENT_COLOURS = {"major": (0xFF, 0x56, 0x30), "critical": (0xBF, 0x26, 0x00)}   # .major / .critical banners


def png_pixels(data: bytes):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _c, _f, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def colour_area(rows, rgb, tolerance: int = 8):
    """(pixel count, bounding box (x0, y0, x1, y1) or None) of the pixels within ``tolerance`` of ``rgb``."""
    count, box = 0, None
    for y, row in enumerate(rows):
        for x, px in enumerate(row):
            if all(abs(px[i] - rgb[i]) <= tolerance for i in range(3)):
                count += 1
                box = (x, y, x, y) if box is None else (min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y))
    return count, box


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Debian's chromium is not installed (scripts/bootstrap.sh --dev installs it)")
def test_sandbox_page_shows_the_incident_in_a_browser(box, tmp_path):
    import requests

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--force-color-profile=srgb", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    url = box.dashboard.url + "/"

    def screenshot(png: Path):
        subprocess.run([*common, f"--screenshot={png}", "--window-size=1280,900", url], capture_output=True,
                       timeout=90, check=True)
        return png_pixels(png.read_bytes())

    # Before: no incident, the banner is the operational green.
    assert [i for i in box.statuspage.incidents(box.page.id) if i["status"] != "resolved"] == []
    _w, _h, calm = screenshot(tmp_path / "calm.png")
    green, green_box = colour_area(calm, OPERATIONAL_GREEN)
    assert green > 5000 and green_box[2] - green_box[0] > 300, f"no green banner before the incident: {green} px"
    assert all(colour_area(calm, rgb)[0] == 0 for rgb in INCIDENT_COLOURS.values())

    name = "Document uploads failing [INC-PAGE-1]"
    resp = requests.post(f"{box.statuspage.url}/pages/{box.page.id}/incidents",
                         headers={"Authorization": f"OAuth {box.statuspage.api_key}"},
                         json={"incident": {"name": name, "status": "investigating", "body": "We are investigating.",
                                            "components": {box.page.component_id("API"): "major_outage"}}},
                         timeout=10)
    assert resp.status_code == 201
    assert requests.post(box.webhook, json={"text": "INC-PAGE-1 declared P1"}, timeout=10).text == "ok"

    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True).stdout
    assert name in dom
    assert "Major outage" in dom and "INC-PAGE-1 declared P1" in dom
    impact = next(i["impact"] for i in box.statuspage.incidents(box.page.id) if i["name"] == name)
    assert impact in INCIDENT_COLOURS      # an API component in major outage
    assert f'class="banner {impact}"' in dom

    # After: the screenshot shows the incident - the banner, where the green one was, has the incident's colour.
    width, height, rows = screenshot(tmp_path / "incident.png")
    assert (width, height) == (1280, 900)
    red, red_box = colour_area(rows, INCIDENT_COLOURS[impact])
    assert red > 5000, f"the banner is not the {impact} colour in the screenshot ({red} px)"
    assert red_box[2] - red_box[0] > 300 and red_box[1] < 300, f"the red area is not the banner: {red_box}"
    overlap = min(red_box[2], green_box[2]) - max(red_box[0], green_box[0])
    assert overlap > 300 and abs(red_box[1] - green_box[1]) < 40, (red_box, green_box)
    green_after, _box = colour_area(rows, OPERATIONAL_GREEN)
    assert green_after < green / 4, f"the operational green banner is still there ({green_after} px)"


def _fault(box, name: str, token: bool = True):
    python = str(VENV_PY) if VENV_PY.exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("TRDRHUB_")}
    return subprocess.run([python, "-m", "trdrhub_harness", "fault", name, "--dir", str(box.dir)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_fault_command_injects_the_drills_faults_and_clear_undoes_them(box):
    import requests

    box.write_env_file()
    res = _fault(box, "clear")      # whatever an earlier test left (its bad deploy)
    assert res.returncode == 0, res.stderr
    assert get(box.health.url + "/health/ready")[0] == 200
    assert box.deployment_image().endswith(":1.2.0")

    res = _fault(box, "db-down")
    assert res.returncode == 0 and res.stdout.startswith("fault db-down: PostgreSQL"), res.stdout + res.stderr
    status, body = get(box.health.url + "/health/ready")
    assert status == 503 and body["checks"]["database"]["status"] == "error"
    res = _fault(box, "bad-deploy")
    assert res.returncode == 0, res.stderr
    assert get(box.health.url + "/healthz")[0] == 503 and box.deployment_image().endswith(":1.3.0")

    res = _fault(box, "clear")
    assert res.returncode == 0, res.stderr
    assert "PostgreSQL started" in res.stdout and "rolled back to ghcr.io/trdrhub/api:1.2.0" in res.stdout
    time.sleep(1.5)    # PostgreSQL started for a request must outlive the request's thread
    assert box.postgres_running()
    assert get(box.health.url + "/health/ready")[0] == 200 and get(box.health.url + "/healthz")[0] == 200

    def chain_breaks() -> list:
        conn = box.pg.connect(dbname="trdrhub")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT sequence_number, tenant_id, actor_id, resource_type, resource_id, action, "
                            "before_hash, after_hash, prev_entry_hash, created_at, entry_hash "
                            "FROM audit_log_entries ORDER BY 1")
                rows = cur.fetchall()
        finally:
            conn.close()
        keys = ("sequence_number", "tenant_id", "actor_id", "resource_type", "resource_id", "action",
                "before_hash", "after_hash", "prev_entry_hash", "created_at")
        return [r[0] for r in rows if app_entry_hash(dict(zip(keys, r[:10]))) != r[10]]

    assert chain_breaks() == []
    assert _fault(box, "tamper").returncode == 0
    assert chain_breaks() == [17]
    lines_before = box.access_log.lines_written
    res = _fault(box, "attack")
    assert res.returncode == 0 and "203.0.113.10" in res.stdout
    assert box.access_log.lines_written > lines_before
    assert "203.0.113.14" in box.access_log.path.read_text()
    assert _fault(box, "clear").returncode == 0
    assert chain_breaks() == []

    # The page server refuses a request without the control token, and names the known faults.
    resp = requests.post(box.dashboard.url + "/api/fault", json={"fault": "db-down"}, timeout=10)
    assert resp.status_code == 403
    resp = requests.post(box.dashboard.url + "/api/fault", json={"fault": "meteor"}, timeout=10,
                         headers={"X-Sandbox-Token": box.control_token})
    assert resp.status_code == 400 and "db-down" in resp.json()["error"]
    assert box.postgres_running()


def test_fault_command_without_a_sandbox_says_so(tmp_path):
    python = str(VENV_PY) if VENV_PY.exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("TRDRHUB_")}
    res = subprocess.run([python, "-m", "trdrhub_harness", "fault", "db-down", "--dir", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 3
    assert "no running sandbox" in res.stderr and "make sandbox" in res.stderr


def test_page_ledger_timeline_shows_key_entries_and_every_entry_on_demand(box):
    import requests

    ledger = box.incidents_dir / "INC-TIMELINE-1" / "ledger.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"seq": 1, "event": "playbook_start", "actor": "alice", "data": {"playbook": "playbooks/triage.yml"}}]
    entries += [{"seq": n, "event": "task", "phase": "triage", "task": f"routine task {n}", "actor": "alice",
                 "data": {}} for n in range(2, 12)]
    entries += [{"seq": 12, "event": "decision", "actor": "alice", "data": {"decision": "P1"}},
                {"seq": 13, "event": "task", "phase": "contain", "task": "first containment task", "data": {}},
                {"seq": 14, "event": "approval", "actor": "bob", "data": {"approval": "vote", "decision": "approve"}},
                {"seq": 15, "event": "task", "phase": "contain", "task": "a failing task", "failed": True, "data": {}},
                {"seq": 16, "event": "communication", "data": {"channel": "slack", "message": "slack initial sent"}},
                {"seq": 17, "event": "playbook_end", "data": {}}]
    ledger.write_text("".join(json.dumps(e) + "\n" for e in entries))
    key = requests.get(box.dashboard.url + "/", timeout=10).text
    section = key[key.index("INC-TIMELINE-1"):]
    assert "routine task 2" in section            # the first task of the triage phase marks the phase
    assert "phase triage" in section and "phase contain" in section
    assert "routine task 5" not in section
    for what in ("P1", "approve", "a failing task", "slack initial sent", "playbook_end"):
        assert what in section
    assert "17 entries (8 shown)" in section and "?ledger=all" in key
    full = requests.get(box.dashboard.url + "/?ledger=all", timeout=10).text
    section = full[full.index("INC-TIMELINE-1"):]
    assert "routine task 5" in section and "17 entries (17 shown)" in section
