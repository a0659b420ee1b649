"""The command blocks of README.md and docs/*.md, run verbatim.

A fenced ``sh``/``bash`` block preceded by the line ``<!-- doc-test: local -->`` runs as it stands
from the repository root; one preceded by ``<!-- doc-test: sandbox -->`` also starts and stops the
sandbox itself (``make sandbox`` ... ``make sandbox-down``), so it is skipped while a developer's
sandbox is running in build/sandbox. Each block runs in one ``bash -e`` with the venv first on PATH.
Blocks without a marker need real systems (production inventories, AWX) and are not run; the
inventory test below keeps the markers honest.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- doc-test: (\w+) -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
SHELLS = {"sh", "bash", "shell", "console"}
KINDS = {"local", "sandbox"}


def blocks():
    """(file, line, kind or None, language, text) of every fenced block in README.md and docs/*.md."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if match and match.group(1):
                start, lang = i, match.group(1)
                i += 1
                body = []
                while i < len(lines) and not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                marker = MARKER.match(lines[start - 1]) if start else None
                found.append((path.relative_to(REPO), start + 1, marker.group(1) if marker else None, lang,
                              "\n".join(body)))
            i += 1
    return found


RUNNABLE = [b for b in blocks() if b[2] is not None]


def test_markers_name_a_known_kind_on_shell_blocks():
    marked = [(str(f), n, k, lang) for f, n, k, lang, _t in RUNNABLE]
    assert marked, "no command block is marked to run"
    assert [m for m in marked if m[2] not in KINDS or m[3] not in SHELLS] == []
    assert any(m[2] == "sandbox" for m in marked)


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b[0]}:{b[1]}" for b in RUNNABLE])
def test_documented_commands_run_verbatim(block, tmp_path):
    path, line, kind, _lang, text = block
    if kind == "sandbox" and (REPO / "build" / "sandbox" / "ready").exists():
        pytest.skip("a sandbox is running in build/sandbox: this block would stop it")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDRHUB_") and k != "PYTHONPATH"}
    env.update(PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               TRDRHUB_LEDGER_DIR=str(tmp_path / "incidents"), HOME=env.get("HOME", str(tmp_path)))
    script = "set -euo pipefail\n" + text + "\n"
    try:
        res = subprocess.run(["bash", "-c", script], cwd=str(REPO), env=env, capture_output=True, text=True,
                             timeout=360, check=False)
    finally:
        if kind == "sandbox":
            subprocess.run(["scripts/sandbox.sh", "down"], cwd=str(REPO), env=env, capture_output=True, timeout=90,
                           check=False)
    assert res.returncode == 0, f"{path}:{line} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
