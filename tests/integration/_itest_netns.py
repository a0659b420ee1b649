"""A throwaway network namespace to run the IP blocking playbooks in, and read its firewall.

``ip netns exec <ns> ansible-playbook ...`` runs the whole play (and every module it spawns on the
local connection) inside the namespace, so real iptables/ip6tables rules are written to a firewall
nobody else uses. Composes ``AnsibleRunner`` from ``_itest_ansible`` (its environment and argv) and
``Netns`` from ``trdrhub_harness.netns``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _itest_ansible import REPO_ROOT, AnsibleRunner
from trdrhub_harness.netns import Netns  # noqa: F401 - shared with the drills (trdrhub_harness.drills)

PLAYBOOKS = REPO_ROOT / "playbooks"


@dataclass
class BlockRun:
    rc: int
    output: str
    result: dict | None   # block_ips_result, as published by the role

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def recap(self) -> dict:
        """{'ok': n, 'changed': n, 'failed': n, ...} of the PLAY RECAP line of localhost."""
        for line in self.output.splitlines():
            if line.startswith("localhost") and "ok=" in line:
                return {k: int(v) for k, v in (part.split("=") for part in line.split(":", 1)[1].split())}
        raise AssertionError(f"no PLAY RECAP in:\n{self.output}")


class NetnsPlaybooks:
    """Runs playbooks/block_ips.yml and unblock_ips.yml inside a namespace (or outside: ``netns=None``)."""

    def __init__(self, runner: AnsibleRunner, workdir: Path, netns: Netns | None) -> None:
        self.runner, self.workdir, self.netns = runner, workdir, netns
        self.ledger_dir = workdir / "incidents"
        self.hosts = workdir / "hosts.ini"
        # Already root: no become method is needed (and sudo may not be installed).
        self.hosts.write_text("[block_ips_hosts]\n"
                              f"localhost ansible_connection=local ansible_python_interpreter={sys.executable} "
                              "ansible_become=false\n")
        self.count = 0

    def run(self, playbook: str, extra: dict, *args: str, timeout: float = 240) -> BlockRun:
        self.count += 1
        out = self.workdir / f"result{self.count}.json"
        wrapper = self.workdir / f"play{self.count}.yml"
        # The playbook under test, then a play that saves the published fact. The pipe lookup writes it on the
        # controller, also in check mode, without the two module runs (stat, copy) of ansible.builtin.copy.
        wrapper.write_text(json.dumps([
            {"ansible.builtin.import_playbook": str(PLAYBOOKS / playbook)},
            {"name": "save block_ips_result", "hosts": "block_ips_hosts", "gather_facts": False, "tasks": [
                {"name": "save", "vars": {"itest_out": str(out)}, "ansible.builtin.set_fact": {
                    "itest_saved": "{{ lookup('ansible.builtin.pipe', 'printf %s ' ~ (block_ips_result | default(None)"
                                   " | to_json | quote) ~ ' > ' ~ (itest_out | quote)) }}"}}]},
        ], indent=1))
        argv = self.runner.playbook_argv(wrapper, "-i", self.hosts, "-e", json.dumps(extra), *args)
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns.name, *argv]
        # Pipelining hands each module to the interpreter on stdin instead of through a temporary file (no
        # mkdir/chmod/rm shell round trips per module); the modules and what they do are the same.
        env = self.runner.env({"TRDRHUB_LEDGER_DIR": str(self.ledger_dir), "ANSIBLE_PIPELINING": "1"})
        proc = subprocess.run(argv, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
        result = json.loads(out.read_text()) if out.exists() else None
        return BlockRun(proc.returncode, proc.stdout + proc.stderr, result)

    def ledger(self, incident_id: str) -> list:
        path = self.ledger_dir / incident_id / "ledger.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
