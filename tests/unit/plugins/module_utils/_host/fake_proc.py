# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A fake /proc tree in a temporary directory, with files shaped like the kernel's."""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

MEMINFO = """MemTotal:       16000000 kB
MemFree:          500000 kB
MemAvailable:    2000000 kB
Buffers:          100000 kB
Cached:          1000000 kB
SwapTotal:       4000000 kB
SwapFree:        3000000 kB
HugePages_Total:       0
"""


class FakeProc:
    """Write /proc files; ``tick`` advances the CPU, process and disk counters as a sample would see them."""

    def __init__(self, root: Path, data_mount: str) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.cpu = [1000, 0, 500, 8000, 100, 0, 0, 0]
        self.disk = [100, 0, 800, 50, 200, 0, 1600, 100, 0, 120, 150]
        self.procs: dict[int, dict[str, t.Any]] = {}
        (root / 'loadavg').write_text('5.00 3.00 1.50 3/412 9999\n')
        (root / 'meminfo').write_text(MEMINFO)
        (root / 'mounts').write_text(
            'proc /proc proc rw,nosuid 0 0\n'
            'sysfs /sys sysfs rw 0 0\n'
            'tmpfs /run tmpfs rw,size=1k 0 0\n'
            f'/dev/vda1 {data_mount.replace(" ", chr(92) + "040")} ext4 rw,relatime 0 0\n'
            '/dev/vda1 /a/longer/bind/mount/of/the/same/device ext4 rw 0 0\n'
            '/dev/loop0 /snap/core/1 squashfs ro 0 0\n'
            '/dev/vdb1 /no/such/mount xfs ro,relatime 0 0\n')
        self.write_counters()

    def process(self, pid: int, comm: str, args: list[str], ticks: int, rss_kb: int, uid: int = 0, state: str = 'S') -> None:
        self.procs[pid] = {'comm': comm, 'args': args, 'ticks': ticks, 'rss_kb': rss_kb, 'uid': uid, 'state': state}
        self.write_counters()

    def write_counters(self) -> None:
        cpu = ' '.join(str(v) for v in self.cpu)
        (self.root / 'stat').write_text(f'cpu  {cpu} 0 0\ncpu0 {cpu} 0 0\ncpu1 {cpu} 0 0\nintr 1 2 3\nctxt 42\n')
        disk = ' '.join(str(v) for v in self.disk)
        (self.root / 'diskstats').write_text(
            f'   7       0 loop0 9 9 9 9 9 9 9 9 0 9 9\n'
            f' 254       0 vda {disk} 0 0 0 0\n'
            f' 254      16 vdb 0 0 0 0 0 0 0 0 0 0 0\n')
        for pid, proc in self.procs.items():
            folder = self.root / str(pid)
            folder.mkdir(exist_ok=True)
            user, system = proc['ticks'] // 2, proc['ticks'] - proc['ticks'] // 2
            fields = [proc['state'], '1', str(pid), str(pid), '0', '-1', '4194560', '0', '0', '0', '0', str(user), str(system),
                      '0', '0', '20', '0', '1', '0', '100', '1000000', str(proc['rss_kb'] // 4)] + ['0'] * 30
            (folder / 'stat').write_text(f"{pid} ({proc['comm']}) {' '.join(fields)}\n")
            (folder / 'status').write_text(f"Name:\t{proc['comm']}\nUid:\t{proc['uid']}\t{proc['uid']}\t{proc['uid']}\t"
                                           f"{proc['uid']}\nVmRSS:\t  {proc['rss_kb']} kB\n")
            (folder / 'cmdline').write_bytes(b''.join(a.encode() + b'\0' for a in proc['args']))

    def tick(self, busy: int, idle: int, iowait: int, proc_ticks: dict[int, int], disk_ops: tuple[int, int], io_ms: int) -> None:
        self.cpu[0] += busy
        self.cpu[3] += idle
        self.cpu[4] += iowait
        for pid, add in proc_ticks.items():
            self.procs[pid]['ticks'] += add
        reads, writes = disk_ops
        self.disk[0] += reads
        self.disk[2] += reads * 8
        self.disk[3] += reads * 2
        self.disk[4] += writes
        self.disk[6] += writes * 16
        self.disk[7] += writes * 3
        self.disk[9] += io_ms
        self.write_counters()

    def remove(self, pid: int) -> None:
        folder = self.root / str(pid)
        for name in os.listdir(folder):
            (folder / name).unlink()
        folder.rmdir()
        del self.procs[pid]
