# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pgbouncer_info never falls back to libpq's implicit local socket: with no server given it fails naming the options.

Reading PgBouncer's SHOW commands is tested in module_utils/_postgres/test_pgbouncer.py and against a real
PgBouncer in tests/integration.
"""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.modules import pgbouncer_info


def test_no_server_given_is_one_message_naming_the_options(run_module, monkeypatch):
    for var in ('PGHOST', 'PGHOSTADDR', 'PGSERVICE'):
        monkeypatch.delenv(var, raising=False)
    result = run_module(pgbouncer_info, {'saturation_threshold': 0.8})
    assert result['failed'] and result['msg'].startswith('No PostgreSQL server given: set login_host, login_unix_socket or dsn')
    assert 'never used implicitly' in result['msg']
