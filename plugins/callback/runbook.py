# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: runbook
type: stdout
short_description: Screen output of a response procedure - what changed, what was decided, and the summary
version_added: 1.0.0
author:
  - TRDR Hub SRE (@trdrhub)
description:
  - The default output of Ansible, minus what an on-call engineer does not need to read during an incident.
  - "At the default verbosity the run reads as a narrative: a message a task prints (M(ansible.builtin.debug) - the
    phase headers, decisions and summaries of the roles) is shown as plain text after a blank line; a task that changed
    something is one line, C(changed: [host] role : task); a failure, an unreachable host and a retry are shown as the
    default callback shows them, with the task's header. Results that are ok without a change, skipped results and the
    C(included: ...) lines are hidden. Play headers, warnings, diffs and the recap stay."
  - A message that is not text or a list of text (a dictionary, C(var=...)) is shown as the default callback shows it.
  - With C(-v) or more the output is that of the default callback, with its O(display_ok_hosts),
    O(display_skipped_hosts) and C(display_included_hosts) settings.
  - Selected with C(stdout_callback = trdrhub.incident.runbook) in C(ansible.cfg) (this repository's C(ansible.cfg)
    does) or E(ANSIBLE_STDOUT_CALLBACK=trdrhub.incident.runbook).
  - Python library warnings printed before Ansible loads any plugin (such as C(CryptographyDeprecationWarning) on
    DSA) cannot be filtered by a plugin; set E(PYTHONWARNINGS=ignore:DSA is deprecated) in the environment of
    C(ansible-playbook) (C(docs/output.md)).
extends_documentation_fragment:
  - ansible.builtin.default_callback
  - ansible.builtin.result_format_callback
requirements:
  - Set as the stdout callback in configuration.
"""

from ansible import constants as C
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

# Options of the default callback that the quiet (verbosity 0) output turns off.
QUIET_OFF = frozenset(('display_ok_hosts', 'display_skipped_hosts', 'display_included_hosts'))
MESSAGE_ACTIONS = frozenset(('debug', 'ansible.builtin.debug', 'ansible.legacy.debug'))


def prints_message(task, result: dict) -> bool:
    """Whether a result is a message meant for the reader: the output of a debug task (not of a debug loop as a whole)."""
    return getattr(task, 'action', None) in MESSAGE_ACTIONS and 'results' not in result


class CallbackModule(DefaultCallbackModule):
    """The default callback that hides ok-without-change, skipped and include results unless -v."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'trdrhub.incident.runbook'

    def __init__(self):
        super().__init__()
        self._show_message = False

    def _quiet(self) -> bool:
        return self._display.verbosity < 1

    def get_option(self, k, *args, **kwargs):
        if k in QUIET_OFF and self._quiet():
            return k == 'display_ok_hosts' and self._show_message
        return super().get_option(k, *args, **kwargs)

    def _ok(self, method, result) -> None:
        self._show_message = prints_message(result.task, result.result)
        try:
            method(result)
        finally:
            self._show_message = False

    def _quiet_ok(self, result, item: bool) -> bool:
        """Show an ok task (or loop item) the quiet way; False when the default output applies instead."""
        if not self._quiet():
            return False
        task, res = result.task, result.result
        if isinstance(task, TaskInclude):
            return True
        if prints_message(task, res) and self._say(result):
            return True
        if res.get('changed', False):
            self._handle_warnings_and_exception(result)
            if item:
                self._changed(result, f' (item={self._get_item_label(res)})')
            elif not (task.loop and 'results' in res):   # a loop's items were shown one by one
                self._changed(result)
            return True
        return item   # an unchanged item shows nothing; an unchanged task shows as ok

    def v2_runner_on_ok(self, result) -> None:
        if not self._quiet_ok(result, item=False):
            self._ok(super().v2_runner_on_ok, result)

    def v2_runner_item_on_ok(self, result) -> None:
        if not self._quiet_ok(result, item=True):
            self._ok(super().v2_runner_item_on_ok, result)

    def _say(self, result) -> bool:
        """Print a debug message as plain text; False when it is not text (the default display then shows it)."""
        msg = result.result.get('msg')
        if isinstance(msg, str):
            lines = msg.splitlines() or ['']
        elif isinstance(msg, (list, tuple)) and all(isinstance(m, (str, int, float)) for m in msg):
            lines = [str(m) for m in msg]
        else:
            return False
        self._handle_warnings_and_exception(result)
        host = self.host_label(result)
        if host != 'localhost':
            lines[0] = f'[{host}] {lines[0]}'
        self._display.display('')
        for line in lines:
            self._display.display(line)
        return True

    def _changed(self, result, suffix: str = '') -> None:
        try:
            name = result.task.get_name(include_role_fqcn=False)
        except TypeError:
            name = result.task.get_name()
        self._display.display(f'changed: [{self.host_label(result)}] {name.strip()}{suffix}', color=C.COLOR_CHANGED)

    def v2_playbook_on_include(self, included_file) -> None:
        if self._quiet():
            return
        super().v2_playbook_on_include(included_file)

    def v2_runner_retry(self, result) -> None:
        # A retry line under the header of a task that is otherwise hidden would name no task.
        if self._quiet() and self._last_task_banner != result.task._uuid:
            self._print_task_banner(result.task)
        super().v2_runner_retry(result)
