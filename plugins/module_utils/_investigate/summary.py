# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The Markdown summary of an investigation bundle (summary.md): findings first, then one section per collector.

Query texts and messages come from the systems under investigation, so every value is put
into a code span or a table cell with the Markdown that could break the layout neutralised.
"""

from __future__ import annotations

import typing as t

# Collector name -> section title, in the order the summary shows them.
COLLECTORS = {
    'postgres': 'PostgreSQL activity',
    'migrations': 'Migrations',
    'audit_chain': 'Audit chain',
    'redis': 'Redis',
    'health': 'Health and TLS',
    'kubernetes': 'Kubernetes rollouts',
    'recent_commits': 'Recent deployments (deployment repository)',
    'host_resources': 'Application and database hosts',
    'app_logs': 'Application logs',
    'pgbouncer': 'PgBouncer pools',
}


def number(value: t.Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _code(value: t.Any, limit: int = 120) -> str:
    text = ' '.join(str(value if value is not None else '').split())
    if len(text) > limit:
        text = text[:limit - 3] + '...'
    return '`' + text.replace('`', "'") + '`' if text else ''


def _cell(value: t.Any) -> str:
    return ' '.join(str('' if value is None else value).split()).replace('|', '\\|')


def _table(header: list[str], rows: list[list[t.Any]]) -> list[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_cell(c) for c in row) + ' |' for row in rows]
    return lines + ['']


def _sessions(title: str, sessions: list[dict[str, t.Any]]) -> list[str]:
    if not sessions:
        return []
    rows = [[s.get('pid'), s.get('usename'), s.get('application_name'), s.get('state'),
             f"{number(s.get('duration_s')) or 0:.0f}s", _code(s.get('query'), 80)] for s in sessions[:20]]
    more = [f'... and {len(sessions) - 20} more', ''] if len(sessions) > 20 else []
    return [f'**{title}** ({len(sessions)})', ''] + _table(['pid', 'user', 'application', 'state', 'for', 'query'], rows) + more


def _md_postgres(res: t.Mapping[str, t.Any]) -> list[str]:
    conn, stats = res.get('connections') or {}, res.get('stats') or {}
    by_state = ', '.join(f'{k} {v}' for k, v in sorted((conn.get('by_state') or {}).items()))
    lines = [f"- Database {_code(res.get('database'))}, PostgreSQL {res.get('server_version')}, "
             f"ping {(res.get('ping') or {}).get('latency_ms')} ms",
             f"- Connections: {conn.get('total')} of {conn.get('max_connections')} ({by_state})",
             f"- Transactions: {stats.get('xact_commit')} committed, {stats.get('xact_rollback')} rolled back, "
             f"{stats.get('deadlocks')} deadlocks, cache hit ratio {stats.get('cache_hit_ratio')}", '']
    blockers = res.get('blockers') or []
    if blockers:
        lines += ['**Blockers**', '']
        lines += _table(['pid', 'user', 'application', 'state', 'blocks', 'query'],
                        [[b.get('pid'), b.get('usename'), b.get('application_name'), b.get('state'),
                          ', '.join(str(p) for p in b.get('blocked_pids') or []), _code(b.get('query'), 80)] for b in blockers])
    lines += _sessions('Long-running statements', res.get('long_running') or [])
    lines += _sessions('Idle in transaction', res.get('idle_in_transaction') or [])
    return lines


def _md_migrations(res: t.Mapping[str, t.Any]) -> list[str]:
    state = {True: 'up to date', False: 'NOT up to date', None: 'no expected revision given'}[res.get('up_to_date')]
    lines = [f"- Version table {_code(res.get('version_table'))}: "
             f"{'revision(s) ' + ', '.join(res.get('revisions') or []) if res.get('initialized') else 'absent'} ({state})",
             f"- Database size {res.get('database_size')}, PostgreSQL {res.get('server_version')}"]
    if res.get('pending'):
        lines.append(f"- {res['pending']}")
    lines.append('')
    tables = res.get('tables') or {}
    if tables:
        lines += _table(['table', 'exists', 'rows (estimate)', 'size (bytes)', 'last analysed'],
                        [[name, 'yes' if info.get('exists') else 'no', info.get('row_estimate'), info.get('size_bytes'),
                          info.get('last_analyzed')] for name, info in tables.items()])
    return lines


def _md_audit(res: t.Mapping[str, t.Any]) -> list[str]:
    verdict = 'VALID' if res.get('is_valid') else 'BROKEN'
    lines = [f"- {verdict}: {res.get('total_entries')} entries in {res.get('tenants')} tenant chain(s), "
             f"{res.get('violation_count', 0)} violation(s), verified at {res.get('verified_at')}", '']
    violations = res.get('violations') or []
    if violations:
        lines += _table(['kind', 'tenant', 'sequence', 'message'],
                        [[v.get('kind'), v.get('tenant_id'), v.get('sequence_number'), v.get('message')] for v in violations[:20]])
    return lines


def _md_redis(res: t.Mapping[str, t.Any]) -> list[str]:
    mem, clients, target = res.get('memory') or {}, res.get('clients') or {}, res.get('target') or {}
    lines = [f"- {target.get('host')}:{target.get('port')} db {target.get('db')}, Redis "
             f"{(res.get('server') or {}).get('redis_version')}, role {res.get('role')}, "
             f"ping {(res.get('ping') or {}).get('latency_ms')} ms",
             f"- Memory {mem.get('used_memory_human')} (maxmemory {mem.get('maxmemory_human')}), "
             f"clients {clients.get('connected_clients')} ({clients.get('blocked_clients')} blocked)", '']
    queues = res.get('queues') or {}
    if queues:
        lines += _table(['queue', 'type', 'length', 'group backlog'],
                        [[name, q.get('type'), q.get('length'),
                          ', '.join(f"{g.get('name')} {g.get('backlog')}" for g in q.get('groups') or [])]
                         for name, q in sorted(queues.items())])
    replicas = (res.get('replication') or {}).get('replicas') or []
    if replicas:
        lines += _table(['replica', 'state', 'lag (bytes)', 'last ack (s)'],
                        [[f"{r.get('ip')}:{r.get('port')}", r.get('state'), r.get('lag_bytes'), r.get('lag')] for r in replicas])
    return lines


def _md_health(res: t.Mapping[str, t.Any]) -> list[str]:
    lines = [f"- Overall: {'healthy' if res.get('healthy') else 'UNHEALTHY'}", '']
    lines += _table(['endpoint', 'status', 'ok', 'latency (ms)', 'problem'],
                    [[e.get('path'), e.get('status'), 'yes' if e.get('ok') else 'NO', e.get('latency_ms'),
                      e.get('error') or '; '.join(str(f) for f in e.get('failed_checks') or [])] for e in res.get('endpoints') or []])
    tls = res.get('tls')
    if tls:
        lines += [f"- Certificate {_code(tls.get('subject'))} issued by {_code(tls.get('issuer'))}, not after "
                  f"{tls.get('not_after')} ({tls.get('days_to_expiry')} days), host name match {tls.get('hostname_match')}, "
                  f"verification {'ok' if not tls.get('verify_error') else tls.get('verify_error')}", '']
    return lines


def _md_generic(res: t.Mapping[str, t.Any]) -> list[str]:
    """Collectors without a dedicated layout (Kubernetes): their summary and top-level counts."""
    summary = res.get('summary')
    lines = []
    if isinstance(summary, t.Mapping):
        lines += [f'- {key}: {_cell(value)}' for key, value in summary.items()]
    for key, value in res.items():
        if isinstance(value, list) and key != 'queries':
            names = [str(v.get('name')) for v in value if isinstance(v, t.Mapping) and v.get('name')]
            lines.append(f"- {key}: {len(value)}" + (f" ({', '.join(names[:20])})" if names else ''))
    return lines + ['']


def _md_kubernetes(res: t.Mapping[str, t.Any]) -> list[str]:
    summary = res.get('summary') or {}
    lines = [f"- Namespace {_code(res.get('namespace'))}: {summary.get('deployments_ready')} of {summary.get('deployments')} "
             f"Deployment(s) ready, {summary.get('pods_not_ready')} pod(s) not ready, {summary.get('restarts')} restart(s)", '']
    deployments = res.get('deployments') or []
    if deployments:
        lines += _table(['deployment', 'revision', 'available', 'rollout', 'images'],
                        [[d.get('name'), d.get('revision'), f"{d.get('available_replicas')}/{d.get('replicas')}",
                          d.get('rollout_status'), ', '.join(f'{k}={v}' for k, v in (d.get('images') or {}).items())]
                         for d in deployments])
        history = [[d.get('name'), h.get('revision'), h.get('created'), h.get('change_cause'),
                    ', '.join(f'{k}={v}' for k, v in (h.get('images') or {}).items())]
                   for d in deployments for h in d.get('history') or []]
        if history:
            lines += ['**Recent revisions**', ''] + _table(['deployment', 'revision', 'created', 'change cause', 'images'], history)
    lines += [f'- {problem}' for problem in (res.get('unhealthy') or [])[:20]]
    return lines + ['']


def _mib(value: t.Any) -> str:
    amount = number(value)
    return '' if amount is None else f'{amount / 1048576:,.0f} MiB'


def _pct(value: t.Any) -> str:
    ratio = number(value)
    return '' if ratio is None else f'{ratio:.0%}'


def _md_host(host: t.Mapping[str, t.Any]) -> list[str]:
    lines = [f"### {_cell(host.get('host'))}", '']
    if host.get('status') == 'error':
        return lines + [f"Not read: {host.get('error')}", '']
    cpu, mem = host.get('cpu') or {}, host.get('memory') or {}
    lines += [f"- Load {cpu.get('load1')} / {cpu.get('load5')} / {cpu.get('load15')} on {cpu.get('cores')} CPU(s), "
              f"busy {cpu.get('busy_percent')} %, iowait {cpu.get('iowait_percent')} %, steal {cpu.get('steal_percent')} %",
              f"- Memory {_mib(mem.get('used_bytes'))} of {_mib(mem.get('total_bytes'))} used ({_pct(mem.get('used_ratio'))}), "
              f"swap {_mib(mem.get('swap_used_bytes'))} of {_mib(mem.get('swap_total_bytes'))}", '']
    lines += _table(['mount', 'device', 'size', 'used', 'inodes used', 'problem'],
                    [[f.get('mount'), f.get('device'), _mib(f.get('size_bytes')), _pct(f.get('used_ratio')),
                      _pct(f.get('inodes_used_ratio')), f.get('error') or ''] for f in host.get('filesystems') or []])
    top = (host.get('processes') or {}).get('by_cpu') or (host.get('processes') or {}).get('by_memory') or []
    if top:
        lines += _table(['pid', 'user', 'CPU %', 'RSS', 'command'],
                        [[p.get('pid'), p.get('user'), p.get('cpu_percent'), _mib(p.get('rss_bytes')), _code(p.get('command'), 100)]
                         for p in top[:10]])
    if host.get('disks'):
        lines += _table(['device', 'r/s', 'w/s', 'rkB/s', 'wkB/s', 'await ms', 'util %'],
                        [[d.get('device'), d.get('reads_per_s'), d.get('writes_per_s'), d.get('read_kb_per_s'),
                          d.get('write_kb_per_s'), d.get('await_ms'), d.get('util_percent')] for d in host['disks']])
    if host.get('reachability'):
        lines += _table(['target', 'address', 'reachable', 'latency (ms)', 'error'],
                        [[r.get('target'), r.get('address'), 'yes' if r.get('reachable') else 'NO', r.get('latency_ms'),
                          r.get('error') or ''] for r in host['reachability']])
    return lines


def _md_host_resources(res: t.Mapping[str, t.Any]) -> list[str]:
    lines: list[str] = []
    for host in res.get('hosts') or []:
        lines += _md_host(host)
    return lines or ['- No host read.', '']


def _md_app_logs(res: t.Mapping[str, t.Any]) -> list[str]:
    lines: list[str] = []
    for entry in res.get('logs') or []:
        where = (f"{entry.get('deployment')} / {entry.get('pod')} / {entry.get('container')}"
                 f"{' (previous instance)' if entry.get('previous') else ''}" if entry.get('source') == 'kubernetes'
                 else f"compose service {entry.get('service')}")
        lines += [f'**{_cell(where)}**', '']
        if entry.get('error'):
            lines += [f"Not readable: {entry['error']}", '']
            continue
        shown = [str(line).replace('```', "'''") for line in (entry.get('lines') or [])[-30:]]
        more = entry.get('line_count', 0) - len(shown)
        lines += (([f'({more} earlier line(s) in bundle.json)', ''] if more > 0 else [])
                  + ['```text'] + shown + ['```', ''])
    return lines or ['- No log read.', '']


def _md_recent_commits(res: t.Mapping[str, t.Any]) -> list[str]:
    lines = [f"- Repository {_code(res.get('repository'))}", '']
    commits = res.get('commits') or []
    if commits:
        lines += _table(['commit', 'date', 'author', 'refs', 'subject'],
                        [[c.get('short'), c.get('date'), c.get('author'), ', '.join(c.get('refs') or []), c.get('subject')]
                         for c in commits])
    return lines


_RENDER: dict[str, t.Callable[[t.Mapping[str, t.Any]], list[str]]] = {
    'postgres': _md_postgres, 'migrations': _md_migrations, 'audit_chain': _md_audit, 'redis': _md_redis,
    'health': _md_health, 'kubernetes': _md_kubernetes, 'recent_commits': _md_recent_commits,
    'host_resources': _md_host_resources, 'app_logs': _md_app_logs,
}


def render_summary(bundle: t.Mapping[str, t.Any]) -> str:
    sections, findings = bundle['collectors'], bundle['findings']
    lines = [f"# Investigation of {bundle['incident_id']}", '',
             f"Collected {bundle['generated_at']} by trdrhub.incident.investigate. "
             f"The full evidence is in `bundle.json` next to this file.", '', '## Headline findings', '']
    if findings:
        lines += [f"- **{f['severity'].upper()}** ({f['collector']}) {f['title']}" + (f" - {f['detail']}" if f['detail'] else '')
                  for f in findings]
    else:
        lines.append('- No finding crossed a threshold.')
    lines += ['', '## Collectors', '']
    lines += _table(['collector', 'status', 'collected at', 'note'],
                    [[COLLECTORS.get(name, name), s['status'], s['collected_at'], s['error'] or s['skip_reason'] or '']
                     for name, s in sections.items()])
    for name, section in sections.items():
        lines += [f'## {COLLECTORS.get(name, name)}', '']
        if section['status'] == 'skipped':
            lines += [f"Skipped: {section['skip_reason'] or 'not configured'}.", '']
        elif section['status'] == 'error':
            lines += [f"Collector failed: {section['error']}", '']
        else:
            lines += _RENDER.get(name, _md_generic)(section['result'])
    return '\n'.join(lines).rstrip() + '\n'
