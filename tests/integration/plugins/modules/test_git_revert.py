"""git_revert against a local bare repository made here (the configuration repository), never this project's own."""
from __future__ import annotations

import subprocess

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ENV = {"GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}


def git(*args, cwd=None):
    return subprocess.run(["git", "-c", "user.name=Dev Ops", "-c", "user.email=devops@trdrhub.example", *args],
                          cwd=cwd, check=True, capture_output=True, text=True, env={**ENV, "HOME": str(cwd or "/tmp")}).stdout


@pytest.fixture
def config_repo(tmp_path):
    """A bare repository on branch main with two commits: replicas 3, then replicas 5."""
    bare, seed = tmp_path / "config.git", tmp_path / "seed"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("clone", "-q", str(bare), str(seed))
    for replicas, subject in ((3, "api: 3 replicas"), (5, "api: 5 replicas")):
        (seed / "values.yaml").write_text(f"replicas: {replicas}\n")
        git("add", "values.yaml", cwd=seed)
        git("commit", "-q", "-m", subject, cwd=seed)
    git("push", "-q", "origin", "HEAD:main", cwd=seed)
    return bare


def head(bare):
    return git("rev-parse", "main", cwd=bare).strip()


def test_check_mode_shows_the_commit_then_revert_push_and_idempotent_rerun(ansible, config_repo, tmp_path):
    before = head(config_repo)
    args = {"repo": str(config_repo), "dest": str(tmp_path / "work"), "reason": "Rolled back during INC-GIT-1"}
    checked = ansible.run("git_revert", args, check=True)
    assert not checked.failed, checked.output
    assert checked["changed"] is True and checked["commit"] == before and checked["subject"] == "api: 5 replicas"
    assert "-replicas: 3\n+replicas: 5" in checked["diff"]["prepared"]
    assert head(config_repo) == before and not (tmp_path / "work").exists()   # nothing pushed, no clone left

    applied = ansible.run("git_revert", args)
    assert not applied.failed, applied.output
    assert applied["changed"] is True and applied["pushed"] is True
    assert head(config_repo) == applied["revert_commit"] != before
    message = git("log", "-1", "--format=%B", "main", cwd=config_repo)
    assert f"This reverts commit {before}." in message and "Rolled back during INC-GIT-1" in message
    assert git("show", "main:values.yaml", cwd=config_repo) == "replicas: 3\n"

    again = ansible.run("git_revert", dict(args, commit=before))
    assert not again.failed, again.output
    assert again["changed"] is False and again["reverted_by"] == applied["revert_commit"]
    assert head(config_repo) == applied["revert_commit"]


def test_an_unknown_commit_and_a_foreign_dest_are_refused(ansible, config_repo, tmp_path):
    unknown = ansible.run("git_revert", {"repo": str(config_repo), "dest": str(tmp_path / "w1"), "commit": "nope"})
    assert unknown.failed and unknown["msg"] == "commit 'nope' does not name a commit of origin/main"
    (tmp_path / "w2").mkdir()
    (tmp_path / "w2" / "notes.txt").write_text("mine")
    foreign = ansible.run("git_revert", {"repo": str(config_repo), "dest": str(tmp_path / "w2")})
    assert foreign.failed and "is not a git clone" in foreign["msg"]
    assert head(config_repo) == git("rev-parse", "main", cwd=config_repo).strip()
