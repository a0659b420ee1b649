# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running a restore: the connection string without the password on the command line, our provenance comment,
failure reasons, and the Restorer's decisions without a server."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgGuardError, PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import restore as backup
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import restore_run as run

CUSTOM = b'PGDMP\x01\x0e\x00\x04\x08\x01\x01' + b'\x00' * 200


PLAIN = ('--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n'
         'CREATE TABLE public.tenants (\n    id text\n);\nCREATE TABLE "Odd"."Mixed Case" (id int);\n'
         'CREATE UNLOGGED TABLE IF NOT EXISTS audit_log_entries (id int);\n'
         '\n--\n-- PostgreSQL database dump complete\n--\n')


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


def write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def test_conninfo_keeps_the_password_out_of_the_command_line():
    info, password = run.conninfo({'login_host': 'db', 'login_port': 5432, 'login_user': "o'brien",
                                   'login_password': 's3cret', 'connect_params': {}}, 'lcopilot_recovery_1')
    assert password == 's3cret' and 's3cret' not in info
    assert "dbname='lcopilot_recovery_1'" in info and "user='o\\'brien'" in info
    info, password = run.conninfo({'dsn': 'postgresql://ops:dsnpass@db:5433/lcopilot', 'connect_params': {}}, 'rec')
    assert password == 'dsnpass' and 'dsnpass' not in info and "dbname='rec'" in info and "port='5433'" in info


def test_provenance_is_only_ours():
    mark = {'status': 'restored', 'sha256': 'ab' * 32}
    assert run.provenance_of(backup.PROVENANCE_PREFIX + json.dumps(mark)) == mark
    assert run.provenance_of('Production database, do not touch') is None
    assert run.provenance_of(backup.PROVENANCE_PREFIX + '{broken') is None
    assert run.provenance_of(None) is None


@pytest.mark.parametrize('rc, stderr, expected', [
    (-11, b'', 'crashed (signal 11)'),
    (1, b'pg_restore: error: could not read from input file: end of file\n', 'the archive is truncated'),
    (1, b'pg_restore: error: unsupported version (1.16) in file header\n', 'set pg_restore_path'),
    (1, b'psql:/x.sql:2: ERROR:  relation "missing" does not exist\n', 'psql exited with 1: psql:/x.sql:2: ERROR'),
])
def test_failure_reason(rc, stderr, expected):
    proc = subprocess.CompletedProcess(['psql'], rc, b'', stderr)
    assert expected in run.failure_reason('psql', proc, [])


def no_commands(argv, environ):
    raise AssertionError(f'a plain SQL backup is validated without running {argv}')


def plain_restorer(tmp_path, **params):
    if not shutil.which('psql'):
        pytest.skip('psql is not installed')
    path = write(tmp_path / 'trdrhub_backup_20250115_020000.sql', PLAIN)
    base = {'backup': path, 'sha256': hashlib.sha256(PLAIN.encode()).hexdigest(), 'source_db': 'lcopilot',
            'connect_params': {}}
    base.update(params)
    return run.Restorer(base, no_commands)


def test_restorer_validates_and_names_the_target_without_a_server(tmp_path):
    restorer = plain_restorer(tmp_path)
    assert restorer.target == 'lcopilot_recovery_20250115_020000'
    assert restorer.toc['tables'] == ['Odd.Mixed Case', 'public.audit_log_entries', 'public.tenants']
    assert restorer.checksum['ok'] is True and restorer.checksum['source'] == 'option'
    with pytest.raises(PgInputError, match='checksum mismatch'):
        plain_restorer(tmp_path, sha256='0' * 64)
    with pytest.raises(PgGuardError, match='source \\(production\\) database'):
        plain_restorer(tmp_path, target_db='lcopilot')


def test_restorer_decides_create_unchanged_replace_or_refuses(tmp_path):
    restorer = plain_restorer(tmp_path)
    ours = backup.PROVENANCE_PREFIX + json.dumps({'status': 'restored', 'sha256': restorer.checksum['actual']})
    other = backup.PROVENANCE_PREFIX + json.dumps({'status': 'restored', 'sha256': '1' * 64, 'backup_id': 'older'})
    half = backup.PROVENANCE_PREFIX + json.dumps({'status': 'restoring', 'sha256': restorer.checksum['actual']})
    assert restorer._decide({'datname': None}) == 'create'
    assert restorer._decide({'datname': restorer.target, 'comment': ours}) == 'unchanged'
    with pytest.raises(PgGuardError, match='holds backup older'):
        restorer._decide({'datname': restorer.target, 'comment': other})
    with pytest.raises(PgGuardError, match='an unfinished restore'):
        restorer._decide({'datname': restorer.target, 'comment': half})
    with pytest.raises(PgGuardError, match='was not created by this module'):
        restorer._decide({'datname': restorer.target, 'comment': 'hand-made'})
    replacing = plain_restorer(tmp_path, replace_existing=True)
    assert replacing._decide({'datname': restorer.target, 'comment': other}) == 'replace'
    with pytest.raises(PgGuardError, match='was not created by this module'):
        replacing._decide({'datname': restorer.target, 'comment': None})


def test_restorer_refuses_a_truncated_plain_dump(tmp_path):
    if not shutil.which('psql'):
        pytest.skip('psql is not installed')
    cut = PLAIN[:PLAIN.index('-- PostgreSQL database dump complete')]
    path = write(tmp_path / 'trdrhub_backup_20250115_020000.sql', cut)
    with pytest.raises(PgInputError, match='the file is truncated'):
        run.Restorer({'backup': path, 'verify_checksum': False, 'source_db': 'lcopilot', 'connect_params': {}}, no_commands)
