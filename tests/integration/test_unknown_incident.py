"""A mistyped incident id is refused by every playbook that acts on an existing incident.

``INC-UX-001`` typed for ``INC-UX-0001``: the playbook fails on its first step with the known
incidents and the closest match, before it contacts any service, and nothing is written for the
mistyped id - no incident directory, no ledger. The playbooks that may open an incident
(triage, the containment playbooks, recover_db, the response procedures) are not in this list
(docs/incident.md); pir, communicate and escalate are covered by test_next_step_hints.py.
"""
from __future__ import annotations

import json
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KNOWN = "INC-UX-0001"
TYPO = "INC-UX-001"
# playbook -> extra variables it needs to reach its incident check (nothing here names a reachable service)
ACT_ON_AN_EXISTING_INCIDENT = {
    "investigate.yml": {},
    "verify.yml": {},
    "verify_audit.yml": {},
    "recover_app.yml": {},
    "rollback.yml": {},
    "rotate_secrets.yml": {"rotate_secrets_role": "trdrhub_app"},
    "unblock_ips.yml": {"block_ips_incident_id": TYPO, "ansible_become": False},
}
# Nothing to connect to: no PostgreSQL, Kubernetes, Redis or HTTP target anywhere in the environment.
NO_TARGET_ENV = {
    "PGHOST": None, "PGHOSTADDR": None, "PGSERVICE": None, "PGPORT": "1", "KUBECONFIG": None, "K8S_AUTH_KUBECONFIG": None,
    "K8S_AUTH_CONTEXT": None, "K8S_AUTH_HOST": None, "KUBERNETES_SERVICE_HOST": None, "TRDRHUB_REDIS_URL": None,
    "TRDRHUB_BASE_URL": None, "TRDRHUB_PG_HOST": "127.0.0.1", "TRDRHUB_PG_PORT": "1",   # the sandbox's server: nothing there
}
GROUPS = ("block_ips_hosts", "edge")   # beside the sandbox inventory's db_controllers


@pytest.fixture(scope="module")
def home(ansible, tmp_path_factory):
    """An incidents home with one known incident, and the inventory of the runs."""
    root = tmp_path_factory.mktemp("unknown-incident")
    incidents = root / "incidents"
    opened = ansible.run("ledger_record", {"incident_id": KNOWN, "event": "note", "msg": "opened for the test"},
                         extra_env={"TRDRHUB_LEDGER_DIR": str(incidents)})
    assert not opened.failed, opened.output
    inventory = root / "hosts.ini"
    host = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
    inventory.write_text("".join(f"[{group}]\n{host}\n" for group in GROUPS))
    return incidents, inventory


@pytest.mark.parametrize("playbook", sorted(ACT_ON_AN_EXISTING_INCIDENT))
def test_a_mistyped_incident_is_refused_naming_the_closest(ansible, home, playbook):
    incidents, inventory = home
    extra = {"trdrhub_incident_id": TYPO, **ACT_ON_AN_EXISTING_INCIDENT[playbook]}
    run = ansible.run_playbook(f"playbooks/{playbook}", "-i", "inventories/sandbox", "-i", inventory, "-e", json.dumps(extra), "--check",
                               extra_env=dict(NO_TARGET_ENV, TRDRHUB_LEDGER_DIR=str(incidents)), timeout=200)
    flat = " ".join(run.output.split())
    assert run.rc != 0, run.output
    assert f"Incident {TYPO} has no record in its ledger yet" in flat and f"Did you mean {KNOWN}?" in flat, flat
    assert f"Known incidents: {KNOWN}" in flat
    # Refused first: no preflight, collector or gate ran before it.
    assert "Cannot connect to" not in flat and "No Kubernetes cluster given" not in flat
    assert sorted(p.name for p in incidents.iterdir()) == [KNOWN]


def test_the_known_incident_passes_the_check(ansible, home):
    """The same run with the right id gets past the check (and fails later, at the database nobody runs on port 1)."""
    incidents, inventory = home
    run = ansible.run_playbook("playbooks/verify_audit.yml", "-i", "inventories/sandbox", "-i", inventory, "-e", json.dumps({"trdrhub_incident_id": KNOWN}),
                               "--check", extra_env=dict(NO_TARGET_ENV, TRDRHUB_LEDGER_DIR=str(incidents)), timeout=200)
    flat = " ".join(run.output.split())
    assert "has no record in its ledger yet" not in flat
    assert run.rc != 0 and "127.0.0.1" in flat and "Audit trail verification" in flat, flat
    assert sorted(p.name for p in incidents.iterdir()) == [KNOWN]
