"""Hold a database incident open between molecule's prepare, converge and verify steps.

    incident_holder.py start STATE_FILE [--long N] [--idle N]   # returns once sessions are in place
    incident_holder.py stop STATE_FILE                           # ends the holder and its sessions

``start`` creates the trdrhub database (trdrhub_harness.workload), starts a background
holder process that keeps the sessions open (trdrhub_harness.workload.Incident), waits
until they are older than the sandbox threshold, and writes STATE_FILE (JSON: holder pid,
and label/kind/pid of every session). PostgreSQL comes from the TRDRHUB_PG_* variables.
The holder stops by itself after --max-seconds, so nothing outlives a crashed run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[4] / "tests" / "harness"
sys.path.insert(0, str(HARNESS))


def hold(args) -> int:
    from trdrhub_harness.workload import Incident, create_trdrhub_db, postgres_from_env

    pg = postgres_from_env()
    create_trdrhub_db(pg)
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(flag=True))
    with Incident(pg, max_seconds=args.max_seconds) as inc:
        inc.long_running(args.long, seconds=args.max_seconds)
        inc.idle_in_transaction(args.idle)
        inc.short_queries(1)
        inc.maintenance(seconds=args.max_seconds)
        inc.protected(seconds=args.max_seconds)
        inc.wait_ready()
        inc.wait_older_than(args.min_age)
        state = {"holder_pid": os.getpid(),
                 "sessions": [{"label": s.label, "kind": s.kind, "pid": s.pid, "user": s.user,
                               "application_name": s.application_name} for s in inc.sessions]}
        tmp = Path(args.state + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(args.state)
        deadline = time.monotonic() + args.max_seconds
        while not stop["flag"] and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


def start(args) -> int:
    state = Path(args.state)
    state.unlink(missing_ok=True)
    log = open(str(state) + ".log", "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, __file__, "hold", args.state, "--long", str(args.long), "--idle", str(args.idle),
           "--min-age", str(args.min_age), "--max-seconds", str(args.max_seconds)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists():
            print(state.read_text())
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    sys.stderr.write("incident holder did not start:\n" + Path(str(state) + ".log").read_text(errors="replace"))
    return 1


def stop(args) -> int:
    state = Path(args.state)
    if not state.exists():
        print("no incident holder running")
        return 0
    pid = json.loads(state.read_text())["holder_pid"]
    try:
        # Only ever signal our own holder, never a process that reused its pid.
        if b"incident_holder" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            raise ProcessLookupError
    except (OSError, ProcessLookupError):
        state.unlink(missing_ok=True)
        print(f"incident holder {pid} already gone")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
        for _i in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    state.unlink(missing_ok=True)
    print(f"incident holder {pid} stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=("start", "stop", "hold"))
    parser.add_argument("state")
    parser.add_argument("--long", type=int, default=4)
    parser.add_argument("--idle", type=int, default=2)
    parser.add_argument("--min-age", type=float, default=3.5)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    return {"start": start, "stop": stop, "hold": hold}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
