# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The /proc readers against a fake /proc tree: parsing, filtering and the error of a missing file."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._host import procfs
from fake_proc import FakeProc


@pytest.fixture
def proc(tmp_path):
    return FakeProc(tmp_path / 'proc', str(tmp_path / 'data dir'))


def test_loadavg_cpu_and_meminfo(proc):
    root = str(proc.root)
    assert procfs.loadavg(root) == {'load1': 5.0, 'load5': 3.0, 'load15': 1.5, 'running': 3, 'processes': 412}
    times, cores = procfs.cpu_times(root)
    assert cores == 2
    assert times == {'user': 1000, 'nice': 0, 'system': 500, 'idle': 8000, 'iowait': 100, 'irq': 0, 'softirq': 0, 'steal': 0}
    mem = procfs.meminfo(root)
    assert mem['MemTotal'] == 16000000 * 1024 and mem['SwapFree'] == 3000000 * 1024 and mem['HugePages_Total'] == 0


def test_mounts_keep_data_filesystems_once_per_device(proc, tmp_path):
    mounts = procfs.mounts(str(proc.root))
    assert [(m['device'], m['mount'], m['fstype']) for m in mounts] == [
        ('/dev/vda1', str(tmp_path / 'data dir'), 'ext4'),   # \040 decoded; the later bind mount left out
        ('/dev/vdb1', '/no/such/mount', 'xfs')]


def test_diskstats_skip_virtual_devices(proc):
    disks = procfs.diskstats(str(proc.root))
    assert sorted(disks) == ['vda', 'vdb']
    assert disks['vda'] == {'reads': 100, 'read_sectors': 800, 'read_ms': 50, 'writes': 200, 'write_sectors': 1600,
                            'write_ms': 100, 'in_flight': 0, 'io_ms': 120}


def test_process_stat_with_a_command_name_holding_parentheses_and_spaces(proc):
    proc.process(42, 'odd) (name', ['/bin/odd', '--flag'], ticks=30, rss_kb=4096, state='R')
    assert procfs.pids(str(proc.root)) == [42]
    assert procfs.process_stat(str(proc.root), 42) == {'pid': 42, 'comm': 'odd) (name', 'state': 'R', 'ticks': 30,
                                                       'rss_pages': 1024}
    assert procfs.process_details(str(proc.root), 42) == {'uid': 0, 'rss_bytes': 4096 * 1024, 'args': ['/bin/odd', '--flag']}
    assert procfs.process_stat(str(proc.root), 43) is None
    assert procfs.process_details(str(proc.root), 43) == {'uid': None, 'rss_bytes': None, 'args': []}


def test_a_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(procfs.HostError, match=r'^Cannot read .*loadavg: No such file or directory - the module needs a '
                                               r'Linux host with /proc mounted$'):
        procfs.loadavg(str(tmp_path))


@pytest.mark.parametrize('options, hidden', [('rw,nosuid', False), ('rw,hidepid=2', True), ('rw,hidepid=invisible', True),
                                             ('rw,hidepid=0', False)])
def test_hidepid_is_detected(proc, options, hidden):
    mounts = (proc.root / 'mounts').read_text().replace('proc /proc proc rw,nosuid 0 0', f'proc /proc proc {options} 0 0')
    (proc.root / 'mounts').write_text(mounts)
    assert procfs.hides_processes(str(proc.root)) is hidden
