# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What PgBouncer's admin console says about its pools: waiting clients, waits and saturation.

The admin console is the virtual database ``pgbouncer``. It runs no transactions and
understands only its own ``SHOW`` commands over the simple query protocol, so the
connection is autocommit and nothing is wrapped in ``BEGIN``/``SET LOCAL`` (which
``PgClient`` would do). psycopg2 sends a statement without parameters as a simple query.
"""

from __future__ import annotations

import contextlib
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgPermissionError,
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import condense, scrub
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import connect, secrets_of

try:
    import psycopg2
except ImportError:  # reported by the runner's library check
    psycopg2 = None

ADMIN_DB = 'pgbouncer'
SHOW_POOLS = 'SHOW POOLS'
SHOW_DATABASES = 'SHOW DATABASES'
SHOW_STATS = 'SHOW STATS'
SHOW_CLIENTS = 'SHOW CLIENTS'
# Pool columns kept as integers (PgBouncer sends every value as text over the simple protocol).
_POOL_COUNTS = ('cl_active', 'cl_waiting', 'sv_active', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login')
_STATS_KEYS = ('total_xact_count', 'total_query_count', 'total_wait_time', 'avg_xact_time', 'avg_query_time',
               'avg_wait_time')


def _int(value: t.Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class AdminConsole:
    """An autocommit connection to the ``pgbouncer`` database and the commands run on it."""

    def __init__(self, params: dict[str, t.Any], conn: t.Any = None) -> None:
        self.params = params
        self.secrets = secrets_of(params)
        self.queries: list[str] = []
        self.conn = conn if conn is not None else connect(params)

    def show(self, command: str) -> list[dict[str, t.Any]]:
        self.queries.append(command)
        try:
            with self.conn.cursor() as cur:
                cur.execute(command)
                columns = [column[0] for column in cur.description or ()]
                return [dict(zip(columns, row)) for row in cur.fetchall()] if columns else []
        except psycopg2.Error as exc:
            reason = condense(getattr(getattr(exc, 'diag', None), 'message_primary', None) or str(exc))
            msg = scrub(f'{command} failed on the PgBouncer admin console -- PgBouncer said: {reason}', self.secrets)
            if 'not allowed' in reason or 'admin' in reason:
                raise PgPermissionError(msg + ' (log in as a user listed in admin_users or stats_users of '
                                        'pgbouncer.ini)') from None
            raise PgQueryError(msg) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def pool_view(row: dict[str, t.Any], pool_sizes: dict[str, int | None]) -> dict[str, t.Any]:
    """One pool with counts as integers, its wait in seconds and its saturation (active servers / pool size)."""
    pool: dict[str, t.Any] = {'database': row.get('database'), 'user': row.get('user'),
                              'pool_mode': row.get('pool_mode')}
    for key in _POOL_COUNTS:
        pool[key] = _int(row.get(key)) or 0
    seconds = _int(row.get('maxwait')) or 0
    micro = _int(row.get('maxwait_us')) or 0
    pool['maxwait_s'] = round(seconds + micro / 1e6, 6)
    size = pool_sizes.get(str(row.get('database')))
    pool['pool_size'] = size
    pool['saturation'] = round(pool['sv_active'] / size, 3) if size else None
    return pool


def database_view(row: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        'name': row.get('name'), 'host': row.get('host'), 'port': _int(row.get('port')),
        'database': row.get('database'), 'pool_size': _int(row.get('pool_size')),
        'pool_mode': row.get('pool_mode'), 'max_connections': _int(row.get('max_connections')),
        'current_connections': _int(row.get('current_connections')),
        'paused': bool(_int(row.get('paused'))), 'disabled': bool(_int(row.get('disabled'))),
    }


def client_view(row: dict[str, t.Any]) -> dict[str, t.Any]:
    wait = (_int(row.get('wait')) or 0) + (_int(row.get('wait_us')) or 0) / 1e6
    return {'user': row.get('user'), 'database': row.get('database'), 'state': row.get('state'),
            'addr': row.get('addr'), 'port': _int(row.get('port')), 'application_name': row.get('application_name'),
            'connect_time': str(row.get('connect_time')), 'wait_s': round(wait, 6)}


def findings(pools: list[dict[str, t.Any]], databases: list[dict[str, t.Any]],
             max_wait_threshold: float, saturation_threshold: float) -> list[str]:
    """Headline sentences: clients waiting, waits over the threshold, saturated pools, paused databases."""
    found = []
    for pool in pools:
        if pool['database'] == ADMIN_DB:
            continue
        name = f"pool {pool['database']}/{pool['user']}"
        if pool['cl_waiting']:
            found.append(f"{name}: {pool['cl_waiting']} client(s) waiting for a server connection, "
                         f"the longest for {pool['maxwait_s']:g} s")
        elif pool['maxwait_s'] >= max_wait_threshold > 0:
            found.append(f"{name}: a client waited {pool['maxwait_s']:g} s for a server connection")
        if pool['saturation'] is not None and pool['saturation'] >= saturation_threshold:
            found.append(f"{name}: {pool['sv_active']} of {pool['pool_size']} server connections active "
                         f"({pool['saturation'] * 100:g} % of the pool)")
    for database in databases:
        if database['paused']:
            found.append(f"database {database['name']} is PAUSED on the pooler (RESUME {database['name']} lifts it)")
        if database['disabled']:
            found.append(f"database {database['name']} is DISABLED on the pooler (ENABLE {database['name']} lifts it)")
    return found


class PgBouncerReport(Worker):
    """Reads the four SHOW commands and condenses them into pools, waits and findings."""

    def run(self, client: AdminConsole) -> dict[str, t.Any]:
        p = self.params
        databases = [database_view(row) for row in client.show(SHOW_DATABASES)]
        sizes = {str(d['name']): d['pool_size'] for d in databases}
        pools = [pool_view(row, sizes) for row in client.show(SHOW_POOLS)]
        stats = [{key: (row.get(key) if key == 'database' else _int(row.get(key)))
                  for key in ('database',) + _STATS_KEYS} for row in client.show(SHOW_STATS)]
        clients = [client_view(row) for row in client.show(SHOW_CLIENTS)]
        waiting = [c for c in clients if c['state'] in ('waiting', 'cl_waiting')]
        waiting.sort(key=lambda entry: entry['wait_s'], reverse=True)
        app_pools = [pool for pool in pools if pool['database'] != ADMIN_DB]
        saturations = [pool['saturation'] for pool in app_pools if pool['saturation'] is not None]
        summary = {
            'clients_active': sum(pool['cl_active'] for pool in app_pools),
            'clients_waiting': sum(pool['cl_waiting'] for pool in app_pools),
            'max_wait_s': max((pool['maxwait_s'] for pool in app_pools), default=0),
            'servers_active': sum(pool['sv_active'] for pool in app_pools),
            'max_saturation': max(saturations, default=None),
            'paused_databases': [d['name'] for d in databases if d['paused']],
        }
        return {
            'changed': False,
            'pools': pools,
            'databases': databases,
            'stats': stats,
            'clients_total': len(clients),
            'waiting_clients': waiting[:p['clients_limit']],
            'summary': summary,
            'findings': findings(pools, databases, p['max_wait_threshold'], p['saturation_threshold']),
            'queries': list(client.queries),
        }
