# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""No task that changes production is reachable without passing an approval gate first.

Walks every playbook and every role entry point in task order, following blocks, includes,
imports and roles, and tracks the gates passed so far with the conditions they ran under. A
state-changing step (``STATE_CHANGING`` below, the one list of them) counts as gated when a gate
ran before it under conditions that are a subset of its own - a gate that only runs when
``state == 'present'`` does not cover a step that also runs for ``state == 'absent'``.

A gate is a ``trdrhub.incident.approval`` task, the ``approval_gate`` role, or the inclusion of a
tasks file that asks ``trdrhub.incident.approval`` and stops the play unless approved. The gate
itself - the prompt, the request, the decision - lives in the ``approval_gate`` role only; every
role includes it (``test_the_gate_lives_in_one_role``).
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NS = 'trdrhub.incident.'

# The state-changing steps: module -> None (every use), or (option, values of it that change state; a
# templated value counts). A task with `check_mode: true` only predicts (it is evidence) and never counts.
# pg_maintenance changes state in the sense meant here only with VACUUM FULL (it rewrites tables under an
# exclusive lock); a plain VACUUM ANALYZE is routine - on production maintain_db passes `full` templated, so
# its every run counts and must be gated. git_revert pushes a commit to the configuration repository.
STATE_CHANGING: dict[str, tuple[str, frozenset[str]] | None] = {
    'trdrhub.incident.pg_terminate_sessions': None,
    'trdrhub.incident.k8s_rollout': ('action', frozenset({'scale', 'set_env', 'restart', 'undo'})),
    'trdrhub.incident.rotate_secrets': None,
    'trdrhub.incident.database_url': None,
    'trdrhub.incident.pg_restore_db': None,
    'trdrhub.incident.pg_maintenance': ('full', frozenset({'True', 'true', 'yes'})),
    'trdrhub.incident.git_revert': None,
    'ansible.builtin.iptables': None,
    'community.general.iptables_state': None,
    'ansible.builtin.service': None,
    'ansible.builtin.systemd': None,
    'ansible.builtin.systemd_service': None,
}
# Commands that change state: iptables, and the compose commands app_control and use_pooler run.
STATE_CHANGING_COMMANDS = re.compile(r'\b(iptables|ip6tables|nft|app_control__commands|use_pooler__commands|systemctl)\b')
COMMAND_MODULES = ('ansible.builtin.command', 'ansible.builtin.shell')
GATE_ROLE = 'trdrhub.incident.approval_gate'
GATE_MODULE = 'trdrhub.incident.approval'

KEYWORDS = {
    'name', 'when', 'register', 'loop', 'loop_control', 'vars', 'tags', 'become', 'become_user', 'delegate_to',
    'delegate_facts', 'changed_when', 'failed_when', 'check_mode', 'run_once', 'no_log', 'ignore_errors', 'notify',
    'environment', 'module_defaults', 'args', 'retries', 'delay', 'until', 'block', 'rescue', 'always', 'listen',
    'any_errors_fatal', 'diff', 'throttle', 'timeout', 'connection', 'with_items', 'with_dict', 'ignore_unreachable',
    'collections', 'debugger', 'port', 'remote_user',
}
INCLUDES = {'ansible.builtin.include_tasks', 'ansible.builtin.import_tasks', 'include_tasks', 'import_tasks'}
ROLE_INCLUDES = {'ansible.builtin.include_role', 'ansible.builtin.import_role', 'include_role', 'import_role'}


def load(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text()) or []


def module_of(task: t.Mapping[str, t.Any]) -> str | None:
    for key in task:
        if key not in KEYWORDS:
            return key if '.' in key else NS + key if key in {m.split('.')[-1] for m in STATE_CHANGING} else key
    return None


def conditions(task: t.Mapping[str, t.Any]) -> frozenset[str]:
    when = task.get('when')
    if when is None:
        return frozenset()
    items = when if isinstance(when, list) else [when]
    return frozenset(' '.join(str(item).split()) for item in items)


def role_dir(name: str) -> Path | None:
    short = name[len(NS):] if name.startswith(NS) else name
    path = ROOT / 'roles' / short
    return path if path.is_dir() else None


def role_tasks(name: str, tasks_from: str | None = None) -> Path | None:
    found = role_dir(name)
    if found is None:
        return None
    entry = tasks_from or 'main'
    return found / 'tasks' / (entry if entry.endswith(('.yml', '.yaml')) else entry + '.yml')


def is_gate_file(path: Path) -> bool:
    """A tasks file that asks the approval gate and stops the play unless approved."""
    text = path.read_text()
    return (GATE_MODULE + ':' in text or GATE_ROLE in text) and 'ansible.builtin.fail' in text


class Walker:
    def __init__(self) -> None:
        self.ungated: list[str] = []
        self.changing_seen = 0

    def covered(self, gates: list[frozenset[str]], when: frozenset[str]) -> bool:
        """A gate covers a step when each of its conditions holds wherever the step runs.

        A condition on check mode is left out (in check mode the step only predicts); ``a or b`` holds
        when the step requires ``a`` or ``b``.
        """
        def holds(condition: str) -> bool:
            return ('ansible_check_mode' in condition or condition in when
                    or any(part.strip() in when for part in condition.split(' or ')))
        return any(all(holds(condition) for condition in gate) for gate in gates)

    def changes(self, task: t.Mapping[str, t.Any], module: str) -> bool:
        if task.get('check_mode') is True:
            return False
        if module in COMMAND_MODULES:
            return bool(STATE_CHANGING_COMMANDS.search(yaml.safe_dump(task[module]) + str(task.get('loop', ''))))
        if module not in STATE_CHANGING:
            return False
        rule = STATE_CHANGING[module]
        if rule is None:
            return True
        option, values = rule
        value = str((task.get(module) or {}).get(option, ''))
        return '{{' in value or value in values

    def tasks(self, tasks: t.Any, where: Path, when: frozenset[str], gates: list[frozenset[str]],
              stack: tuple[Path, ...]) -> list[frozenset[str]]:
        """Walk ``tasks`` in order; returns the gates passed by the end."""
        gates = list(gates)
        for task in tasks or []:
            if not isinstance(task, dict):
                continue
            here = when | conditions(task)
            label = f"{where.relative_to(ROOT)}: {task.get('name', '?')}"
            if 'block' in task:
                after = self.tasks(task['block'], where, here, gates, stack)
                for part in ('rescue', 'always'):
                    self.tasks(task.get(part), where, here, gates, stack)
                gates = after
                continue
            module = module_of(task)
            args = task.get(module) if module else None
            if module == GATE_MODULE:
                gates.append(here)
            elif module in ROLE_INCLUDES:
                name = args['name'] if isinstance(args, dict) else str(args)
                if name == GATE_ROLE:
                    gates.append(here)
                    continue
                path = role_tasks(name, args.get('tasks_from') if isinstance(args, dict) else None)
                if path is not None:
                    gates = self.file(path, here, gates, stack)
            elif module in INCLUDES:
                name = args.get('file') if isinstance(args, dict) else args
                assert '{{' not in str(name), f'{label}: cannot follow a templated include ({name})'
                path = (where.parent / str(name)).resolve()
                assert path.is_file(), f'{label}: {path} does not exist'
                if is_gate_file(path):
                    gates.append(here)
                else:
                    gates = self.file(path, here, gates, stack)
            elif module and self.changes(task, module):
                self.changing_seen += 1
                if not self.covered(gates, here):
                    self.ungated.append(f"{' -> '.join(str(p.relative_to(ROOT)) for p in stack)}: {task.get('name', module)}"
                                        f' ({module}) is reachable without an approval gate')
        return gates

    def file(self, path: Path, when: frozenset[str], gates: list[frozenset[str]],
             stack: tuple[Path, ...] = ()) -> list[frozenset[str]]:
        if path in stack:
            return gates
        return self.tasks(load(path), path, when, gates, stack + (path,))

    def playbook(self, path: Path) -> None:
        for play in load(path):
            if 'import_playbook' in play:
                continue
            gates: list[frozenset[str]] = []
            for section in ('pre_tasks', 'roles', 'tasks', 'post_tasks'):
                if section == 'roles':
                    for role in play.get('roles') or []:
                        name = role if isinstance(role, str) else role.get('role') or role.get('name')
                        found = role_tasks(name)
                        if found is not None:
                            gates = self.file(found, conditions(role) if isinstance(role, dict) else frozenset(),
                                              gates, (path,))
                else:
                    gates = self.tasks(play.get(section), path, frozenset(), gates, (path,))


def entry_points() -> list[Path]:
    """Every role's main tasks and each entry point its argument specs declare."""
    found = []
    for role in sorted((ROOT / 'roles').iterdir()):
        specs = role / 'meta' / 'argument_specs.yml'
        names = set(((load(specs) or {}).get('argument_specs') or {}).keys()) if specs.is_file() else set()
        for name in sorted(names | {'main'}):
            path = role / 'tasks' / f'{name}.yml'
            if path.is_file() and role.name != 'approval_gate':
                found.append(path)
    return found


PLAYBOOKS = sorted((ROOT / 'playbooks').glob('*.yml'))


@pytest.mark.parametrize('path', PLAYBOOKS + entry_points(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_state_changing_step_without_a_gate_first(path):
    walker = Walker()
    if path.parent.name == 'playbooks':
        walker.playbook(path)
    else:
        walker.file(path, frozenset(), [], (path,))
    assert walker.ungated == [], '\n'.join(walker.ungated)


def test_the_walker_sees_the_destructive_steps():
    """The check itself works: it finds the steps, and an ungated copy of one is reported."""
    seen = {}
    for name in ('contain_db.yml', 'rollback.yml', 'rotate_secrets.yml', 'block_ips.yml', 'recover_db.yml',
                 'maintain_db.yml', 'config_rollback.yml'):
        walker = Walker()
        walker.playbook(ROOT / 'playbooks' / name)
        seen[name] = walker.changing_seen
    assert all(seen.values()), seen
    walker = Walker()
    walker.tasks([{'name': 'evidence', 'trdrhub.incident.k8s_rollout': {'action': 'undo'}, 'check_mode': True},
                  {'name': 'status', 'trdrhub.incident.k8s_rollout': {'action': 'status'}},
                  {'name': 'gate', 'trdrhub.incident.approval': {}, 'when': "mode == 'store'"},
                  {'name': 'undo', 'trdrhub.incident.k8s_rollout': {'action': 'undo'}},
                  {'name': 'gated undo', 'trdrhub.incident.k8s_rollout': {'action': 'undo'}, 'when': ["mode == 'store'"]},
                  {'name': 'flush', 'ansible.builtin.command': {'argv': ['iptables', '-F', 'INPUT']}}],
                 ROOT / 'playbooks' / 'x.yml', frozenset(), [], (ROOT / 'playbooks' / 'x.yml',))
    assert [line.split(': ', 1)[1].split(' (')[0] for line in walker.ungated] == ['undo', 'flush']


# Asks trdrhub.incident.approval itself, outside the gate role: the response procedure asks once for the
# application's containment and its restart together, then hands that approval to the gate (approval_gate_covered_by).
OWN_APPROVAL = {'roles/respond/tasks/contain_app.yml'}


def test_the_gate_lives_in_one_role():
    """No role or playbook prompts or asks the approval module on its own: the approval_gate role does, once."""
    asking = set()
    for path in sorted(list((ROOT / 'roles').glob('*/tasks/**/*.yml')) + PLAYBOOKS):
        text = path.read_text()
        if GATE_MODULE + ':' in text or 'ansible.builtin.pause' in text:
            asking.add(str(path.relative_to(ROOT)))
    assert asking == {'roles/approval_gate/tasks/main.yml'} | OWN_APPROVAL
    for role in ('contain_db', 'block_ips', 'contain_security', 'recover_db', 'app_control', 'rotate_secrets',
                 'maintain_db', 'config_rollback'):
        texts = [p.read_text() for p in (ROOT / 'roles' / role / 'tasks').glob('*.yml')]
        assert any(GATE_ROLE in text for text in texts), f'{role} does not include {GATE_ROLE}'
