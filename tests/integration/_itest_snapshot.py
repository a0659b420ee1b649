"""What a check-mode run may not do: write a file. Snapshots of directory trees, compared before and after.

``Snapshot(dirs).new_or_changed()`` lists every path (file or directory) that appeared, disappeared or changed
(size or modification time) below the given directories since the snapshot was taken. The checkout's own
``incidents/`` and ``playbooks/incidents/`` are always watched: a run from a checkout must not leave an
incident there either. Ansible's own scratch directory (ANSIBLE_LOCAL_TEMP) is not watched.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from _itest_ansible import REPO_ROOT

ALWAYS = (REPO_ROOT / "incidents", REPO_ROOT / "playbooks" / "incidents")
# "PLAY RECAP" lines: "host : ok=12 changed=0 unreachable=0 failed=0 ..."
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def tree(root: Path, ignore: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return out
    for current, dirs, files in os.walk(root):
        here = Path(current)
        dirs[:] = [d for d in dirs if here / d not in ignore]
        for name in dirs + files:
            path = here / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            out[str(path)] = (0 if path.is_dir() else st.st_size, st.st_mtime_ns)
    return out


class Snapshot:
    def __init__(self, *dirs: Path, ignore: tuple[Path, ...] = ()) -> None:
        self.dirs = tuple(Path(d) for d in dirs) + ALWAYS
        self.ignore = tuple(Path(i) for i in ignore)
        self.before = self._take()

    def _take(self) -> dict[str, tuple[int, int]]:
        seen: dict[str, tuple[int, int]] = {}
        for root in self.dirs:
            seen[str(root)] = (-1, 0) if not root.exists() else (0, 0)
            seen.update(tree(root, self.ignore))
        return seen

    def new_or_changed(self) -> list[str]:
        after = self._take()
        return sorted(path for path in set(self.before) | set(after) if self.before.get(path) != after.get(path))


def recap(output: str) -> dict[str, dict[str, int]]:
    """{host: {ok, changed, unreachable, failed}} of the run's PLAY RECAP."""
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))} for m in RECAP.finditer(output)}


def changed_tasks(output: str) -> list[str]:
    """The task headers under which the default callback printed a "changed:" line."""
    task, out = None, []
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif line.startswith("changed:") and task and (not out or out[-1] != task):
            out.append(task)
    return out
