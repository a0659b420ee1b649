# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""database_url with a file store: a missing path or store file is one message, and nothing is created.

Rewriting the URL (file and Kubernetes stores) is tested in module_utils/_pooler/test_database_url.py.
"""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.modules import database_url


def test_a_file_store_needs_its_path(run_module):
    result = run_module(database_url, {'store': 'file', 'host': 'pgbouncer.internal'})
    assert result['failed'] and result['msg'] == 'store is file but all of the following are missing: path'


def test_a_store_file_that_does_not_exist_is_not_created(run_module, tmp_path):
    env = tmp_path / 'api.env'
    result = run_module(database_url, {'store': 'file', 'host': 'pgbouncer.internal', 'path': str(env), 'key': 'DATABASE_URL'})
    assert result['failed'] and result['msg'] == f'The secret store {env} does not exist'
    assert not env.exists()
