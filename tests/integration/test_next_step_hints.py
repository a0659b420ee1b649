"""Every command a playbook prints as the next step works pasted verbatim into another shell, from another directory.

Real playbook runs print the commands; each is captured from the output exactly as shown and run
with ``bash -c`` in an unrelated directory, with the same environment (a shell of the same user)
but none of what the run's current directory gave it:

- a checkout user (./ansible.cfg found in the checkout, no ANSIBLE_CONFIG, no TRDRHUB_LEDGER_DIR):
  incidents live in the default home under XDG_STATE_HOME; triage's "take command" and
  "re-assess", and the review's path;
- a team whose inventory names the incidents home (trdrhub_incidents_dir): contain_db's gate in
  store mode (vote to approve from the printed command, as another person), the approval
  gate's deny command, and contain_db's "re-run with the confirmation".

A mistyped incident id is refused by the playbooks that act on an existing incident, with the
closest match, and leaves no directory behind.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import check_chain, read_file_ledger, write_playbook

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

COMMAND = re.compile(r"^\s*((?:[A-Z_]+=\S+ )*(?:\S*/)?ansible(?:-playbook)? \S.*)$")


def commands(output: str) -> list[str]:
    """The command lines of ``output``, as printed (one per line, never folded)."""
    return [m[1].rstrip() for line in output.splitlines() if (m := COMMAND.match(line))]


def only(output: str, needle: str) -> str:
    found = sorted({c for c in commands(output) if needle in c})   # a failure's message is shown twice
    assert len(found) == 1, (needle, found, output)
    return found[0]


def paste(cmd: str, env: dict, cwd, timeout: float = 240) -> subprocess.CompletedProcess:
    """``cmd`` run verbatim by a shell in ``cwd``."""
    return subprocess.run(["bash", "-c", cmd], cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def ledger(home, incident):
    entries = read_file_ledger(home / incident / "ledger.jsonl")
    check_chain(entries, incident)
    return entries


@pytest.fixture
def elsewhere(tmp_path):
    """A directory with nothing of the collection in it."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.fixture
def localhost_inventory(tmp_path):
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    return path


def shell_env(ansible, **changes):
    """The runner's environment as a user's shell has it: ansible-playbook on PATH."""
    env = ansible.env(changes)
    env["PATH"] = f"{ansible.bindir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_a_checkout_user_pastes_triage_and_review_hints_anywhere(ansible, tmp_path, elsewhere, localhost_inventory):
    state = tmp_path / "state"
    home = state / "trdrhub-incident" / "incidents"
    env = shell_env(ansible, TRDRHUB_LEDGER_DIR=None, ANSIBLE_CONFIG=None, XDG_STATE_HOME=str(state))
    incident = "INC-UX-" + uuid.uuid4().hex[:4].upper() + "-0001"
    triage = subprocess.run(
        ["ansible-playbook", "playbooks/triage.yml", "-i", str(localhost_inventory), "-e", f"trdrhub_incident_id={incident}",
         "-e", json.dumps({"triage_override": {"priority": "P2", "reason": "customers report errors"}, "triage_title": "Checkout errors"})],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=240, check=False)
    assert triage.returncode == 0, triage.stdout + triage.stderr
    assert (home / incident / "ledger.jsonl").exists(), "the incident is in the default home, not under playbooks/"
    assert not (REPO_ROOT / "playbooks" / "incidents" / incident).exists() and not (REPO_ROOT / "incidents" / incident).exists()

    take_command = only(triage.stdout, "commander=")
    assert take_command.startswith(f"ANSIBLE_CONFIG={REPO_ROOT / 'ansible.cfg'} ")   # ./ansible.cfg is not found elsewhere
    taken = paste(take_command, env, elsewhere)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    record = [e for e in ledger(home, incident) if e["event"] == "incident"][-1]["data"]["record"]
    assert record["commander"] == subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()

    reassess = only(triage.stdout, "triage.yml")
    assert str(localhost_inventory) in reassess and "-e trdrhub_incident_id=" + incident in reassess
    again = paste(reassess, env, elsewhere)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"[{incident}] P2" in again.stdout and not (elsewhere / "incidents").exists()

    review = subprocess.run(["ansible-playbook", "playbooks/pir.yml", "-e", f"trdrhub_incident_id={incident}"],
                            cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=240, check=False)
    assert review.returncode == 0, review.stdout + review.stderr
    [written] = re.findall(r"Written: (\S+)/pir\.md", review.stdout)
    assert written == str(home / incident / "pir")
    shown = paste(f"cat {written}/pir.md", env, elsewhere)
    assert shown.returncode == 0 and "Checkout errors" in shown.stdout

    # A mistyped id: refused with the closest match, and no directory is made for it.
    typo = incident[:-1]
    for playbook in ("pir.yml", "communicate.yml", "escalate.yml"):
        refused = subprocess.run(["ansible-playbook", f"playbooks/{playbook}", "-e", f"trdrhub_incident_id={typo}"],
                                 cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=240, check=False)
        flat = " ".join(refused.stdout.split())
        assert refused.returncode != 0, (playbook, refused.stdout)
        assert f"Incident {typo} has no record" in flat and f"Did you mean {incident}?" in flat, (playbook, flat)
        assert not (home / typo).exists(), playbook
    assert sorted(p.name for p in home.iterdir()) == [incident]

    # assign_commander.yml printed how to resolve; pasted, resolve.yml resolves and names the review
    resolve = only(taken.stdout, "resolve")
    assert "-e trdrhub_incident_id=" + incident in resolve and "root_cause=" in resolve
    resolved = paste(resolve, env, elsewhere)
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    record = [e for e in ledger(home, incident) if e["event"] == "incident"][-1]["data"]["record"]
    assert record["state"] == "resolved"
    assert f"trdrhub.incident.pir -e trdrhub_incident_id={incident}" in resolved.stdout


@pytest.fixture
def team_inventory(tmp_path):
    """The sandbox inventory plus the team's incidents home."""
    home = tmp_path / "team-incidents"
    path = tmp_path / "team.yml"
    path.write_text(json.dumps({"all": {"vars": {"trdrhub_incidents_dir": str(home)}}}))
    return path, home


def test_gate_hints_carry_the_inventory_home_to_any_shell(ansible, tmp_path, elsewhere, team_inventory, pg_server, trdrhub_db,
                                                          sessions, monitor, app):
    inventory, home = team_inventory
    env = shell_env(ansible, TRDRHUB_LEDGER_DIR=None, XDG_STATE_HOME=str(tmp_path / "unused-state"), AWX_USER_NAME="alice",
                    TRDRHUB_PG_HOST=pg_server.host, TRDRHUB_PG_PORT=str(pg_server.port),
                    TRDRHUB_PG_OPS_PASSWORD=trdrhub_db["ops"]["password"])
    bob = dict(env, AWX_USER_NAME="bob")
    incident = "INC-GATE-" + uuid.uuid4().hex[:6]
    contain = ["playbooks/contain_db.yml", "-i", "inventories/sandbox", "-i", str(inventory), "-e", f"trdrhub_incident_id={incident}",
               "-e", json.dumps({"contain_db_applications": [app + "*"], "contain_db_min_duration": 1,
                                 "contain_db_approval_poll_interval": 0.3, "trdrhub_approval_policy": {}})]

    # Store mode: the gate prints how to vote; bob pastes the approve command in his own shell.
    victim = sessions.active(app + "-api")
    time.sleep(1.2)   # older than contain_db_min_duration
    proc = subprocess.Popen(["ansible-playbook", *contain, "-e", "contain_db_approval_mode=store"], cwd=str(REPO_ROOT), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "to deny:":
                seen.append(proc.stdout.readline())
                break
        printed = "".join(seen)
        approve, deny = only(printed, "decision=approve"), only(printed, "decision=deny")
        assert approve.startswith(f"TRDRHUB_LEDGER_DIR={home} ") and deny == approve.replace("decision=approve", "decision=deny")
        voted = paste(approve, bob, elsewhere)
        assert voted.returncode == 0, voted.stdout + voted.stderr
        rest = proc.communicate(timeout=240)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, printed + rest
    monitor.assert_killed(killed=[victim])
    assert any(e["event"] == "approval" and e["data"].get("approval") == "vote" for e in ledger(home, incident))

    # Confirm mode without a terminal: the refusal prints the re-run with the confirmation.
    victim = sessions.active(app + "-api")
    time.sleep(1.2)
    refused = subprocess.run(["ansible-playbook", *contain], cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=240, check=False)
    assert refused.returncode != 0, refused.stdout
    monitor.assert_killed(alive=[victim])
    rerun = only(refused.stdout, "contain_db_confirm=true")
    assert rerun.startswith(f"TRDRHUB_LEDGER_DIR={home} ") and str(inventory) in rerun
    confirmed = paste(rerun, env, elsewhere)
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    monitor.assert_killed(killed=[victim])
    assert not (elsewhere / "incidents").exists() and not (REPO_ROOT / "playbooks" / "incidents" / incident).exists()


def test_a_pasted_deny_closes_the_request(ansible, tmp_path, elsewhere, team_inventory, localhost_inventory):
    inventory, home = team_inventory
    env = shell_env(ansible, TRDRHUB_LEDGER_DIR=None, XDG_STATE_HOME=str(tmp_path / "unused-state"), AWX_USER_NAME="alice")
    incident = "INC-DENY-" + uuid.uuid4().hex[:6]
    gate = write_playbook(tmp_path / "gate.yml", [
        {"name": "Approval", "trdrhub.incident.approval": {
            "incident_id": incident, "action": "terminate_sessions", "priority": "P2", "summary": "terminate 1 session",
            "evidence": {"pids": [4242]}, "mode": "store", "timeout": 120, "poll_interval": 0.3, "policy": {}}},
    ], vars_={"trdrhub_incident_id": incident})
    proc = subprocess.Popen(["ansible-playbook", "-i", str(localhost_inventory), "-i", str(inventory), str(gate)], cwd=str(tmp_path),
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == "to deny:":
                seen.append(proc.stdout.readline())
                break
        deny = only("".join(seen), "decision=deny")
        denied = paste(deny, dict(env, AWX_USER_NAME="bob"), elsewhere)
        assert denied.returncode == 0, denied.stdout + denied.stderr
        rest = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0 and "DENIED" in rest, rest
    votes = [e for e in ledger(home, incident) if e["event"] == "approval" and e["data"].get("approval") == "vote"]
    assert [v["data"]["decision"] for v in votes] == ["deny"]
