"""redis_info against an in-memory fake server: INFO digest, queues, and the wait with a fake clock."""
from __future__ import annotations

import re

import pytest
import redis
from ansible_collections.trdrhub.incident.plugins.module_utils._redis import RedisClient
from ansible_collections.trdrhub.incident.plugins.modules import redis_info
from ansible_collections.trdrhub.incident.plugins.modules.redis_info import (
    drain_rate,
    info_sections,
    queue_specs,
)

TARGET = 'Redis at localhost:6379 (db 0, user default)'

MASTER_INFO = {
    'redis_version': '7.0.15', 'redis_mode': 'standalone', 'uptime_in_seconds': 864000, 'uptime_in_days': 10, 'tcp_port': 6379,
    'connected_clients': 84, 'blocked_clients': 8, 'maxclients': 10000,
    'used_memory': 1073741824, 'used_memory_human': '1.00G', 'used_memory_rss': 1181116006, 'used_memory_peak_human': '1.20G',
    'maxmemory': 2147483648, 'maxmemory_human': '2.00G', 'maxmemory_policy': 'noeviction', 'mem_fragmentation_ratio': 1.1,
    'instantaneous_ops_per_sec': 1520, 'total_commands_processed': 99120311, 'rejected_connections': 0, 'evicted_keys': 0,
    'expired_keys': 1203, 'keyspace_hits': 900, 'keyspace_misses': 100,
    'role': 'master', 'connected_slaves': 2, 'master_repl_offset': 5000,
    'slave0': {'ip': '10.0.0.2', 'port': 6379, 'state': 'online', 'offset': 4990, 'lag': 0},
    'slave1': {'ip': '10.0.0.3', 'port': 6379, 'state': 'wait_bgsave', 'offset': 0, 'lag': 12},
    'db0': {'keys': 1532, 'expires': 12, 'avg_ttl': 81231},
}
REPLICA_INFO = {
    'role': 'slave', 'master_host': '10.0.0.1', 'master_port': 6379, 'master_link_status': 'down',
    'master_last_io_seconds_ago': -1, 'master_sync_in_progress': 0, 'master_link_down_since_seconds': 42,
    'slave_read_repl_offset': 4990, 'slave_repl_offset': 4980, 'slave_read_only': 1, 'connected_slaves': 0,
    'master_repl_offset': 4990, 'redis_version': '7.0.15', 'maxmemory': 0, 'used_memory': 100,
}


class FakeClock:
    """Time that only moves when the module sleeps."""

    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRedis:
    """Answers the commands redis_info sends; a key's length may be a function of the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.info = dict(MASTER_INFO)
        self.keys: dict = {}
        self.groups: dict = {}
        self.denied: set = set()
        self.commands: list = []

    def length(self, key):
        value = self.keys[key][1]
        return value(self.clock.now) if callable(value) else value

    def execute_command(self, *args):
        name = args[0].upper()
        self.commands.append(args)
        if name.lower() in self.denied:
            raise redis.exceptions.NoPermissionError(f"this user has no permissions to run the '{name.lower().replace(' ', '|')}' command")
        if name == 'PING':
            return True
        if name == 'INFO':
            return dict(self.info)
        if name == 'TYPE':
            return self.keys.get(args[1], ('none', 0))[0]
        if name in ('LLEN', 'XLEN', 'ZCARD', 'SCARD'):
            if args[1] not in self.keys:
                return 0
            expected = {'LLEN': 'list', 'XLEN': 'stream', 'ZCARD': 'zset', 'SCARD': 'set'}[name]
            if self.keys[args[1]][0] != expected:
                raise redis.exceptions.ResponseError('WRONGTYPE Operation against a key holding the wrong kind of value')
            return self.length(args[1])
        if name == 'XINFO GROUPS':
            groups = self.groups.get(args[1], [])
            return [{k: (v(self.clock.now) if callable(v) else v) for k, v in g.items()} for g in groups]
        raise AssertionError(f'unexpected command {args}')

    def close(self):
        pass


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(redis_info, '_clock', fake.monotonic)
    monkeypatch.setattr(redis_info, '_sleep', fake.sleep)
    return fake


@pytest.fixture
def server(monkeypatch, clock):
    fake = FakeRedis(clock)
    monkeypatch.setattr(redis_info, 'RedisClient', lambda params: RedisClient(params, conn=fake))
    return fake


# -- pure functions ------------------------------------------------------------------------------
@pytest.mark.parametrize('samples, rate', [
    ([(0, 100), (1, 90), (2, 80), (3, 70)], 10.0),
    ([(0, 100), (5, 100), (10, 100)], 0.0),
    ([(0, 10), (2, 20), (4, 30)], -5.0),
    ([(0, 100), (1, 95), (2, 70), (3, 70)], 11.5),     # least squares, not first-to-last
    ([(0, 100)], None),
    ([(1, 100), (1, 50)], None),
])
def test_drain_rate(samples, rate):
    assert drain_rate(samples) == rate


def test_info_sections_master():
    out = info_sections(MASTER_INFO)
    assert out['role'] == 'master'
    repl = out['replication']
    assert repl['connected_replicas'] == 2 and repl['master_repl_offset'] == 5000
    assert repl['replicas'] == [
        {'ip': '10.0.0.2', 'port': 6379, 'state': 'online', 'offset': 4990, 'lag': 0, 'lag_bytes': 10},
        {'ip': '10.0.0.3', 'port': 6379, 'state': 'wait_bgsave', 'offset': 0, 'lag': 12, 'lag_bytes': 5000},
    ]
    assert 'master_link_status' not in repl
    assert out['memory']['usage_ratio'] == 0.5 and out['memory']['maxmemory_policy'] == 'noeviction'
    assert out['clients'] == {'connected_clients': 84, 'blocked_clients': 8, 'maxclients': 10000, 'saturation': 0.0084,
                              'rejected_connections': 0}
    assert out['stats']['hit_ratio'] == 0.9
    assert out['server'] == {'redis_version': '7.0.15', 'redis_mode': 'standalone', 'uptime_in_seconds': 864000,
                             'uptime_in_days': 10, 'tcp_port': 6379}
    assert out['keyspace'] == {'db0': {'keys': 1532, 'expires': 12, 'avg_ttl': 81231}}


def test_info_sections_replica_with_the_link_down():
    out = info_sections(REPLICA_INFO)
    repl = out['replication']
    assert out['role'] == repl['role'] == 'replica'
    assert (repl['master_host'], repl['master_port'], repl['master_link_status']) == ('10.0.0.1', 6379, 'down')
    assert repl['master_last_io_seconds_ago'] == -1 and repl['master_link_down_since_seconds'] == 42
    assert (repl['replica_offset'], repl['replica_read_offset'], repl['lag_bytes']) == (4980, 4990, 10)
    assert repl['replica_read_only'] is True and repl['master_sync_in_progress'] is False
    assert out['memory']['usage_ratio'] is None      # no maxmemory
    assert out['clients']['maxclients'] is None and out['clients']['saturation'] is None
    assert out['stats']['hit_ratio'] is None


@pytest.mark.parametrize('raw, expected', [
    (['celery'], [{'key': 'celery', 'type': 'auto'}]),
    ([{'key': 'events', 'type': 'stream'}, {'key': 'z'}], [{'key': 'events', 'type': 'stream'}, {'key': 'z', 'type': 'auto'}]),
    ([], []),
])
def test_queue_specs(raw, expected):
    assert queue_specs(raw) == expected


@pytest.mark.parametrize('raw, message', [
    ([''], "queues[0] must be a key name or a dict with a non-empty key, got ''"),
    ([42], 'queues[0] must be a key name or a dict with a non-empty key, got 42'),
    (['a', {'name': 'x'}], "queues[1] must be a key name or a dict with a non-empty key, got {'name': 'x'}"),
    ([{'key': 'x', 'type': 'hash'}], "queues[0] (x) has type 'hash'; expected one of auto, list, set, stream, zset"),
    ([{'key': 'x', 'kind': 'list'}], 'queues[0] has unknown field(s) kind; allowed: key, type'),
])
def test_queue_spec_errors(run_module, server, raw, message):
    result = run_module(redis_info, {'queues': raw})
    assert result['failed'] and result['msg'] == message
    assert server.commands == [], 'bad input is rejected before connecting'


@pytest.mark.parametrize('args, message', [
    ({'ping_count': 0}, 'ping_count must be at least 1, got 0'),
    ({'wait_for': {'queue': 'q', 'below': 0}}, 'wait_for.below must be at least 1, got 0'),
    ({'wait_for': {'queue': 'q', 'below': 5, 'interval': 0}}, 'wait_for.interval must be greater than 0, got 0'),
    ({'wait_for': {'queue': 'q', 'below': 5, 'timeout': -1}}, 'wait_for.timeout must be at least 0, got -1'),
    ({'wait_for': {'queue': 'q', 'below': 5, 'type': 'list', 'group': 'g'}},
     'wait_for.group only applies to streams, but wait_for.type is list'),
    ({'port': 0}, 'port must be between 1 and 65535, got 0'),
    ({'url': 'redis://h', 'host': 'h'}, 'parameters are mutually exclusive: url|host'),
])
def test_option_errors(run_module, server, args, message):
    result = run_module(redis_info, args)
    assert result['failed'] and result['msg'] == message


def test_missing_redis_py(run_module, monkeypatch):
    monkeypatch.setattr(redis_info, 'REDIS', ('redis', False, None))
    result = run_module(redis_info, {})
    assert result['failed'] and 'Failed to import the required Python library (redis)' in result['msg']


# -- whole module --------------------------------------------------------------------------------
def test_report(run_module, server):
    server.keys.update({'celery': ('list', 42), 'events': ('stream', 1200), 'delayed': ('zset', 7), 'workers': ('set', 3),
                        'config': ('string', 1)})
    server.groups['events'] = [{'name': 'workers', 'consumers': 4, 'pending': 3, 'last-delivered-id': '1-0',
                                'entries-read': 1190, 'lag': 10},
                               {'name': 'audit', 'consumers': 1, 'pending': 0, 'last-delivered-id': '1-0',
                                'entries-read': None, 'lag': None}]
    result = run_module(redis_info, {'queues': ['celery', {'key': 'events', 'type': 'stream'}, 'delayed', 'workers', 'gone',
                                                'config'], 'ping_count': 5})
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert result['ping']['ok'] is True and len(result['ping']['samples_ms']) == 5
    assert result['target'] == {'host': 'localhost', 'port': 6379, 'db': 0, 'username': None, 'tls': False}
    queues = result['queues']
    assert queues['celery'] == {'key': 'celery', 'type': 'list', 'exists': True, 'length': 42}
    assert queues['delayed']['length'] == 7 and queues['workers']['length'] == 3
    assert queues['gone'] == {'key': 'gone', 'type': 'none', 'exists': False, 'length': 0}
    assert queues['config'] == {'key': 'config', 'type': 'string', 'exists': True, 'length': None}
    assert queues['events']['length'] == 1200
    assert queues['events']['groups'] == [
        {'name': 'workers', 'consumers': 4, 'pending': 3, 'last_delivered_id': '1-0', 'entries_read': 1190, 'lag': 10, 'backlog': 13},
        {'name': 'audit', 'consumers': 1, 'pending': 0, 'last_delivered_id': '1-0', 'entries_read': None, 'lag': None,
         'backlog': None},
    ]
    assert result['warnings'] == ["queue 'config' holds a string, not a list, stream, sorted set or set; no length reported"]
    assert result['queries'] == ['PING', 'INFO', 'TYPE celery', 'LLEN celery', 'TYPE events', 'XLEN events',
                                 'XINFO GROUPS events', 'TYPE delayed', 'ZCARD delayed', 'TYPE workers', 'SCARD workers',
                                 'TYPE gone', 'TYPE config']
    assert 'wait' not in result


def test_check_mode_is_identical(run_module, server):
    server.keys['celery'] = ('list', 42)
    normal = run_module(redis_info, {'queues': ['celery']})
    checked = run_module(redis_info, {'queues': ['celery']}, check_mode=True)
    for result in (normal, checked):
        result.pop('ping')
    assert normal == checked


def test_explicit_type_that_does_not_match_fails(run_module, server):
    server.keys['celery'] = ('list', 42)
    result = run_module(redis_info, {'queues': [{'key': 'celery', 'type': 'stream'}]})
    assert result['failed'] and result['msg'] == f"queue 'celery' on {TARGET} is a list, not a stream"


def test_stream_groups_without_permission_warn(run_module, server):
    server.keys['events'] = ('stream', 5)
    server.denied.add('xinfo groups')
    result = run_module(redis_info, {'queues': ['events'], 'username': 'mon', 'password': 'pw'})
    assert not result.get('failed'), result
    assert result['queues']['events']['groups'] is None
    assert result['warnings'] == [
        "consumer groups of 'events' not reported: Redis at localhost:6379 (db 0, user mon) refused XINFO GROUPS events: "
        "this user has no permissions to run the 'xinfo|groups' command (grant it with: ACL SETUSER mon +xinfo|groups)"]


def test_missing_info_permission_fails(run_module, server):
    server.denied.add('info')
    result = run_module(redis_info, {'username': 'mon', 'password': 'pw'})
    assert result['failed']
    assert result['msg'] == ("Redis at localhost:6379 (db 0, user mon) refused INFO: this user has no permissions to run the "
                             "'info' command (grant it with: ACL SETUSER mon +info)")


# -- wait ----------------------------------------------------------------------------------------
def wait_args(**wait):
    return {'wait_for': dict({'queue': 'jobs', 'below': 50, 'timeout': 30, 'interval': 1}, **wait), 'queues': ['jobs']}


def test_wait_until_drained(run_module, server, clock):
    start = clock.now
    server.keys['jobs'] = ('list', lambda now: max(0, int(100 - 10 * (now - start))))
    result = run_module(redis_info, wait_args())
    assert not result.get('failed'), result
    wait = result['wait']
    assert wait == {'queue': 'jobs', 'group': None, 'below': 50, 'met': True, 'initial_length': 100, 'length': 40,
                    'waited_s': 6.0, 'drain_rate': 10.0, 'polls': 7,
                    'samples': [{'elapsed_s': float(i), 'length': 100 - 10 * i} for i in range(7)]}
    assert clock.sleeps == [1] * 6
    assert result['queues']['jobs']['length'] == 40, 'queues are read after the wait'
    assert result['queries'] == ['PING', 'TYPE jobs', 'LLEN jobs', 'INFO', 'TYPE jobs', 'LLEN jobs']


def test_wait_already_below_needs_one_measurement(run_module, server, clock):
    server.keys['jobs'] = ('list', 3)
    wait = run_module(redis_info, wait_args())['wait']
    assert (wait['met'], wait['polls'], wait['waited_s'], wait['drain_rate']) == (True, 1, 0.0, None)
    assert clock.sleeps == []


def test_wait_for_a_missing_key_is_met(run_module, server):
    wait = run_module(redis_info, wait_args())['wait']
    assert wait['met'] and wait['length'] == 0


def test_wait_times_out_when_nothing_drains(run_module, server, clock):
    server.keys['jobs'] = ('list', 100)
    result = run_module(redis_info, wait_args(timeout=5, interval=2))
    assert result['failed']
    assert result['msg'] == (f"queue 'jobs' on {TARGET} still holds 100 items after 5s (wanted fewer than 50; started at 100); "
                             "not draining (0 items/s)")
    assert clock.sleeps == [2, 2, 1], 'the last sleep is cut to the timeout'
    assert result['wait']['met'] is False and result['wait']['polls'] == 4
    assert result['queues']['jobs']['length'] == 100 and result['memory']['used_memory'], 'the evidence is kept'
    assert 'changed' not in result or result['changed'] is False


def test_wait_timeout_reports_growth(run_module, server, clock):
    start = clock.now
    server.keys['jobs'] = ('list', lambda now: int(100 + 5 * (now - start)))
    result = run_module(redis_info, wait_args(timeout=4))
    assert result['failed']
    assert result['msg'].endswith('still holds 120 items after 4s (wanted fewer than 50; started at 100); '
                                  'not draining: growing at 5 items/s')


def test_wait_timeout_reports_a_slow_drain_and_eta(run_module, server, clock):
    start = clock.now
    server.keys['jobs'] = ('list', lambda now: int(100 - 2 * (now - start)))
    result = run_module(redis_info, wait_args(timeout=5))
    assert result['failed']
    assert re.search(r'still holds 90 items after 5s \(wanted fewer than 50; started at 100\); '
                     r'draining at 2 items/s, about 2\ds more at that rate$', result['msg'])
    assert result['wait']['drain_rate'] == 2.0


def test_wait_timeout_zero_measures_once(run_module, server, clock):
    server.keys['jobs'] = ('list', 60)
    result = run_module(redis_info, wait_args(timeout=0))
    assert result['failed'] and 'a single measurement, no drain rate' in result['msg']
    assert result['wait']['polls'] == 1 and clock.sleeps == []


def test_wait_on_a_stream_group_backlog(run_module, server, clock):
    start = clock.now
    server.keys['events'] = ('stream', 5000)      # XLEN never shrinks
    server.groups['events'] = [{'name': 'workers', 'consumers': 2, 'last-delivered-id': '1-0', 'entries-read': 1,
                                'pending': 5, 'lag': lambda now: max(0, int(60 - 20 * (now - start)))}]
    result = run_module(redis_info, {'wait_for': {'queue': 'events', 'group': 'workers', 'below': 10, 'interval': 1}})
    assert not result.get('failed'), result
    wait = result['wait']
    assert (wait['group'], wait['initial_length'], wait['length'], wait['drain_rate']) == ('workers', 65, 5, 20.0)
    assert 'XINFO GROUPS events' in result['queries'] and 'XLEN events' not in result['queries']


@pytest.mark.parametrize('setup, wait, message', [
    ({'jobs': ('hash', 1)}, {}, f"cannot wait for 'jobs' on {TARGET}: it holds a hash, not a list, stream, sorted set or set"),
    ({'jobs': ('list', 1)}, {'type': 'zset'}, f"queue 'jobs' on {TARGET} is a list, not a zset"),
    ({'jobs': ('stream', 1)}, {'group': 'nobody'}, f"stream 'jobs' on {TARGET} has no consumer group 'nobody'"),
    ({'jobs': ('list', 1)}, {'group': 'g'}, f"wait_for.group needs a stream, but 'jobs' on {TARGET} is a list"),
])
def test_wait_errors(run_module, server, setup, wait, message):
    server.keys.update(setup)
    result = run_module(redis_info, {'wait_for': dict({'queue': 'jobs', 'below': 5}, **wait)})
    assert result['failed'] and result['msg'] == message


def test_wait_group_without_lag(run_module, server):
    server.keys['jobs'] = ('stream', 1)
    server.groups['jobs'] = [{'name': 'g', 'consumers': 1, 'pending': 0, 'last-delivered-id': '0-0', 'lag': None}]
    result = run_module(redis_info, {'wait_for': {'queue': 'jobs', 'group': 'g', 'below': 5}})
    assert result['failed'] and result['msg'].startswith(f"{TARGET} does not report the lag of group 'g' on stream 'jobs'")


def test_samples_are_capped(run_module, server, clock):
    server.keys['jobs'] = ('list', 100)
    result = run_module(redis_info, wait_args(timeout=300, interval=1))
    assert result['wait']['polls'] == 301 and len(result['wait']['samples']) == redis_info.MAX_SAMPLES
    assert result['wait']['samples'][-1] == {'elapsed_s': 300.0, 'length': 100}
