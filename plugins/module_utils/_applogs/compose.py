# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""``docker compose logs --tail N <service>`` for each service, on the host that runs the compose project.

The command is built as the app_control role builds its compose commands (project directory
and files named explicitly), run without a shell, and its output redacted line by line.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.lines import AppLogsError, excerpt
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor

# (argv) -> (rc, stdout, stderr): AnsibleModule.run_command in the module, a fake in the unit tests.
Runner = t.Callable[[list[str]], tuple[int, str, str]]


def compose_argv(params: t.Mapping[str, t.Any], service: str) -> list[str]:
    argv = list(params['compose_command'])
    if params.get('project_dir'):
        argv += ['--project-directory', params['project_dir']]
    argv += [f'--file={f}' for f in params.get('compose_files') or []]
    return argv + ['logs', '--no-color', '--tail', str(params['tail_lines']), service]


class ComposeLogs:
    def __init__(self, run_command: Runner, params: t.Mapping[str, t.Any], redactor: Redactor) -> None:
        self.run_command = run_command
        self.params = params
        self.redactor = redactor
        self.commands: list[str] = []

    def service(self, name: str) -> dict[str, t.Any]:
        argv = compose_argv(self.params, name)
        self.commands.append(' '.join(argv))
        try:
            rc, out, err = self.run_command(argv)
        except OSError as exc:
            raise AppLogsError(f"Cannot run {argv[0]}: {exc.strerror or exc} - is docker compose installed on this host?") from None
        entry: dict[str, t.Any] = {'source': 'compose', 'deployment': None, 'service': name, 'pod': None, 'container': None,
                                   'previous': False, 'lines': [], 'line_count': 0, 'error': None}
        if rc == 127 or (rc and 'No such file or directory' in err and argv[0] in err):
            raise AppLogsError(f"Cannot run {' '.join(argv[:2])}: command not found - is docker compose installed on this host?")
        if rc != 0:
            entry['error'] = self.redactor.text(' '.join(err.split()) or f'{argv[0]} exited with {rc}')
            return entry
        entry.update(excerpt(out, self.redactor, self.params['tail_lines'], self.params['max_line_length']))
        return entry

    def run(self) -> list[dict[str, t.Any]]:
        return [self.service(name) for name in self.params['services']]
