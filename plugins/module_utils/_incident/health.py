# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The health signals of the priority matrix (``priority.assess``): what failing endpoints mean.

The input is a result of ``http_health_info`` (``healthy`` and ``endpoints``); the policy is
``priority.effective_policy``'s, of which ``critical_endpoints`` and ``critical_dependencies``
apply here.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
)


def _endpoints(health: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    raw = health.get('endpoints', health.get('results'))
    if isinstance(raw, dict):
        return [dict(value, name=value.get('name') or key) for key, value in raw.items() if isinstance(value, dict)]
    if isinstance(raw, list):
        return [value for value in raw if isinstance(value, dict)]
    return []


def _endpoint_name(endpoint: dict[str, t.Any]) -> str:
    return str(endpoint.get('url') or endpoint.get('path') or endpoint.get('name') or 'endpoint')


def _endpoint_path(endpoint: dict[str, t.Any]) -> str:
    for field in ('path', 'url', 'name'):
        if endpoint.get(field):
            value = str(endpoint[field])
            return (urlsplit(value).path if '://' in value else value).rstrip('/') or '/'
    return ''


def _unreachable(endpoint: dict[str, t.Any]) -> bool:
    if 'reachable' in endpoint:
        return endpoint['reachable'] is False
    return not endpoint.get('ok') and not endpoint.get('status_code', endpoint.get('status'))


def _failure(endpoint: dict[str, t.Any]) -> str:
    code = endpoint.get('status_code', endpoint.get('status'))
    detail = f'HTTP {code}' if code else 'unreachable'
    # http_health_info lists what failed; its HTTP-status line repeats the code shown already.
    checks = [str(c) for c in endpoint.get('failed_checks') or [] if not str(c).startswith('HTTP status')]
    why = endpoint.get('error') or endpoint.get('msg') or '; '.join(checks)
    if why:
        detail += f': {why}'
    return f'{_endpoint_name(endpoint)} ({detail})'


def _health_input(health: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], str | None]:
    """The endpoint results of a health input, or why there are none; malformed input fails.

    A probe that answered nothing usable (a failed or skipped ``http_health_info`` task) is a
    finding: the service's health is unknown, which is not the same as healthy.
    """
    for key in ('endpoints', 'results'):
        raw = health.get(key)
        if key in health and raw is not None and not isinstance(raw, (list, dict)):
            raise AssessmentError(f'health.{key} must be a list (or a dict by name) of endpoint results like those of '
                                  f'http_health_info, got {raw!r}')
    endpoints = _endpoints(health)
    raw = health.get('endpoints', health.get('results'))
    entries = list(raw.values()) if isinstance(raw, dict) else list(raw or [])
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get('ok'), bool):
            raise AssessmentError(f'health endpoint {index} must be a result with ok (true or false), like those of '
                                  f'http_health_info, got {entry!r}')
    if 'healthy' in health and not isinstance(health['healthy'], bool):
        raise AssessmentError(f"health.healthy must be true or false, got {health['healthy']!r}")
    if endpoints or isinstance(health.get('healthy'), bool):
        return endpoints, None
    if health.get('failed') or health.get('msg') or health.get('skipped'):
        why = _text_of(health.get('msg') or health.get('skip_reason') or 'the probe failed')
        return [], f'health is unknown: the probe gave no endpoint result ({why}): not counted'
    raise AssessmentError('health must be a result of http_health_info, with healthy and endpoints; '
                          f'got one with keys {", ".join(sorted(map(str, health))) or "none"}')


def _text_of(value: t.Any) -> str:
    text = ' '.join(str(value).split())
    return text if len(text) <= 200 else text[:199] + '\u2026'


_UP_STATES = ('ok', 'degraded')


def dependency_signals(endpoints: list[dict[str, t.Any]], policy: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """P1 for each critical dependency (``policy.critical_dependencies``) an endpoint's answer reports down.

    TRDR Hub's ``/health/ready`` answers ``checks: {database: {status: error, message}}`` with
    HTTP 503 when the database is down: ``/healthz`` and ``/health/live`` still answer (the
    process runs), yet no request that needs data can be served.
    """
    found: dict[str, dict[str, t.Any]] = {}
    for endpoint in endpoints:
        body = endpoint.get('json')
        checks = body.get('checks') if isinstance(body, dict) else None
        if not isinstance(checks, dict):
            continue
        for name in policy['critical_dependencies']:
            check = checks.get(name)
            status = check.get('status') if isinstance(check, dict) else None
            if status is None or name in found or str(status).strip().lower() in _UP_STATES:
                continue
            message = check.get('message')
            found[name] = {'source': 'health', 'priority': 'P1', 'dependency': name,
                           'reason': f"{_endpoint_name(endpoint)} reports {name} {status}"
                                     f"{(': ' + _text_of(message)) if message else ''} "
                                     f"(the application cannot serve without its {name})"}
    return list(found.values())


def health_signals(health: t.Any, policy: dict[str, t.Any]) -> tuple[list[dict[str, t.Any]], list[str]]:
    """All endpoints down is an outage (P1), so is a critical dependency reported down; a failing
    readiness/liveness endpoint is at least P2; others P3."""
    if not health:
        return [], []
    if not isinstance(health, dict):
        raise AssessmentError(f'health must be a mapping like the result of http_health_info, got {kind_of(health)}')
    endpoints, unknown = _health_input(health)
    if unknown:
        return [], [unknown]
    dependencies = dependency_signals(endpoints, policy)
    failing = [e for e in endpoints if not e.get('ok')]
    if endpoints and len(failing) == len(endpoints):
        what = 'unreachable' if all(_unreachable(e) for e in failing) else 'failing'
        return [{'source': 'health', 'priority': 'P1',
                 'reason': f"all {len(endpoints)} health endpoints {what}: {', '.join(_failure(e) for e in failing)}"}], []
    critical = tuple(p.rstrip('/') for p in policy['critical_endpoints'])
    signals = list(dependencies)
    for endpoint in failing:
        is_critical = _endpoint_path(endpoint).endswith(critical) if critical else False
        signals.append({'source': 'health', 'priority': 'P2' if is_critical else 'P3',
                        'reason': f"{'critical ' if is_critical else ''}health endpoint {_failure(endpoint)} is failing"})
    if health.get('healthy') is False and not failing:
        tls = health.get('tls') if isinstance(health.get('tls'), dict) else {}
        reason = (f"the TLS certificate of {tls.get('hostname') or 'the endpoint'} has expired" if tls.get('expired')
                  else 'the health check reports unhealthy')
        signals.append({'source': 'health', 'priority': 'P2', 'reason': reason})
    return signals, []
