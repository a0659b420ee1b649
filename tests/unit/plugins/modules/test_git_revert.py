# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""git_revert against a local bare repository: check mode shows the commit's patch and pushes nothing, a run pushes
the revert, a re-run does not revert twice."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import git_revert

pytestmark = pytest.mark.skipif(shutil.which('git') is None, reason='needs the git command')


def git(*args, cwd):
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM='1', GIT_AUTHOR_NAME='dev',
               GIT_AUTHOR_EMAIL='dev@trdrhub.example', GIT_COMMITTER_NAME='dev', GIT_COMMITTER_EMAIL='dev@trdrhub.example')
    return subprocess.run(['git', *args], cwd=str(cwd), env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """A bare repository whose main branch ends with a bad configuration change."""
    monkeypatch.setenv('GIT_CONFIG_GLOBAL', os.devnull)
    monkeypatch.setenv('GIT_CONFIG_NOSYSTEM', '1')
    bare, work = tmp_path / 'config.git', tmp_path / 'work'
    git('init', '--quiet', '--bare', '-b', 'main', str(bare), cwd=tmp_path)
    git('clone', '--quiet', str(bare), str(work), cwd=tmp_path)
    (work / 'app.yml').write_text('max_connections: 100\n')
    git('add', 'app.yml', cwd=work)
    git('commit', '--quiet', '-m', 'Initial configuration', cwd=work)
    (work / 'app.yml').write_text('max_connections: 5\n')
    git('commit', '--quiet', '-am', 'Lower max_connections', cwd=work)
    git('push', '--quiet', 'origin', 'HEAD:main', cwd=work)
    return bare


def args(remote, tmp_path, **extra):
    return dict({'repo': str(remote), 'dest': str(tmp_path / 'clone'), 'author_name': 'oncall',
                 'author_email': 'oncall@trdrhub.example', 'reason': 'INC-1'}, **extra)


def test_check_mode_shows_the_patch_and_pushes_nothing(run_module, remote, tmp_path):
    head = git('rev-parse', 'main', cwd=remote)
    result = run_module(git_revert, args(remote, tmp_path), check_mode=True, diff=True)
    assert not result.get('failed') and result['changed'] is True and result['pushed'] is False
    assert result['commit'] == head and result['subject'] == 'Lower max_connections'
    assert '-max_connections: 100\n+max_connections: 5' in result['diff']['prepared']
    assert git('rev-parse', 'main', cwd=remote) == head and not (tmp_path / 'clone').exists()


def test_a_run_pushes_the_revert_and_a_rerun_does_not_revert_twice(run_module, remote, tmp_path):
    bad = git('rev-parse', 'main', cwd=remote)
    first = run_module(git_revert, args(remote, tmp_path))
    assert not first.get('failed') and first['changed'] is True and first['pushed'] is True
    assert git('rev-parse', 'main^', cwd=remote) == bad
    assert git('show', 'main:app.yml', cwd=remote) == 'max_connections: 100'
    assert f'This reverts commit {bad}' in git('log', '-1', '--format=%B', 'main', cwd=remote)
    again = run_module(git_revert, args(remote, tmp_path, commit=bad))
    assert not again.get('failed') and again['changed'] is False
    assert git('rev-list', '--count', 'main', cwd=remote) == '3'
