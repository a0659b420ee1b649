# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Host resources, application logs and recent deployment commits in the investigation bundle and its findings."""

from __future__ import annotations

import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.investigate import build_report
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.sources import GIT_FORMAT, parse_commits

NOW = '2025-01-15T14:30:00+00:00'


def host(name, **overrides):
    result = {
        'changed': False, 'item': name, 'ansible_loop_var': 'item', 'invocation': {'module_args': {}},
        'cpu': {'cores': 4, 'load1': 1.0, 'load5': 1.0, 'load15': 1.0, 'load_per_core': 0.25, 'busy_percent': 20.0,
                'iowait_percent': 1.0, 'steal_percent': 0.0},
        'memory': {'total_bytes': 8 << 30, 'used_bytes': 2 << 30, 'used_ratio': 0.25, 'swap_total_bytes': 0, 'swap_used_bytes': 0},
        'filesystems': [{'mount': '/', 'device': '/dev/vda1', 'size_bytes': 100 << 30, 'used_ratio': 0.5, 'available_bytes': 50 << 30,
                         'inodes': 1000, 'inodes_used': 10, 'inodes_used_ratio': 0.01, 'error': None}],
        'processes': {'by_cpu': [{'pid': 1, 'user': 'root', 'cpu_percent': 1.0, 'rss_bytes': 1 << 20, 'command': 'init'}],
                      'by_memory': []},
        'disks': [{'device': 'vda', 'reads_per_s': 1.0, 'writes_per_s': 2.0, 'read_kb_per_s': 4.0, 'write_kb_per_s': 8.0,
                   'await_ms': 0.5, 'util_percent': 3.0}],
        'reachability': [{'target': 'db:5432', 'address': '10.0.0.5', 'reachable': True, 'latency_ms': 0.4, 'error': None}],
        'unreachable_targets': [],
    }
    result.update(overrides)
    return result


def report(collected, **kw):
    collected = {name: {'result': value, 'collected_at': NOW} for name, value in collected.items()}
    return build_report(collected, 'INC-2025-0042', NOW, **kw)


def test_a_healthy_host_has_no_finding_and_one_entry_per_host():
    out = report({'host_resources': {'changed': False, 'results': [host('app-1'), host('db-1')], 'msg': 'All items completed'}})
    section = out['bundle']['collectors']['host_resources']
    assert section['status'] == 'ok' and section['error'] is None
    assert [(h['host'], h['status']) for h in section['result']['hosts']] == [('app-1', 'ok'), ('db-1', 'ok')]
    assert 'invocation' not in section['result']['hosts'][0] and 'item' not in section['result']['hosts'][0]
    assert out['findings'] == []
    assert '### app-1' in out['summary'] and '| db:5432 | 10.0.0.5 | yes | 0.4 |' in out['summary']


def test_disk_inodes_swap_load_and_unreachable_are_findings():
    bad = host('db-1', cpu=dict(host('x')['cpu'], load1=9.0, load_per_core=2.25),
               memory=dict(host('x')['memory'], swap_total_bytes=1 << 30, swap_used_bytes=200 << 20),
               filesystems=[{'mount': '/var/lib/postgresql', 'device': '/dev/vdb', 'used_ratio': 0.99, 'available_bytes': 1 << 20,
                             'inodes': 100, 'inodes_used': 95, 'inodes_used_ratio': 0.95, 'error': None}],
               reachability=[{'target': 'redis:6379', 'address': '10.0.0.6', 'reachable': False, 'error': 'Connection refused'}])
    out = report({'host_resources': {'results': [bad]}})
    assert out['headline'] == [
        'CRITICAL host_resources: Disk /var/lib/postgresql on db-1 is 99% full - 1048576 bytes left on /dev/vdb',
        'CRITICAL host_resources: redis:6379 unreachable from db-1 - Connection refused',
        'WARNING host_resources: Inodes of /var/lib/postgresql on db-1 are 95% used - 95 of 100',
        'WARNING host_resources: Swap in use on db-1: 200 MiB - memory 25% used',
        'WARNING host_resources: Load on db-1 above its CPUs: 9.0 on 4 core(s) - busy 20.0 %, iowait 1.0 %',
    ]


def test_thresholds_are_configurable():
    nearly = host('app-1', filesystems=[dict(host('x')['filesystems'][0], used_ratio=0.85)],
                  memory=dict(host('x')['memory'], swap_used_bytes=10 << 20))
    assert report({'host_resources': {'results': [nearly]}})['findings'][0]['title'] == 'Swap in use on app-1: 10 MiB'
    out = report({'host_resources': {'results': [nearly]}},
                 thresholds={'disk_usage_ratio': 0.8, 'swap_used_bytes': 100 << 20})
    assert [f['title'] for f in out['findings']] == ['Disk / on app-1 is 85% full']


def test_an_unreachable_host_is_a_finding_the_others_kept():
    down = {'item': 'app-2', 'unreachable': True, 'msg': 'Failed to connect to the host via ssh'}
    out = report({'host_resources': {'results': [host('app-1'), down], 'failed': True, 'msg': 'One or more items failed'}})
    section = out['bundle']['collectors']['host_resources']
    assert section['status'] == 'ok'
    assert out['headline'] == ['WARNING host_resources: Host app-2 not read - Failed to connect to the host via ssh']
    alone = report({'host_resources': {'results': [down], 'failed': True}})['bundle']['collectors']['host_resources']
    assert alone['status'] == 'error' and alone['error'] == 'app-2: Failed to connect to the host via ssh'


def test_application_logs_error_lines_and_unreadable_logs():
    logs = {'changed': False, 'logs': [
        {'source': 'kubernetes', 'deployment': 'trdrhub-api', 'pod': 'api-1', 'container': 'api', 'previous': True,
         'lines': ['INFO ok', 'ERROR db down', 'Traceback (most recent call last):'], 'line_count': 3, 'error': None},
        {'source': 'kubernetes', 'deployment': 'trdrhub-api', 'pod': 'api-2', 'container': 'api', 'previous': False,
         'lines': [], 'line_count': 0, 'error': 'container "api" is waiting to start: ContainerCreating'},
        {'source': 'compose', 'service': 'api', 'lines': ['api-1 | INFO fine'], 'line_count': 1, 'error': None}]}
    out = report({'app_logs': logs})
    assert out['headline'] == [
        'WARNING app_logs: 2 error line(s) in the last 3 of pod api-1 (api, previous instance) - Traceback (most recent call last):',
        'INFO app_logs: Log of pod api-2 (api) not readable - container "api" is waiting to start: ContainerCreating']
    assert '```text\nINFO ok\nERROR db down\nTraceback (most recent call last):\n```' in out['summary']
    assert '**compose service api**' in out['summary']


def test_log_lines_with_a_known_secret_are_masked_in_the_bundle():
    logs = {'logs': [{'source': 'compose', 'service': 'api', 'lines': ['connecting with s3cret-pw-1'], 'line_count': 1}]}
    out = report({'app_logs': logs}, secrets=['s3cret-pw-1'])
    assert 's3cret-pw-1' not in json.dumps(out)


def test_recent_commits_parsed_and_a_recent_one_is_a_finding():
    sep = '\x1f'
    stdout = '\n'.join([
        sep.join(['a' * 40, 'aaaaaaa', '2025-01-15T14:00:00+00:00', 'Dev One', 'HEAD -> main, tag: v1.4.2', 'Raise pool size']),
        sep.join(['b' * 40, 'bbbbbbb', '2025-01-10T09:00:00+00:00', 'Dev Two', '', 'Add index']),
        'not a commit line'])
    raw = {'changed': False, 'cmd': ['git', '-C', '/srv/deploy', 'log', '-n', '10', f'--format={GIT_FORMAT}'], 'stdout': stdout,
           'stderr': '', 'rc': 0}
    out = report({'recent_commits': raw})
    section = out['bundle']['collectors']['recent_commits']['result']
    assert section == {'repository': '/srv/deploy', 'commits': [
        {'commit': 'a' * 40, 'short': 'aaaaaaa', 'date': '2025-01-15T14:00:00+00:00', 'author': 'Dev One',
         'refs': ['HEAD -> main', 'tag: v1.4.2'], 'subject': 'Raise pool size'},
        {'commit': 'b' * 40, 'short': 'bbbbbbb', 'date': '2025-01-10T09:00:00+00:00', 'author': 'Dev Two', 'refs': [],
         'subject': 'Add index'}]}
    assert out['headline'] == ['INFO recent_commits: Recent commit in the deployment repository: aaaaaaa Raise pool size - '
                               'Dev One at 2025-01-15T14:00:00+00:00']
    assert '| aaaaaaa | 2025-01-15T14:00:00+00:00 | Dev One | HEAD -> main, tag: v1.4.2 | Raise pool size |' in out['summary']


def test_a_failed_git_log_says_why():
    raw = {'failed': True, 'msg': 'non-zero return code', 'rc': 128, 'cmd': ['git', '-C', '/nope', 'log'], 'stdout': '',
           'stderr': "fatal: cannot change to '/nope': No such file or directory\n"}
    section = report({'recent_commits': raw})['bundle']['collectors']['recent_commits']
    assert section['status'] == 'error'
    assert section['error'] == "fatal: cannot change to '/nope': No such file or directory"


@pytest.mark.parametrize('line', ['', 'abc', '\x1f' * 3])
def test_parse_commits_ignores_other_lines(line):
    assert parse_commits(line) == []


def test_pooler_findings_paused_is_critical_a_wait_a_warning():
    from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.sources import pooler_findings
    found = []
    pooler_findings({'findings': ['database lcopilot is PAUSED on the pooler (RESUME lcopilot lifts it)',
                                  'pool lcopilot/trdrhub: 2 client(s) waiting for a server connection, the longest for 3 s']},
                    lambda severity, title, detail: found.append((severity, title)))
    assert found == [('critical', 'PgBouncer database lcopilot is PAUSED on the pooler (RESUME lcopilot lifts it)'),
                     ('warning', 'PgBouncer pool lcopilot/trdrhub: 2 client(s) waiting for a server connection, the longest for 3 s')]
