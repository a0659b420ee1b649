# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Role plumbing lives once: no role task file of 20 lines or more is copied, or nearly, into another role.

Two task files of different roles are compared line by line once each role's own variable prefix
(``contain_db_`` and ``contain_db__``) is replaced by one placeholder, so a file pasted from
``block_ips`` into ``contain_db`` and renamed is still seen as the copy it is. Lines are stripped of
indentation and blank lines and comments are left out. Files at or over ``SIMILAR`` alike (difflib's
ratio) are reported; shared plumbing belongs in one role that the others include (``approval_gate``,
``incident_select``).
"""

from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MIN_LINES = 20
SIMILAR = 0.8


def normalized(path: Path, role: str) -> list[str]:
    """The file's lines with the role's own prefix set aside, without indentation, blanks or comments."""
    prefix = re.compile(rf'\b{re.escape(role)}_(_?)')
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith('#') or line == '---':
            continue
        lines.append(prefix.sub(r'ROLE_\1', line))
    return lines


def task_files(roles_dir: Path) -> list[tuple[str, Path, list[str]]]:
    """(role, path, normalized lines) of every role task file of MIN_LINES lines or more."""
    found = []
    for path in sorted(roles_dir.glob('*/tasks/**/*.yml')):
        role = path.relative_to(roles_dir).parts[0]
        if len(path.read_text().splitlines()) >= MIN_LINES:
            found.append((role, path, normalized(path, role)))
    return found


def near_copies(roles_dir: Path) -> list[tuple[float, str, str]]:
    """Pairs of task files of different roles at least SIMILAR alike, most alike first."""
    pairs = []
    for (role_a, path_a, lines_a), (role_b, path_b, lines_b) in itertools.combinations(task_files(roles_dir), 2):
        if role_a == role_b:
            continue
        matcher = difflib.SequenceMatcher(None, lines_a, lines_b, autojunk=False)
        if matcher.real_quick_ratio() < SIMILAR or matcher.quick_ratio() < SIMILAR:
            continue
        ratio = matcher.ratio()
        if ratio >= SIMILAR:
            pairs.append((ratio, str(path_a.relative_to(roles_dir)), str(path_b.relative_to(roles_dir))))
    return sorted(pairs, reverse=True)


def test_no_role_task_file_is_a_near_copy_of_another_roles():
    found = near_copies(ROOT / 'roles')
    assert found == [], 'role task files copied between roles (fold them into one included role):\n' + '\n'.join(
        f'  {ratio:.0%}  {a}  ~  {b}' for ratio, a, b in found)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


GATE = '''---
# {role}'s gate
- name: Gate | Refuse to prompt for several hosts at once
  ansible.builtin.fail:
    msg: >-
      {{{{ {role}__label }}}}Interactive confirmation covers one host at a time.
  when:
    - {role}__approval_mode in ['confirm', 'prompt']
    - ansible_play_batch | length > 1

- name: Gate | Ask for approval (trdrhub.incident.approval)
  trdrhub.incident.approval:
    incident_id: "{{{{ {role}_incident_id }}}}"
    action: {action}
    priority: "{{{{ {role}_priority }}}}"
    mode: "{{{{ {role}__approval_mode }}}}"
    timeout: "{{{{ {role}_approval_timeout | default(omit, true) }}}}"
    poll_interval: "{{{{ {role}_approval_poll_interval }}}}"
    store_backend: "{{{{ {role}_approval_store_backend }}}}"
    fail_on_denied: false
  register: {role}__approval
  when: {role}__approval_mode != 'confirm'

- name: Gate | Stop unless confirmed
  ansible.builtin.fail:
    msg: "{{{{ {role}__label }}}}Not confirmed."
  when: not {role}__confirmed
'''


@pytest.mark.parametrize('second, action, expected', [
    ('block_ips', 'block_ips', 1),          # the same file pasted and renamed: a copy
    ('contain_db', 'terminate_sessions', 1),  # same role, other file name: not compared
])
def test_a_renamed_copy_in_another_role_is_found(tmp_path, second, action, expected):
    write(tmp_path, 'contain_db/tasks/gate.yml', GATE.format(role='contain_db', action='terminate_sessions'))
    write(tmp_path, f'{second}/tasks/approval.yml', GATE.format(role=second, action=action))
    found = near_copies(tmp_path)
    if second == 'contain_db':
        assert found == []
    else:
        assert len(found) == expected and found[0][0] >= SIMILAR, found
        assert {found[0][1], found[0][2]} == {'contain_db/tasks/gate.yml', 'block_ips/tasks/approval.yml'}


def test_short_and_different_files_are_not_reported(tmp_path):
    short = '\n'.join(f'- name: step {i}\n  ansible.builtin.debug:\n    msg: {i}' for i in range(3))
    write(tmp_path, 'a/tasks/main.yml', short)
    write(tmp_path, 'b/tasks/main.yml', short)   # identical, but under MIN_LINES lines
    write(tmp_path, 'c/tasks/main.yml', GATE.format(role='c', action='restore_db'))
    different = '\n'.join(f'- name: collect {i}\n  trdrhub.incident.redis_info:\n    db: {i}\n  register: c__r{i}' for i in range(8))
    write(tmp_path, 'd/tasks/main.yml', different)
    assert near_copies(tmp_path) == []
