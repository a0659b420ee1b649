"""playbooks/rotate_secrets.yml behind its approval gate, against the harness PostgreSQL.

Nothing is rotated until the approval gate says so: without an approval the role password,
the store file and the rotation log stay as they were; in store mode at P1 the rotation waits
for two approvers other than the requester (AWX users of separate approve.yml runs).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from _itest_approval import vote, wait_for_request
from _itest_ledger import read_file_ledger
from _itest_rotate import RotationRole, create_log_table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def log_table(pg_server, trdrhub_db):
    return create_log_table(pg_server)


@pytest.fixture
def target(pg_server, trdrhub_db, log_table, tmp_path):
    role = RotationRole(pg_server, "itest_rotgate_", "itest-gate-")
    role.path = tmp_path / "api.env"
    role.path.write_text(f"DATABASE_PASSWORD={role.old}\n")
    role.path.chmod(0o640)
    yield role
    role.drop()


@pytest.fixture
def playbook(ansible, login, target, tmp_path):
    """(argv, env, ledger dir) of a rotate_secrets.yml run for the target's role, as the AWX user alice."""
    incident = "INC-ROTGATE-" + target.role[-6:]
    extra = {f"rotate_secrets_{k}": v for k, v in login["super_tcp"].items()}
    extra.update(rotate_secrets_role=target.role, rotate_secrets_path=str(target.path), rotate_secrets_min_age="0",
                 rotate_secrets_environment=target.environment, rotate_secrets_hosts="localhost",
                 trdrhub_incident_id=incident)
    vars_file = tmp_path / "vars.json"
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={ansible.bindir / 'python'}\n")
    ledger_dir = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(ledger_dir), "AWX_USER_NAME": "alice"}
    # rotate_secrets.yml acts on an existing incident (an unknown id is refused): give it a ledger first.
    opened = ansible.run("ledger_record", {"incident_id": incident, "event": "note", "msg": "opened for the test"}, extra_env=env)
    assert not opened.failed, opened.output

    def argv(**more):
        vars_file.write_text(json.dumps({**extra, **more}))
        return [REPO / "playbooks" / "rotate_secrets.yml", "-i", inventory, "-e", f"@{vars_file}"]
    return argv, env, ledger_dir / incident, inventory


def test_nothing_is_rotated_without_an_approval(ansible, target, playbook):
    argv, env, incident_dir, dummy = playbook
    stored = target.path.read_bytes()
    run = ansible.run_playbook(*argv(), extra_env=env, timeout=300)
    text = " ".join(run.output.split())
    assert run.rc != 0 and "Not approved: Nothing was rotated." in text, run.output
    assert "-e rotate_secrets_confirm=true" in text and "-e rotate_secrets_approval_mode=store" in text
    assert target.path.read_bytes() == stored and target.can_login(target.old) and target.log_rows() == []
    decision = [e for e in read_file_ledger(incident_dir / "ledger.jsonl") if e["event"] == "decision"][-1]["data"]
    assert decision["action"] == "rotate_secrets" and decision["confirmed"] is False


def test_two_approvers_at_p1_then_the_rotation_runs(ansible, target, playbook):
    argv, env, incident_dir, inventory = playbook
    proc = ansible.start_playbook(*argv(rotate_secrets_approval_mode="store", rotate_secrets_approval_poll_interval=0.3,
                                        rotate_secrets_approval_timeout=400), extra_env=env)
    try:
        rid = wait_for_request(incident_dir / "approvals", proc, timeout=240)
        request = json.loads((incident_dir / "approvals" / f"{rid}.json").read_text())
        assert request["action"] == "rotate_secrets" and request["required"] == 2 and request["priority"] == "P1"
        assert request["evidence"]["role"] == target.role and request["evidence"]["old_fingerprint"].startswith("sha256:")
        assert target.old not in json.dumps(request)
        assert vote(ansible, inventory, env, rid, "approve", "bob").rc == 0
        assert proc.poll() is None and target.can_login(target.old), "one approval of two rotated the secret"
        assert vote(ansible, inventory, env, rid, "approve", "carol").rc == 0
        output = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert not target.can_login(target.old) and "completed" in output
    decision = [e for e in read_file_ledger(incident_dir / "ledger.jsonl") if e["event"] == "decision"][-1]["data"]
    assert decision["confirmed"] is True and sorted(decision["approval"]["approvers"]) == ["awx:bob", "awx:carol"]


def test_a_store_mode_rerun_with_nothing_to_rotate_asks_no_approval(ansible, target, playbook):
    """Rotated a moment ago, so the plan skips the rotation (min_age): no request waits for approvers."""
    argv, env, incident_dir, dummy = playbook
    first = ansible.run_playbook(*argv(rotate_secrets_confirm=True), extra_env=env, timeout=300)
    assert first.rc == 0 and "completed" in first.output, first.output
    rotated = target.path.read_bytes()

    def asked():
        return [e for e in read_file_ledger(incident_dir / "ledger.jsonl") if e["event"] in ("approval", "decision")]
    before, requests = asked(), sorted((incident_dir / "approvals").glob("req-*.json"))
    again = ansible.run_playbook(*argv(rotate_secrets_approval_mode="store", rotate_secrets_min_age="30d",
                                       rotate_secrets_approval_timeout=5), extra_env=env, timeout=300)
    text = " ".join(again.output.split())
    assert again.rc == 0, again.output
    assert "Nothing to do - the rotation would be skipped" in text and "no approval is asked" in text, text
    assert "skipped because last rotated" in text
    assert asked() == before and sorted((incident_dir / "approvals").glob("req-*.json")) == requests
    assert target.path.read_bytes() == rotated
