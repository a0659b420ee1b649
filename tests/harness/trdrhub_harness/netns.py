"""A throwaway network namespace with its own firewall: ``Netns().create()`` (None when usable, else why not).

``ip netns exec <ns> ansible-playbook ...`` runs a whole play (and every module it spawns on the
local connection) inside the namespace, so real iptables/ip6tables rules are written to a firewall
nobody else uses. Used by the IP blocking integration tests and the ``attack`` drill.
"""
from __future__ import annotations

import shutil
import subprocess
import uuid


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
