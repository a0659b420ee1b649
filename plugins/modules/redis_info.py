# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_info
short_description: Report Redis health for incident triage - latency, replication, memory, clients and queue backlogs
version_added: 1.0.0
description:
  - Pings a Redis server, reads C(INFO) and returns what an incident responder looks at first - latency, role and
    replication state (with the lag of each replica), memory against C(maxmemory), client saturation, keyspace, and
    the lengths of the queue keys the TRDR Hub workers consume.
  - With O(wait_for) it also implements the runbook's Phase 4.2 "check queue processing" - poll one queue until it
    holds fewer than a given number of items and report how fast it drained, or fail with one message giving the
    last length and the drain rate.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  queues:
    description:
      - Queue keys to measure. Each element is a key name, or a dict with C(key) (the key name) and C(type).
      - C(type) is one of V(auto) (the default - detected with C(TYPE)), V(list) (C(LLEN)), V(stream) (C(XLEN) and,
        where the ACL allows it, C(XINFO GROUPS) for each consumer group's pending and lag), V(zset) (C(ZCARD)) or
        V(set) (C(SCARD)). An explicit type that does not match the key fails the module.
      - A key that does not exist has length V(0) and RV(queues.exists=false).
      - TRDR Hub has no fixed queue name yet (C(trdrhub_queue) does not exist); take the names from inventory.
    type: list
    elements: raw
    default: []
  ping_count:
    description:
      - Number of C(PING)s; RV(ping.latency_ms) is their median. At least V(1).
    type: int
    default: 3
  wait_for:
    description:
      - Poll one queue until it holds fewer than O(wait_for.below) items (runbook Phase 4.2, "check queue processing").
      - The module fails when O(wait_for.timeout) passes first; the message gives the last length and the drain rate,
        and the result still carries everything else the module measured.
      - The other figures (RV(queues), memory, clients, ...) are read after the wait, so they describe the state the
        wait ended in.
    type: dict
    suboptions:
      queue:
        description: Key of the queue to watch.
        type: str
        required: true
      type:
        description: Type of the key, as for O(queues). V(auto) detects it with C(TYPE).
        type: str
        choices: [auto, list, stream, zset, set]
        default: auto
      group:
        description:
          - For a stream, watch this consumer group's backlog (C(lag) + C(pending) from C(XINFO GROUPS)) instead of
            the stream length, which does not shrink when entries are consumed. Needs Redis 7.0 or later.
        type: str
      below:
        description: Success as soon as the length is below this number. At least V(1).
        type: int
        required: true
      timeout:
        description: Seconds to wait at most. V(0) measures once.
        type: float
        default: 300
      interval:
        description: Seconds between two measurements. Must be more than V(0).
        type: float
        default: 5
extends_documentation_fragment:
  - trdrhub.incident.redis
attributes:
  check_mode:
    details:
      - The module only reads, so it runs unchanged in check mode, O(wait_for) included.
notes:
  - "Commands run: C(PING), C(INFO), C(TYPE), C(LLEN), C(XLEN), C(ZCARD), C(SCARD) and C(XINFO GROUPS). A least-privilege
    ACL user for it is C(ACL SETUSER trdrhub_monitor on >password resetkeys %R~* resetchannels -@all +ping +info +type
    +llen +xlen +zcard +scard +xinfo|groups) (narrow C(%R~*) to the queue key patterns if you like). Without
    C(+xinfo|groups) the module warns and returns no consumer groups."
  - RV(replication.lag_bytes) on a replica is computed from the replica's own C(INFO) and so only shows what it has
    received but not yet applied; the lag the primary sees, per replica, is RV(replication.replicas[].lag_bytes) when
    the module runs against the primary.
  - Redis Cluster is not supported - a queue key held by another node fails with the server's C(MOVED) reply; point
    the module at the node that holds it.
  - The drain rate is the slope of a least-squares line through all measurements, in items per second; positive
    means the queue is shrinking.
seealso:
  - module: trdrhub.incident.pg_activity_info
  - name: Redis INFO command
    description: Meaning of every field RV(memory), RV(clients), RV(replication) and RV(server) are taken from.
    link: https://redis.io/docs/latest/commands/info/
"""

EXAMPLES = r"""
- name: Triage the TRDR Hub Redis
  trdrhub.incident.redis_info:
    host: redis.trdrhub.internal
    password: "{{ vault_redis_password }}"
    queues: "{{ trdrhub_redis_queues }}"      # for example [celery, {key: "trdrhub:events", type: stream}]
  register: redis

- name: Warn when memory is nearly full or a replica is behind
  ansible.builtin.debug:
    msg: >-
      memory {{ (redis.memory.usage_ratio or 0) * 100 }} % of maxmemory,
      replicas {{ redis.replication.replicas | map(attribute='lag_bytes') | list }}
  when: (redis.memory.usage_ratio or 0) > 0.9 or redis.replication.replicas | selectattr('lag_bytes', 'gt', 1048576)

- name: Over TLS as a least-privilege ACL user
  trdrhub.incident.redis_info:
    url: "rediss://trdrhub_monitor:{{ vault_redis_monitor_password | urlencode }}@redis.trdrhub.internal:6380/0"
    ca_path: /etc/ssl/trdrhub/redis-ca.pem

- name: "Phase 4.2: wait until the worker queue is below 100 jobs (at most 10 minutes)"
  trdrhub.incident.redis_info:
    host: redis.trdrhub.internal
    password: "{{ vault_redis_password }}"
    wait_for:
      queue: celery
      below: 100
      timeout: 600
      interval: 10
  register: drained

- name: Report the drain rate
  ansible.builtin.debug:
    msg: "{{ drained.wait.length }} jobs left after {{ drained.wait.waited_s }} s, draining at {{ drained.wait.drain_rate }} jobs/s"
"""

RETURN = r"""
target:
  description: The server the module talked to.
  returned: always
  type: dict
  contains:
    host:
      description: Host name or address.
      type: str
      sample: redis.trdrhub.internal
    port:
      description: TCP port.
      type: int
      sample: 6379
    db:
      description: Selected database.
      type: int
      sample: 0
    username:
      description: ACL user, null for the C(default) user.
      type: str
      sample: trdrhub_monitor
    tls:
      description: Whether TLS was used.
      type: bool
      sample: false
ping:
  description: Round trips of C(PING).
  returned: always
  type: dict
  contains:
    ok:
      description: V(true) when every C(PING) answered C(PONG).
      type: bool
      sample: true
    latency_ms:
      description: Median round-trip time in milliseconds.
      type: float
      sample: 0.214
    samples_ms:
      description: Every round-trip time in milliseconds, in order (the first one includes connecting and logging in).
      type: list
      elements: float
      sample: [1.802, 0.214, 0.197]
role:
  description: V(master) or V(replica) (C(INFO) says C(slave)).
  returned: always
  type: str
  sample: master
replication:
  description: The C(replication) section of C(INFO), with lags computed.
  returned: always
  type: dict
  contains:
    role:
      description: Same as RV(role).
      type: str
      sample: master
    connected_replicas:
      description: Replicas connected to this server (C(connected_slaves)).
      type: int
      sample: 1
    master_repl_offset:
      description: Replication offset of this server.
      type: int
      sample: 1482733
    replicas:
      description: Replicas of this server.
      type: list
      elements: dict
      contains:
        ip:
          description: Address of the replica.
          type: str
          sample: 10.42.5.11
        port:
          description: Listening port of the replica.
          type: int
          sample: 6379
        state:
          description: Replication state, C(online) when streaming.
          type: str
          sample: online
        offset:
          description: Offset the replica has acknowledged.
          type: int
          sample: 1482720
        lag:
          description: Seconds since the replica's last acknowledgement.
          type: int
          sample: 0
        lag_bytes:
          description: RV(replication.master_repl_offset) minus RV(replication.replicas[].offset).
          type: int
          sample: 13
    master_host:
      description: Primary of this replica.
      returned: when RV(role=replica)
      type: str
      sample: 10.42.5.10
    master_port:
      description: Port of the primary.
      returned: when RV(role=replica)
      type: int
      sample: 6379
    master_link_status:
      description: V(up) or V(down).
      returned: when RV(role=replica)
      type: str
      sample: up
    master_last_io_seconds_ago:
      description: Seconds since the last interaction with the primary; V(-1) while the link is down.
      returned: when RV(role=replica)
      type: int
      sample: 1
    master_link_down_since_seconds:
      description: Seconds the link has been down; null while it is up.
      returned: when RV(role=replica)
      type: int
      sample: null
    master_sync_in_progress:
      description: Whether a full synchronisation from the primary is running.
      returned: when RV(role=replica)
      type: bool
      sample: false
    replica_offset:
      description: Offset the replica has applied (C(slave_repl_offset)).
      returned: when RV(role=replica)
      type: int
      sample: 1482720
    replica_read_offset:
      description: Offset the replica has received (C(slave_read_repl_offset), Redis 7 and later).
      returned: when RV(role=replica)
      type: int
      sample: 1482733
    lag_bytes:
      description: RV(replication.master_repl_offset) minus RV(replication.replica_offset) as the replica knows them; see the notes.
      returned: when RV(role=replica)
      type: int
      sample: 0
    replica_read_only:
      description: Whether the replica refuses writes.
      returned: when RV(role=replica)
      type: bool
      sample: true
memory:
  description: Memory use from C(INFO memory).
  returned: always
  type: dict
  contains:
    used_memory:
      description: Bytes allocated by Redis.
      type: int
      sample: 1048576000
    used_memory_human:
      description: The same, human readable.
      type: str
      sample: 1000.00M
    used_memory_rss:
      description: Bytes the operating system sees (resident set size).
      type: int
      sample: 1101004800
    used_memory_peak_human:
      description: Peak allocation, human readable.
      type: str
      sample: 1.20G
    maxmemory:
      description: The C(maxmemory) limit in bytes; V(0) means none.
      type: int
      sample: 2147483648
    maxmemory_human:
      description: The same, human readable.
      type: str
      sample: 2.00G
    maxmemory_policy:
      description: Eviction policy when the limit is reached.
      type: str
      sample: noeviction
    mem_fragmentation_ratio:
      description: RSS divided by allocated memory.
      type: float
      sample: 1.05
    usage_ratio:
      description: RV(memory.used_memory) / RV(memory.maxmemory), rounded to 4 decimals; null when there is no limit.
      type: float
      sample: 0.4883
clients:
  description: Client connections from C(INFO clients) and C(INFO stats).
  returned: always
  type: dict
  contains:
    connected_clients:
      description: Client connections, this module's own included.
      type: int
      sample: 84
    blocked_clients:
      description: Clients waiting in a blocking call (C(BLPOP), C(XREADGROUP BLOCK), ...), typically idle workers.
      type: int
      sample: 8
    maxclients:
      description: The C(maxclients) limit; null on servers before Redis 7 (which do not report it in C(INFO)).
      type: int
      sample: 10000
    saturation:
      description: RV(clients.connected_clients) / RV(clients.maxclients), rounded to 4 decimals.
      type: float
      sample: 0.0084
    rejected_connections:
      description: Connections refused because of C(maxclients) since the start.
      type: int
      sample: 0
stats:
  description: Throughput counters from C(INFO stats).
  returned: always
  type: dict
  contains:
    instantaneous_ops_per_sec:
      description: Commands per second right now.
      type: int
      sample: 1520
    total_commands_processed:
      description: Commands since the start.
      type: int
      sample: 99120311
    evicted_keys:
      description: Keys evicted because of C(maxmemory).
      type: int
      sample: 0
    expired_keys:
      description: Keys that expired.
      type: int
      sample: 1203
    keyspace_hits:
      description: Successful key lookups.
      type: int
      sample: 880021
    keyspace_misses:
      description: Failed key lookups.
      type: int
      sample: 1203
    hit_ratio:
      description: Hits / (hits + misses), rounded to 4 decimals; null before any lookup.
      type: float
      sample: 0.9986
server:
  description: Identity and uptime from C(INFO server).
  returned: always
  type: dict
  contains:
    redis_version:
      description: Server version.
      type: str
      sample: 7.0.15
    redis_mode:
      description: V(standalone), V(cluster) or V(sentinel).
      type: str
      sample: standalone
    uptime_in_seconds:
      description: Seconds since the server started.
      type: int
      sample: 864000
    uptime_in_days:
      description: Days since the server started.
      type: int
      sample: 10
    tcp_port:
      description: Port the server listens on (its TLS port when it listens on TLS only).
      type: int
      sample: 6379
keyspace:
  description: C(INFO keyspace) - database name to its C(keys), C(expires) and C(avg_ttl); databases without keys are absent.
  returned: always
  type: dict
  sample: {"db0": {"keys": 1532, "expires": 12, "avg_ttl": 81231}}
queues:
  description: Key name to its measurement, for every key in O(queues).
  returned: always
  type: dict
  sample:
    celery: {"key": "celery", "type": "list", "exists": true, "length": 42}
    trdrhub:events:
      key: "trdrhub:events"
      type: stream
      exists: true
      length: 1200
      groups: [{"name": "workers", "consumers": 4, "pending": 3, "last_delivered_id": "1736951400000-0",
                "entries_read": 1190, "lag": 10, "backlog": 13}]
  contains:
    key:
      description: The key name.
      type: str
    type:
      description: Redis type of the key (C(TYPE)); V(none) when it does not exist.
      type: str
    exists:
      description: Whether the key exists.
      type: bool
    length:
      description:
        - Number of items (C(LLEN), C(XLEN), C(ZCARD) or C(SCARD)); V(0) for a missing key.
        - Null, with a warning, for a key of another type (a string or hash is not a queue).
        - For a stream this counts every entry kept, consumed or not; see RV(queues.groups) for consumer progress.
      type: int
    groups:
      description:
        - Consumer groups of a stream (C(XINFO GROUPS)); null when the ACL user may not run it.
        - C(lag) (entries not yet delivered to the group) and C(entries_read) need Redis 7; C(backlog) is C(lag) +
          C(pending) (delivered but not acknowledged), null when the lag is unknown.
      returned: for streams
      type: list
      elements: dict
wait:
  description: Outcome of O(wait_for).
  returned: when O(wait_for) is set
  type: dict
  contains:
    queue:
      description: The key watched.
      type: str
      sample: celery
    group:
      description: The consumer group watched, null for the key's own length.
      type: str
      sample: null
    below:
      description: The threshold.
      type: int
      sample: 100
    met:
      description: Whether the length went below the threshold in time (always true when the module succeeds).
      type: bool
      sample: true
    initial_length:
      description: Length at the first measurement.
      type: int
      sample: 5210
    length:
      description: Length at the last measurement.
      type: int
      sample: 87
    waited_s:
      description: Seconds from the first to the last measurement.
      type: float
      sample: 312.4
    drain_rate:
      description:
        - Items per second the queue shrank by (least-squares slope); negative when it grew; null with fewer than two
          measurements.
      type: float
      sample: 16.4
    polls:
      description: Number of measurements.
      type: int
      sample: 32
    samples:
      description: The most recent measurements (at most 200), as seconds since the first one and length.
      type: list
      elements: dict
      sample: [{"elapsed_s": 0.0, "length": 5210}, {"elapsed_s": 10.0, "length": 5030}]
queries:
  description:
    - Commands the module ran, in order, as command name and key. A command repeated back to back (polling) is listed once.
  returned: always
  type: list
  elements: str
  sample: ["PING", "INFO", "TYPE celery", "LLEN celery"]
"""

import re
import statistics
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._redis import (
    REDIS,
    REDIS_COMMON_ARGS,
    REDIS_CONSTRAINTS,
    RedisClient,
    RedisError,
    RedisInputError,
    RedisPermissionError,
)

LENGTH_COMMANDS = {'list': 'LLEN', 'stream': 'XLEN', 'zset': 'ZCARD', 'set': 'SCARD'}
QUEUE_TYPES = ['auto'] + sorted(LENGTH_COMMANDS)
MAX_SAMPLES = 200
_REPLICA_KEY = re.compile(r'^slave(\d+)$')
_DB_KEY = re.compile(r'^db\d+$')

# Indirection so that unit tests can drive the wait with a fake clock.
_clock = time.monotonic
_sleep = time.sleep
_timer = time.perf_counter


def argument_spec() -> dict[str, t.Any]:
    spec = dict(REDIS_COMMON_ARGS)
    spec.update(
        queues={'type': 'list', 'elements': 'raw', 'default': []},
        ping_count=bounded({'type': 'int', 'default': 3}, minimum=1),
        wait_for={'type': 'dict', 'options': {
            'queue': {'type': 'str', 'required': True},
            'type': {'type': 'str', 'default': 'auto', 'choices': QUEUE_TYPES},
            'group': {'type': 'str'},
            'below': bounded({'type': 'int', 'required': True}, minimum=1),
            'timeout': bounded({'type': 'float', 'default': 300}, minimum=0),
            'interval': bounded({'type': 'float', 'default': 5}, above=0),
        }},
    )
    return spec


def _int(value: t.Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ratio(part: t.Any, whole: t.Any) -> float | None:
    part, whole = _int(part), _int(whole)
    return round(part / whole, 4) if part is not None and whole else None


def queue_specs(raw: list[t.Any]) -> list[dict[str, str]]:
    """Normalise O(queues): a key name or {key, type}, checked here because elements are raw."""
    specs = []
    for index, item in enumerate(raw or []):
        if isinstance(item, str) and item:
            specs.append({'key': item, 'type': 'auto'})
            continue
        if not isinstance(item, dict) or not isinstance(item.get('key'), str) or not item['key']:
            raise RedisInputError(f'queues[{index}] must be a key name or a dict with a non-empty key, got {item!r}')
        unknown = set(item) - {'key', 'type'}
        if unknown:
            raise RedisInputError(f"queues[{index}] has unknown field(s) {', '.join(sorted(unknown))}; allowed: key, type")
        kind = item.get('type') or 'auto'
        if kind not in QUEUE_TYPES:
            raise RedisInputError(f"queues[{index}] ({item['key']}) has type {kind!r}; expected one of {', '.join(QUEUE_TYPES)}")
        specs.append({'key': item['key'], 'type': kind})
    return specs


def check_wait(wait: dict[str, t.Any] | None) -> None:
    if not wait:
        return
    if wait.get('group') and wait['type'] not in ('auto', 'stream'):
        raise RedisInputError(f"wait_for.group only applies to streams, but wait_for.type is {wait['type']}")


def drain_rate(samples: list[tuple[float, int]]) -> float | None:
    """Items per second the queue shrank by: minus the least-squares slope of length over time.

    A regression rather than (first - last) / time keeps one bursty measurement from
    dominating the figure an operator extrapolates from.
    """
    if len(samples) < 2:
        return None
    count = len(samples)
    mean_t = sum(s[0] for s in samples) / count
    mean_l = sum(s[1] for s in samples) / count
    spread = sum((s[0] - mean_t) ** 2 for s in samples)
    if spread == 0:
        return None
    slope = sum((s[0] - mean_t) * (s[1] - mean_l) for s in samples) / spread
    return round(-slope, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def replication_view(info: dict[str, t.Any]) -> dict[str, t.Any]:
    role = 'replica' if info.get('role') == 'slave' else info.get('role')
    master_offset = _int(info.get('master_repl_offset'))
    replicas = []
    for name in sorted((k for k in info if _REPLICA_KEY.match(k)), key=lambda k: int(_REPLICA_KEY.match(k).group(1))):
        entry = info[name] if isinstance(info[name], dict) else {}
        offset = _int(entry.get('offset'))
        replicas.append({'ip': entry.get('ip'), 'port': _int(entry.get('port')), 'state': entry.get('state'), 'offset': offset,
                         'lag': _int(entry.get('lag')),
                         'lag_bytes': master_offset - offset if None not in (master_offset, offset) else None})
    view: dict[str, t.Any] = {'role': role, 'connected_replicas': _int(info.get('connected_slaves')),
                              'master_repl_offset': master_offset, 'replicas': replicas}
    if role == 'replica':
        applied = _int(info.get('slave_repl_offset'))
        view.update(
            master_host=info.get('master_host'), master_port=_int(info.get('master_port')),
            master_link_status=info.get('master_link_status'),
            master_last_io_seconds_ago=_int(info.get('master_last_io_seconds_ago')),
            master_link_down_since_seconds=_int(info.get('master_link_down_since_seconds')),
            master_sync_in_progress=bool(_int(info.get('master_sync_in_progress'))),
            replica_offset=applied, replica_read_offset=_int(info.get('slave_read_repl_offset')),
            lag_bytes=master_offset - applied if None not in (master_offset, applied) else None,
            replica_read_only=bool(_int(info.get('slave_read_only'))),
        )
    return view


def info_sections(info: dict[str, t.Any]) -> dict[str, t.Any]:
    """The INFO fields a responder reads, grouped, with the ratios computed."""
    def pick(*names: str) -> dict[str, t.Any]:
        return {name: info.get(name) for name in names}

    hits, misses = _int(info.get('keyspace_hits')) or 0, _int(info.get('keyspace_misses')) or 0
    memory = pick('used_memory', 'used_memory_human', 'used_memory_rss', 'used_memory_peak_human', 'maxmemory',
                  'maxmemory_human', 'maxmemory_policy', 'mem_fragmentation_ratio')
    memory['usage_ratio'] = _ratio(info.get('used_memory'), info.get('maxmemory'))
    clients = pick('connected_clients', 'blocked_clients', 'maxclients')
    clients.update(saturation=_ratio(info.get('connected_clients'), info.get('maxclients')),
                   rejected_connections=info.get('rejected_connections'))
    stats = pick('instantaneous_ops_per_sec', 'total_commands_processed', 'evicted_keys', 'expired_keys',
                 'keyspace_hits', 'keyspace_misses')
    stats['hit_ratio'] = round(hits / (hits + misses), 4) if hits + misses else None
    server = pick('redis_mode', 'uptime_in_seconds', 'uptime_in_days', 'tcp_port')
    server['redis_version'] = str(info['redis_version']) if info.get('redis_version') is not None else None
    replication = replication_view(info)
    return {
        'role': replication['role'], 'replication': replication, 'memory': memory, 'clients': clients, 'stats': stats,
        'server': server, 'keyspace': {k: v for k, v in info.items() if _DB_KEY.match(k) and isinstance(v, dict)},
    }


class QueueProbe:
    """Type detection and length commands for queue keys; shared by the report and the wait."""

    def __init__(self, client: RedisClient, warnings: list[str]) -> None:
        self.client = client
        self.warnings = warnings

    def key_type(self, key: str, wanted: str) -> str:
        actual = self.client.command('TYPE', key)
        if actual not in ('none', wanted) and wanted != 'auto':
            raise RedisInputError(f'queue {key!r} on {self.client.target} is a {actual}, not a {wanted}')
        return actual

    def length(self, key: str, kind: str) -> int | None:
        if kind == 'none':
            return 0
        command = LENGTH_COMMANDS.get(kind)
        return _int(self.client.command(command, key)) if command else None

    def groups(self, key: str) -> list[dict[str, t.Any]] | None:
        try:
            # One name, as redis-py spells it, so that its reply parser turns the reply into dicts.
            groups = self.client.command('XINFO GROUPS', key)
        except RedisPermissionError as exc:
            self.warnings.append(f'consumer groups of {key!r} not reported: {exc}')
            return None
        out = []
        for group in groups or []:
            if isinstance(group, list):  # an unparsed RESP2 reply: alternating field names and values
                group = dict(zip(group[::2], group[1::2]))
            lag, pending = _int(group.get('lag')), _int(group.get('pending'))
            out.append({'name': group.get('name'), 'consumers': _int(group.get('consumers')), 'pending': pending,
                        'last_delivered_id': group.get('last-delivered-id'), 'entries_read': _int(group.get('entries-read')),
                        'lag': lag, 'backlog': lag + pending if None not in (lag, pending) else None})
        return out

    def measure(self, spec: dict[str, str]) -> dict[str, t.Any]:
        key = spec['key']
        kind = self.key_type(key, spec['type'])
        entry: dict[str, t.Any] = {'key': key, 'type': kind, 'exists': kind != 'none', 'length': self.length(key, kind)}
        if entry['length'] is None:
            self.warnings.append(f'queue {key!r} holds a {kind}, not a list, stream, sorted set or set; no length reported')
        if kind == 'stream':
            entry['groups'] = self.groups(key)
        return entry

    def group_backlog(self, key: str, group: str) -> int:
        for entry in self.groups(key) or []:
            if entry['name'] == group:
                if entry['backlog'] is None:
                    raise RedisInputError(f'{self.client.target} does not report the lag of group {group!r} on stream '
                                          f'{key!r} (it needs Redis 7.0 and a stream without deleted entries)')
                return entry['backlog']
        raise RedisInputError(f'stream {key!r} on {self.client.target} has no consumer group {group!r}')


class QueueWait:
    """Poll one queue until it is below a threshold; measures the drain rate on the way."""

    def __init__(self, probe: QueueProbe, wait: dict[str, t.Any]) -> None:
        self.probe = probe
        self.wait = wait

    def measure(self, kind: str) -> tuple[int, str]:
        key, group = self.wait['queue'], self.wait.get('group')
        if kind in ('auto', 'none'):
            # Not known yet (or the key vanished): detect it, a worker may have created it since.
            kind = self.probe.key_type(key, self.wait['type'])
        if group:
            if kind not in ('stream', 'none'):
                raise RedisInputError(f'wait_for.group needs a stream, but {key!r} on {self.probe.client.target} is a {kind}')
            return (self.probe.group_backlog(key, group) if kind == 'stream' else 0), kind
        length = self.probe.length(key, kind)
        if length is None:
            raise RedisInputError(f'cannot wait for {key!r} on {self.probe.client.target}: it holds a {kind}, '
                                  'not a list, stream, sorted set or set')
        return length, kind

    def run(self) -> dict[str, t.Any]:
        wait = self.wait
        # 'auto' first even for an explicit type: the first TYPE also checks that type.
        kind, samples = 'auto', []
        start = _clock()
        while True:
            length, kind = self.measure(kind)
            elapsed = _clock() - start
            samples.append((round(elapsed, 3), length))
            if length < wait['below'] or elapsed >= wait['timeout']:
                break
            _sleep(min(wait['interval'], wait['timeout'] - elapsed))
        return {
            'queue': wait['queue'], 'group': wait.get('group'), 'below': wait['below'], 'met': samples[-1][1] < wait['below'],
            'initial_length': samples[0][1], 'length': samples[-1][1], 'waited_s': samples[-1][0],
            'drain_rate': drain_rate(samples), 'polls': len(samples),
            'samples': [{'elapsed_s': s[0], 'length': s[1]} for s in samples[-MAX_SAMPLES:]],
        }


def timeout_message(result: dict[str, t.Any], target: str) -> str:
    what = f"consumer group {result['group']!r} of {result['queue']!r}" if result['group'] else f"queue {result['queue']!r}"
    rate = result['drain_rate']
    if rate is None:
        trend = 'a single measurement, no drain rate'
    elif rate > 0:
        remaining = (result['length'] - result['below'] + 1) / rate
        trend = f'draining at {rate:g} items/s, about {remaining:.0f}s more at that rate'
    elif rate < 0:
        trend = f'not draining: growing at {-rate:g} items/s'
    else:
        trend = 'not draining (0 items/s)'
    return (f"{what} on {target} still holds {result['length']} items after {result['waited_s']:g}s "
            f"(wanted fewer than {result['below']}; started at {result['initial_length']}); {trend}")


class RedisReport(Worker):
    """Triage snapshot of one server; the work main() delegates to and unit tests call."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        super().__init__(params)
        self.queues = queue_specs(params.get('queues') or [])
        self.wait = params.get('wait_for')
        check_wait(self.wait)

    def ping(self, client: RedisClient) -> dict[str, t.Any]:
        times, ok = [], True
        for _dummy in range(self.params.get('ping_count', 3)):
            started = _timer()
            ok = client.command('PING') in (True, 'PONG') and ok
            times.append(round((_timer() - started) * 1000, 3))
        return {'ok': ok, 'latency_ms': round(statistics.median(times), 3), 'samples_ms': times}

    def run(self, client: RedisClient) -> dict[str, t.Any]:
        settings = client.settings
        result: dict[str, t.Any] = {
            'changed': False,
            'target': {key: settings[key] for key in ('host', 'port', 'db', 'username', 'tls')},
            'ping': self.ping(client),
        }
        probe = QueueProbe(client, self.warnings)
        waited = QueueWait(probe, self.wait).run() if self.wait else None
        result.update(info_sections(client.command('INFO')))
        result['queues'] = {spec['key']: probe.measure(spec) for spec in self.queues}
        if waited is not None:
            result['wait'] = waited
        result['queries'] = client.queries
        if waited is not None and not waited['met']:
            details = {key: value for key, value in result.items() if key != 'changed'}
            raise RedisError(timeout_message(waited, client.target), **details)
        return result


def main() -> None:
    run_module(argument_spec(), lambda mod: RedisReport(mod.params), lambda mod, _: RedisClient(mod.params), requires=[REDIS], **REDIS_CONSTRAINTS)


if __name__ == '__main__':
    main()
