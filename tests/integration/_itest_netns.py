"""A throwaway network namespace to run the IP blocking playbooks in, and read its firewall.

``ip netns exec <ns> ansible-playbook ...`` runs the whole play (and every module it spawns on the
local connection) inside the namespace, so real iptables/ip6tables rules are written to a firewall
nobody else uses. Composes ``AnsibleRunner`` from ``_itest_ansible`` (its environment and argv).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from _itest_ansible import REPO_ROOT, AnsibleRunner

PLAYBOOKS = REPO_ROOT / "playbooks"


def _run(argv: list, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


class Netns:
    """One namespace named ``trdrhub-t-<random>``; ``delete()`` is safe to call twice."""

    def __init__(self) -> None:
        self.name = "trdrhub-t-" + uuid.uuid4().hex[:8]
        self.created = False

    def create(self) -> str | None:
        """Create it and check iptables works inside; return why not (None when usable)."""
        ip = shutil.which("ip")
        if not ip:
            return "the ip command (iproute2) is not installed"
        proc = _run([ip, "netns", "add", self.name])
        if proc.returncode != 0:
            return f"ip netns add failed (root / CAP_SYS_ADMIN needed): {proc.stderr.strip()}"
        self.created = True
        for binary in ("iptables", "ip6tables"):
            if not shutil.which(binary):
                return f"{binary} is not installed (apt-get install -y iptables)"
            probe = self.exec([binary, "-S", "INPUT"])
            if probe.returncode != 0:
                return f"{binary} does not work in a network namespace (CAP_NET_ADMIN needed): {probe.stderr.strip()}"
        return None

    def exec(self, argv: list, timeout: float = 30) -> subprocess.CompletedProcess:
        return _run(["ip", "netns", "exec", self.name, *[str(a) for a in argv]], timeout)

    def rules(self, chain: str = "TRDRHUB-BLOCK", family: str = "ipv4") -> list | None:
        """``-A`` lines of ``iptables -S <chain>``; None when the chain does not exist."""
        proc = self.exec(["iptables" if family == "ipv4" else "ip6tables", "-S", chain])
        if proc.returncode != 0:
            return None
        return [line for line in proc.stdout.splitlines() if line.startswith("-A ")]

    def sources(self, chain: str = "TRDRHUB-BLOCK", family: str = "ipv4") -> dict:
        """{source CIDR: comment} of the chain's rules."""
        out = {}
        for line in self.rules(chain, family) or []:
            words = line.split()
            source = words[words.index("-s") + 1] if "-s" in words else None
            comment = line.split('--comment ')[1].split(' -j ')[0].strip('"') if "--comment" in line else None
            out[source] = comment
        return out

    def add_raw(self, family: str, *argv: str) -> None:
        proc = self.exec(["iptables" if family == "ipv4" else "ip6tables", *argv])
        assert proc.returncode == 0, proc.stderr

    def delete(self) -> None:
        if self.created:
            _run(["ip", "netns", "delete", self.name])
            self.created = False


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
        # The playbook under test, then a play that saves the published fact (forced out of check mode).
        wrapper.write_text(json.dumps([
            {"ansible.builtin.import_playbook": str(PLAYBOOKS / playbook)},
            {"name": "save block_ips_result", "hosts": "block_ips_hosts", "gather_facts": False, "tasks": [
                {"name": "save", "ansible.builtin.copy": {
                    "content": "{{ block_ips_result | default(None) | to_json }}", "dest": str(out), "mode": "0600"},
                 "check_mode": False, "changed_when": False}]},
        ], indent=1))
        argv = self.runner.playbook_argv(wrapper, "-i", self.hosts, "-e", json.dumps(extra), *args)
        if self.netns is not None:
            argv = ["ip", "netns", "exec", self.netns.name, *argv]
        env = self.runner.env({"TRDRHUB_LEDGER_DIR": str(self.ledger_dir)})
        proc = subprocess.run(argv, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
        result = json.loads(out.read_text()) if out.exists() else None
        return BlockRun(proc.returncode, proc.stdout + proc.stderr, result)

    def ledger(self, incident_id: str) -> list:
        path = self.ledger_dir / incident_id / "ledger.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
