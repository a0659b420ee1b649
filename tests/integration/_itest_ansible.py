"""Run one module and hand back its result, as a playbook would register it.

Two paths:

* **direct** (the default for modules without an action plugin): the module's own Python
  entry point runs in a fresh interpreter with ``ANSIBLE_MODULE_ARGS`` exactly as
  AnsiballZ would hand them over (check mode, diff, verbosity included). This tests the
  module, its argument spec, ``no_log`` masking and its JSON result at a quarter of the
  cost of an ``ansible-playbook`` start. The "terminal output" of such a run is the
  module's warnings, deprecations and its whole JSON result, so a secret that reaches any
  part of the result still fails the leak checks.
* **playbook**: a real ``ansible-playbook`` run with a second task (forced out of check
  mode) that saves the registered result. Used for modules with an action plugin (they
  run on the controller), for runs with ``verbosity`` (the display layer is what is
  tested), when ``via_playbook=True`` is passed, and for every call when
  ``TRDRHUB_ITEST_VIA_PLAYBOOK=1`` is set in the environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE, NAME = "trdrhub", "incident"
# Modules whose work happens in an action plugin on the controller: only a playbook runs them.
ACTION_PLUGINS = frozenset(p.stem for p in (REPO_ROOT / "plugins" / "action").glob("*.py") if p.stem != "__init__")
# Compiled bytecode of the collection's plugins, shared by every run of one test session and
# kept out of the checkout (the interpreter would otherwise recompile them in every process).
PYCACHE = Path(tempfile.gettempdir()) / f"trdrhub-itest-pycache-{os.getuid()}"


def collections_root() -> Path:
    """TRDRHUB_COLLECTIONS_ROOT (holds ansible_collections/), else <repo>/.collections, linked on demand.

    A checkout that already sits at .../ansible_collections/trdrhub/incident is used where it is.
    """
    override = os.environ.get("TRDRHUB_COLLECTIONS_ROOT")
    if override:
        root = Path(override).resolve()
        if not (root / "ansible_collections" / NAMESPACE / NAME).exists():
            raise RuntimeError(f"TRDRHUB_COLLECTIONS_ROOT={override} has no ansible_collections/{NAMESPACE}/{NAME}")
        return root
    if REPO_ROOT.parent.name == NAMESPACE and REPO_ROOT.parent.parent.name == "ansible_collections":
        return REPO_ROOT.parent.parent.parent   # already installed in place (ansible-test layout)
    root = REPO_ROOT / ".collections"
    link = root / "ansible_collections" / NAMESPACE / NAME
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():  # dangling
            link.unlink()
        try:
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        except FileExistsError:  # another process linked it first
            pass
    return root


@dataclass
class AnsibleRun:
    result: dict
    output: str
    rc: int
    argv: list = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    def by_pid(self) -> dict:
        """{pid: session entry} of the result's ``sessions``."""
        return {s["pid"]: s for s in self.result.get("sessions", [])}

    def outcomes(self) -> dict:
        """{pid: outcome} of the result's ``sessions``."""
        return {s["pid"]: s.get("outcome") for s in self.result.get("sessions", [])}

    def excluded(self) -> dict:
        """{pid: reason} of the result's ``excluded``."""
        return {s["pid"]: s.get("reason") for s in self.result.get("excluded", [])}


class AnsibleRunner:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bindir = Path(sys.executable).parent
        self.root = collections_root()
        self.count = 0

    def env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(self.root),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "PYTHONPYCACHEPREFIX": str(PYCACHE),
            # The incident ledger callback (enabled in ansible.cfg) never writes into the checkout.
            "TRDRHUB_LEDGER_DIR": str(self.workdir / "incidents"),
        })
        # The cache is written only where PYTHONPYCACHEPREFIX points (outside the checkout). An inherited
        # PYTHONDONTWRITEBYTECODE would leave it empty, and with the prefix set Python no longer reads the
        # virtualenv's own __pycache__ either: every process would compile ansible-core, the kubernetes
        # client and the collection from source again (seconds of CPU per run).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for key, value in (extra or {}).items():   # None removes a variable
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(self, module: str, args: dict, *, check: bool = False, diff: bool = False, verbosity: int = 0,
            timeout: float = 90, extra_env: dict | None = None, via_playbook: bool | None = None) -> AnsibleRun:
        """Run ``trdrhub.incident.<module>`` once with ``args``; a failed task is returned, not raised."""
        self.count += 1
        run_dir = Path(tempfile.mkdtemp(prefix=f"run{self.count}-", dir=self.workdir))
        fqcn = module if "." in module else f"{NAMESPACE}.{NAME}.{module}"
        short = fqcn.rsplit(".", 1)[-1]
        if via_playbook is None:
            via_playbook = (os.environ.get("TRDRHUB_ITEST_VIA_PLAYBOOK") == "1" or verbosity > 0
                            or not fqcn.startswith(f"{NAMESPACE}.{NAME}.") or short in ACTION_PLUGINS)
        if not via_playbook:
            return self._run_direct(run_dir, short, args, check=check, diff=diff, timeout=timeout,
                                    extra_env=extra_env)
        result_path = run_dir / "result.json"
        playbook = [{
            "name": "integration test",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "module under test", fqcn: args, "register": "itest_result", "ignore_errors": True},
                {"name": "save the registered result", "ansible.builtin.copy": {
                    "content": "{{ itest_result | to_json }}", "dest": str(result_path), "mode": "0600"},
                 "check_mode": False, "diff": False},
            ],
        }]
        (run_dir / "playbook.yml").write_text(json.dumps(playbook, indent=1))
        (run_dir / "hosts.ini").write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        argv = [str(self.bindir / "ansible-playbook"), "-i", str(run_dir / "hosts.ini"), str(run_dir / "playbook.yml")]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if verbosity:
            argv.append("-" + "v" * verbosity)
        proc = subprocess.run(argv, cwd=str(REPO_ROOT), env=self.env(extra_env), capture_output=True, text=True,
                              timeout=timeout, check=False)
        output = proc.stdout + proc.stderr
        if not result_path.exists():
            raise AssertionError(f"ansible-playbook produced no result (rc={proc.returncode}):\n{output}")
        result_text = result_path.read_text()
        # The result file is output too: a secret must not reach it either.
        return AnsibleRun(json.loads(result_text), output + "\n" + result_text, proc.returncode, argv)

    def _run_direct(self, run_dir: Path, short: str, args: dict, *, check: bool, diff: bool, timeout: float,
                    extra_env: dict | None) -> AnsibleRun:
        """The module's entry point with the arguments AnsiballZ would pass; see the module docstring."""
        tmp = run_dir / "tmp"
        tmp.mkdir()
        module_args = dict(args)
        module_args.update({
            "_ansible_check_mode": check, "_ansible_diff": diff, "_ansible_verbosity": 0,
            "_ansible_module_name": f"{NAMESPACE}.{NAME}.{short}", "_ansible_tmpdir": str(tmp),
            "_ansible_remote_tmp": str(tmp), "_ansible_keep_remote_files": False,
        })
        args_path = run_dir / "args.json"
        args_path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}))
        args_path.chmod(0o600)
        env = self.env(extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.root), env.get("PYTHONPATH", "")) if p)
        argv = [sys.executable, "-m", f"ansible_collections.{NAMESPACE}.{NAME}.plugins.modules.{short}", str(args_path)]
        proc = subprocess.run(argv, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        args_path.unlink()
        result = _module_json(proc.stdout)
        if result is None:   # what the controller reports for a module that died without a result
            result = {"failed": True, "msg": "MODULE FAILURE: See stdout/stderr for the exact error",
                      "module_stdout": proc.stdout, "module_stderr": proc.stderr, "rc": proc.returncode}
        result.setdefault("changed", False)
        result.setdefault("failed", False)
        # ansible-core >= 2.19 modules emit warnings and deprecations as structured summaries;
        # the controller registers them as plain messages (and deprecation dicts with "msg").
        if result.get("warnings"):
            result["warnings"] = [_summary_msg(w) for w in result["warnings"]]
        if result.get("deprecations"):
            result["deprecations"] = [d if not isinstance(d, dict) or "msg" in d else {**d, "msg": _summary_msg(d)}
                                      for d in result["deprecations"]]
        shown = [f"[WARNING]: {w}" for w in result.get("warnings", [])]
        shown += [f"[DEPRECATION WARNING]: {d.get('msg', d) if isinstance(d, dict) else d}"
                  for d in result.get("deprecations", [])]
        output = "\n".join([proc.stderr, *shown, json.dumps(result, indent=1, ensure_ascii=False)])
        return AnsibleRun(result, output, 2 if result.get("failed") else 0, argv)

    def playbook_argv(self, playbook, *args) -> list:
        return [str(self.bindir / "ansible-playbook"), str(playbook), *[str(a) for a in args]]

    def start_playbook(self, playbook, *args, extra_env: dict | None = None, cwd=None) -> subprocess.Popen:
        """Start ``ansible-playbook playbook args...`` (stdout and stderr together); the caller waits."""
        return subprocess.Popen(self.playbook_argv(playbook, *args), cwd=str(cwd or REPO_ROOT), env=self.env(extra_env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run_playbook(self, playbook, *args, extra_env: dict | None = None, cwd=None, timeout: float = 180) -> "PlaybookRun":
        """Run a whole playbook; a failed play is returned, not raised."""
        proc = self.start_playbook(playbook, *args, extra_env=extra_env, cwd=cwd)
        try:
            output = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            output = proc.communicate()[0]
            raise AssertionError(f"ansible-playbook {playbook} still running after {timeout}s:\n{output}") from None
        return PlaybookRun(proc.returncode, output)


def _summary_msg(item):
    """The message of a module warning: a plain string, or a WarningSummary's event message."""
    if isinstance(item, dict):
        event = item.get("event")
        if isinstance(event, dict) and "msg" in event:
            return event["msg"]
        return item.get("msg", json.dumps(item))
    return item


def _module_json(stdout: str) -> dict | None:
    """The result object a module printed (the last line that parses as a JSON object)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


@dataclass
class PlaybookRun:
    rc: int
    output: str
