"""What do the procedures cost beyond Ansible itself? contain_db.yml and respond_p1.yml against an empty playbook.

    PYTHONPATH=tests/harness .venv/bin/python bench/procedures_bench.py [--quick] [--repeat 5] [--table-json]

Starts the sandbox's services (``trdrhub_harness.sandbox.Sandbox``, without the Kubernetes API double and
the page) in a temporary directory and times, round by round so that a change of load hits them alike:

  empty       a one-task playbook (``ansible.builtin.debug``, gather_facts off) on localhost: the
              start-up and per-play cost of ansible-playbook itself, the reference;
  contain_db  ``playbooks/contain_db.yml -i inventories/sandbox -e contain_db_confirm=true`` against a
              fresh incident of the harness workload each round (long-running statements and sessions
              idle in transaction of trdrhub_app to kill; a superuser query and pg_dump that must survive);
  respond_p1  ``playbooks/respond_p1.yml -i inventories/sandbox`` from a firing P1 alert to the
              post-incident review, with the database containment (``respond_contain: [db]``, approval
              gate in confirm mode pre-approved by ``contain_db_confirm=true``, so no one is waited for)
              against a fresh incident, every channel of the sandbox (Slack, PagerDuty, Statuspage, email).

Each round uses a new incident id. Wall time of the whole ansible-playbook process; the median of
--repeat rounds (default 5, 3 with --quick) is reported, and the ratio median / median(empty).
After the rounds, one more run of each procedure with the ``bench/profile_tasks`` callback counts
its tasks, and two more playbooks measure what Ansible itself charges per task on this machine:
``floor-module`` (``ansible.builtin.ping`` repeated: the cheapest task that starts a module process)
and ``floor-controller`` (``ansible.builtin.set_fact`` repeated: the cheapest controller-only task).
The ``floor`` rows price the procedure's own task mix at those costs: what the procedure would take
if each of its tasks cost no more than Ansible's cheapest of its kind, and what it would take with
every controller-only task folded away (its module processes alone). A floor above the goal means
the goal needs fewer module processes, not faster code. With --profile, the slowest tasks and the
time per task kind are printed too. Prints figures only; nothing here asserts on timing.
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
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests" / "harness", REPO / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _itest_ansible import collections_root  # pylint: disable=wrong-import-position
from trdrhub_harness import workload  # pylint: disable=wrong-import-position
from trdrhub_harness.sandbox import Sandbox  # pylint: disable=wrong-import-position

GOALS = {"contain_db": 3.0, "respond_p1": 10.0}
EMPTY_PLAYBOOK = [{"name": "empty", "hosts": "localhost", "gather_facts": False,
                   "tasks": [{"name": "nothing", "ansible.builtin.debug": {"msg": "nothing"}}]}]
# The tasks the floor playbooks add to the empty playbook's one.
FLOOR_TASKS = {
    "module": [{"name": f"ping {n}", "ansible.builtin.ping": {}} for n in range(10)],
    "controller": [{"name": f"fact {n}", "ansible.builtin.set_fact": {f"fact_{n}": n}} for n in range(40)],
}
FLOOR_PLAYBOOKS = {kind: [{"name": f"floor-{kind}", "hosts": "localhost", "gather_facts": False,
                           "tasks": EMPTY_PLAYBOOK[0]["tasks"] + tasks}] for kind, tasks in FLOOR_TASKS.items()}
# Tasks that never start a module process: Ansible's controller-side actions, and this collection's
# action plugins that do their work on the controller (those that call a module are left out below).
CONTROLLER_ACTIONS = {f"{prefix}{name}" for prefix in ("", "ansible.builtin.", "ansible.legacy.") for name in (
    "set_fact", "debug", "assert", "fail", "include_role", "import_role", "include_tasks", "import_tasks",
    "validate_argument_spec", "pause", "meta", "include_vars", "set_stats", "add_host", "group_by")}
CONTROLLER_ACTIONS.update(f"trdrhub.incident.{path.stem}" for path in (REPO / "plugins" / "action").glob("*.py")
                          if "_execute_module" not in path.read_text(encoding="utf-8"))


def ansible_playbook() -> str:
    return str(Path(sys.executable).parent / "ansible-playbook")


class Bench:
    def __init__(self, box: Sandbox, workdir: Path, profile_dir: Path | None = None) -> None:
        self.box = box
        self.workdir = workdir
        self.collections = collections_root()
        self.env = dict(os.environ)
        self.env.update(box.env())
        self.env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
                         "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0", "AWX_USER_NAME": "bench"})
        (workdir / "empty.yml").write_text(json.dumps(EMPTY_PLAYBOOK))
        for kind, playbook in FLOOR_PLAYBOOKS.items():
            (workdir / f"floor-{kind}.yml").write_text(json.dumps(playbook))
        (workdir / "hosts.ini").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        self.failures: list = []

    def run(self, name: str, argv: list, env: dict | None = None) -> float:
        started = time.perf_counter()
        proc = subprocess.run([ansible_playbook(), *argv], cwd=str(REPO), env=env or self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            self.failures.append(f"{name} rc={proc.returncode}:\n" + (proc.stdout + proc.stderr)[-3000:])
        return elapsed

    def incident(self):
        inc = workload.Incident(self.box.pg, dbname=self.box.creds["dbname"],
                                app_password=self.box.creds["app"]["password"], max_seconds=300)
        inc.long_running(5, seconds=300, application_name="trdrhub-api")
        inc.idle_in_transaction(3, application_name="trdrhub-worker")
        inc.short_queries(1)
        inc.maintenance(seconds=300)
        inc.protected(seconds=300)
        inc.wait_ready(timeout=60)
        inc.wait_older_than(3.3, timeout=30)     # inventories/sandbox: contain_db_min_duration 3
        return inc

    def empty(self, env=None) -> float:
        return self.run("empty playbook", ["-i", str(self.workdir / "hosts.ini"), str(self.workdir / "empty.yml")], env)

    def floor(self, kind: str) -> float:
        return self.run(f"floor-{kind} playbook", ["-i", str(self.workdir / "hosts.ini"),
                                                   str(self.workdir / f"floor-{kind}.yml")])

    def contain_db(self, env=None) -> float:
        inc = self.incident()
        try:
            incident_id = "INC-BENCH-" + uuid.uuid4().hex[:8]
            return self.run("contain_db.yml", ["playbooks/contain_db.yml", "-i", "inventories/sandbox",
                                               "-e", "contain_db_confirm=true", "-e", f"trdrhub_incident_id={incident_id}"],
                            env)
        finally:
            inc.close()

    def respond_p1(self, env=None) -> float:
        inc = self.incident()
        self.box.fire_alert("AllWorkersDown", "P1")
        try:
            variables = {"trdrhub_incident_id": "INC-BENCH-" + uuid.uuid4().hex[:8], "respond_contain": ["db"],
                         "contain_db_approval_mode": "confirm", "contain_db_confirm": True,
                         "verify_queue_timeout": 20, "communicate_email_to": ["ops@customer.example"]}
            return self.run("respond_p1.yml", ["playbooks/respond_p1.yml", "-i", "inventories/sandbox",
                                               "-e", json.dumps(variables)], env)
        finally:
            inc.close()
            self.expire_silences()

    def expire_silences(self) -> None:
        """The next round's alert fires anew: triage silenced this one (its acknowledgement)."""
        import requests

        url = self.box.alertmanager.url
        for silence in requests.get(url + "/api/v2/silences", timeout=10).json():
            if silence["status"]["state"] == "active":
                requests.delete(f"{url}/api/v2/silence/{silence['id']}", timeout=10)

    def profile(self, name: str, runner) -> list:
        """The procedure's tasks (``bench/callback_plugins/profile_tasks``) from one more run."""
        out = self.workdir / f"profile-{name}.json"
        env = dict(self.env)
        env.update({"ANSIBLE_CALLBACK_PLUGINS": str(REPO / "bench" / "callback_plugins"),
                    "ANSIBLE_CALLBACKS_ENABLED": "trdrhub.incident.ledger,profile_tasks",
                    "TRDRHUB_BENCH_PROFILE": str(out)})
        runner(env)
        return json.loads(out.read_text()) if out.exists() else []


def task_mix(rows: list, module_cost: float) -> tuple[int, int]:
    """(tasks that started a module process, controller-only tasks) of a profile.

    A skipped task runs no module, and neither does a task that took less than half of Ansible's cheapest
    module process (``module_cost``): an action plugin that runs its module in the controller's process
    when it can (``audit_chain_verify`` on a file ledger).
    """
    modules = sum(1 for row in rows if not row.get("skipped") and row["action"] not in CONTROLLER_ACTIONS
                  and row["seconds"] >= module_cost / 2)
    return modules, len(rows) - modules


def floor_rows(name: str, rows: list, empty: float, per_task: dict, goal: float) -> list:
    """The procedure's task mix priced at Ansible's cheapest task of each kind (see the module docstring)."""
    modules, controller = task_mix(rows, per_task["module"])
    everything = empty + modules * per_task["module"] + controller * per_task["controller"]
    modules_only = empty + modules * per_task["module"]
    print(f"floor of {name}.yml: {modules} module processes x {per_task['module']:.3f} s + {controller} controller-only "
          f"tasks x {per_task['controller']:.3f} s + empty {empty:.2f} s = {everything:.2f} s = {everything / empty:.1f}x; "
          f"module processes alone {modules_only:.2f} s = {modules_only / empty:.1f}x (goal {goal:g}x)")
    note = f"{modules} module processes, {controller} controller-only tasks, at ping / set_fact cost"
    return [{"workload": f"{name}.yml floor: its tasks at Ansible's cheapest", "project": round(everything, 3),
             "reference": round(empty, 3), "unit": "s", "ratio": round(everything / empty, 2), "goal": None, "note": note},
            {"workload": f"{name}.yml floor: its module processes alone", "project": round(modules_only, 3),
             "reference": round(empty, 3), "unit": "s", "ratio": round(modules_only / empty, 2), "goal": None,
             "note": f"{modules} module processes at ping cost, no controller-only task"}]


def print_profile(name: str, rows: list) -> None:
    total = sum(r["seconds"] for r in rows)
    by_action: dict = {}
    for row in rows:
        agg = by_action.setdefault(row["action"], [0, 0.0])
        agg[0] += 1
        agg[1] += row["seconds"]
    print(f"\nprofile of {name}: {len(rows)} task results, {total:.2f}s inside tasks")
    print(f"  {'action':44s} {'count':>5s} {'seconds':>8s}")
    for action, (count, seconds) in sorted(by_action.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"  {action:44s} {count:5d} {seconds:8.2f}")
    print("  slowest tasks:")
    for row in sorted(rows, key=lambda r: -r["seconds"])[:12]:
        print(f"  {row['seconds']:6.2f}s  {row['action']:32s} {row['task'][:80]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 5")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="one more profiled run of each procedure")
    parser.add_argument("--only", default="contain_db,respond_p1", help="comma-separated: contain_db,respond_p1")
    parser.add_argument("--table-json", action="store_true", help="print the table as JSON on the last line")
    opts = parser.parse_args(argv)
    repeat = opts.repeat or (3 if opts.quick else 5)
    only = [name for name in opts.only.split(",") if name in GOALS]
    times: dict = {"empty": [], **{name: [] for name in only}}

    with tempfile.TemporaryDirectory(prefix="trdrhub-bench-proc-") as tmp:
        with Sandbox(Path(tmp) / "sandbox", kubernetes=False, dashboard=False, access_log_rate=2.0) as box:
            bench = Bench(box, Path(tmp))
            try:
                load = os.getloadavg()[0]
            except OSError:
                load = float("nan")
            print(f"sandbox up; {repeat} rounds; load average {load:.1f}", flush=True)
            bench.empty()      # warm the caches (collection loader, bytecode) before timing anything
            for rnd in range(1, repeat + 1):
                line = [f"round {rnd}:"]
                times["empty"].append(bench.empty())
                line.append(f"empty {times['empty'][-1]:.2f}s")
                for name in only:
                    times[name].append(getattr(bench, name)())
                    line.append(f"{name} {times[name][-1]:.2f}s")
                print("  " + "  ".join(line), flush=True)
            floors: dict = {kind: [] for kind in FLOOR_PLAYBOOKS}
            for _round in range(repeat):
                empty = bench.empty()
                for kind in FLOOR_PLAYBOOKS:
                    floors[kind].append((bench.floor(kind) - empty) / len(FLOOR_TASKS[kind]))
            per_task = {kind: statistics.median(values) for kind, values in floors.items()}
            print(f"  Ansible's own cost per task here: {per_task['module']:.3f} s a module process (ping), "
                  f"{per_task['controller']:.3f} s a controller-only task (set_fact)", flush=True)
            profiles = {name: bench.profile(name, getattr(bench, name)) for name in only}
            if opts.profile:
                for name in only:
                    print_profile(name, profiles[name])
            failures = bench.failures

    ref = statistics.median(times["empty"])
    rows = []
    print(f"\n{'workload':28s} {'median s':>9s} {'empty s':>8s} {'ratio':>6s}  goal")
    for name in only:
        med = statistics.median(times[name])
        ratio = med / ref
        print(f"{name + '.yml':28s} {med:9.2f} {ref:8.2f} {ratio:6.1f}  <= {GOALS[name]:g}"
              f"  {'OK' if ratio <= GOALS[name] else 'not reached'}")
        rows.append({"workload": f"{name}.yml vs empty playbook", "project": round(med, 3), "reference": round(ref, 3),
                     "unit": "s", "ratio": round(ratio, 2), "goal": f"<= {GOALS[name]:g}",
                     "note": f"median of {repeat}, load {load:.1f}" + (f", {len(failures)} failed run(s)" if failures else "")})
    for name in only:
        if profiles[name]:
            rows.extend(floor_rows(name, profiles[name], ref, per_task, GOALS[name]))
    for failure in failures:
        print("note: a run failed:", failure)
    if opts.table_json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
