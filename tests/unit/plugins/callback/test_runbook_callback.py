# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trdrhub.incident.runbook stdout callback: what a person sees by default, and with -v.

The option logic is tested on the callback object; the screen output by running a small playbook
with ansible-playbook (local connection, no inventory, no incident id, nothing written).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ansible_collections.trdrhub.incident.plugins.callback import runbook

PLAYBOOK_BIN = Path(sys.executable).parent / 'ansible-playbook'

PLAYBOOK = textwrap.dedent('''\
    - name: A play
      hosts: localhost
      gather_facts: false
      tasks:
        - name: Unchanged check
          ansible.builtin.command: "true"
          changed_when: false
        - name: Detail only at -v
          ansible.builtin.debug:
            msg: verbose detail
            verbosity: 1
        - name: Skipped step
          ansible.builtin.command: "true"
          when: false
        - name: Changing step
          ansible.builtin.command: "true"
        - name: Phase header
          ansible.builtin.debug:
            msg: phase 1/2 triage
        - name: Included tasks
          ansible.builtin.include_tasks: inner.yml
        - name: Failing step
          ansible.builtin.command: "false"
          ignore_errors: true
    ''')
INNER = '- name: Inner unchanged step\n  ansible.builtin.set_fact:\n    x: 1\n'


class FakeDisplay:
    def __init__(self, verbosity):
        self.verbosity = verbosity


class FakeTask:
    def __init__(self, action):
        self.action = action


@pytest.mark.parametrize(('action', 'result', 'shown'), [
    ('ansible.builtin.debug', {'msg': 'hello'}, True),
    ('debug', {'msg': 'hello'}, True),
    ('ansible.builtin.command', {'rc': 0}, False),
    ('ansible.builtin.assert', {'msg': 'All assertions passed', '_ansible_verbose_always': True}, False),
    ('ansible.builtin.debug', {'msg': 'All items completed', 'results': []}, False),
    ('ansible.builtin.set_fact', {'ansible_facts': {}}, False),
])
def test_which_unchanged_results_are_messages(action, result, shown):
    assert runbook.prints_message(FakeTask(action), result) is shown


@pytest.mark.parametrize('verbosity', [0, 1])
def test_quiet_options_apply_only_at_the_default_verbosity(verbosity):
    cb = runbook.CallbackModule()
    cb._display = FakeDisplay(verbosity)
    cb._plugin_options = {'display_ok_hosts': True, 'display_skipped_hosts': True, 'display_included_hosts': True,
                          'show_custom_stats': False}
    for option in runbook.QUIET_OFF:
        assert cb.get_option(option) is bool(verbosity)
    cb._show_message = True
    assert cb.get_option('display_ok_hosts') is True and cb.get_option('display_skipped_hosts') is bool(verbosity)
    assert cb.get_option('show_custom_stats') is False


def run(tmp_path, *args):
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    (tmp_path / 'inner.yml').write_text(INNER)
    # The collection as this test imported it; no ledger callback (no incident here).
    root = Path(runbook.__file__).parents[5]
    (tmp_path / 'ansible.cfg').write_text(f'[defaults]\ncollections_path = {root}\nstdout_callback = trdrhub.incident.runbook\n'
                                          'callback_result_format = yaml\nretry_files_enabled = false\n')
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'), PYTHONWARNINGS='ignore:DSA is deprecated')
    for name in ('ANSIBLE_STDOUT_CALLBACK', 'ANSIBLE_CALLBACKS_ENABLED', 'ANSIBLE_COLLECTIONS_PATH'):
        env.pop(name, None)
    proc = subprocess.run([str(PLAYBOOK_BIN), '-c', 'local', '-i', 'localhost,', '-e',
                           f'ansible_python_interpreter={sys.executable}', str(tmp_path / 'play.yml'), *args],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, proc.stderr


def banners(out):
    return [line.split('[', 1)[1].split(']', 1)[0] for line in out.splitlines() if line.startswith('TASK [')]


@pytest.mark.skipif(not PLAYBOOK_BIN.exists(), reason='ansible-playbook is not installed beside this Python')
def test_default_output_shows_changes_failures_and_messages_only(tmp_path):
    out, err = run(tmp_path)
    assert banners(out) == ['Failing step']   # a failure keeps the default display
    lines = [line for line in out.splitlines() if line]
    assert lines[0] == 'PLAY [A play] ' + '*' * (len(lines[0]) - len('PLAY [A play] '))   # the play, not a warning
    assert 'changed: [localhost] Changing step' in lines
    assert lines[lines.index('changed: [localhost] Changing step') + 1] == 'phase 1/2 triage'
    assert 'fatal: [localhost]: FAILED!' in out and '...ignoring' in out
    assert 'ok: [localhost]' not in out and 'skipping' not in out and 'included:' not in out
    assert 'Unchanged check' not in out and 'Inner unchanged step' not in out and 'verbose detail' not in out
    assert 'PLAY RECAP' in out and 'Warning' not in err


@pytest.mark.skipif(not PLAYBOOK_BIN.exists(), reason='ansible-playbook is not installed beside this Python')
def test_verbose_output_is_the_default_callbacks(tmp_path):
    out, dummy = run(tmp_path, '-v')
    assert banners(out) == ['Unchanged check', 'Detail only at -v', 'Skipped step', 'Changing step', 'Phase header',
                            'Included tasks', 'Inner unchanged step', 'Failing step']
    assert 'skipping: [localhost]' in out and 'included:' in out and 'verbose detail' in out
