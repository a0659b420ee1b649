# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The git runner and the checks before a revert, with a scripted run_command (the real git is used in
tests/unit/plugins/modules/test_git_revert.py)."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._git.revert import Git, GitError, plan, prepare


class Script:
    """run_command answering from a table of (argv suffix -> (rc, out, err)); records the argv and cwd."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, cwd=None):
        self.calls.append((argv, cwd))
        args = tuple(argv[5:])   # after: git -c user.name=.. -c user.email=..
        for suffix, answer in self.answers.items():
            if args[:len(suffix)] == suffix:
                return answer
        return 0, '', ''


def test_git_runs_with_its_identity_and_keeps_the_commands():
    run = Script({('rev-parse',): (0, 'abc\n', '')})
    git = Git(run, cwd='/srv/clone', identity=('oncall', 'oncall@trdrhub.example'))
    assert git('rev-parse', 'HEAD') == 'abc\n'
    argv, cwd = run.calls[0]
    assert argv == ['git', '-c', 'user.name=oncall', '-c', 'user.email=oncall@trdrhub.example', 'rev-parse', 'HEAD']
    assert cwd == '/srv/clone' and git.commands == ['git rev-parse HEAD']


def test_a_failed_command_is_one_git_error_naming_it_and_quoting_git():
    git = Git(Script({('push',): (1, '', "error: failed to push some refs\n  hint: fetch first")}))
    with pytest.raises(GitError) as caught:
        git('push', 'origin', 'main')
    assert str(caught.value) == 'git push origin main failed (exit 1): error: failed to push some refs hint: fetch first'
    assert isinstance(caught.value, TrdrhubError)
    assert git('push', 'origin', 'main', check=False) == ''


def test_ok_is_the_exit_status():
    git = Git(Script({('merge-base',): (1, '', '')}))
    assert git.ok('merge-base', '--is-ancestor', 'a', 'b') is False and git.ok('diff', '--quiet') is True


def test_prepare_refuses_a_directory_that_is_not_a_clone(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(GitError, match='exists and is not a git clone; give an empty or new directory'):
        prepare(Git(Script()), 'https://git.example/config.git', str(tmp_path), None)


def test_prepare_refuses_a_clone_of_another_repository(tmp_path):
    (tmp_path / '.git').mkdir()
    run = Script({('remote', 'get-url'): (0, 'https://git.example/other.git\n', '')})
    with pytest.raises(GitError, match=r'is a clone of https://git.example/other.git \(remote origin\), not of'):
        prepare(Git(run, cwd=str(tmp_path)), 'https://git.example/config.git', str(tmp_path), 'main')


def test_plan_refuses_what_is_not_a_commit_of_the_branch():
    with pytest.raises(GitError, match="commit 'nope' does not name a commit of origin/main"):
        plan(Git(Script({('rev-parse',): (1, '', '')})), 'nope', 'origin', 'main')
    sha = 'a' * 40
    run = Script({('rev-parse',): (0, sha + '\n', ''), ('merge-base',): (1, '', '')})
    with pytest.raises(GitError, match=f'commit {sha[:12]} is not on origin/main'):
        plan(Git(run), sha, 'origin', 'main')


def test_plan_refuses_a_merge_commit():
    sha = 'b' * 40
    run = Script({('rev-parse',): (0, sha, ''), ('rev-list',): (0, f'{sha} {"c" * 40} {"d" * 40}\n', '')})
    with pytest.raises(GitError, match='is a merge; revert it by hand'):
        plan(Git(run), sha, 'origin', 'main')
