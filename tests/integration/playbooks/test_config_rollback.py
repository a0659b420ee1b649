"""playbooks/config_rollback.yml against a local bare repository: the patch as evidence, the gate, revert and push.

The configuration repository is a bare repository made here (replicas 3, then replicas 5), configured the way
an inventory does it (trdrhub_config_repo, trdrhub_config_branch, trdrhub_config_rollback_dir). Check mode
shows the patch and pushes nothing; in store mode bob's approval lets the revert be pushed and recorded with
the reverted and the new commit; a re-run does nothing (HEAD is now the incident's own revert); a denial
pushes nothing; no repository configured is an error.
"""
from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from _itest_approval import cast, wait_for_request
from _itest_ledger import read_file_ledger
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

PLAYBOOK = "playbooks/config_rollback.yml"
ENV = {"GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}


def flat(text):
    return " ".join(text.split())


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=Dev Ops", "-c", "user.email=devops@trdrhub.example", *args],
                          cwd=cwd, check=True, capture_output=True, text=True, env={**ENV, "HOME": str(cwd or "/tmp")}).stdout


def head(bare):
    return git("rev-parse", "main", cwd=bare).strip()


class Rollback:
    def __init__(self, ansible, tmp_path):
        self.ansible, self.tmp = ansible, tmp_path
        self.bare, seed = tmp_path / "config.git", tmp_path / "seed"
        git("init", "-q", "--bare", "-b", "main", str(self.bare))
        git("clone", "-q", str(self.bare), str(seed))
        for replicas, subject in ((3, "api: 3 replicas"), (5, "api: 5 replicas")):
            (seed / "values.yaml").write_text(f"replicas: {replicas}\n")
            git("add", "values.yaml", cwd=seed)
            git("commit", "-q", "-m", subject, cwd=seed)
        git("push", "-q", "origin", "HEAD:main", cwd=seed)
        self.bad = head(self.bare)
        self.incident = "INC-CFG-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.clone = tmp_path / "clone"
        self.inventory = tmp_path / "inventory.yml"
        self.inventory.write_text(json.dumps({"all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
            "vars": {"trdrhub_config_repo": str(self.bare), "trdrhub_config_branch": "main",
                     "trdrhub_config_rollback_dir": str(self.clone)}}}))
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice", "GIT_CONFIG_NOSYSTEM": "1"}
        self.vars = {"trdrhub_incident_id": self.incident, "config_rollback_approval_poll_interval": 0.3}
        self.proc = None

    def argv(self, *extra, **overrides):
        return [PLAYBOOK, "-i", self.inventory, "-e", json.dumps(dict(self.vars, **overrides)), *extra]

    def run(self, *extra, **overrides):
        return self.ansible.run_playbook(*self.argv(*extra, **overrides), extra_env=self.env, timeout=240)

    def start(self, **overrides):
        self.proc = self.ansible.start_playbook(*self.argv(**overrides), extra_env=self.env)

    def finish(self):
        output = self.proc.communicate(timeout=240)[0]
        return self.proc.returncode, output

    def request_id(self, timeout=90):
        return wait_for_request(self.root / self.incident / "approvals", self.proc, timeout)

    def records(self, event):
        path = self.root / self.incident / "ledger.jsonl"
        return [e for e in read_file_ledger(path) if e["event"] == event] if path.exists() else []


@pytest.fixture
def rollback(ansible, tmp_path):
    made = []

    def make():
        made.append(Rollback(ansible, tmp_path))
        return made[-1]

    yield make
    for r in made:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.kill()
            r.proc.communicate()


def test_check_mode_shows_the_patch_and_pushes_nothing(rollback):
    r = rollback()
    snapshot = Snapshot(r.tmp)
    run = r.run("--check")
    assert run.rc == 0, run.output
    out = flat(run.output)
    assert "Configuration rollback evidence" in out and f"commit: {r.bad} api: 5 replicas" in out
    assert f"would: git revert {r.bad[:12]} && git push origin main" in out
    assert "-replicas: 3 +replicas: 5" in out   # the patch, as the approvers see it
    assert f"CHECK MODE, nothing was committed or pushed (would revert {r.bad[:12]})" in out
    assert head(r.bare) == r.bad and not r.clone.exists()
    assert snapshot.new_or_changed() == []


def test_store_mode_approved_by_another_person_reverts_pushes_and_a_rerun_does_nothing(rollback):
    r = rollback()
    r.start(config_rollback_approval_mode="store")
    rid = r.request_id()
    assert head(r.bare) == r.bad   # nothing before the approval
    request = json.loads((r.root / r.incident / "approvals" / f"{rid}.json").read_text())
    assert request["action"] == "revert_config" and request["evidence"]["commit"] == r.bad
    assert "+replicas: 5" in request["evidence"]["patch"]
    voted = cast(r.ansible, r.env, rid, "approve", "bob")
    assert voted.rc == 0, voted.output
    rc, output = r.finish()
    assert rc == 0, output
    new = head(r.bare)
    assert new != r.bad and git("show", "main:values.yaml", cwd=r.bare) == "replicas: 3\n"
    message = git("log", "-1", "--format=%B", "main", cwd=r.bare)
    assert f"This reverts commit {r.bad}." in message and f"Rolled back during {r.incident}" in message
    out = flat(output)
    assert f"REVERTED {r.bad[:12]} (api: 5 replicas) with {new}" in out and "main of" in out and "pushed" in out
    assert f"-e config_rollback_commit={new}" in out   # how to roll the rollback back
    decision = r.records("decision")[-1]["data"]
    assert decision["confirmed"] is True and decision["approval"]["approvers"] == ["awx:bob"] and decision["commit"] == r.bad
    [note] = [e for e in r.records("note") if "revert_commit" in e["data"]]
    assert note["data"]["reverted_commit"] == r.bad and note["data"]["revert_commit"] == new and note["data"]["pushed"] is True

    again = r.run(config_rollback_confirm=True)   # HEAD is now this incident's own revert: nothing to do
    assert again.rc == 0, again.output
    assert f"NOTHING TO DO, {new[:12]} is already reverted (by this incident)" in flat(again.output)
    assert head(r.bare) == new and len(r.records("decision")) == 1

    named = r.run(config_rollback_confirm=True, config_rollback_commit=r.bad)   # the same commit by its hash
    assert named.rc == 0, named.output
    assert "NOTHING TO DO" in flat(named.output) and head(r.bare) == new


def test_store_mode_denied_pushes_nothing(rollback):
    r = rollback()
    r.start(config_rollback_approval_mode="store")
    rid = r.request_id()
    voted = cast(r.ansible, r.env, rid, "deny", "bob")
    assert voted.rc == 0, voted.output
    rc, output = r.finish()
    assert rc != 0 and "Not approved, nothing was pushed" in flat(output)
    assert head(r.bare) == r.bad
    assert r.records("decision")[-1]["data"]["confirmed"] is False
    assert not [e for e in r.records("note") if "revert_commit" in e["data"]]


def test_no_repository_configured_or_an_unknown_commit_is_refused(rollback):
    r = rollback()
    none = r.run("--check", config_rollback_repo="")
    assert none.rc != 0 and "No configuration repository configured: set trdrhub_config_repo" in flat(none.output)
    unknown = r.run(config_rollback_commit="nope", config_rollback_confirm=True)
    assert unknown.rc != 0
    assert "REFUSED BEFORE THE GATE" in flat(unknown.output) and "does not name a commit of origin/main" in flat(unknown.output)
    assert head(r.bare) == r.bad

    # Without an incident id one is generated, and the whole run - its tasks too - is recorded under it.
    generated = r.ansible.run_playbook(PLAYBOOK, "-i", r.inventory, "-e", "config_rollback_commit=nope", extra_env=r.env)
    assert generated.rc != 0
    [home] = [p for p in r.root.iterdir() if p.name.startswith("cfg")]
    entries = read_file_ledger(home / "ledger.jsonl")
    assert [e["data"]["confirmed"] for e in entries if e["event"] == "decision"] == [False]
    assert any(e["event"] != "decision" and "git_revert" in json.dumps(e) for e in entries)   # the evidence task itself
