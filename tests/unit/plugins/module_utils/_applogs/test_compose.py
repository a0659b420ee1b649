# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""docker compose logs: the command built, its output redacted, a failing service and a missing command."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.compose import ComposeLogs, compose_argv
from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.lines import AppLogsError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor

PARAMS = {'compose_command': ['docker', 'compose'], 'project_dir': '/srv/trdrhub', 'compose_files': ['docker-compose.yml'],
          'tail_lines': 50, 'max_line_length': 2000, 'services': ['api', 'worker']}


def test_command_names_the_project_files_and_tail():
    assert compose_argv(PARAMS, 'api') == ['docker', 'compose', '--project-directory', '/srv/trdrhub', '--file=docker-compose.yml',
                                           'logs', '--no-color', '--tail', '50', 'api']
    assert compose_argv(dict(PARAMS, project_dir=None, compose_files=[], compose_command=['docker-compose']), 'api') == \
        ['docker-compose', 'logs', '--no-color', '--tail', '50', 'api']


def test_each_service_read_and_redacted_a_failure_kept():
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[-1] == 'worker':
            return 1, '', 'no such service: worker\n'
        return 0, 'api-1  | INFO up\napi-1  | ERROR token=abc123secret rejected\n', ''

    reader = ComposeLogs(run, PARAMS, Redactor())
    api, worker = reader.run()
    assert api == {'source': 'compose', 'deployment': None, 'service': 'api', 'pod': None, 'container': None, 'previous': False,
                   'lines': ['api-1  | INFO up', 'api-1  | ERROR token=******** rejected'], 'line_count': 2, 'error': None}
    assert worker['error'] == 'no such service: worker' and worker['lines'] == []
    assert reader.commands == [' '.join(c) for c in calls]


@pytest.mark.parametrize('outcome', [OSError(2, 'No such file or directory'), (127, '', 'docker: not found')])
def test_a_missing_command_fails_the_read(outcome):
    def run(argv):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(AppLogsError, match=r'^Cannot run docker.*is docker compose installed on this host\?$'):
        ComposeLogs(run, PARAMS, Redactor()).run()
