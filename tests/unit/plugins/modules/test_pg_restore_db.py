# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_restore_db, the module: bad input (a path and an id, a missing file) refused with one message."""

from __future__ import annotations

import json

from ansible_collections.trdrhub.incident.plugins.modules import pg_restore_db

CUSTOM = b'PGDMP\x01\x0e\x00\x04\x08\x01\x01' + b'\x00' * 200


TOC = """;
; Archive created at 2025-01-15 02:00:03 UTC
;     dbname: lcopilot
;     TOC Entries: 9
;     Format: CUSTOM
;
; Selected TOC Entries:
;
3384; 0 0 ACL - SCHEMA public pg_database_owner
217; 1259 16415 TABLE public audit_log_entries postgres
215; 1259 16392 TABLE public tenants postgres
3376; 0 16415 TABLE DATA public audit_log_entries postgres
3374; 0 16392 TABLE DATA public tenants postgres
3226; 2606 16424 CONSTRAINT public audit_log_entries audit_log_entries_pkey postgres
"""


def test_module_refuses_both_a_path_and_an_id(run_module):
    result = run_module(pg_restore_db, {'backup': '/tmp/x.sql.gz', 'backup_id': 'trdrhub_backup_20250115_020000',
                                        'backup_dir': '/tmp'})
    assert result['failed'] and 'mutually exclusive' in result['msg']


def test_module_refuses_a_missing_file_with_one_message(run_module, tmp_path):
    result = run_module(pg_restore_db, {'backup': str(tmp_path / 'trdrhub_backup_20250115_020000.sql.gz'),
                                        'login_password': 'hunter2-secret'})
    assert result['failed'] and result['msg'].endswith('does not exist')
    assert 'hunter2-secret' not in json.dumps(result)
