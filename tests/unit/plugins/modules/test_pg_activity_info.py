# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_activity_info against the fake server: the triage slices and their filters."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import (
    pg_activity_info as module,
)

CONN = {'login_unix_socket': '/var/run/postgresql', 'login_user': 'ops', 'login_db': 'trdrhub'}
S = datetime.timedelta(seconds=1)


@pytest.fixture
def busy(fake_server):
    now = fake_server.sessions[0]['now']
    fake_server.add(11, query_start=now - 120 * S, query='SELECT * FROM lc_documents')
    fake_server.add(12, state='idle in transaction', state_change=now - 600 * S, blocked_by=[])
    fake_server.add(13, wait_event_type='Lock', blocked_by=[12])
    fake_server.add(14, wait_event_type='Lock', blocked_by=[12, 13], usename='trdrhub_worker')
    fake_server.add(15, state='idle', datname='lcopilot', client_addr=None)
    return fake_server


def test_report_shape(run_module, busy):
    result = run_module(module, CONN)
    assert result['changed'] is False
    assert result['database'] == 'trdrhub'
    assert result['server_version'] == '15.20'
    assert result['ping']['ok'] is True and result['ping']['latency_ms'] >= 0
    assert result['connections'] == {
        'total': 6, 'by_state': {'active': 4, 'idle': 1, 'idle in transaction': 1},
        'max_connections': 100, 'reserved': 3, 'saturation': 0.06}
    assert result['stats']['cache_hit_ratio'] == 0.9
    assert result['stats']['stats_reset'] is None
    assert [s['pid'] for s in result['sessions']] == [12, 11, 13, 14, 15]  # own session never listed
    assert [s['pid'] for s in result['long_running']] == [11]
    assert [s['pid'] for s in result['idle_in_transaction']] == [12]
    assert [(b['pid'], b['blocks'], b['blocked_pids']) for b in result['blockers']] == [(12, 2, [13, 14]), (13, 1, [14])]
    assert set(result['blockers'][0]) == {'pid', 'usename', 'application_name', 'state', 'duration_s', 'query',
                                          'blocks', 'blocked_pids'}


def test_filters_narrow_the_slices_not_the_connection_counts(run_module, busy):
    result = run_module(module, dict(CONN, users=['trdrhub_worker'], long_running_threshold=0))
    assert [s['pid'] for s in result['sessions']] == [14]
    assert [s['pid'] for s in result['long_running']] == [14]
    assert result['blockers'] == [] and result['idle_in_transaction'] == []
    assert result['connections']['total'] == 6


def test_check_mode_runs_the_same(run_module, busy):
    assert run_module(module, CONN, check_mode=True)['sessions'] == run_module(module, CONN)['sessions']


def test_no_blocks_read_yet_gives_null_ratio(run_module, fake_server):
    fake_server.db_stats.update(blks_hit=0, blks_read=0)
    assert run_module(module, CONN)['stats']['cache_hit_ratio'] is None


def test_pooler_only_warns(run_module, fake_server):
    fake_server.client_side_pid = 424242
    result = run_module(module, CONN)
    assert not result.get('failed')
    assert len(result['warnings']) == 1
    assert 'backend pid 424242' in result['warnings'][0] and 'not the pooler (port 6543)' in result['warnings'][0]


@pytest.mark.parametrize('extra, message', [
    ({'long_running_threshold': -1}, 'long_running_threshold must be at least 0, got -1'),
    ({'min_duration': -0.1}, 'min_duration must be at least 0, got -0.1'),
    ({'client_addrs': ['not-a-network']}, "client_addrs: 'not-a-network'"),
    ({'query_pattern': '*'}, "query_pattern: '*' is not a valid Python regular expression"),
])
def test_bad_input(run_module, fake_server, extra, message):
    result = run_module(module, dict(CONN, **extra))
    assert result['failed'] is True
    assert message in result['msg']
