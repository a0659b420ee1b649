# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Readers of the Linux /proc files a responder looks at with top, free, df and iostat.

Every reader takes the /proc root as an argument (``/proc`` on a host, a fake tree in the
unit tests) and returns plain numbers; the sampling and the rates are in resources.py.
Nothing here needs a package beyond the standard library.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError

PROC = '/proc'
# Filesystems that hold no data of their own (kernel interfaces, snap images, in-memory).
PSEUDO_FS = frozenset((
    'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs', 'efivarfs',
    'fusectl', 'hugetlbfs', 'mqueue', 'nsfs', 'proc', 'pstore', 'ramfs', 'rpc_pipefs', 'securityfs', 'squashfs',
    'sysfs', 'tmpfs', 'tracefs', 'fuse.gvfsd-fuse', 'fuse.portal', 'fuse.lxcfs', 'overlay.lower',
))
# Block devices whose I/O says nothing about the host's disks.
_VIRTUAL_DISK = re.compile(r'^(loop|ram|zram|fd|sr)\d')
_OCTAL = re.compile(r'\\([0-7]{3})')
CPU_FIELDS = ('user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal')


class HostError(TrdrhubError):
    """A /proc file that must be there is missing or unreadable (not Linux, or /proc not mounted)."""


def read_text(root: str, *parts: str) -> str:
    path = os.path.join(root, *parts)
    try:
        with open(path, encoding='utf-8', errors='replace') as handle:
            return handle.read()
    except OSError as exc:
        raise HostError(f'Cannot read {path}: {exc.strerror or exc} - the module needs a Linux host with /proc mounted') from None


def loadavg(root: str) -> dict[str, t.Any]:
    fields = read_text(root, 'loadavg').split()
    running, dummy, total = fields[3].partition('/')
    return {'load1': float(fields[0]), 'load5': float(fields[1]), 'load15': float(fields[2]),
            'running': int(running), 'processes': int(total)}


def cpu_times(root: str) -> tuple[dict[str, int], int]:
    """(aggregate CPU jiffies by field, number of CPUs) from /proc/stat."""
    totals: dict[str, int] = {}
    cpus = 0
    for line in read_text(root, 'stat').splitlines():
        name, dummy, rest = line.partition(' ')
        if name == 'cpu':
            values = [int(v) for v in rest.split()]
            totals = {field: values[i] if i < len(values) else 0 for i, field in enumerate(CPU_FIELDS)}
        elif name.startswith('cpu') and name[3:].isdigit():
            cpus += 1
    if not totals:
        raise HostError(f'{os.path.join(root, "stat")} has no aggregate cpu line')
    return totals, max(cpus, 1)


def meminfo(root: str) -> dict[str, int]:
    """/proc/meminfo in bytes (the file says kB)."""
    out = {}
    for line in read_text(root, 'meminfo').splitlines():
        key, dummy, rest = line.partition(':')
        value = rest.split()
        if value and value[0].isdigit():
            out[key] = int(value[0]) * (1024 if value[1:] == ['kB'] else 1)
    return out


def _unescape(text: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def mounts(root: str) -> list[dict[str, str]]:
    """Mounted filesystems that hold data, once per device (a bind mount of a device already listed is left out)."""
    seen: set[str] = set()
    out = []
    for line in read_text(root, 'mounts').splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, mount, fstype = _unescape(fields[0]), _unescape(fields[1]), fields[2]
        if fstype in PSEUDO_FS or fstype.startswith('fuse.') and fstype != 'fuse.sshfs':
            continue
        entry = {'device': device, 'mount': mount, 'fstype': fstype, 'options': fields[3]}
        if device.startswith('/') and device in seen:
            continue
        seen.add(device)
        out.append(entry)
    return out


def hides_processes(root: str) -> bool:
    """Whether /proc is mounted with hidepid (other users' processes are invisible to a non-root reader)."""
    for line in read_text(root, 'mounts').splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == 'proc' and any(o.startswith('hidepid=') and o not in ('hidepid=0', 'hidepid=off')
                                                            for o in fields[3].split(',')):
            return True
    return False


def diskstats(root: str) -> dict[str, dict[str, int]]:
    """Counters per block device: completed reads/writes, sectors, milliseconds spent."""
    out = {}
    for line in read_text(root, 'diskstats').splitlines():
        fields = line.split()
        if len(fields) < 14 or _VIRTUAL_DISK.match(fields[2]):
            continue
        values = [int(v) for v in fields[3:14]]
        out[fields[2]] = {'reads': values[0], 'read_sectors': values[2], 'read_ms': values[3], 'writes': values[4],
                          'write_sectors': values[6], 'write_ms': values[7], 'in_flight': values[8], 'io_ms': values[9]}
    return out


def pids(root: str) -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(root) if name.isdigit())
    except OSError as exc:
        raise HostError(f'Cannot list {root}: {exc.strerror or exc}') from None


def process_stat(root: str, pid: int) -> dict[str, t.Any] | None:
    """comm, state, CPU ticks (user + system) and RSS pages of one process; None if it is gone."""
    try:
        with open(os.path.join(root, str(pid), 'stat'), encoding='utf-8', errors='replace') as handle:
            text = handle.read()
    except OSError:
        return None
    comm = text[text.find('(') + 1:text.rfind(')')]
    rest = text[text.rfind(')') + 2:].split()
    if len(rest) < 22:
        return None
    return {'pid': pid, 'comm': comm, 'state': rest[0], 'ticks': int(rest[11]) + int(rest[12]), 'rss_pages': int(rest[21])}


def process_details(root: str, pid: int) -> dict[str, t.Any]:
    """User id, resident memory and the argument list of one process (empty when it is gone or a kernel thread)."""
    details: dict[str, t.Any] = {'uid': None, 'rss_bytes': None, 'args': []}
    try:
        with open(os.path.join(root, str(pid), 'status'), encoding='utf-8', errors='replace') as handle:
            for line in handle:
                key, dummy, value = line.partition(':')
                if key == 'Uid' and value.split():
                    details['uid'] = int(value.split()[0])
                elif key == 'VmRSS' and value.split():
                    details['rss_bytes'] = int(value.split()[0]) * 1024
        with open(os.path.join(root, str(pid), 'cmdline'), 'rb') as handle:
            raw = handle.read()
    except OSError:
        return details
    details['args'] = [a.decode('utf-8', 'replace') for a in raw.rstrip(b'\0').split(b'\0')] if raw else []
    return details
