"""How fast is containment? pg_terminate_sessions against the runbook's raw statement.

    PYTHONPATH=tests/harness python bench/terminate_bench.py [--sessions 200] [--repeat 3]

Starts the harness PostgreSQL (max_connections 400) and the trdrhub database, then:

  (a) raw      the runbook's pg_terminate_backend() statement, plus polling
               pg_stat_activity until every terminated backend is gone ("contained");
  (b) module   pg_terminate_sessions' worker class in-process with the same filters
               (it waits for the backends itself);
  (c) playbook the same module as a one-task ansible-playbook run (ansible start-up included);
  (d) contain  playbooks/contain_db.yml -i inventories/sandbox -e contain_db_confirm=true against
               the harness workload's incident (inspect, evidence, terminate, verify, summary).

(a) and (b) run --repeat times on --sessions fresh sessions each and report medians;
(c) and (d) run once. Both (a) and (b) log in as trdrhub_ops over TCP and include connecting.
This prints figures only; nothing here asserts on timing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests" / "harness", REPO / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import psycopg2  # pylint: disable=wrong-import-position
from _itest_ansible import collections_root  # pylint: disable=wrong-import-position
from trdrhub_harness import Services, workload  # pylint: disable=wrong-import-position

COLLECTIONS = collections_root()
sys.path.insert(0, str(COLLECTIONS))
# pylint: disable=wrong-import-position
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import PgClient
from ansible_collections.trdrhub.incident.plugins.modules import (
    pg_terminate_sessions as pts,
)

APPLICATION = "trdrhub-api"
RAW_SQL = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename='trdrhub_app' "
           "AND state='active' AND now()-query_start > interval '1 second'")
TARGET_RATIO = 1.5
TARGET_PLAYBOOK_S = 5.0


def ops_login(pg, creds) -> dict:
    return {"host": pg.host, "port": pg.port, "user": creds["ops"]["user"],
            "password": creds["ops"]["password"], "dbname": creds["dbname"]}


def module_args(pg, creds, max_sessions: int) -> dict:
    """The raw statement's selection, in the module's options."""
    login = ops_login(pg, creds)
    return {"login_host": login["host"], "login_port": login["port"], "login_user": login["user"],
            "login_password": login["password"], "login_db": login["dbname"],
            "users": ["trdrhub_app"], "states": ["active"], "min_duration": 1, "max_sessions": max_sessions}


def spawn(pg, creds, count: int):
    """``count`` trdrhub_app sessions running pg_sleep, all active and older than the 1 s threshold."""
    started = time.perf_counter()
    inc = workload.Incident(pg, dbname=creds["dbname"], app_password=creds["app"]["password"])
    try:
        inc.long_running(count, seconds=600, application_name=APPLICATION)
        inc.wait_ready(timeout=120)
        inc.wait_older_than(1.2)
        alive = inc.alive()
        if len(alive) != count:
            raise RuntimeError(f"only {len(alive)} of {count} sessions are running")
    except BaseException:
        inc.close()
        raise
    return inc, time.perf_counter() - started


def wait_gone(cur, pids: list, timeout: float = 30.0) -> int:
    """Poll pg_stat_activity every 5 ms until none of ``pids`` is left; return how many are left."""
    deadline = time.monotonic() + timeout
    while True:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
        left = cur.fetchone()[0]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.005)


def contain_raw(pg, creds, pids: list) -> tuple:
    started = time.perf_counter()
    conn = psycopg2.connect(application_name="bench-raw", **ops_login(pg, creds))
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(RAW_SQL)
        signalled = sum(1 for (ok,) in cur.fetchall() if ok)
        left = wait_gone(cur, pids)
    finally:
        conn.close()
    return time.perf_counter() - started, signalled, left


def contain_module(pg, creds, max_sessions: int) -> tuple:
    params = {name: spec.get("default") for name, spec in pts.argument_spec().items()}
    params.update(module_args(pg, creds, max_sessions))
    started = time.perf_counter()
    terminator = pts.SessionTerminator(params)
    client = PgClient(params)
    try:
        result = terminator.run(client)
    finally:
        client.close()
    elapsed = time.perf_counter() - started
    outcomes = [s["outcome"] for s in result["sessions"]]
    return elapsed, outcomes.count("terminated"), len(result["survivors"])


def ansible_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0"})
    env.update(extra or {})
    return env


def contain_playbook(pg, creds, max_sessions: int, workdir: Path) -> tuple:
    """One task, the module's default output; ansible-playbook's whole wall time."""
    import json

    args = module_args(pg, creds, max_sessions)
    playbook = [{"name": "bench", "hosts": "localhost", "gather_facts": False,
                 "tasks": [{"name": "terminate", "trdrhub.incident.pg_terminate_sessions": args}]}]
    (workdir / "bench.yml").write_text(json.dumps(playbook))
    (workdir / "hosts.ini").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(workdir / "hosts.ini"),
            str(workdir / "bench.yml")]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=str(REPO), env=ansible_env(), capture_output=True, text=True, check=False)
    return time.perf_counter() - started, proc


def contain_db_playbook(pg, creds) -> tuple:
    """The contain_db playbook on the sandbox inventory against a realistic incident."""
    inc = workload.Incident(pg, dbname=creds["dbname"], app_password=creds["app"]["password"])
    try:
        inc.long_running(20, seconds=600)
        inc.idle_in_transaction(10)
        inc.short_queries(2)
        inc.maintenance(seconds=600)
        inc.protected(seconds=600)
        inc.wait_ready(timeout=60)
        inc.wait_older_than(3.3)       # inventories/sandbox: contain_db_min_duration 3
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/contain_db.yml",
                "-i", "inventories/sandbox", "-e", "contain_db_confirm=true"]
        env = ansible_env({**pg.env(), "TRDRHUB_PG_OPS_PASSWORD": creds["ops"]["password"]})
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=str(REPO), env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        alive = inc.alive()
        killed = sum(1 for p in inc.pids(kind=workload.INCIDENT) if p not in alive)
        spared = sum(1 for p in inc.pids(kind=workload.MUST_SURVIVE) if p in alive)
        counts = (killed, len(inc.pids(kind=workload.INCIDENT)), spared, len(inc.pids(kind=workload.MUST_SURVIVE)))
        return elapsed, proc, counts
    finally:
        inc.close()


def fmt(values: list) -> str:
    return "  ".join(f"{v:7.3f}" for v in values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-playbooks", action="store_true", help="only (a) and (b)")
    parser.add_argument("--quick", action="store_true", help="50 sessions, 3 rounds, no playbooks (make bench)")
    parser.add_argument("--table-json", action="store_true",
                        help="end with one JSON line of rows for bench/run_all.py (bench/README.md)")
    opts = parser.parse_args(argv)
    if opts.quick:
        opts.sessions, opts.repeat, opts.skip_playbooks = 50, 3, True
    load = os.getloadavg()[0]
    max_sessions = opts.sessions + 50
    raw, mod, notes = [], [], []

    with Services(("postgres",)) as svc, tempfile.TemporaryDirectory(prefix="trdrhub-bench-") as tmp:
        pg = svc.postgres
        creds = workload.create_trdrhub_db(pg)
        print(f"PostgreSQL {pg.port} max_connections={pg.max_connections}; {opts.sessions} sessions per round",
              flush=True)
        for rnd in range(1, opts.repeat + 1):
            for label, runner in (("raw", lambda inc: contain_raw(pg, creds, inc.pids())),
                                  ("module", lambda inc: contain_module(pg, creds, max_sessions))):
                inc, spawn_s = spawn(pg, creds, opts.sessions)
                try:
                    elapsed, signalled, left = runner(inc)
                    gone = opts.sessions - len(inc.alive())
                finally:
                    inc.close()
                (raw if label == "raw" else mod).append(elapsed)
                print(f"  round {rnd} {label:6s}: {elapsed:.3f}s  signalled={signalled} left={left} "
                      f"gone={gone}/{opts.sessions}  (spawn {spawn_s:.1f}s)", flush=True)
                if gone != opts.sessions:
                    notes.append(f"round {rnd} {label}: only {gone} of {opts.sessions} backends gone")

        playbook = contain = None
        if not opts.skip_playbooks:
            inc = spawn(pg, creds, opts.sessions)[0]
            try:
                elapsed, proc = contain_playbook(pg, creds, max_sessions, Path(tmp))
                gone = opts.sessions - len(inc.alive())
            finally:
                inc.close()
            playbook = elapsed
            print(f"  playbook (one task): {elapsed:.3f}s rc={proc.returncode} gone={gone}/{opts.sessions}", flush=True)
            if proc.returncode != 0:
                notes.append("one-task playbook failed:\n" + (proc.stdout + proc.stderr)[-2000:])
            if (REPO / "playbooks" / "contain_db.yml").exists():
                elapsed, proc, (killed, incident, spared, survive) = contain_db_playbook(pg, creds)
                contain = elapsed
                print(f"  contain_db.yml: {elapsed:.3f}s rc={proc.returncode} incident killed {killed}/{incident}, "
                      f"must-survive alive {spared}/{survive}", flush=True)
                if proc.returncode != 0:
                    notes.append("contain_db.yml failed:\n" + (proc.stdout + proc.stderr)[-3000:])
            else:
                notes.append("playbooks/contain_db.yml does not exist yet: (d) skipped")

    raw_med, mod_med = statistics.median(raw), statistics.median(mod)
    ratio = mod_med / raw_med
    runs = "  ".join(f"{'run' + str(i + 1):>7s}" for i in range(opts.repeat))
    print()
    print(f"Time to contained, {opts.sessions} sessions (seconds)")
    print(f"{'':34s}{runs}   median")
    print(f"{'(a) raw statement + wait':34s}{fmt(raw)}  {raw_med:7.3f}")
    print(f"{'(b) pg_terminate_sessions in-proc':34s}{fmt(mod)}  {mod_med:7.3f}")
    print(f"module / raw (median):            {ratio:.2f}   target <= {TARGET_RATIO}  "
          f"{'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}")
    if playbook is not None:
        print(f"(c) ansible-playbook, one task:   {playbook:.3f}s (includes ansible start-up; information only)")
    if contain is not None:
        print(f"(d) contain_db.yml wall time:     {contain:.3f}s   target <= {TARGET_PLAYBOOK_S:.0f}s  "
              f"{'OK' if contain <= TARGET_PLAYBOOK_S else 'OVER TARGET'}")
    for note in notes:
        print("note:", note)
    if opts.table_json:
        rows = [{"workload": f"pg_terminate_sessions, {opts.sessions} sessions, vs the bare statement",
                 "project": round(mod_med, 3), "reference": round(raw_med, 3), "unit": "s", "ratio": round(ratio, 3),
                 "goal": f"<= {TARGET_RATIO}", "note": f"median of {opts.repeat} rounds; load {load:.1f}"}]
        if contain is not None and playbook is not None:
            rows.append({"workload": "contain_db.yml wall time vs a one-task playbook", "project": round(contain, 2),
                         "reference": round(playbook, 2), "unit": "s", "ratio": round(contain / playbook, 2), "goal": None,
                         "note": f"target contain_db.yml <= {TARGET_PLAYBOOK_S:.0f} s: "
                                 f"{'OK' if contain <= TARGET_PLAYBOOK_S else 'over'}"})
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
