"""Process plumbing shared by the throwaway service instances of the test harness.

Every instance runs on a free loopback port in its own temporary directory and is
stopped (and its directory removed) by ``stop()``, by the context manager, at
interpreter exit, or by the kernel when the harness process dies (PDEATHSIG).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

_PR_SET_PDEATHSIG = 1
_LIVE: "list[ServiceProcess]" = []


class HarnessError(RuntimeError):
    """A service could not be started; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent(signum: int) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child after any uid switch: the service must not outlive a
        # harness that was SIGKILLed (a crashed pytest must not leak servers).
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signum)
        except OSError:
            pass
        os.setpgrp()
    return preexec


class ServiceProcess:
    """A child service process with a private work directory."""

    name = "service"

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"trdrhub-{self.name}-"))
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / f"{self.name}.log"

    # -- lifecycle -----------------------------------------------------------
    def _spawn(self, argv: Sequence[str], user: Optional[str] = None, env: Optional[dict] = None) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        kwargs = {}
        if user is not None:
            kwargs["user"] = user
            kwargs["group"] = user
            kwargs["extra_groups"] = []
        self.proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.workdir), env=env, preexec_fn=_die_with_parent(self.stop_signal), **kwargs,
        )
        log.close()
        _LIVE.append(self)

    def _wait_ready(self, probe: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            try:
                if probe():
                    return
            except Exception:  # noqa: BLE001 - any failure means "not ready yet"
                pass
            time.sleep(0.1)
        raise HarnessError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self in _LIVE:
            _LIVE.remove(self)
        if self.workdir is not None:  # None: attached to a server this process does not own
            shutil.rmtree(self.workdir, ignore_errors=True)

    stop_signal = signal.SIGTERM

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _stop_everything() -> None:
    for svc in list(_LIVE):
        svc.stop()


def find_binary(candidates: Sequence[str], env_var: str) -> str:
    """First existing executable among an env override, PATH names and absolute globs."""
    override = os.environ.get(env_var)
    if override:
        return override
    for cand in candidates:
        if "*" in cand:
            matches = sorted(Path("/").glob(cand.lstrip("/")), key=lambda p: [int(x) if x.isdigit() else x for x in p.parts])
            if matches:
                return str(matches[-1])
            continue
        found = shutil.which(cand) or (cand if os.path.isabs(cand) and os.access(cand, os.X_OK) else None)
        if found:
            return found
    raise HarnessError(f"none of {', '.join(candidates)} found (set {env_var}); run `make bootstrap` to install it")
