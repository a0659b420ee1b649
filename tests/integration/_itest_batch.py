"""Run several module tasks in ONE ansible-playbook and hand back each registered result.

ansible-playbook costs seconds to start; scenarios that need no timing of their own
(error messages, check mode, auth variants) share one run. Every task has
``ignore_errors`` so that one failure does not hide the others' results.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _itest_ansible import REPO_ROOT, AnsibleRun, AnsibleRunner


def run_batch(runner: AnsibleRunner, tasks: dict, *, timeout: float = 180) -> dict:
    """tasks: {name: (module, args)} or {name: (module, args, task_keywords)} -> {name: AnsibleRun}.

    ``task_keywords`` is merged into the task, e.g. ``{"check_mode": True}``. Module names
    without a dot are ``trdrhub.incident.`` modules.
    """
    runner.count += 1
    run_dir = Path(tempfile.mkdtemp(prefix=f"batch{runner.count}-", dir=runner.workdir))
    result_path = run_dir / "results.json"
    plays, registered = [], {}
    for index, (name, spec) in enumerate(tasks.items()):
        module, args = spec[0], spec[1]
        keywords = spec[2] if len(spec) > 2 else {}
        fqcn = module if "." in module else f"trdrhub.incident.{module}"
        var = f"itest_result_{index}"
        registered[name] = var
        plays.append({"name": name, fqcn: args, "register": var, "ignore_errors": True, **keywords})
    collect = "{{ {" + ", ".join(f"{json.dumps(name)}: {var}" for name, var in registered.items()) + "} | to_json }}"
    plays.append({"name": "save the registered results", "ansible.builtin.copy": {
        "content": collect, "dest": str(result_path), "mode": "0600"}, "check_mode": False, "diff": False})
    playbook = [{"name": "integration batch", "hosts": "localhost", "gather_facts": False, "tasks": plays}]
    (run_dir / "playbook.yml").write_text(json.dumps(playbook, indent=1))
    (run_dir / "hosts.ini").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    argv = [str(runner.bindir / "ansible-playbook"), "-i", str(run_dir / "hosts.ini"), str(run_dir / "playbook.yml")]
    proc = subprocess.run(argv, cwd=str(REPO_ROOT), env=runner.env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    output = proc.stdout + proc.stderr
    if not result_path.exists():
        raise AssertionError(f"ansible-playbook produced no results (rc={proc.returncode}):\n{output}")
    text = result_path.read_text()
    results = json.loads(text)
    # Every run shares the terminal output and the result file: a secret must reach neither.
    return {name: AnsibleRun(results[name], output + "\n" + text, proc.returncode, argv) for name in tasks}
