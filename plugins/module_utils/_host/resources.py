# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What top, free -m, df -h / df -i and iostat -x show, from two snapshots of /proc a short sample apart.

``HostResources`` is the worker of host_resources_info: it reads everything once, waits
``sample_seconds``, reads the counters again and turns the differences into rates (CPU
busy and iowait, per-process CPU, disk reads and writes per second). Command lines are
shown through the collection's redaction, so a password passed as an argument never
reaches the result.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import MASK, Redactor, is_secret_key
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._host import procfs
from ansible_collections.trdrhub.incident.plugins.module_utils._host.reach import parse_target, reach_all

SECTOR = 512
MAX_CMDLINE = 300
_FLAG = re.compile(r'^--?([A-Za-z][\w.-]*)$')

# Indirection so that unit tests can drive the sample with a fake clock.
_clock = time.monotonic
_sleep = time.sleep


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _per_second(delta: float, elapsed: float) -> float | None:
    return round(delta / elapsed, 2) if elapsed > 0 else None


# name=value pairs inside one argument; a secret-named name has its value masked.
_SECRET_ASSIGNMENT = re.compile(r'(?<![^\s])(-{0,2}[A-Za-z][\w.-]*)=(\S+)')


def _mask_assignment(match: re.Match) -> str:
    name = match.group(1)
    return f'{name}={MASK}' if is_secret_key(name.lstrip('-')) else match.group(0)


def _structured(arg: str) -> t.Any:
    """A JSON object or list given as one argument (extra vars, a config blob), else None."""
    if arg[:1] not in ('{', '['):
        return None
    try:
        value = json.loads(arg)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def redact_args(args: list[str], redactor: Redactor) -> str:
    """The command line with the value after a secret-named flag (``--password x``) and secret shapes masked."""
    shown, hide_next = [], False
    for arg in args:
        if hide_next:
            shown.append(MASK)
            hide_next = False
            continue
        flag = _FLAG.match(arg)
        hide_next = bool(flag and is_secret_key(flag.group(1)))
        structured = _structured(arg)
        if structured is not None:   # ansible-playbook -e '{"db_password": "..."}' and the like
            shown.append(json.dumps(redactor.clean(structured), separators=(',', ':')))
            continue
        arg = _SECRET_ASSIGNMENT.sub(_mask_assignment, arg)   # --password=x, -e 'db_password=x other=y'
        shown.append(redactor.text(arg))
    text = ' '.join(shown)
    return text if len(text) <= MAX_CMDLINE else text[:MAX_CMDLINE - 3] + '...'


def cpu_view(before: dict[str, int], after: dict[str, int] | None, cores: int, load: dict[str, t.Any]) -> dict[str, t.Any]:
    view: dict[str, t.Any] = {'cores': cores, 'load1': load['load1'], 'load5': load['load5'], 'load15': load['load15'],
                              'load_per_core': round(load['load1'] / cores, 2), 'running': load['running'],
                              'processes': load['processes'], 'busy_percent': None, 'iowait_percent': None,
                              'steal_percent': None}
    if after is not None:
        delta = {k: after[k] - before[k] for k in procfs.CPU_FIELDS}
        total = sum(delta.values())
        if total > 0:
            view.update(busy_percent=round(100.0 * (total - delta['idle'] - delta['iowait']) / total, 1),
                        iowait_percent=round(100.0 * delta['iowait'] / total, 1),
                        steal_percent=round(100.0 * delta['steal'] / total, 1))
    return view


def memory_view(info: dict[str, int]) -> dict[str, t.Any]:
    total = info.get('MemTotal', 0)
    available = info.get('MemAvailable', info.get('MemFree', 0) + info.get('Buffers', 0) + info.get('Cached', 0))
    swap_total = info.get('SwapTotal', 0)
    swap_used = swap_total - info.get('SwapFree', 0)
    return {'total_bytes': total, 'available_bytes': available, 'used_bytes': total - available,
            'used_ratio': _ratio(total - available, total), 'swap_total_bytes': swap_total, 'swap_used_bytes': swap_used,
            'swap_used_ratio': _ratio(swap_used, swap_total)}


def filesystem_view(entry: dict[str, str]) -> dict[str, t.Any]:
    """df -h and df -i for one mount; ``error`` when statvfs fails (a hung NFS mount, a permission)."""
    view: dict[str, t.Any] = {'mount': entry['mount'], 'device': entry['device'], 'fstype': entry['fstype'],
                              'read_only': 'ro' in entry['options'].split(','), 'size_bytes': None, 'used_bytes': None,
                              'available_bytes': None, 'used_ratio': None, 'inodes': None, 'inodes_used': None,
                              'inodes_used_ratio': None, 'error': None}
    try:
        st = os.statvfs(entry['mount'])
    except OSError as exc:
        view['error'] = exc.strerror or str(exc)
        return view
    size, free, avail = st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize
    used = size - free
    # As df: the share of what non-root users can use, so a disk is "100 %" when they cannot write any more.
    view.update(size_bytes=size, used_bytes=used, available_bytes=avail, used_ratio=_ratio(used, used + avail))
    if st.f_files:
        view.update(inodes=st.f_files, inodes_used=st.f_files - st.f_ffree, inodes_used_ratio=_ratio(st.f_files - st.f_ffree, st.f_files))
    return view


def disk_rates(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], elapsed: float) -> list[dict[str, t.Any]]:
    """iostat -x per device over the sample: operations and kB per second, average wait, utilisation."""
    out = []
    for name, now in after.items():
        then = before.get(name)
        if then is None or not any(now.values()):
            continue
        d = {k: now[k] - then[k] for k in now}
        ops = d['reads'] + d['writes']
        out.append({'device': name, 'reads_per_s': _per_second(d['reads'], elapsed),
                    'writes_per_s': _per_second(d['writes'], elapsed),
                    'read_kb_per_s': _per_second(d['read_sectors'] * SECTOR / 1024, elapsed),
                    'write_kb_per_s': _per_second(d['write_sectors'] * SECTOR / 1024, elapsed),
                    'await_ms': round((d['read_ms'] + d['write_ms']) / ops, 2) if ops else None,
                    'util_percent': min(100.0, round(100.0 * d['io_ms'] / (elapsed * 1000), 1)) if elapsed > 0 else None,
                    'in_flight': now['in_flight']})
    return sorted(out, key=lambda r: -(r['util_percent'] or 0))


def _user(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class HostResources(Worker):
    """One read of the host: load, CPU, memory, filesystems, top processes, disk I/O and reachability."""

    def __init__(self, params: t.Mapping[str, t.Any], root: str | None = None) -> None:
        super().__init__(params)
        self.root = root or procfs.PROC   # a fake tree in the unit tests, never a user option
        for target in params.get('targets') or []:   # bad input fails before anything is read
            parse_target(target)
        self.redactor = Redactor()

    def _processes(self) -> dict[int, dict[str, t.Any]]:
        return {s['pid']: s for s in (procfs.process_stat(self.root, pid) for pid in procfs.pids(self.root)) if s}

    def _top(self, before: dict[int, dict[str, t.Any]], after: dict[int, dict[str, t.Any]] | None,
             elapsed: float) -> dict[str, list[dict[str, t.Any]]]:
        count = self.params['top']
        ticks = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100
        pages = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096
        current = after if after is not None else before
        rows = []
        for pid, now in current.items():
            then = before.get(pid)
            cpu = None
            if after is not None and then is not None and elapsed > 0:
                cpu = round(100.0 * (now['ticks'] - then['ticks']) / (ticks * elapsed), 1)
            rows.append({'pid': pid, 'name': now['comm'], 'state': now['state'], 'cpu_percent': cpu,
                         'rss_bytes': now['rss_pages'] * pages})
        by_cpu = sorted(rows, key=lambda r: (-(r['cpu_percent'] or 0), r['pid']))[:count] if after is not None else []
        by_rss = sorted(rows, key=lambda r: (-r['rss_bytes'], r['pid']))[:count]
        for row in {id(r): r for r in by_cpu + by_rss}.values():
            details = procfs.process_details(self.root, row['pid'])
            row['user'] = _user(details['uid'])
            if details['rss_bytes'] is not None:
                row['rss_bytes'] = details['rss_bytes']
            row['command'] = redact_args(details['args'], self.redactor) if details['args'] else f"[{row['name']}]"
        return {'by_cpu': by_cpu, 'by_memory': sorted(by_rss, key=lambda r: (-r['rss_bytes'], r['pid']))}

    def _filesystems(self) -> list[dict[str, t.Any]]:
        wanted = self.params.get('mounts') or []
        found = procfs.mounts(self.root)
        if wanted:
            known = {m['mount'] for m in found}
            missing = [m for m in wanted if m not in known]
            if missing:
                self.warnings.append(f"mounts: {', '.join(missing)} not mounted (or not a data filesystem); "
                                     f"mounted: {', '.join(sorted(known))}")
            found = [m for m in found if m['mount'] in wanted]
        views = [filesystem_view(m) for m in found]
        for view in views:
            if view['error']:
                self.warnings.append(f"statvfs({view['mount']}) failed: {view['error']}")
        return views

    def run(self, client: t.Any = None) -> dict[str, t.Any]:  # pylint: disable=unused-argument
        sample = self.params['sample_seconds']
        load = procfs.loadavg(self.root)
        cpu0, cores = procfs.cpu_times(self.root)
        disks0 = procfs.diskstats(self.root)
        procs0 = self._processes() if self.params['top'] else {}
        started = _clock()
        cpu1 = disks1 = procs1 = None
        elapsed = 0.0
        if sample > 0:
            _sleep(sample)
            elapsed = _clock() - started
            cpu1 = procfs.cpu_times(self.root)[0]
            disks1 = procfs.diskstats(self.root)
            procs1 = self._processes() if self.params['top'] else {}
        top = self._top(procs0, procs1, elapsed) if self.params['top'] else {'by_cpu': [], 'by_memory': []}
        if self.params['top'] and os.geteuid() != 0 and procfs.hides_processes(self.root):
            self.warnings.append('/proc is mounted with hidepid: processes of other users are not listed (run as root to see them)')
        result = {
            'changed': False, 'sample_seconds': round(elapsed, 3),
            'cpu': cpu_view(cpu0, cpu1, cores, load), 'memory': memory_view(procfs.meminfo(self.root)),
            'filesystems': self._filesystems(), 'processes': top,
            'disks': disk_rates(disks0, disks1, elapsed) if disks1 is not None else [],
        }
        result['reachability'] = reach_all(self.params.get('targets') or [], self.params['connect_timeout'],
                                           self.params['connect_attempts'])
        result['unreachable_targets'] = [r['target'] for r in result['reachability'] if not r['reachable']]
        return result
