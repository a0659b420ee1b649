# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The triage snapshot's own arithmetic, without a server: the cache hit ratio, saturation, blockers and the options.

The snapshot read from a (fake) server is tested through pg_activity_info and pg_terminate_sessions in
tests/unit/plugins/modules/.
"""

from __future__ import annotations

import datetime

from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import activity


def test_database_stats_adds_the_cache_hit_ratio_and_an_iso_reset_time():
    reset = datetime.datetime(2025, 1, 15, 14, 0, tzinfo=datetime.timezone.utc)
    stats = activity.database_stats({'blks_hit': 990, 'blks_read': 10, 'deadlocks': 2, 'stats_reset': reset})
    assert stats == {'blks_hit': 990, 'blks_read': 10, 'deadlocks': 2, 'cache_hit_ratio': 0.99,
                     'stats_reset': '2025-01-15T14:00:00+00:00'}


def test_database_stats_without_reads_or_a_row_has_no_ratio():
    assert activity.database_stats(None) == {'cache_hit_ratio': None, 'stats_reset': None}
    assert activity.database_stats({'blks_hit': 0, 'blks_read': 0})['cache_hit_ratio'] is None


def test_connections_count_states_and_saturation():
    everyone = [{'pid': 1, 'state': 'active'}, {'pid': 2, 'state': 'idle'}, {'pid': 3, 'state': 'active'}]
    connections = activity.ActivityReport.connections(everyone, {'max_connections': 100, 'reserved': 3})
    assert connections['total'] == 3 and connections['saturation'] == 0.03
    assert connections['max_connections'] == 100 and connections['reserved'] == 3
    assert connections['by_state']['active'] == 2 and connections['by_state']['idle'] == 1
    assert activity.ActivityReport.connections([], {'max_connections': 0, 'reserved': 0})['saturation'] is None


def test_blocker_view_lists_whom_it_blocks():
    session = {'pid': 42, 'usename': 'app', 'application_name': 'api', 'state': 'idle in transaction',
               'duration_s': 12.5, 'query': 'UPDATE accounts SET balance = balance - 1 WHERE id = 7', 'blocks': [43, 44]}
    view = activity.blocker_view(session, 20)
    assert view['pid'] == 42 and view['blocks'] == 2 and view['blocked_pids'] == [43, 44]
    assert view['state'] == 'idle in transaction' and view['duration_s'] == 12.5
    assert len(view['query']) <= 23 and view['query'].startswith('UPDATE accounts')


def test_the_options_are_the_connection_the_filters_and_the_threshold():
    spec = activity.activity_argument_spec()
    assert {'login_host', 'login_user', 'long_running_threshold'} <= set(spec)
    assert spec['long_running_threshold']['type'] == 'float' and spec['long_running_threshold']['default'] == 60
