# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The triage snapshot of a PostgreSQL server: connections, long runners, sessions idle in a transaction, blockers.

``pg_activity_info`` returns it; ``pg_terminate_sessions`` returns the same snapshot beside its
evidence (``report_activity``) and after a termination (``verify``), so that a containment
reads the database once per step instead of starting a module process for each view.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.sessions import (
    SESSION_FILTER_ARGS,
    SessionFilter,
    count_by_state,
    fetch_sessions,
    login_role,
    session_view,
    visibility,
)

PING_SQL = "SELECT 1 AS ok"
SERVER_SQL = """
SELECT current_database() AS database, current_setting('server_version') AS server_version,
       current_setting('max_connections')::integer AS max_connections,
       current_setting('superuser_reserved_connections')::integer AS reserved
"""
DATABASE_STATS_SQL = """
SELECT numbackends, xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,
       tup_updated, tup_deleted, deadlocks, blks_hit, blks_read, conflicts, temp_files,
       temp_bytes, stats_reset
FROM pg_stat_database WHERE datname = current_database()
"""
IDLE_IN_TRANSACTION = ('idle in transaction', 'idle in transaction (aborted)')


def activity_argument_spec() -> dict[str, t.Any]:
    """The options of pg_activity_info: the connection, the session filters and the long-running threshold."""
    return postgres_spec(SESSION_FILTER_ARGS, long_running_threshold=bounded({'type': 'float', 'default': 60}, minimum=0))


def _by_duration(session: dict[str, t.Any]) -> float:
    return -(session.get('duration_s') or 0.0)


def database_stats(row: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """pg_stat_database counters with the cache hit ratio an operator actually reads."""
    stats = dict(row or {})
    hit, read = stats.get('blks_hit') or 0, stats.get('blks_read') or 0
    stats['cache_hit_ratio'] = round(hit / (hit + read), 4) if hit + read else None
    reset = stats.get('stats_reset')
    stats['stats_reset'] = reset.isoformat() if reset is not None else None
    return stats


def blocker_view(session: dict[str, t.Any], query_max_length: int) -> dict[str, t.Any]:
    return {
        'pid': session['pid'], 'usename': session.get('usename'), 'application_name': session.get('application_name'),
        'state': session.get('state'), 'duration_s': session.get('duration_s'),
        'query': session_view(session, query_max_length)['query'],
        'blocks': len(session['blocks']), 'blocked_pids': session['blocks'],
    }


class ActivityReport(Worker):
    """Triage snapshot: one read of pg_stat_activity, sliced the ways responders ask for."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        super().__init__(params)
        self.filter = SessionFilter.from_params(params)

    def run(self, client: t.Any) -> dict[str, t.Any]:
        pooler = client.pooler_warning()
        if pooler:
            self.warnings.append(pooler)
        started = time.monotonic()
        answer = client.query(PING_SQL)
        ping = {'ok': bool(answer) and answer[0].get('ok') == 1,
                'latency_ms': round((time.monotonic() - started) * 1000, 3)}
        server = client.query(SERVER_SQL)[0]
        stats = client.query(DATABASE_STATS_SQL)
        everyone = fetch_sessions(client)
        hidden = visibility(login_role(client), everyone, self.filter)
        if hidden['msg']:
            self.warnings.append(hidden['msg'])
        return dict(
            changed=False,
            hidden=hidden,
            ping=ping,
            database=server['database'],
            server_version=server['server_version'],
            stats=database_stats(stats[0] if stats else None),
            connections=self.connections(everyone, server),
            queries=client.queries,
            **self.slices(everyone),
        )

    @staticmethod
    def connections(everyone: list[dict[str, t.Any]], server: dict[str, t.Any]) -> dict[str, t.Any]:
        total, limit = len(everyone), server['max_connections']
        return {'total': total, 'by_state': count_by_state(everyone), 'max_connections': limit,
                'reserved': server['reserved'], 'saturation': round(total / limit, 4) if limit else None}

    def slices(self, everyone: list[dict[str, t.Any]]) -> dict[str, list[dict[str, t.Any]]]:
        """sessions, long_running, idle_in_transaction and blockers, all from the filtered set."""
        qmax = self.params.get('query_max_length', 200)
        threshold = self.params.get('long_running_threshold', 60)
        chosen = sorted((s for s in self.filter.select(everyone) if s['pid'] != s.get('own_pid')), key=_by_duration)
        long_running = [s for s in chosen if s.get('state') == 'active'
                        and s.get('duration_s') is not None and s['duration_s'] >= threshold]
        blockers = sorted((s for s in chosen if s.get('blocks')), key=lambda s: (-len(s['blocks']), _by_duration(s)))
        return {
            'sessions': [session_view(s, qmax) for s in chosen],
            'long_running': [session_view(s, qmax) for s in long_running],
            'idle_in_transaction': [session_view(s, qmax) for s in chosen if s.get('state') in IDLE_IN_TRANSACTION],
            'blockers': [blocker_view(s, qmax) for s in blockers],
        }
