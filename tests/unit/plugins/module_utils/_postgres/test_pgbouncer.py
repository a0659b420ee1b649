# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pgbouncer_info without a pooler: the console's text rows condensed into pools, waits and findings."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import pgbouncer as pgb


def pool_row(database='lcopilot', waiting='0', active='3', maxwait='0', maxwait_us='0'):
    # PgBouncer's console sends numbers as text or int depending on the column type.
    return {'database': database, 'user': 'trdrhub', 'cl_active': '5', 'cl_waiting': waiting, 'sv_active': active,
            'sv_idle': '0', 'sv_used': '0', 'sv_tested': '0', 'sv_login': '0', 'maxwait': maxwait,
            'maxwait_us': maxwait_us, 'pool_mode': 'transaction'}


def database_row(name='lcopilot', pool_size=20, paused=0, disabled=0):
    return {'name': name, 'host': '10.0.0.5', 'port': 5432, 'database': name, 'pool_size': pool_size,
            'pool_mode': None, 'max_connections': 0, 'current_connections': 3, 'paused': paused, 'disabled': disabled}


class FakeConsole:
    def __init__(self, answers):
        self.answers, self.queries = answers, []

    def show(self, command):
        self.queries.append(command)
        return self.answers[command]


PARAMS = {'max_wait_threshold': 1.0, 'saturation_threshold': 0.9, 'clients_limit': 50}


def test_pool_view_adds_wait_seconds_and_saturation():
    pool = pgb.pool_view(pool_row(active='15', maxwait='2', maxwait_us='500000'), {'lcopilot': 20})
    assert pool['maxwait_s'] == 2.5 and pool['saturation'] == 0.75 and pool['sv_active'] == 15


def test_a_pool_of_unknown_size_has_no_saturation():
    assert pgb.pool_view(pool_row(), {})['saturation'] is None


@pytest.mark.parametrize('pool, databases, expected', [
    (pool_row(waiting='4', active='20', maxwait='3'), [database_row()],
     ['pool lcopilot/trdrhub: 4 client(s) waiting for a server connection, the longest for 3 s',
      'pool lcopilot/trdrhub: 20 of 20 server connections active (100 % of the pool)']),
    (pool_row(maxwait='1', maxwait_us='200000'), [database_row()],
     ['pool lcopilot/trdrhub: a client waited 1.2 s for a server connection']),
    (pool_row(), [database_row(paused=1)],
     ['database lcopilot is PAUSED on the pooler (RESUME lcopilot lifts it)']),
    (pool_row(), [database_row(disabled=1)],
     ['database lcopilot is DISABLED on the pooler (ENABLE lcopilot lifts it)']),
    (pool_row(database='pgbouncer', waiting='2'), [database_row()], []),
    (pool_row(), [database_row()], []),
])
def test_findings(pool, databases, expected):
    views = [pgb.database_view(row) for row in databases]
    pools = [pgb.pool_view(pool, {d['name']: d['pool_size'] for d in views})]
    assert pgb.findings(pools, views, 1.0, 0.9) == expected


def test_the_report_sums_the_application_pools_and_sorts_waiting_clients():
    clients = [{'user': 'trdrhub', 'database': 'lcopilot', 'state': state, 'addr': '10.0.0.9', 'port': port,
                'wait': wait, 'wait_us': 0, 'connect_time': '2025-01-15 14:30:00 UTC', 'application_name': 'api'}
               for state, port, wait in (('active', 1, 0), ('waiting', 2, 1), ('waiting', 3, 7))]
    console = FakeConsole({
        pgb.SHOW_DATABASES: [database_row(), database_row('pgbouncer', pool_size=2)],
        pgb.SHOW_POOLS: [pool_row(waiting='2', active='20', maxwait='7'), pool_row('pgbouncer', active='1')],
        pgb.SHOW_STATS: [{'database': 'lcopilot', 'total_xact_count': '42', 'avg_wait_time': '1000'}],
        pgb.SHOW_CLIENTS: clients,
    })
    result = pgb.PgBouncerReport(dict(PARAMS, clients_limit=1)).run(console)
    assert result['summary'] == {'clients_active': 5, 'clients_waiting': 2, 'max_wait_s': 7.0, 'servers_active': 20,
                                 'max_saturation': 1.0, 'paused_databases': []}
    assert [c['port'] for c in result['waiting_clients']] == [3]
    assert result['clients_total'] == 3
    assert result['stats'][0]['total_xact_count'] == 42 and result['stats'][0]['total_query_count'] is None
    assert result['queries'] == console.queries == ['SHOW DATABASES', 'SHOW POOLS', 'SHOW STATS', 'SHOW CLIENTS']
    assert result['changed'] is False
