# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_resources_info
short_description: Report a host's load, CPU, memory, disks, top processes and TCP reachability for incident triage
version_added: 1.0.0
description:
  - Reads what C(top), C(free -m), C(df -h), C(df -i) and C(iostat -x 1) show, from C(/proc) and C(statvfs) only - no
    package beyond Python's standard library is needed on the host.
  - Load averages against the number of CPUs; CPU busy, iowait and steal over a short sample; memory and swap in use;
    space and inodes used per mounted data filesystem; the processes using the most CPU over the sample and the most
    resident memory; reads, writes, throughput, wait and utilisation per block device over the sample.
  - Then connects over TCP to each of O(targets) (the database, Redis, the API) from this host and reports whether it
    answered and how long the handshake took - the runbook's C(ping) and C(telnet redis-host 6379).
  - Read-only; never changes anything. Linux only.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  sample_seconds:
    description:
      - Seconds between the two reads of the CPU, process and disk counters the rates are computed from.
      - V(0) reads once; the rates (RV(cpu.busy_percent), RV(processes.by_cpu), RV(disks)) are then null or empty.
    type: float
    default: 1.0
  top:
    description:
      - Number of processes to list by CPU and by resident memory. V(0) skips reading the processes.
    type: int
    default: 10
  mounts:
    description:
      - Mount points to report. Empty reports every mounted filesystem that holds data (not C(proc), C(sysfs),
        C(tmpfs), C(squashfs) and the like), once per device.
      - A mount point that is not mounted is a warning.
    type: list
    elements: str
    default: []
  targets:
    description:
      - TCP endpoints to connect to, each V(host:port) (V([address]:port) for IPv6), for example the database
        V(db-primary.internal:5432), Redis V(redis.internal:6379) and the API V(api.internal:443).
      - One that does not answer is listed in RV(unreachable_targets); the module does not fail.
    type: list
    elements: str
    default: []
  connect_timeout:
    description:
      - Seconds to wait for each TCP connection.
    type: float
    default: 3
  connect_attempts:
    description:
      - Connections per target; RV(reachability[].latency_ms) is the median of those that succeeded.
    type: int
    default: 3
extends_documentation_fragment:
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - The module only reads (and opens and closes TCP connections), so it runs unchanged in check mode.
  platform:
    platforms: linux
notes:
  - Run it on each application and database host (the C(investigate) role delegates it to the hosts of its
    C(investigate_host_resources_hosts)). Any user can read what it needs; when C(/proc) is mounted with C(hidepid), a
    user other than root does not see other users' processes, and the module warns so.
  - Command lines are redacted - the value after a secret-named flag (C(--password x), C(--api-key=x)), C(password=...)
    and credentials in URLs are masked - and cut at 300 characters.
  - RV(filesystems[].used_ratio) is computed as C(df) computes its percentage - used against used plus what
    non-root users may still write - so a filesystem whose reserved blocks are all that is left shows V(1.0).
seealso:
  - module: trdrhub.incident.pg_activity_info
  - name: proc(5)
    description: The Linux manual page of every /proc file the module reads.
    link: https://man7.org/linux/man-pages/man5/proc.5.html
"""

EXAMPLES = r"""
- name: Read the resources of the application and database hosts
  trdrhub.incident.host_resources_info:
    targets:
      - db-primary.internal.trdrhub.example:5432
      - redis.internal.trdrhub.example:6379
      - api.trdrhub.example:443
  delegate_to: "{{ item }}"
  loop: "{{ groups['app_hosts'] + groups['db_hosts'] }}"
  register: hosts

- name: Say which disk is nearly full
  ansible.builtin.debug:
    msg: "{{ item.mount }} is {{ (item.used_ratio * 100) | round }} % full"
  loop: "{{ hosts.results | map(attribute='filesystems') | flatten | selectattr('used_ratio', 'ge', 0.9) }}"

- name: A quick read without sampling, filesystems only
  trdrhub.incident.host_resources_info:
    sample_seconds: 0
    top: 0
    mounts: [/, /var/lib/postgresql]
"""

RETURN = r"""
sample_seconds:
  description: Seconds actually elapsed between the two reads; V(0) without sampling.
  returned: always
  type: float
  sample: 1.001
cpu:
  description: Load and CPU use (C(top)'s header).
  returned: always
  type: dict
  contains:
    cores:
      description: Number of CPUs.
      type: int
      sample: 4
    load1:
      description: Load average over 1 minute.
      type: float
      sample: 5.2
    load5:
      description: Load average over 5 minutes.
      type: float
      sample: 3.1
    load15:
      description: Load average over 15 minutes.
      type: float
      sample: 1.9
    load_per_core:
      description: RV(cpu.load1) divided by RV(cpu.cores); above V(1) more work is waiting than the CPUs can run.
      type: float
      sample: 1.3
    running:
      description: Runnable tasks at the time of the read.
      type: int
      sample: 6
    processes:
      description: Tasks (processes and threads) in the system.
      type: int
      sample: 412
    busy_percent:
      description: Share of CPU time not idle and not waiting for I/O over the sample; null without sampling.
      type: float
      sample: 87.5
    iowait_percent:
      description: Share of CPU time idle while waiting for I/O over the sample; null without sampling.
      type: float
      sample: 4.2
    steal_percent:
      description: Share of CPU time taken by the hypervisor over the sample; null without sampling.
      type: float
      sample: 0.0
memory:
  description: Memory and swap (C(free)), in bytes.
  returned: always
  type: dict
  contains:
    total_bytes:
      description: Physical memory.
      type: int
      sample: 16777216000
    available_bytes:
      description: Memory available to new work without swapping (C(MemAvailable)).
      type: int
      sample: 2147483648
    used_bytes:
      description: RV(memory.total_bytes) minus RV(memory.available_bytes).
      type: int
      sample: 14629732352
    used_ratio:
      description: RV(memory.used_bytes) / RV(memory.total_bytes), 4 decimals.
      type: float
      sample: 0.872
    swap_total_bytes:
      description: Swap space; V(0) without swap.
      type: int
      sample: 4294967296
    swap_used_bytes:
      description: Swap in use.
      type: int
      sample: 104857600
    swap_used_ratio:
      description: RV(memory.swap_used_bytes) / RV(memory.swap_total_bytes); null without swap.
      type: float
      sample: 0.0244
filesystems:
  description: Space and inodes per mounted data filesystem (C(df -h) and C(df -i)).
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: Mount point.
      type: str
      sample: /var/lib/postgresql
    device:
      description: Device or source.
      type: str
      sample: /dev/nvme1n1
    fstype:
      description: Filesystem type.
      type: str
      sample: ext4
    read_only:
      description: Whether it is mounted read-only.
      type: bool
      sample: false
    size_bytes:
      description: Size.
      type: int
      sample: 107374182400
    used_bytes:
      description: Space used.
      type: int
      sample: 98784247808
    available_bytes:
      description: Space non-root users may still use.
      type: int
      sample: 3221225472
    used_ratio:
      description: Used against used plus available, as C(df) shows it, 4 decimals.
      type: float
      sample: 0.9684
    inodes:
      description: Inodes; null on filesystems without a fixed number (btrfs, some network filesystems).
      type: int
      sample: 6553600
    inodes_used:
      description: Inodes in use.
      type: int
      sample: 412345
    inodes_used_ratio:
      description: RV(filesystems[].inodes_used) / RV(filesystems[].inodes), 4 decimals.
      type: float
      sample: 0.0629
    error:
      description: Why the filesystem could not be measured (for example a hung network mount); null when it was.
      type: str
      sample: null
processes:
  description: The top processes.
  returned: always
  type: dict
  contains:
    by_cpu:
      description: The O(top) processes using the most CPU over the sample; empty without sampling.
      type: list
      elements: dict
      sample:
        - {pid: 2211, name: postgres, user: postgres, state: R, cpu_percent: 97.0, rss_bytes: 152043520,
           command: "postgres: trdrhub lcopilot 10.0.0.5(51234) SELECT"}
    by_memory:
      description: The O(top) processes with the most resident memory, with the same keys.
      type: list
      elements: dict
      sample:
        - {pid: 1821, name: python3, user: trdrhub, state: S, cpu_percent: 1.0, rss_bytes: 1610612736,
           command: "gunicorn app.main:app --workers 4"}
disks:
  description:
    - Per block device over the sample (C(iostat -x)), busiest first; devices that never did any I/O and loop, RAM and
      optical devices are left out. Empty without sampling.
  returned: always
  type: list
  elements: dict
  sample:
    - {device: nvme1n1, reads_per_s: 120.0, writes_per_s: 840.0, read_kb_per_s: 3840.0, write_kb_per_s: 52000.0,
       await_ms: 4.1, util_percent: 96.0, in_flight: 12}
reachability:
  description: One entry per O(targets), in order.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: The target as given.
      type: str
      sample: redis.internal.trdrhub.example:6379
    host:
      description: Host name or address.
      type: str
      sample: redis.internal.trdrhub.example
    port:
      description: TCP port.
      type: int
      sample: 6379
    address:
      description: The address connected to; null when the name did not resolve.
      type: str
      sample: 10.42.5.10
    reachable:
      description: Whether at least one connection succeeded.
      type: bool
      sample: true
    latency_ms:
      description: Median connect time of the successful connections in milliseconds; null when none succeeded.
      type: float
      sample: 0.41
    samples_ms:
      description: Connect time of each successful connection.
      type: list
      elements: float
      sample: [0.52, 0.41, 0.39]
    error:
      description: Why the last failed connection failed (refused, timed out, name not resolved); null when all succeeded.
      type: str
      sample: null
unreachable_targets:
  description: The O(targets) no connection succeeded to.
  returned: always
  type: list
  elements: str
  sample: ["redis.internal.trdrhub.example:6379"]
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._host.resources import HostResources


def argument_spec() -> dict[str, t.Any]:
    return {
        'sample_seconds': bounded({'type': 'float', 'default': 1.0}, minimum=0, maximum=60),
        'top': bounded({'type': 'int', 'default': 10}, minimum=0, maximum=100),
        'mounts': {'type': 'list', 'elements': 'str', 'default': []},
        'targets': {'type': 'list', 'elements': 'str', 'default': []},
        'connect_timeout': bounded({'type': 'float', 'default': 3}, above=0, maximum=MAX_SOCKET_TIMEOUT),
        'connect_attempts': bounded({'type': 'int', 'default': 3}, minimum=1, maximum=20),
    }


def main() -> None:
    run_module(argument_spec(), lambda module: HostResources(module.params))


if __name__ == '__main__':
    main()
