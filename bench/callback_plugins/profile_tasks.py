"""Time per task for bench/procedures_bench.py --profile: from a task's start to the next one's (or the play's end).

Enabled only by the benchmark (ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins,
ANSIBLE_CALLBACKS_ENABLED=...,profile_tasks); writes a JSON list of {task, action, seconds}
to the file named by TRDRHUB_BENCH_PROFILE (``skipped`` is true for a task whose every result was a skip). The time between two task starts includes the
controller's templating, conditionals and includes as well as the module run.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: profile_tasks
    type: aggregate
    short_description: time per task, written as JSON for the procedures benchmark
    description: Writes a JSON list of task, action and seconds to the file named by TRDRHUB_BENCH_PROFILE.
    requirements: [enable in the callbacks_enabled setting]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "profile_tasks"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.rows: list = []
        self.current = None
        self.results = self.skips = 0

    def _close(self) -> None:
        if self.current is not None:
            task, action, started = self.current
            self.rows.append({"task": task, "action": action, "seconds": round(time.perf_counter() - started, 4),
                              "skipped": self.results > 0 and self.skips == self.results})
            self.current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self.current = (task.get_name(), task.action, time.perf_counter())
        self.results = self.skips = 0

    def v2_runner_on_ok(self, result, *args, **kwargs):
        self.results += 1

    v2_runner_on_failed = v2_runner_on_unreachable = v2_runner_on_ok

    def v2_runner_on_skipped(self, result, *args, **kwargs):
        self.results += 1
        self.skips += 1

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
        path = os.environ.get("TRDRHUB_BENCH_PROFILE")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.rows, out)
