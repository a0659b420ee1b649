# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: git_revert
short_description: Revert the last (or a given) commit of a configuration repository and push it
version_added: 1.1.0
description:
  - The runbook's phase 4.1 configuration rollback, C(git revert HEAD && git push) - in a clone the module owns
    (O(dest)), reset to the remote branch first, so nothing but the revert is ever pushed.
  - Idempotent - a commit already reverted on the remote branch (git's C(This reverts commit <sha>.) trailer, by
    this module or by hand) is not reverted twice.
  - A merge commit is refused, and so is a revert that conflicts with later commits (nothing is pushed then).
author:
  - TRDR Hub SRE (@trdrhub)
options:
  repo:
    description: URL or path of the configuration repository (what C(git clone) accepts).
    type: str
    required: true
  dest:
    description:
      - Directory of the module's clone; created by the first run, fetched and reset to the remote branch by later ones.
      - Must not be a working copy anyone edits - local changes there are discarded.
    type: path
    required: true
  branch:
    description: Branch to revert on; the remote's default branch when omitted.
    type: str
  commit:
    description: The commit to revert - V(HEAD) (the branch's last commit), a hash or any name C(git rev-parse) accepts.
    type: str
    default: HEAD
  remote:
    description: Name of the remote in the clone.
    type: str
    default: origin
  push:
    description: Push the revert to the remote branch. With V(false) the revert stays in the clone.
    type: bool
    default: true
  reason:
    description: A paragraph added to the revert's message, for example the incident id.
    type: str
  author_name:
    description: Author and committer name of the revert.
    type: str
    default: trdrhub.incident
  author_email:
    description: Author and committer e-mail of the revert.
    type: str
    default: trdrhub-incident@localhost
extends_documentation_fragment:
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - Nothing is committed or pushed. The commit to revert is shown (RV(diff), C(git show)); without a clone in O(dest)
        the module clones into a temporary directory that it removes, and O(dest) is not created.
  diff_mode:
    support: full
    details:
      - The patch of the commit to be reverted, as C(git show --stat --patch).
requirements:
  - git on the host that runs the module, with access to O(repo) (an SSH key or credential helper for a remote).
"""

EXAMPLES = r"""
- name: "Phase 4.1: roll the configuration back (git revert HEAD && git push)"
  trdrhub.incident.git_revert:
    repo: git@git.trdrhub.internal:platform/trdrhub-config.git
    dest: /var/lib/trdrhub-incident/config-rollback
    branch: main
    reason: "Rolled back during INC-2025-0042"
  register: config_rollback
"""

RETURN = r"""
changed:
  description: True when a revert was made (or would be, in check mode).
  returned: always
  type: bool
commit:
  description: Full hash of the commit to revert.
  returned: always
  type: str
  sample: 3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39
subject:
  description: Its subject line.
  returned: always
  type: str
branch:
  description: The branch.
  returned: always
  type: str
  sample: main
reverted_by:
  description: The commit on the remote branch that already reverts it, null if none.
  returned: always
  type: str
revert_commit:
  description: The revert made by this run, null when none was made.
  returned: always
  type: str
pushed:
  description: Whether the revert was pushed.
  returned: always
  type: bool
diff_truncated:
  description: Whether the patch in RV(diff) was cut at 65536 characters.
  returned: always
  type: bool
diff:
  description:
    - What Ansible shows with C(--diff) - C(before) and C(after) are empty, C(prepared) is the commit to be reverted
      (C(git show --stat --patch)).
  returned: always
  type: dict
commands:
  description: The git commands run, in order.
  returned: always
  type: list
  elements: str
msg:
  description: One sentence of what was done.
  returned: always
  type: str
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Call, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule
from ansible_collections.trdrhub.incident.plugins.module_utils._git.revert import revert


def argument_spec() -> dict[str, t.Any]:
    return {
        'repo': {'type': 'str', 'required': True},
        'dest': {'type': 'path', 'required': True},
        'branch': {'type': 'str'},
        'commit': {'type': 'str', 'default': 'HEAD'},
        'remote': {'type': 'str', 'default': 'origin'},
        'push': {'type': 'bool', 'default': True},
        'reason': {'type': 'str'},
        'author_name': {'type': 'str', 'default': 'trdrhub.incident'},
        'author_email': {'type': 'str', 'default': 'trdrhub-incident@localhost'},
    }


def revert_worker(module: IncidentModule) -> Call:
    module.get_bin_path('git', required=True)
    return Call(lambda: revert(module.run_command, module.params, module.check_mode))


def main() -> None:
    run_module(argument_spec(), revert_worker)


if __name__ == '__main__':
    main()
