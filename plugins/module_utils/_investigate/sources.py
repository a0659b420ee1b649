# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The host, log and deployment-history sources of the investigation bundle: their evidence and headline findings.

``host_resources`` is one result per application or database host (a loop of
host_resources_info delegated to each), ``app_logs`` the result of app_logs_info and
``recent_commits`` the output of ``git log`` in the deployment repository, parsed here.
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import aware_or_none

# git log --format of the role's task: full hash, short hash, author date (ISO 8601), author, refs, subject.
GIT_FORMAT = '%H%x1f%h%x1f%aI%x1f%an%x1f%D%x1f%s'
_ERROR_LINE = re.compile(r'\b(ERROR|CRITICAL|FATAL|Traceback|Exception|panic)\b')
# Per-item keys of a loop result that are Ansible's bookkeeping.
_ITEM_KEYS = frozenset(('item', 'ansible_loop_var', 'ansible_index_var', 'ansible_loop', '_ansible_item_label',
                        'invocation', 'changed', 'failed', 'msg', 'unreachable', 'skipped', 'skip_reason',
                        'false_condition', 'deprecations', 'exception', 'module_stderr', 'module_stdout', 'rc'))

# finding(severity, title, detail): adds one headline finding of the source being read.
Finding = t.Callable[[str, str, str], None]


def number(value: t.Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def per_host(registered: t.Mapping[str, t.Any]) -> tuple[str, str | None, dict[str, t.Any]]:
    """(status, error, evidence) of a loop delegated to each host: ok when at least one host answered."""
    hosts = []
    for item in registered.get('results') or []:
        if not isinstance(item, t.Mapping):
            continue
        failed = bool(item.get('failed') or item.get('unreachable'))
        error = (item.get('msg') or 'failed without a message') if failed else None
        evidence = {k: v for k, v in item.items() if k not in _ITEM_KEYS and not str(k).startswith('_ansible')}
        hosts.append(dict(evidence, host=str(item.get('item')), status='error' if failed else 'ok', error=error))
    if not hosts:
        return 'error', 'no host to read (the host groups are empty)', {'hosts': []}
    if all(h['status'] == 'error' for h in hosts):
        return 'error', '; '.join(f"{h['host']}: {h['error']}" for h in hosts), {'hosts': hosts}
    return 'ok', None, {'hosts': hosts}


def parse_commits(stdout: str) -> list[dict[str, t.Any]]:
    commits = []
    for line in (stdout or '').splitlines():
        fields = line.split('\x1f')
        if len(fields) != 6:
            continue
        full, short, date, author, refs, subject = fields
        commits.append({'commit': full, 'short': short, 'date': date, 'author': author,
                        'refs': [r.strip() for r in refs.split(',') if r.strip()], 'subject': subject})
    return commits


def commits_evidence(registered: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The git log command's result as the repository and its commits (``git log --oneline`` with dates and authors)."""
    cmd = registered.get('cmd') or []
    repository = cmd[2] if isinstance(cmd, list) and len(cmd) > 2 and cmd[1] == '-C' else None
    return {'repository': repository, 'commits': parse_commits(registered.get('stdout') or '')}


def host_findings(res: t.Mapping[str, t.Any], th: t.Mapping[str, float], finding: Finding) -> None:
    for host in res.get('hosts') or []:
        name = host.get('host')
        if host.get('status') == 'error':
            finding('warning', f'Host {name} not read', str(host.get('error') or ''))
            continue
        for fs in host.get('filesystems') or []:
            used, inodes = number(fs.get('used_ratio')), number(fs.get('inodes_used_ratio'))
            if used is not None and used >= th['disk_usage_ratio']:
                finding('critical' if used >= 0.98 else 'warning', f"Disk {fs.get('mount')} on {name} is {used:.0%} full",
                        f"{fs.get('available_bytes')} bytes left on {fs.get('device')}")
            if inodes is not None and inodes >= th['inode_usage_ratio']:
                finding('warning', f"Inodes of {fs.get('mount')} on {name} are {inodes:.0%} used",
                        f"{fs.get('inodes_used')} of {fs.get('inodes')}")
        mem = host.get('memory') or {}
        swap = number(mem.get('swap_used_bytes')) or 0
        if swap > th['swap_used_bytes']:
            finding('warning', f'Swap in use on {name}: {swap / 1048576:.0f} MiB',
                    f"memory {number(mem.get('used_ratio')) or 0:.0%} used")
        cpu = host.get('cpu') or {}
        per_core = number(cpu.get('load_per_core'))
        if per_core is not None and per_core > th['load_per_core']:
            finding('warning', f"Load on {name} above its CPUs: {cpu.get('load1')} on {cpu.get('cores')} core(s)",
                    f"busy {cpu.get('busy_percent')} %, iowait {cpu.get('iowait_percent')} %")
        for target in host.get('reachability') or []:
            if not target.get('reachable'):
                finding('critical', f"{target.get('target')} unreachable from {name}", str(target.get('error') or ''))


def log_findings(res: t.Mapping[str, t.Any], finding: Finding) -> None:
    for entry in res.get('logs') or []:
        where = (f"pod {entry.get('pod')} ({entry.get('container')}{', previous instance' if entry.get('previous') else ''})"
                 if entry.get('source') == 'kubernetes' else f"service {entry.get('service')}")
        if entry.get('error'):
            finding('info', f'Log of {where} not readable', str(entry['error']))
            continue
        errors = [line for line in entry.get('lines') or [] if _ERROR_LINE.search(str(line))]
        if errors:
            finding('warning', f"{len(errors)} error line(s) in the last {entry.get('line_count')} of {where}",
                    str(errors[-1])[:200])


def pooler_findings(res: t.Mapping[str, t.Any], finding: Finding) -> None:
    """pgbouncer_info's findings: a paused or disabled database stops the application, a wait slows it."""
    for text in res.get('findings') or []:
        severity = 'critical' if ' is PAUSED ' in str(text) or ' is DISABLED ' in str(text) else 'warning'
        finding(severity, f'PgBouncer {text}', '')


def commit_findings(res: t.Mapping[str, t.Any], th: t.Mapping[str, float], now: datetime.datetime | None,
                    finding: Finding) -> None:
    for commit in res.get('commits') or []:
        when = aware_or_none(commit.get('date'))
        if when and now and 0 <= (now - when).total_seconds() <= th['recent_rollout_s']:
            finding('info', f"Recent commit in the deployment repository: {commit.get('short')} {commit.get('subject')}",
                    f"{commit.get('author')} at {commit.get('date')}")
