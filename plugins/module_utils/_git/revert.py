# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""``git revert <commit> && git push`` on a configuration repository, idempotent and with a check mode.

The work happens in a clone the module owns (``dest``): it is reset to the remote branch
before anything else, so a local change there can never be pushed by accident. A revert
is recognised by git's own trailer ``This reverts commit <sha>.`` on the remote branch: a
commit reverted once (by this module or by hand) is not reverted twice.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError

_SHA = re.compile(r'^[0-9a-f]{40}$')
DIFF_MAX_CHARS = 65536


class GitError(TrdrhubError):
    """A git command failed or the repository is not in a state the revert can work from."""


class Git:
    """Runs git in one work tree through ``run_command(argv, cwd) -> (rc, out, err)``; keeps the commands run."""

    def __init__(self, run_command: t.Callable[..., tuple[int, str, str]], cwd: str | None = None,
                 identity: tuple[str, str] = ('trdrhub.incident', 'trdrhub-incident@localhost')) -> None:
        self.run_command, self.cwd = run_command, cwd
        self.identity = identity
        self.commands: list[str] = []

    def __call__(self, *args: str, check: bool = True, cwd: str | None = None) -> str:
        argv = ['git', '-c', f'user.name={self.identity[0]}', '-c', f'user.email={self.identity[1]}', *args]
        self.commands.append(' '.join(('git',) + args))
        rc, out, err = self.run_command(argv, cwd=cwd or self.cwd)
        if rc != 0 and check:
            raise GitError(f"git {' '.join(args)} failed (exit {rc}): {' '.join((err or out).split())[:400]}")
        return out if rc == 0 else ''

    def ok(self, *args: str) -> bool:
        """Whether the command exits 0 (for git's yes/no commands: merge-base --is-ancestor, diff --quiet)."""
        argv = ['git', '-c', f'user.name={self.identity[0]}', '-c', f'user.email={self.identity[1]}', *args]
        self.commands.append(' '.join(('git',) + args))
        return self.run_command(argv, cwd=self.cwd)[0] == 0


def prepare(git: Git, repo: str, dest: str, branch: str | None, remote: str = 'origin') -> str:
    """Clone ``repo`` into ``dest`` or bring ``dest`` to the remote branch; returns the branch name."""
    if not os.path.isdir(os.path.join(dest, '.git')):
        if os.path.exists(dest) and os.listdir(dest):
            raise GitError(f'dest {dest} exists and is not a git clone; give an empty or new directory')
        git('clone', '--quiet', '--origin', remote, *(['--branch', branch] if branch else []), repo, dest, cwd='/')
    else:
        url = git('remote', 'get-url', remote, check=False).strip()
        if url != repo:
            raise GitError(f'dest {dest} is a clone of {url or "nothing"} (remote {remote}), not of {repo}')
        git('fetch', '--quiet', '--prune', remote)
    if not branch:
        head = git('symbolic-ref', '--short', f'refs/remotes/{remote}/HEAD', check=False).strip()
        branch = head.split('/', 1)[1] if '/' in head else git('rev-parse', '--abbrev-ref', 'HEAD').strip()
    git('checkout', '--quiet', '-B', branch, f'{remote}/{branch}')
    git('reset', '--quiet', '--hard', f'{remote}/{branch}')
    return branch


def plan(git: Git, commit: str, remote: str, branch: str) -> dict[str, t.Any]:
    """The commit to revert, whether it is already reverted on the remote branch, and its patch."""
    sha = git('rev-parse', '--verify', '--quiet', f'{commit}^{{commit}}', check=False).strip()
    if not _SHA.match(sha):
        raise GitError(f'commit {commit!r} does not name a commit of {remote}/{branch}')
    if not git.ok('merge-base', '--is-ancestor', sha, f'{remote}/{branch}'):
        raise GitError(f'commit {sha[:12]} is not on {remote}/{branch}; only a commit of the branch can be reverted')
    parents = git('rev-list', '--parents', '-n', '1', sha).split()[1:]
    if len(parents) > 1:
        raise GitError(f'commit {sha[:12]} is a merge; revert it by hand choosing the mainline (git revert -m 1)')
    reverted_by = git('log', '--format=%H', '-F', f'--grep=This reverts commit {sha}.', f'{remote}/{branch}').split()
    subject = git('log', '-1', '--format=%s', sha).strip()
    diff = git('show', '--stat', '--patch', '--format=commit %H%nAuthor: %an <%ae>%nDate:   %aI%n%n    %s%n', sha)
    truncated = len(diff) > DIFF_MAX_CHARS
    return {'commit': sha, 'subject': subject, 'reverted_by': reverted_by[0] if reverted_by else None,
            'diff': diff[:DIFF_MAX_CHARS], 'diff_truncated': truncated}


def revert(run_command: t.Callable[..., tuple[int, str, str]], params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """Revert ``params['commit']`` on the branch and push it (unless check mode, or already reverted)."""
    identity = (params['author_name'], params['author_email'])
    remote = params['remote']
    scratch = tempfile.mkdtemp(prefix='trdrhub-git-revert-') if check_mode and not os.path.isdir(
        os.path.join(params['dest'], '.git')) else None
    dest = os.path.join(scratch, 'clone') if scratch else params['dest']
    git = Git(run_command, dest, identity)
    try:
        branch = prepare(git, params['repo'], dest, params.get('branch'), remote)
        found = plan(git, params['commit'], remote, branch)
        result: dict[str, t.Any] = {'changed': False, 'branch': branch, 'pushed': False, 'revert_commit': None,
                                    **{k: v for k, v in found.items() if k != 'diff'}}
        result['diff'] = {'before': '', 'after': '', 'prepared': found['diff']}
        if found['reverted_by']:
            result['msg'] = f"{found['commit'][:12]} is already reverted on {remote}/{branch} by {found['reverted_by'][:12]}"
        elif check_mode:
            result.update(changed=True, msg=f"would revert {found['commit'][:12]} ({found['subject']}) and push to {remote}/{branch}")
        else:
            message = f"Revert \"{found['subject']}\"\n\nThis reverts commit {found['commit']}."
            if params.get('reason'):
                message += f"\n\n{params['reason']}"
            if not git.ok('revert', '--no-edit', '--no-commit', found['commit']):
                git('revert', '--abort', check=False)
                raise GitError(f"reverting {found['commit'][:12]} conflicts with later commits on {remote}/{branch}; "
                               'nothing was pushed - revert it by hand')
            git('commit', '--quiet', '-m', message)
            new = git('rev-parse', 'HEAD').strip()
            if params['push']:
                git('push', '--quiet', remote, f'HEAD:refs/heads/{branch}')
            result.update(changed=True, revert_commit=new, pushed=bool(params['push']),
                          msg=f"reverted {found['commit'][:12]} with {new[:12]}"
                              + (f' and pushed to {remote}/{branch}' if params['push'] else ' (not pushed)'))
        result['commands'] = list(git.commands)
        return result
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
