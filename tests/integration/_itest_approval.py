"""What the approval-gate integration tests share: waiting for a store-mode request and voting on it.

A gate in ``store`` mode writes ``approvals/req-<id>.json`` beside the incident's ledger and
waits; a second process votes with ``playbooks/approve.yml`` as another user (the AWX user
name is the approver's identity, as in a job launched from AWX).
"""
from __future__ import annotations

import time
from pathlib import Path


def wait_for_request(approvals: Path, proc, timeout: float = 60, what: str = "the gate") -> str:
    """The id of the first approval request filed in ``approvals``; fails when ``proc`` (the gated playbook) ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in approvals.glob("req-*.json") if ".vote." not in p.name] if approvals.exists() else []
        if found:
            return found[0].name[:-len(".json")]
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    raise AssertionError(f"{what} made no approval request within {timeout}s")


def vote_argv(inventory, rid: str, decision: str, *extra: str) -> list:
    return ["playbooks/approve.yml", "-i", str(inventory), "-e", f"request={rid}", "-e", f"decision={decision}", *extra]


def vote(ansible, inventory, env: dict, rid: str, decision: str, user: str, *extra: str, more_env: dict | None = None):
    """Vote as ``user`` (AWX_USER_NAME) from a separate ansible-playbook run."""
    return ansible.run_playbook(*vote_argv(inventory, rid, decision, *extra),
                                extra_env=dict(env, AWX_USER_NAME=user, **(more_env or {})))
