"""Database containment drill (runbook P1 phase 3.2) against a throwaway PostgreSQL.

    make drill            # or: python scripts/drill.py [--long 20] [--idle 10]

1. starts a private PostgreSQL (trdrhub_harness) and creates the trdrhub database;
2. injects the incident: long-running queries and sessions idle in transaction from
   trdrhub_app, beside traffic that must survive (short queries, a superuser's
   maintenance query, a pg_dump backup);
3. runs the real playbook: ansible-playbook playbooks/contain_db.yml -i inventories/sandbox
   -e contain_db_confirm=true;
4. checks who died and who survived, prints it per label, and tears everything down.

Exit status: 0 when every incident session is gone and every must-survive session is
alive, 1 when not (or when the playbook failed), 2 when the drill itself could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from trdrhub_harness import HarnessError, Services
from trdrhub_harness.workload import INCIDENT, MUST_SURVIVE, Incident, create_trdrhub_db

# Must match contain_db_min_duration in inventories/sandbox/group_vars/db_controllers.yml.
SANDBOX_MIN_DURATION = 3.0
PLAYBOOK_TIMEOUT = 120


def say(line: str = "") -> None:
    print(line, flush=True)


def rule(title: str) -> None:
    say()
    say(f"== {title} " + "=" * max(0, 76 - len(title)))


def ansible_playbook() -> str:
    candidate = Path(sys.executable).parent / "ansible-playbook"
    if candidate.exists():
        return str(candidate)
    return "ansible-playbook"


def print_sessions(rows: list) -> None:
    fmt = "  {:<22} {:<13} {:>7}  {:<14} {:<15} {}"
    say(fmt.format("LABEL", "EXPECTED", "PID", "USER", "APPLICATION", "STATE"))
    for row in rows:
        say(fmt.format(row["label"], "dies" if row["kind"] == INCIDENT else "survives", row["pid"],
                       row["usename"] or "", row["application_name"] or "", row["state"] or ""))


def run_playbook(env: dict, extra_args: list) -> int:
    cmd = [ansible_playbook(), "playbooks/contain_db.yml", "-i", "inventories/sandbox",
           "-e", "contain_db_confirm=true", *extra_args]
    say("  $ ansible-playbook " + " ".join(cmd[1:]))
    say()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    deadline = time.monotonic() + PLAYBOOK_TIMEOUT
    assert proc.stdout is not None
    for line in proc.stdout:
        say("  | " + line.rstrip("\n"))
        if time.monotonic() > deadline:
            proc.kill()
            say(f"  ! playbook still running after {PLAYBOOK_TIMEOUT}s: stopped it")
            break
    return proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--long", type=int, default=20, help="long-running queries to inject (20)")
    parser.add_argument("--idle", type=int, default=10, help="sessions idle in transaction to inject (10)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                        help="extra variables for the playbook (practise variants; the verdict still expects "
                             "every incident session to die)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="pass -v.. to ansible-playbook")
    args = parser.parse_args(argv)

    t_start = time.monotonic()
    timings = OrderedDict()
    say("TRDR Hub database containment drill (runbook P1 phase 3.2)")
    say("Everything below runs against a private, throwaway PostgreSQL on 127.0.0.1.")

    try:
        with Services(("postgres",)) as svc:
            pg = svc.postgres
            creds = create_trdrhub_db(pg)
            with Incident(pg, max_seconds=120) as inc:
                rule("1. Injecting the incident")
                inc.long_running(args.long, seconds=120)
                inc.idle_in_transaction(args.idle)
                inc.short_queries(2)
                inc.maintenance(seconds=120)
                inc.protected(seconds=120)
                inc.wait_ready()
                say(f"  {args.long} long-running queries and {args.idle} sessions idle in transaction "
                    f"(trdrhub_app), plus must-survive traffic.")
                say(f"  Waiting until they are older than the sandbox threshold ({SANDBOX_MIN_DURATION:.0f}s)...")
                inc.wait_older_than(SANDBOX_MIN_DURATION + 0.5, timeout=30)
                timings["setup"] = time.monotonic() - t_start

                by_pid = {s.pid: s for s in inc.sessions}
                before = inc.activity()
                rule("2. BEFORE containment")
                print_sessions([dict(row, label=by_pid[row["pid"]].label, kind=by_pid[row["pid"]].kind)
                                for row in sorted(before, key=lambda r: (by_pid[r["pid"]].kind != INCIDENT,
                                                                         by_pid[r["pid"]].label, r["pid"]))])

                rule("3. Running the containment playbook")
                # The incident ledger of the run goes to a throwaway directory, not into the checkout.
                ledger_dir = tempfile.mkdtemp(prefix="trdrhub-drill-ledger-")
                env = {**os.environ, **svc.env(), "TRDRHUB_PG_OPS_PASSWORD": creds["ops"]["password"],
                       "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1", "TRDRHUB_LEDGER_DIR": ledger_dir}
                extra = ["-" + "v" * args.verbose] if args.verbose else []
                for value in args.extra_vars:
                    extra += ["-e", value]
                t_play = time.monotonic()
                rc = run_playbook(env, extra)
                timings["playbook"] = time.monotonic() - t_play

                alive = inc.alive()
                rule("4. AFTER containment")
                fmt = "  {:<22} {:<9} {:>5} {:>7} {:>6}  {}"
                say(fmt.format("LABEL", "EXPECTED", "TOTAL", "KILLED", "ALIVE", "VERDICT"))
                problems = []
                for label in OrderedDict.fromkeys(s.label for s in inc.sessions):
                    group = [s for s in inc.sessions if s.label == label]
                    kind = group[0].kind
                    up = [s for s in group if s.pid in alive]
                    down = [s for s in group if s.pid not in alive]
                    if kind == INCIDENT:
                        ok = not up
                        if up:
                            problems.append(f"{label}: {len(up)} still alive (pids {', '.join(str(s.pid) for s in up)})")
                    else:
                        ok = not down
                        if down:
                            problems.append(f"{label}: {len(down)} killed (pids {', '.join(str(s.pid) for s in down)})")
                    say(fmt.format(label, "dies" if kind == INCIDENT else "survives", len(group), len(down),
                                   len(up), "ok" if ok else "WRONG"))
                if rc != 0:
                    problems.append(f"ansible-playbook exited with {rc}")
                incident_killed = sum(1 for s in inc.sessions if s.kind == INCIDENT and s.pid not in alive)
                survivors_ok = sum(1 for s in inc.sessions if s.kind == MUST_SURVIVE and s.pid in alive)
                t_down = time.monotonic()
        timings["teardown"] = time.monotonic() - t_down
    except (HarnessError, TimeoutError, RuntimeError) as exc:
        say()
        say(f"DRILL COULD NOT RUN: {exc}")
        say("Nothing outside the throwaway server was touched.")
        return 2

    total = time.monotonic() - t_start
    rule("5. Result")
    say(f"  incident sessions terminated: {incident_killed} of {args.long + args.idle}")
    say(f"  must-survive sessions alive:  {survivors_ok} of "
        f"{sum(1 for s in inc.sessions if s.kind == MUST_SURVIVE)}")
    ledgers = sorted(Path(ledger_dir).glob("*/ledger.jsonl"))
    for ledger in ledgers:
        lines = ledger.read_bytes().splitlines()
        head = json.loads(lines[-1]) if lines else {}
        say(f"  incident ledger: {ledger} ({len(lines)} entries, head seq {head.get('seq', '-')})")
    if not ledgers:
        problems.append(f"no incident ledger was written under {ledger_dir}")
    say("  timings: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in timings.items())
        + f", total {total:.1f}s")
    if problems:
        say("  DRILL FAILED:")
        for problem in problems:
            say(f"    - {problem}")
        return 1
    say("  DRILL PASSED: every incident session is gone, everything that had to survive is alive.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
