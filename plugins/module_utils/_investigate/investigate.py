# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The investigation bundle: collector results in, headline findings and a readable summary out.

The ``investigate`` role registers each collector's raw result (failed or not) and hands
them here through the ``investigation_report`` filter. What an investigator reads first - the
thresholds and the order of findings - is decided here (the Markdown is _investigate_summary.py),
so that it is unit-tested, and the redaction of the bundle happens in one place.
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    REDACTED,
    Redactor,
    jsonable,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import aware_or_none
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.sources import (
    commit_findings,
    commits_evidence,
    host_findings,
    log_findings,
    per_host,
    pooler_findings,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.summary import (
    COLLECTORS,
    number,
    render_summary,
)

BUNDLE_VERSION = 1
SEVERITIES = ('critical', 'warning', 'info')
DEFAULT_THRESHOLDS: dict[str, float] = {
    'connection_saturation': 0.8,       # fraction of max_connections
    'idle_in_transaction_s': 60,        # seconds idle inside a transaction
    'queue_backlog': 1000,              # items in one queue (or stream group backlog)
    'replica_lag_bytes': 1048576,       # Redis replica behind its primary
    'redis_memory_ratio': 0.9,          # used_memory / maxmemory
    'client_saturation': 0.9,           # Redis connected_clients / maxclients
    'recent_rollout_s': 7200,           # a Deployment revision (or deployment commit) this recent is a finding
    'disk_usage_ratio': 0.9,            # a filesystem of an application or database host this full
    'inode_usage_ratio': 0.9,           # its inodes this used
    'swap_used_bytes': 0,               # swap in use beyond this many bytes
    'load_per_core': 1.0,               # 1-minute load average per CPU
}
# Result keys that are Ansible's bookkeeping, not evidence; 'invocation' would repeat the arguments.
_DROP_KEYS = frozenset(('invocation', 'changed', 'failed', 'msg', 'skipped', 'skip_reason', 'false_condition',
                        'deprecations', '_ansible_no_log', '_ansible_verbose_always', '_ansible_delegated_vars',
                        'exception', 'module_stderr', 'module_stdout', 'rc', 'ansible_facts'))
# The collectors' secret options. Evidence keys are not judged by their look: a table named
# secret_rotation_logs or a Redis key named auth:tokens is evidence, not a secret.
_SECRET_OPTIONS = frozenset(('login_password', 'password', 'dsn', 'url_password', 'bearer_token', 'api_key', 'token'))


class InvestigationError(InputError):
    """The collected results or thresholds cannot make a report; the message names the input."""


def scrub_evidence(value: t.Any, redactor: Redactor, key: t.Any = None) -> t.Any:
    """JSON-safe copy with known secrets and secret shapes masked in every string."""
    if key is not None and str(key).lower() in _SECRET_OPTIONS and value not in (None, '', False, True):
        return REDACTED
    if isinstance(value, t.Mapping):
        return {str(jsonable(k)): scrub_evidence(v, redactor, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_evidence(v, redactor) for v in value]
    if isinstance(value, (str, bytes)):
        return redactor.text(value)
    return jsonable(value)


def thresholds_of(given: t.Mapping[str, t.Any] | None) -> dict[str, float]:
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (given or {}).items():
        if key not in merged:
            raise InvestigationError(f"thresholds: unknown key {key!r}; known: {', '.join(sorted(merged))}")
        limit = number(value)
        if limit is None or limit < 0:
            raise InvestigationError(f'thresholds: {key} must be a number of at least 0, got {value!r}')
        merged[key] = limit
    return merged


def section_of(name: str, raw: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """One collector's entry: status ok/error/skipped, its timing, its error and its evidence."""
    raw = raw or {}
    registered = raw.get('result') if isinstance(raw.get('result'), t.Mapping) else {}
    status, error = 'ok', None
    if raw.get('skip_reason'):
        status, error = 'skipped', None
    elif registered.get('skipped'):
        status = 'skipped'
    elif registered.get('failed') or registered.get('unreachable') or not registered:
        status = 'error'
        error = registered.get('msg') or ('the collector returned nothing' if not registered else 'failed without a message')
    evidence = {k: v for k, v in registered.items() if k not in _DROP_KEYS and not str(k).startswith('_ansible')}
    if isinstance(registered.get('results'), list) and status != 'skipped':
        status, error, evidence = per_host(registered)   # a collector delegated to each host in a loop
    elif name == 'recent_commits' and status != 'skipped':
        evidence = commits_evidence(registered)
        error = ' '.join(str(registered.get('stderr') or '').split()) or error if status == 'error' else None
    return {'collector': name, 'status': status, 'skip_reason': raw.get('skip_reason') or None,
            'collected_at': raw.get('collected_at'), 'error': error,
            'result': evidence if status != 'skipped' else {}}


def _finding(findings: list[dict[str, t.Any]], severity: str, collector: str, title: str, detail: str = '') -> None:
    findings.append({'severity': severity, 'collector': collector, 'title': title, 'detail': detail})


def _postgres(res: t.Mapping[str, t.Any], th: dict[str, float], out: list[dict[str, t.Any]]) -> None:
    if (res.get('ping') or {}).get('ok') is False:
        _finding(out, 'critical', 'postgres', 'PostgreSQL does not answer SELECT 1')
    conn = res.get('connections') or {}
    saturation = number(conn.get('saturation'))
    if saturation is not None and saturation >= th['connection_saturation']:
        severity = 'critical' if saturation >= 0.95 else 'warning'
        _finding(out, severity, 'postgres', f'Connection saturation {saturation:.0%}',
                 f"{conn.get('total')} of {conn.get('max_connections')} connections in use")
    blockers = res.get('blockers') or []
    if blockers:
        waiting = sorted({pid for b in blockers for pid in b.get('blocked_pids') or []})
        top = blockers[0]
        _finding(out, 'warning', 'postgres', f'{len(blockers)} session(s) blocking {len(waiting)} other(s)',
                 f"pid {top.get('pid')} ({top.get('usename')}, {top.get('state')}) blocks {len(top.get('blocked_pids') or [])}")
    long_running = res.get('long_running') or []
    if long_running:
        top = long_running[0]
        _finding(out, 'warning', 'postgres', f'{len(long_running)} long-running statement(s)',
                 f"longest: pid {top.get('pid')} for {number(top.get('duration_s')) or 0:.0f}s")
    idle = [s for s in res.get('idle_in_transaction') or []
            if (number(s.get('duration_s')) or 0) >= th['idle_in_transaction_s']]
    if idle:
        _finding(out, 'warning', 'postgres', f"{len(idle)} long transaction(s) idle for {th['idle_in_transaction_s']:g}s or more",
                 f"longest: pid {idle[0].get('pid')} for {number(idle[0].get('duration_s')) or 0:.0f}s")


def _migrations(res: t.Mapping[str, t.Any], out: list[dict[str, t.Any]]) -> None:
    if res.get('up_to_date') is False:
        _finding(out, 'warning', 'migrations', 'Database migration not up to date', res.get('pending') or '')
    elif res.get('initialized') is False:
        _finding(out, 'warning', 'migrations', f"No Alembic version table ({res.get('version_table')})",
                 'no migration has run in this database, or the application uses another version table')


def _audit(res: t.Mapping[str, t.Any], out: list[dict[str, t.Any]]) -> None:
    if res.get('is_valid') is False:
        counts = ', '.join(f'{k} {v}' for k, v in sorted((res.get('violation_counts') or {}).items()))
        _finding(out, 'critical', 'audit_chain', f"Audit chain violations: {res.get('violation_count')}",
                 f'{counts}; preserve the evidence before anyone repairs the table')


def _redis(res: t.Mapping[str, t.Any], th: dict[str, float], out: list[dict[str, t.Any]]) -> None:
    if (res.get('ping') or {}).get('ok') is False:
        _finding(out, 'critical', 'redis', 'Redis does not answer PING')
    for name, queue in sorted((res.get('queues') or {}).items()):
        length = number(queue.get('length')) or 0
        backlog = max([length] + [number(g.get('backlog')) or 0 for g in queue.get('groups') or []])
        if backlog >= th['queue_backlog']:
            _finding(out, 'warning', 'redis', f'Queue backlog: {name} holds {backlog:.0f} item(s)',
                     f"threshold {th['queue_backlog']:g}")
    repl = res.get('replication') or {}
    for replica in repl.get('replicas') or []:
        lag = number(replica.get('lag_bytes')) or 0
        if replica.get('state') not in (None, 'online') or lag >= th['replica_lag_bytes']:
            _finding(out, 'warning', 'redis', f"Replica lag: {replica.get('ip')}:{replica.get('port')} is {lag:.0f} bytes behind",
                     f"state {replica.get('state')}, last ack {replica.get('lag')}s ago")
    if repl.get('role') == 'replica' and repl.get('master_link_status') == 'down':
        _finding(out, 'critical', 'redis', 'Replica lost its primary (master_link_status down)')
    ratio = number((res.get('memory') or {}).get('usage_ratio'))
    if ratio is not None and ratio >= th['redis_memory_ratio']:
        _finding(out, 'warning', 'redis', f'Redis memory at {ratio:.0%} of maxmemory')
    clients = number((res.get('clients') or {}).get('saturation'))
    if clients is not None and clients >= th['client_saturation']:
        _finding(out, 'warning', 'redis', f'Redis clients at {clients:.0%} of maxclients')


def _health(res: t.Mapping[str, t.Any], out: list[dict[str, t.Any]]) -> None:
    failing = [e for e in res.get('endpoints') or [] if not e.get('ok')]
    for endpoint in failing:
        why = endpoint.get('error') or '; '.join(str(f) for f in endpoint.get('failed_checks') or []) or 'unexpected answer'
        _finding(out, 'critical', 'health', f"Health check failing: {endpoint.get('path')} answered {endpoint.get('status')}", why)
    tls = res.get('tls') or {}
    if tls.get('expired'):
        _finding(out, 'critical', 'health', f"TLS certificate expired ({tls.get('not_after')})")
    elif tls.get('expiring_soon'):
        _finding(out, 'warning', 'health', f"TLS certificate expires soon: {number(tls.get('days_to_expiry')) or 0:.1f} days left",
                 f"not after {tls.get('not_after')}")
    if tls.get('verify_error'):
        _finding(out, 'warning', 'health', 'TLS certificate does not verify', str(tls['verify_error']))


def _kubernetes(res: t.Mapping[str, t.Any], th: dict[str, float], now: datetime.datetime | None,
                out: list[dict[str, t.Any]]) -> None:
    for dep in res.get('deployments') or []:
        name = dep.get('name')
        if dep.get('progress_deadline_exceeded'):
            _finding(out, 'critical', 'kubernetes', f'Rollout of {name} stalled (progress deadline exceeded)',
                     str(dep.get('rollout_status') or ''))
        elif dep.get('healthy') is False:
            _finding(out, 'warning', 'kubernetes', f'Deployment {name} is not healthy', '; '.join(dep.get('problems') or []))
        current = next((h for h in dep.get('history') or [] if h.get('current')), None)
        created = aware_or_none(current.get('created')) if current else None
        if created and now and (now - created).total_seconds() <= th['recent_rollout_s']:
            _finding(out, 'info', 'kubernetes', f"Recent rollout: {name} revision {current.get('revision')} at {current.get('created')}",
                     str(current.get('change_cause') or ', '.join(f'{k}={v}' for k, v in (current.get('images') or {}).items())))


def findings_of(sections: t.Mapping[str, dict[str, t.Any]], thresholds: dict[str, float],
                now: datetime.datetime | None = None) -> list[dict[str, t.Any]]:
    """Headline findings, most severe first, then in collector order."""
    out: list[dict[str, t.Any]] = []
    for name, section in sections.items():
        res = section['result']
        if section['status'] == 'error':
            _finding(out, 'warning', name, f'Collector {name} failed', section['error'] or '')
        if section['status'] != 'ok':
            continue
        if name == 'postgres':
            _postgres(res, thresholds, out)
        elif name == 'migrations':
            _migrations(res, out)
        elif name == 'audit_chain':
            _audit(res, out)
        elif name == 'redis':
            _redis(res, thresholds, out)
        elif name == 'health':
            _health(res, out)
        elif name == 'kubernetes':
            _kubernetes(res, thresholds, now, out)
        elif name == 'host_resources':
            host_findings(res, thresholds, lambda sev, title, detail: _finding(out, sev, 'host_resources', title, detail))
        elif name == 'app_logs':
            log_findings(res, lambda sev, title, detail: _finding(out, sev, 'app_logs', title, detail))
        elif name == 'pgbouncer':
            pooler_findings(res, lambda sev, title, detail: _finding(out, sev, 'pgbouncer', title, detail))
        elif name == 'recent_commits':
            commit_findings(res, thresholds, now, lambda sev, title, detail: _finding(out, sev, 'recent_commits', title, detail))
    return sorted(out, key=lambda f: SEVERITIES.index(f['severity']))


def headline(finding: t.Mapping[str, t.Any]) -> str:
    text = f"{finding['severity'].upper()} {finding['collector']}: {finding['title']}"
    return f"{text} - {finding['detail']}" if finding.get('detail') else text


def build_report(collected: t.Mapping[str, t.Any] | None, incident_id: str, generated_at: str, *,
                 thresholds: t.Mapping[str, t.Any] | None = None, secrets: t.Iterable[t.Any] = (),
                 check_mode: bool = False, bundle_dir: str | None = None) -> dict[str, t.Any]:
    """The redacted bundle, the findings, their one-line headlines and the Markdown summary."""
    if not isinstance(collected, t.Mapping):
        raise InvestigationError('the collected results must be a dictionary of collector name to result')
    limits = thresholds_of(thresholds)
    order = [n for n in COLLECTORS if n in collected] + sorted(n for n in collected if n not in COLLECTORS)
    redactor = Redactor([s for s in secrets if s])
    sections = {name: scrub_evidence(section_of(name, collected[name]), redactor) for name in order}
    findings = findings_of(sections, limits, aware_or_none(generated_at))
    bundle = {
        'version': BUNDLE_VERSION, 'incident_id': incident_id, 'generated_at': generated_at,
        'check_mode': bool(check_mode), 'bundle_dir': bundle_dir, 'thresholds': limits,
        'findings': findings, 'collectors': sections,
    }
    return {'bundle': bundle, 'findings': findings, 'headline': [headline(f) for f in findings],
            'statuses': {name: section['status'] for name, section in sections.items()},
            'summary': render_summary(bundle)}
