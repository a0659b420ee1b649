# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_maintenance, the module: VACUUM FULL is refused without its flag, and the password never shows in the message."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.modules import pg_maintenance


def test_module_refuses_full_without_the_flag(run_module):
    result = run_module(pg_maintenance, {'full': True, 'login_password': 'hunter2-secret'})
    assert result['failed'] and 'allow_full_lock' in result['msg'] and 'hunter2-secret' not in str(result)
