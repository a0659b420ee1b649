"""What the approval-gate integration tests share: waiting for a store-mode request and voting on it.

A gate in ``store`` mode writes ``approvals/req-<id>.json`` beside the incident's ledger and
waits; a second process votes as another user (the AWX user name is the approver's identity,
as in a job launched from AWX): ``vote`` runs ``playbooks/approve.yml`` (for tests of the vote
as an approver casts it), ``cast`` runs the ``approval_vote`` module's own entry point in a
fresh interpreter, the same vote at a third of the cost (for tests of what is gated, or of the
vote's rules rather than the playbook's).
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


def cast(ansible, env: dict, rid: str, decision: str, user: str | None, *, more_env: dict | None = None, **params):
    """Vote as ``user`` (AWX_USER_NAME; None: no AWX user) through the approval_vote module's entry point.

    ``params`` are further module options (approver, comment, evidence_hash, store_backend, ...).
    The result's ``rc`` and ``output`` (the module's JSON result, its msg included) read like a run's.
    """
    args = {"request_id": rid, "decision": decision, **params}
    return ansible.run("approval_vote", args, via_playbook=False,
                       extra_env=dict(env, AWX_USER_NAME=user, **(more_env or {})))
