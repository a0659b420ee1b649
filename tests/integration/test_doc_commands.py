"""The command blocks of README.md and docs/*.md, run verbatim.

Every fenced ``sh``/``bash`` block carries a marker on the line before it:

- ``<!-- doc-test: local -->`` runs as it stands from the repository root;
- ``<!-- doc-test: sandbox -->`` runs against the sandbox (``make sandbox``), in a shell that has
  sourced ``build/sandbox/env`` as docs/sandbox.md says;
- ``<!-- doc-test: skip - <reason> -->`` cannot run here (production inventories, AWX, a real
  cluster, the whole suite); the reason says why.

One sandbox serves every block of this module: it is started once (``scripts/sandbox.sh up``),
started again only when a block stopped it (a block showing ``make sandbox-down``), and
stopped at the end. The blocks run in the order of the pages, and the blocks of one page share
an incidents home (``TRDRHUB_LEDGER_DIR``), so a page can open an incident in one block and
use it in the next. Sandbox blocks are skipped while a developer's sandbox runs in
build/sandbox (they would stop it). Each block runs in one ``bash -e`` with the venv first on
PATH and without PYTHONPATH.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
SANDBOX_DIR = REPO / "build" / "sandbox"
MARKER = re.compile(r"^<!-- doc-test: (local|sandbox|skip)(?: - (\S.*?))? -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
SHELLS = {"sh", "bash", "shell", "console"}


class Block(NamedTuple):
    path: Path
    line: int
    kind: Optional[str]
    reason: Optional[str]
    lang: str
    text: str
    marker_line: str


def doc_files():
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks():
    """Every fenced block with a language in README.md and docs/*.md, with the marker before it."""
    found = []
    for path in doc_files():
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
                before = lines[start - 1] if start else ""
                marker = MARKER.match(before)
                found.append(Block(path.relative_to(REPO), start + 1, marker.group(1) if marker else None,
                                   marker.group(2) if marker else None, lang, "\n".join(body), before))
            i += 1
    return found


BLOCKS = blocks()
RUNNABLE = [b for b in BLOCKS if b.kind in ("local", "sandbox")]


def test_every_shell_block_is_marked_to_run_or_skipped_with_a_reason():
    shell = [b for b in BLOCKS if b.lang in SHELLS]
    assert shell, "no shell block found"
    unmarked = [f"{b.path}:{b.line}" for b in shell if b.kind is None]
    assert unmarked == [], "shell blocks without a doc-test marker (local, sandbox or skip - reason)"
    no_reason = [f"{b.path}:{b.line}" for b in shell if b.kind == "skip" and len(b.reason or "") < 10]
    assert no_reason == [], "skipped blocks must say why"
    assert [f"{b.path}:{b.line}" for b in BLOCKS if b.kind and b.lang not in SHELLS] == []
    # A marker that does not parse or does not stand right before a fence is a mistake, not a skip.
    stray = []
    for path in doc_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if line.startswith("<!-- doc-test"):
                nxt = lines[n + 1] if n + 1 < len(lines) else ""
                if not MARKER.match(line) or not FENCE.match(nxt) or not FENCE.match(nxt).group(1):
                    stray.append(f"{path.relative_to(REPO)}:{n + 1}")
    assert stray == []
    assert any(b.kind == "sandbox" for b in shell) and any(b.kind == "local" for b in shell)


def _env(ledger_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDRHUB_") and k != "PYTHONPATH"}
    env.update(PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1",
               TRDRHUB_LEDGER_DIR=str(ledger_dir))
    env.setdefault("HOME", str(ledger_dir.parent))
    return env


def _developer_sandbox_running() -> bool:
    pidfile = SANDBOX_DIR / "sandbox.pid"
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


class SharedSandbox:
    """The module's sandbox in build/sandbox: started once, restarted only when a block stopped it."""

    def __init__(self, env: dict) -> None:
        self.env = env
        self.starts: list = []
        self.stop_seconds = 0.0

    def running(self) -> bool:
        return (SANDBOX_DIR / "ready").exists() and _developer_sandbox_running()

    def ensure_up(self) -> None:
        if self.running():
            return
        began = time.monotonic()
        res = subprocess.run(["scripts/sandbox.sh", "up"], cwd=str(REPO), env=self.env, capture_output=True,
                             text=True, timeout=180, check=False)
        self.starts.append(time.monotonic() - began)
        assert res.returncode == 0, f"the sandbox did not start:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"

    def clear_faults(self) -> None:
        if self.running():
            subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "trdrhub_harness", "fault", "clear"],
                           cwd=str(REPO), env=self.env, capture_output=True, timeout=120, check=False)

    def down(self) -> None:
        began = time.monotonic()
        subprocess.run(["scripts/sandbox.sh", "down"], cwd=str(REPO), env=self.env, capture_output=True, timeout=120,
                       check=False)
        self.stop_seconds = time.monotonic() - began


@pytest.fixture(scope="module")
def incidents_homes(tmp_path_factory):
    """One incidents home per page: its blocks run in sequence on the same incidents."""
    homes: dict = {}

    def home(path: Path) -> Path:
        if path not in homes:
            homes[path] = tmp_path_factory.mktemp("incidents-" + re.sub(r"\W", "-", str(path)))
        return homes[path]

    return home


@pytest.fixture(scope="module")
def shared_sandbox(request, tmp_path_factory):
    """Started on first use; its start and stop times go to the terminal summary."""
    if _developer_sandbox_running():
        yield None
        return
    began = time.monotonic()
    box = SharedSandbox(_env(tmp_path_factory.mktemp("sandbox-incidents")))
    try:
        yield box
    finally:
        box.down()
        line = (f"doc commands: one sandbox for the module, started {len(box.starts)} time(s) "
                f"({', '.join(f'{s:.1f}s' for s in box.starts) or 'never'}), stopped in {box.stop_seconds:.1f}s; "
                f"{time.monotonic() - began:.0f}s from first use to the end")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)
        print(line)


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.path}:{b.line}" for b in RUNNABLE])
def test_documented_commands_run_verbatim(block, request, incidents_homes):
    ledger_dir = incidents_homes(block.path)
    env = _env(ledger_dir)
    script = "set -euo pipefail\n"
    box = None
    if block.kind == "sandbox":
        box = request.getfixturevalue("shared_sandbox")
        if box is None:
            pytest.skip("a sandbox is running in build/sandbox: the sandbox blocks would change or stop it")
        box.ensure_up()
        # The shell docs/sandbox.md describes: the sandbox's variables, the page's incidents home.
        script += f"source build/sandbox/env\nexport TRDRHUB_LEDGER_DIR='{ledger_dir}'\n"
    script += block.text + "\n"
    began = time.monotonic()
    res = subprocess.run(["bash", "-c", script], cwd=str(REPO), env=env, capture_output=True, text=True,
                         timeout=360, check=False, stdin=subprocess.DEVNULL)
    took = time.monotonic() - began
    if res.returncode != 0 and box is not None:
        box.clear_faults()      # a failed block must not leave its fault to the next one
    assert res.returncode == 0, (f"{block.path}:{block.line} failed ({res.returncode}) after {took:.0f}s:\n"
                                 f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
