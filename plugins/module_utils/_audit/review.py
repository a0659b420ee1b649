# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Audit review: who did what in the audit log recently, and which actors look wrong.

All counting happens in PostgreSQL (``GROUP BY`` over the window and the baseline), so the
module transfers a few rows per actor however many million entries the table holds. The
flag rules (``assess``) are plain Python over those aggregates, so the unit tests drive them
without a database.
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_sources import (
    split_table,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgInputError,
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_utc, parse_time

try:
    from psycopg2 import sql
except ImportError:
    sql = None

UTC = datetime.timezone.utc
DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
SENSITIVE_ACTIONS = ['export', 'rotate', 'delete', 'restore', 'backup', 'approve']
FAILED_LOGIN_ACTIONS = ['login_failed', 'failed_login', 'login_failure']
FAILED_LOGIN_METADATA = {'success': ['false'], 'outcome': ['failure', 'failed', 'denied'],
                         'status': ['failure', 'failed', 'denied']}
EMAIL_KEYS = ['actor_email', 'email', 'user_email']
WEIGHTS = {'volume_spike': 3, 'failed_logins': 3, 'off_hours': 2, 'sensitive_action': 2, 'new_action': 2,
           'many_ips': 2, 'new_actor': 1}
NO_ACTOR = '(no actor)'

AUDIT_REVIEW_ARGS: dict[str, dict[str, t.Any]] = {
    'table': {'type': 'str', 'default': 'audit_log_entries'},
    'since': {'type': 'str', 'default': '24h'},
    'until': {'type': 'str'},
    'baseline': {'type': 'str', 'default': '7d'},
    'tenant_id': {'type': 'list', 'elements': 'str'},
    'actor_id': {'type': 'list', 'elements': 'str'},
    'include_no_actor': {'type': 'bool', 'default': True},
    'spike_ratio': bounded({'type': 'float', 'default': 3.0}, above=0),
    'spike_min_count': bounded({'type': 'int', 'default': 50}, minimum=0),
    'timezone': {'type': 'str', 'default': 'UTC'},
    'business_hours': {'type': 'str', 'default': '07:00-20:00'},
    'business_days': {'type': 'list', 'elements': 'str', 'choices': DAYS, 'default': DAYS[:5]},
    'off_hours_min_count': bounded({'type': 'int', 'default': 3}, minimum=0),
    'sensitive_actions': {'type': 'list', 'elements': 'str', 'default': list(SENSITIVE_ACTIONS)},
    'flag_new_actions': {'type': 'bool', 'default': True},
    'max_ips': bounded({'type': 'int', 'default': 3}, minimum=0),
    'failed_login_actions': {'type': 'list', 'elements': 'str', 'default': list(FAILED_LOGIN_ACTIONS)},
    'failed_login_metadata': {'type': 'dict', 'default': dict(FAILED_LOGIN_METADATA)},
    'failed_login_threshold': bounded({'type': 'int', 'default': 5}, minimum=0),
    'email_keys': {'type': 'list', 'elements': 'str', 'default': list(EMAIL_KEYS), 'no_log': False},
    'weights': {'type': 'dict', 'default': {}},
    'max_actors': bounded({'type': 'int', 'default': 100}, minimum=0),
    'sample_size': bounded({'type': 'int', 'default': 5}, minimum=0),
}

_DURATION = re.compile(r'(\d+(?:\.\d+)?)([smhdw])')
_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_UUID = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')
_HOURS = re.compile(r'^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$')

TABLE_SQL = """
SELECT now() AS now, (SELECT n.nspname || '.' || c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s)
                                  ELSE quote_ident(%(schema)s) || '.' || quote_ident(%(name)s) END)) AS relation
"""
TIMEZONE_SQL = 'SELECT now() AT TIME ZONE %(tz)s AS local_now'
ACTION_SQL = """
SELECT actor_id::text AS actor, action, count(*) AS n FROM {table} WHERE {where} GROUP BY 1, 2
"""
ACTOR_SQL = """
SELECT actor_id::text AS actor, count(*) AS n, min(created_at) AS first_seen, max(created_at) AS last_seen,
       count(DISTINCT actor_ip) AS ip_count, (array_agg(DISTINCT actor_ip) FILTER (WHERE actor_ip IS NOT NULL))[1:%(ip_cap)s] AS ips,
       array_agg(DISTINCT actor_role) FILTER (WHERE actor_role IS NOT NULL) AS roles,
       mode() WITHIN GROUP (ORDER BY actor_role) AS role, array_agg(DISTINCT tenant_id) AS tenants,
       max({email}) AS email, count(*) FILTER (WHERE {off_hours}) AS off_hours, count(*) FILTER (WHERE {failed}) AS failed_logins
FROM {table} WHERE {where} GROUP BY 1
"""
SAMPLE_SQL = """
SELECT * FROM (
  SELECT actor_id::text AS actor, id::text AS id, sequence_number, tenant_id, action, resource_type, resource_id, actor_ip,
         severity, created_at, row_number() OVER (PARTITION BY actor_id
           ORDER BY (action = ANY(%(sensitive)s)) DESC, created_at DESC) AS rank
  FROM {table} WHERE {where} AND COALESCE(actor_id::text, '') = ANY(%(actors)s)) AS s
WHERE rank <= %(sample_size)s ORDER BY actor, rank
"""


def parse_duration(text: t.Any, option: str) -> float:
    """``90m``, ``24h``, ``1h30m``, ``7d``, ``2w`` or a bare number of seconds."""
    value = str(text if text is not None else '').strip().lower().replace(' ', '')
    if value.startswith('-'):   # "-24h", the way access_log_scan writes "24 hours ago"
        value = value[1:]
    if re.fullmatch(r'\d+(\.\d+)?', value):
        return float(value)
    if value and re.fullmatch(f'(?:{_DURATION.pattern})+', value):
        return sum(float(num) * _UNITS[unit] for num, unit in _DURATION.findall(value))
    raise PgInputError(f'{option}: {text!r} is neither a duration (30m, 24h, 7d, 1h30m) nor an ISO 8601 time')


def parse_point(text: t.Any, option: str) -> datetime.datetime | float:
    """An aware UTC datetime for an ISO 8601 time, else the seconds of a duration back from now."""
    value = str(text if text is not None else '').strip()
    if re.match(r'^\d{4}-\d{2}-\d{2}', value):
        try:
            return parse_time(value, required=True)
        except ValueError:
            raise PgInputError(f'{option}: {text!r} is not an ISO 8601 time (for example 2025-01-15T14:30:00Z)') from None
    return parse_duration(value, option)


def parse_hours(text: t.Any) -> tuple[int, int]:
    """``HH:MM-HH:MM`` as minutes after midnight; the end may be before the start (a night shift)."""
    match = _HOURS.match(str(text or '').strip())
    if match:
        start_h, start_m, end_h, end_m = (int(x) for x in match.groups())
        if start_h <= 24 and end_h <= 24 and start_m < 60 and end_m < 60:
            start, end = start_h * 60 + start_m, end_h * 60 + end_m
            if start <= 1440 and end <= 1440:
                return start, end
    raise PgInputError(f'business_hours: {text!r} is not a range of local times like 07:00-20:00')


class ReviewConfig:
    """The options, validated before any connection is opened."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.table = (params.get('table') or '').strip()
        self.table_parts = split_table(self.table) if self.table else None
        if not self.table_parts:
            raise PgInputError('table must name the audit table, for example audit_log_entries')
        self.since = parse_point(params.get('since'), 'since')
        self.until = parse_point(params.get('until'), 'until') if params.get('until') not in (None, '', 'now') else 0.0
        self.baseline = parse_duration(params.get('baseline'), 'baseline')
        if self.baseline <= 0:
            raise PgInputError('baseline must be longer than zero, for example 7d')
        self.hours = parse_hours(params.get('business_hours'))
        self.days = [DAYS.index(d) + 1 for d in params.get('business_days') or []]
        self.timezone = (params.get('timezone') or 'UTC').strip()
        weights = params.get('weights') or {}
        unknown = sorted(set(weights) - set(WEIGHTS))
        if unknown:
            raise PgInputError(f"weights: unknown flag(s) {', '.join(unknown)}; known: {', '.join(sorted(WEIGHTS))}")
        try:
            self.weights = {**WEIGHTS, **{k: int(v) for k, v in weights.items()}}
        except (TypeError, ValueError):
            raise PgInputError('weights: every weight must be a whole number') from None
        for actor in params.get('actor_id') or []:
            if not _UUID.match(str(actor).strip()):
                raise PgInputError(f'actor_id: {actor!r} is not a UUID (audit_log_entries.actor_id is a UUID column)')
        metadata = params.get('failed_login_metadata') or {}
        self.failed_metadata = {str(k): [str(v).lower() for v in (vals if isinstance(vals, list) else [vals])]
                                for k, vals in metadata.items()}
        self.params = params

    def bounds(self, now: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
        until = self.until if isinstance(self.until, datetime.datetime) else now - datetime.timedelta(seconds=self.until)
        since = self.since if isinstance(self.since, datetime.datetime) else until - datetime.timedelta(seconds=self.since)
        if since >= until:
            raise PgInputError(f'since ({since.isoformat()}) must be before until ({until.isoformat()})')
        return since, until


def _label(actor: str | None) -> str:
    return actor if actor is not None else NO_ACTOR


def assess(actor: dict[str, t.Any], baseline: dict[str, int], cfg: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The anomaly flags of one actor, each with a reason a responder can read aloud.

    ``actor`` holds the window aggregates (``count``, ``counts`` by action, ``off_hours_count``,
    ``failed_logins``, ``ip_count``); ``baseline`` its counts by action in the baseline period;
    ``cfg`` the thresholds plus ``window_s`` and ``baseline_s``.
    """
    flags = []
    weights = cfg.get('weights') or WEIGHTS

    def flag(name: str, reason: str) -> None:
        flags.append({'flag': name, 'reason': reason, 'weight': weights.get(name, 1)})

    count, base_total = actor['count'], sum(baseline.values())
    expected = base_total * cfg['window_s'] / cfg['baseline_s']
    if count >= cfg['spike_min_count']:
        if base_total == 0:
            flag('volume_spike', f"{count} entries in the window and none in the {cfg['baseline_label']} baseline before it")
        elif count / expected >= cfg['spike_ratio']:
            flag('volume_spike', f"{count} entries in the window, {count / expected:.1f}x the {expected:.1f} expected from "
                 f"its {base_total} entries in the {cfg['baseline_label']} baseline (threshold {cfg['spike_ratio']:g}x)")
    if base_total == 0 and count > 0:
        flag('new_actor', f"no entry in the {cfg['baseline_label']} baseline: first seen {actor.get('first_seen')}")
    off = actor.get('off_hours_count') or 0
    if off and off >= max(cfg['off_hours_min_count'], 1):
        flag('off_hours', f"{off} of {count} entries outside business hours ({cfg['business_label']})")
    sensitive = {a: n for a, n in sorted(actor['counts'].items()) if a in cfg['sensitive_actions'] and n > 0}
    if sensitive:
        flag('sensitive_action', 'sensitive actions: ' + ', '.join(f'{a} x{n}' for a, n in sensitive.items()))
    if cfg.get('flag_new_actions', True) and base_total > 0:
        new = sorted(a for a, n in actor['counts'].items() if n > 0 and not baseline.get(a))
        if new:
            flag('new_action', f"actions never seen from this actor in the {cfg['baseline_label']} baseline: " + ', '.join(new))
    ips = actor.get('ip_count') or 0
    if ips > cfg['max_ips']:
        flag('many_ips', f"{ips} distinct IP addresses (more than {cfg['max_ips']})")
    failed = actor.get('failed_logins') or 0
    if cfg['failed_login_threshold'] and failed >= cfg['failed_login_threshold']:
        flag('failed_logins', f"{failed} failed logins (threshold {cfg['failed_login_threshold']})")
    actor['expected_count'] = round(expected, 2)
    actor['ratio'] = round(count / expected, 2) if expected else None
    return flags


def _human(seconds: float) -> str:
    for unit, size in (('w', 604800), ('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= size and seconds % size == 0:
            return f'{int(seconds // size)}{unit}'
    return f'{seconds:g}s'


class AuditReview:
    """Three aggregate queries over the window, one over the baseline, one for samples."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.cfg = ReviewConfig(params)
        self.params = params

    def _where(self, args: dict[str, t.Any], start: str, end: str) -> t.Any:
        parts = [f'created_at >= %({start})s', f'created_at < %({end})s']
        if self.params.get('tenant_id'):
            parts.append('tenant_id = ANY(%(tenants)s)')
            args['tenants'] = list(self.params['tenant_id'])
        if self.params.get('actor_id'):
            parts.append('actor_id = ANY(%(actor_ids)s::uuid[])')
            args['actor_ids'] = [a.strip() for a in self.params['actor_id']]
        if not self.params.get('include_no_actor'):
            parts.append('actor_id IS NOT NULL')
        return sql.SQL(' AND '.join(parts))

    def _off_hours(self, args: dict[str, t.Any]) -> str:
        start, end = self.cfg.hours
        args.update(tz=self.cfg.timezone, days=self.cfg.days or [0], h_start=start, h_end=end)
        local = '(created_at AT TIME ZONE %(tz)s)'
        minute = f'(extract(hour FROM {local}) * 60 + extract(minute FROM {local}))'
        if start == end:
            inside = 'true'
        elif start < end:
            inside = f'{minute} >= %(h_start)s AND {minute} < %(h_end)s'
        else:
            inside = f'({minute} >= %(h_start)s OR {minute} < %(h_end)s)'
        return f'NOT (extract(isodow FROM {local})::int = ANY(%(days)s) AND {inside})'

    def _failed(self, args: dict[str, t.Any]) -> str:
        args['failed_actions'] = list(self.params.get('failed_login_actions') or []) or ['']
        terms = []
        for i, (key, values) in enumerate(sorted(self.cfg.failed_metadata.items())):
            args[f'fk{i}'], args[f'fv{i}'] = key, values
            terms.append(f"lower(event_metadata ->> %(fk{i})s) = ANY(%(fv{i})s)")
        meta = f" OR (action = 'login' AND ({' OR '.join(terms)}))" if terms else ''
        return f'(action = ANY(%(failed_actions)s){meta})'

    def _email(self, args: dict[str, t.Any]) -> str:
        keys = [k for k in self.params.get('email_keys') or [] if k]
        for i, key in enumerate(keys):
            args[f'ek{i}'] = key
        return f"COALESCE({', '.join(f'event_metadata ->> %(ek{i})s' for i in range(len(keys)))})" if keys else 'NULL::text'

    def run(self, client: t.Any) -> dict[str, t.Any]:
        cfg, params = self.cfg, self.params
        schema, name = cfg.table_parts
        head = client.query(TABLE_SQL, {'schema': schema, 'name': name})[0]
        if head['relation'] is None:
            raise PgInputError(f'table {self.cfg.table} does not exist (or the login role cannot see it) in this database')
        try:
            client.query(TIMEZONE_SQL, {'tz': cfg.timezone})
        except PgQueryError:
            raise PgInputError(f'timezone: {cfg.timezone!r} is not a time zone PostgreSQL knows '
                               '(use a name like Europe/Berlin, see pg_timezone_names)') from None
        since, until = cfg.bounds(head['now'])
        base_since = since - datetime.timedelta(seconds=cfg.baseline)
        table = sql.Identifier(*[p for p in cfg.table_parts if p is not None])
        args: dict[str, t.Any] = {'since': since, 'until': until, 'base_since': base_since, 'ip_cap': 50}
        where = self._where(args, 'since', 'until')
        actor_sql = sql.SQL(ACTOR_SQL).format(table=table, where=where, email=sql.SQL(self._email(args)),
                                              off_hours=sql.SQL(self._off_hours(args)), failed=sql.SQL(self._failed(args)))
        actors = {row['actor']: row for row in client.query(actor_sql, args)}
        counts: dict[t.Any, dict[str, int]] = {}
        for row in client.query(sql.SQL(ACTION_SQL).format(table=table, where=where), args):
            counts.setdefault(row['actor'], {})[row['action']] = int(row['n'])
        baseline: dict[t.Any, dict[str, int]] = {}
        if actors:
            base_where = self._where(args, 'base_since', 'since')
            for row in client.query(sql.SQL(ACTION_SQL).format(table=table, where=base_where), args):
                if row['actor'] in actors:
                    baseline.setdefault(row['actor'], {})[row['action']] = int(row['n'])
        window_s = (until - since).total_seconds()
        start, end = cfg.hours
        days = params.get('business_days') or []
        flag_cfg = {
            'window_s': window_s, 'baseline_s': cfg.baseline, 'baseline_label': _human(cfg.baseline),
            'spike_ratio': params['spike_ratio'], 'spike_min_count': params['spike_min_count'],
            'off_hours_min_count': params['off_hours_min_count'], 'max_ips': params['max_ips'],
            'sensitive_actions': set(params.get('sensitive_actions') or []), 'weights': cfg.weights,
            'flag_new_actions': params.get('flag_new_actions', True),
            'failed_login_threshold': params['failed_login_threshold'],
            'business_label': f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d} "
                              f"{','.join(days) or 'no day'} {cfg.timezone}",
        }
        result = [self.actor_view(key, row, counts.get(key, {}), baseline.get(key, {}), flag_cfg) for key, row in actors.items()]
        result.sort(key=lambda a: (-a['risk'], -a['count'], a['actor']))
        shown = result[:params['max_actors']] if params['max_actors'] else result
        self.add_samples(client, table, args, where, shown)
        flagged = [a for a in result if a['flags']]
        by_flag: dict[str, int] = {}
        by_action: dict[str, int] = {}
        for actor in result:
            for item in actor['flags']:
                by_flag[item['flag']] = by_flag.get(item['flag'], 0) + 1
            for action, n in actor['counts'].items():
                by_action[action] = by_action.get(action, 0) + n
        return dict(
            changed=False,
            actors=shown,
            flagged_actors=[a['actor_id'] for a in flagged],
            summary={'entries': sum(a['count'] for a in result), 'actors': len(result), 'flagged': len(flagged),
                     'shown': len(shown), 'baseline_entries': sum(sum(b.values()) for b in baseline.values()),
                     'by_flag': dict(sorted(by_flag.items())), 'by_action': dict(sorted(by_action.items())),
                     'max_risk': result[0]['risk'] if result else 0,
                     'tenants': sorted({tenant for a in result for tenant in a['tenants']})},
            window={'since': iso_utc(since), 'until': iso_utc(until), 'seconds': window_s, 'baseline_since': iso_utc(base_since),
                    'baseline_until': iso_utc(since), 'baseline_seconds': cfg.baseline, 'table': head['relation'],
                    'timezone': cfg.timezone, 'business_hours': params['business_hours'], 'business_days': days},
            queries=client.queries,
        )

    def actor_view(self, key: t.Any, row: dict[str, t.Any], counts: dict[str, int], baseline: dict[str, int],
                   flag_cfg: dict[str, t.Any]) -> dict[str, t.Any]:
        actor = {
            'actor': _label(key), 'actor_id': key, 'email': row.get('email'), 'role': row.get('role'),
            'roles': sorted(row.get('roles') or []), 'tenants': sorted(row.get('tenants') or []),
            'ips': sorted(row.get('ips') or []), 'ip_count': int(row.get('ip_count') or 0), 'count': int(row['n']),
            'counts': dict(sorted(counts.items())), 'baseline_count': sum(baseline.values()),
            'baseline_counts': dict(sorted(baseline.items())), 'off_hours_count': int(row.get('off_hours') or 0),
            'failed_logins': int(row.get('failed_logins') or 0), 'first_seen': iso_utc(row.get('first_seen')),
            'last_seen': iso_utc(row.get('last_seen')), 'samples': [],
        }
        actor['flags'] = assess(actor, baseline, flag_cfg)
        actor['risk'] = sum(item['weight'] for item in actor['flags'])
        return actor

    def add_samples(self, client: t.Any, table: t.Any, args: dict[str, t.Any], where: t.Any,
                    shown: list[dict[str, t.Any]]) -> None:
        if not shown or not self.params['sample_size']:
            return
        sample_args = dict(args, sensitive=list(self.params.get('sensitive_actions') or []) or [''],
                           actors=[a['actor_id'] or '' for a in shown], sample_size=self.params['sample_size'])
        by_actor = {a['actor_id']: a for a in shown}
        for row in client.query(sql.SQL(SAMPLE_SQL).format(table=table, where=where), sample_args):
            actor = by_actor.get(row.pop('actor'))
            if actor is not None:
                row.pop('rank', None)
                row['created_at'] = iso_utc(row['created_at'])
                actor['samples'].append(row)
