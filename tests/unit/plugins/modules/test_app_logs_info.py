# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""app_logs_info with source=compose against a stand-in docker on PATH: the command it runs, check mode, secrets."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import app_logs_info as mod

FAKE_DOCKER = """#!{python}
import json, os, sys
with open(os.environ['FAKE_DOCKER_LOG'], 'a') as log:
    log.write(json.dumps({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}) + '\\n')
if sys.argv[-1] == 'missing':
    sys.stderr.write('no such service: missing\\n')
    sys.exit(1)
for i in range(1, 6):
    print(f'api-1  | INFO request {{i}} DATABASE_URL=postgresql://app:db-pass-77@db/lcopilot')
"""


@pytest.fixture
def docker(tmp_path, monkeypatch):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    script = bindir / 'docker'
    script.write_text(FAKE_DOCKER.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / 'calls.jsonl'
    monkeypatch.setenv('PATH', f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv('FAKE_DOCKER_LOG', str(log))
    project = tmp_path / 'project'
    project.mkdir()
    return project, lambda: [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize('check_mode', [False, True])
def test_compose_logs_read_in_check_mode_too(run_module, docker, check_mode):
    project, calls = docker
    result = run_module(mod, {'source': 'compose', 'project_dir': str(project), 'compose_files': ['docker-compose.yml'],
                              'services': ['api'], 'tail_lines': 3, 'redact': ['lcopilot']}, check_mode=check_mode)
    assert 'failed' not in result, result
    assert result['commands'] == [f'docker compose --project-directory {project} --file=docker-compose.yml logs --no-color --tail 3 api']
    assert calls() == [{'argv': ['compose', '--project-directory', str(project), '--file=docker-compose.yml', 'logs', '--no-color',
                                 '--tail', '3', 'api'], 'cwd': str(project)}]
    (entry,) = result['logs']
    assert entry['line_count'] == 3
    assert entry['lines'][0] == 'api-1  | INFO request 3 DATABASE_URL=postgresql://app:********@db/********'
    assert 'db-pass-77' not in json.dumps(result)


def test_a_failing_service_is_an_entry_the_others_still_read(run_module, docker):
    project, _calls = docker
    result = run_module(mod, {'source': 'compose', 'project_dir': str(project), 'services': ['missing', 'api']})
    assert 'failed' not in result
    assert [e['error'] for e in result['logs']] == ['no such service: missing', None]


def test_without_docker_the_module_says_so(run_module, tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path))
    result = run_module(mod, {'source': 'compose', 'compose_command': ['docker', 'compose']})
    assert result['failed'] is True
    assert result['msg'] == 'Cannot run docker: docker: command not found - is docker compose installed on this host?'


@pytest.mark.parametrize('args, msg', [
    ({'source': 'compose', 'services': []}, 'services must name at least one, and no empty name'),
    ({'deployments': ['']}, 'deployments must name at least one, and no empty name'),
    ({'source': 'compose', 'compose_command': []}, 'compose_command must not be empty'),
    ({'tail_lines': 0}, 'tail_lines must be between 1 and 10000, got 0'),
])
def test_bad_input(run_module, args, msg):
    result = run_module(mod, args)
    assert result['failed'] is True and result['msg'] == msg
