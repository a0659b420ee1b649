# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action plugin for trdrhub.incident.incident_files: the files are written on the controller.

An incident's directory (its ledger, bundles and review) lives in the incidents home on the
controller. Writing there in the controller process costs no module process at all, where a
directory task and a copy task per file cost one or two each.
"""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import validate_task_args
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.files import FILES_ARGS, write_files


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars or {})
        del tmp
        params, problem = validate_task_args(FILES_ARGS, self._task.args)
        if problem:
            result.update(failed=True, changed=False, msg=problem)
            return result
        try:
            result.update(write_files(params, check_mode=bool(self._task.check_mode), want_diff=bool(self._task.diff)))
        except TrdrhubError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
        return result
