# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""host_resources_info as Ansible runs it: check mode reads the same, bad input and a missing /proc are one sentence."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._host import procfs
from ansible_collections.trdrhub.incident.plugins.modules import host_resources_info as mod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'module_utils' / '_host'))
from fake_proc import FakeProc  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    data = tmp_path / 'data'
    data.mkdir()
    fake = FakeProc(tmp_path / 'proc', str(data))
    fake.process(10, 'postgres', ['postgres', '-D', '/var/lib/postgresql'], ticks=100, rss_kb=200000)
    monkeypatch.setattr(procfs, 'PROC', str(fake.root))
    return fake


@pytest.mark.parametrize('check_mode', [False, True])
def test_reads_the_same_in_check_mode(run_module, fake_root, check_mode):
    listening = socket.socket()
    listening.bind(('127.0.0.1', 0))
    listening.listen(1)
    port = listening.getsockname()[1]
    try:
        result = run_module(mod, {'sample_seconds': 0, 'targets': [f'127.0.0.1:{port}'], 'connect_attempts': 1},
                            check_mode=check_mode)
    finally:
        listening.close()
    assert result['changed'] is False and 'failed' not in result
    assert result['cpu']['load1'] == 5.0 and result['memory']['swap_used_bytes'] == 1024000000
    assert result['processes']['by_memory'][0]['command'] == 'postgres -D /var/lib/postgresql'
    assert result['reachability'][0]['reachable'] is True and result['unreachable_targets'] == []
    assert result['warnings'] == ['statvfs(/no/such/mount) failed: No such file or directory']


def test_a_bad_target_fails_before_any_read(run_module, fake_root, monkeypatch):
    monkeypatch.setattr(procfs, 'loadavg', lambda root: pytest.fail('read /proc'))
    result = run_module(mod, {'targets': ['redis.internal']})
    assert result['failed'] is True
    assert result['msg'] == "targets: 'redis.internal' is not host:port (a port between 1 and 65535; [address]:port for IPv6)"


def test_without_proc_the_module_says_so(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(procfs, 'PROC', str(tmp_path))
    result = run_module(mod, {'sample_seconds': 0})
    assert result['failed'] is True
    assert result['msg'] == f'Cannot read {tmp_path}/loadavg: No such file or directory - the module needs a Linux host with /proc mounted'


@pytest.mark.parametrize('args, msg', [
    ({'sample_seconds': 61}, 'sample_seconds must be between 0 and 60, got 61'),
    ({'top': -1}, 'top must be between 0 and 100, got -1'),
    ({'connect_timeout': 0}, 'connect_timeout must be greater than 0 and at most 86400, got 0'),
    ({'connect_attempts': 0}, 'connect_attempts must be between 1 and 20, got 0'),
])
def test_bounded_options(run_module, args, msg):
    assert run_module(mod, args)['msg'] == msg
