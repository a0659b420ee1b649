# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""HostResources on a fake /proc tree: the rates over a sample, top processes, redacted command lines."""

from __future__ import annotations

import os

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import MASK, Redactor
from ansible_collections.trdrhub.incident.plugins.module_utils._host import resources
from fake_proc import FakeProc

PARAMS = {'sample_seconds': 2.0, 'top': 2, 'mounts': [], 'targets': [], 'connect_timeout': 1.0, 'connect_attempts': 1}
TICKS = os.sysconf('SC_CLK_TCK')


@pytest.fixture
def proc(tmp_path):
    data = tmp_path / 'data dir'
    data.mkdir()
    fake = FakeProc(tmp_path / 'proc', str(data))
    fake.process(10, 'postgres', ['postgres: trdrhub lcopilot 10.0.0.5(51234) SELECT'], ticks=100, rss_kb=200000, uid=os.getuid())
    fake.process(11, 'python3', ['gunicorn', 'app.main:app', '--db-password', 'hunter2-secret',
                                 '--api-key=k-123456789', 'postgresql://app:pw-in-url@db:5432/x'], ticks=50, rss_kb=900000)
    fake.process(12, 'kworker/0:1', [], ticks=0, rss_kb=0)
    return fake


def _sampled(monkeypatch, proc, **params):
    """Run with a fake clock: the 'sleep' advances the counters by what 2 s of work would add."""
    now = [100.0]

    def sleep(seconds):
        now[0] += seconds
        proc.tick(busy=300, idle=50, iowait=50, proc_ticks={10: 2 * TICKS, 11: TICKS // 2}, disk_ops=(40, 200), io_ms=1000)

    monkeypatch.setattr(resources, '_clock', lambda: now[0])
    monkeypatch.setattr(resources, '_sleep', sleep)
    worker = resources.HostResources(dict(PARAMS, **params), root=str(proc.root))
    return worker, worker.run()


def test_cpu_memory_and_disk_rates_over_the_sample(monkeypatch, proc):
    _worker, result = _sampled(monkeypatch, proc)
    assert result['sample_seconds'] == 2.0
    assert result['cpu'] == {'cores': 2, 'load1': 5.0, 'load5': 3.0, 'load15': 1.5, 'load_per_core': 2.5, 'running': 3,
                             'processes': 412, 'busy_percent': 75.0, 'iowait_percent': 12.5, 'steal_percent': 0.0}
    assert result['memory'] == {'total_bytes': 16384000000, 'available_bytes': 2048000000, 'used_bytes': 14336000000,
                                'used_ratio': 0.875, 'swap_total_bytes': 4096000000, 'swap_used_bytes': 1024000000,
                                'swap_used_ratio': 0.25}
    assert result['disks'] == [{'device': 'vda', 'reads_per_s': 20.0, 'writes_per_s': 100.0, 'read_kb_per_s': 80.0,
                                'write_kb_per_s': 800.0, 'await_ms': 2.83, 'util_percent': 50.0, 'in_flight': 0}]


def test_top_processes_by_cpu_and_memory_with_secrets_masked(monkeypatch, proc):
    _worker, result = _sampled(monkeypatch, proc)
    by_cpu, by_memory = result['processes']['by_cpu'], result['processes']['by_memory']
    assert [(p['pid'], p['cpu_percent']) for p in by_cpu] == [(10, 100.0), (11, 25.0)]
    assert [(p['pid'], p['rss_bytes']) for p in by_memory] == [(11, 900000 * 1024), (10, 200000 * 1024)]
    gunicorn = by_memory[0]
    assert gunicorn['user'] == 'root'
    assert 'hunter2-secret' not in gunicorn['command'] and 'k-123456789' not in gunicorn['command']
    assert 'pw-in-url' not in gunicorn['command']
    assert gunicorn['command'].startswith(f'gunicorn app.main:app --db-password {MASK} --api-key={MASK} postgresql://app:')


def test_without_sampling_rates_are_null_and_nothing_waits(monkeypatch, proc):
    monkeypatch.setattr(resources, '_sleep', lambda seconds: pytest.fail('slept without a sample'))
    result = resources.HostResources(dict(PARAMS, sample_seconds=0), root=str(proc.root)).run()
    assert result['cpu']['busy_percent'] is None and result['disks'] == [] and result['processes']['by_cpu'] == []
    assert [p['pid'] for p in result['processes']['by_memory']] == [11, 10]
    assert result['processes']['by_memory'][0]['cpu_percent'] is None


def test_a_process_that_exits_during_the_sample_is_left_out(monkeypatch, proc):
    monkeypatch.setattr(resources, '_sleep', lambda seconds: proc.remove(11))
    result = resources.HostResources(PARAMS, root=str(proc.root)).run()
    assert 11 not in [p['pid'] for p in result['processes']['by_cpu'] + result['processes']['by_memory']]


def test_kernel_threads_show_their_name(monkeypatch, proc):
    _worker, result = _sampled(monkeypatch, proc, top=3)
    kworker = next(p for p in result['processes']['by_cpu'] if p['pid'] == 12)
    assert kworker['command'] == '[kworker/0:1]'


def test_filesystems_usage_and_inodes_and_a_mount_that_cannot_be_read(monkeypatch, proc, tmp_path):
    worker, result = _sampled(monkeypatch, proc, top=0)
    data, broken = result['filesystems']
    st = os.statvfs(tmp_path / 'data dir')
    assert data['mount'] == str(tmp_path / 'data dir') and data['size_bytes'] == st.f_blocks * st.f_frsize
    assert 0 <= data['used_ratio'] <= 1 and data['inodes'] == st.f_files and data['error'] is None
    assert broken['mount'] == '/no/such/mount' and broken['read_only'] is True
    assert broken['error'] == 'No such file or directory' and broken['used_ratio'] is None
    assert worker.warnings == ['statvfs(/no/such/mount) failed: No such file or directory']


def test_only_the_mounts_asked_for(monkeypatch, proc, tmp_path):
    worker, result = _sampled(monkeypatch, proc, top=0, mounts=[str(tmp_path / 'data dir'), '/not/mounted'])
    assert [f['mount'] for f in result['filesystems']] == [str(tmp_path / 'data dir')]
    assert worker.warnings[0].startswith('mounts: /not/mounted not mounted (or not a data filesystem); mounted: ')


@pytest.mark.parametrize('args, shown', [
    (['psql', 'password=abc123 host=db'], 'psql password=******** host=db'),
    (['app', '--token', 'xyz'], f'app --token {MASK}'),
    (['app', '--token-file', '/etc/t'], 'app --token-file /etc/t'),
    (['app', '--secret=s3cr3t'], f'app --secret={MASK}'),
    (['nginx', '-g', 'daemon off;'], 'nginx -g daemon off;'),
    # extra vars given to ansible-playbook: as JSON, and as name=value pairs in one argument
    (['ansible-playbook', '-e', '{"redis_password": "r3dis-pw", "db": {"login_password": "pg-pw"}, "incident": "INC-1"}'],
     'ansible-playbook -e {"redis_password":"<redacted>","db":{"login_password":"<redacted>"},"incident":"INC-1"}'),
    (['ansible-playbook', '-e', 'db_password=hunter22 incident=INC-1'], f'ansible-playbook -e db_password={MASK} incident=INC-1'),
    (['postgres', '-c', 'config_file=/etc/pg.conf'], 'postgres -c config_file=/etc/pg.conf'),
])
def test_redact_args(args, shown):
    assert resources.redact_args(args, Redactor()) == shown


def test_long_command_lines_are_cut():
    text = resources.redact_args(['x' * 1000], Redactor())
    assert len(text) == resources.MAX_CMDLINE and text.endswith('...')


def test_a_reader_that_cannot_see_other_users_processes_is_warned(monkeypatch, proc):
    mounts = (proc.root / 'mounts').read_text().replace('proc /proc proc rw,nosuid', 'proc /proc proc rw,hidepid=2')
    (proc.root / 'mounts').write_text(mounts)
    monkeypatch.setattr(resources.os, 'geteuid', lambda: 1000)
    worker, _result = _sampled(monkeypatch, proc)
    assert '/proc is mounted with hidepid: processes of other users are not listed (run as root to see them)' in worker.warnings
    monkeypatch.setattr(resources.os, 'geteuid', lambda: 0)
    root_worker, _result = _sampled(monkeypatch, proc)
    assert not [w for w in root_worker.warnings if 'hidepid' in w]
