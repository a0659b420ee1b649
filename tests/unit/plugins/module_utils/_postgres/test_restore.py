# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Backup files without a server: naming, format detection, checksums, TOC parsing, target names, refusals."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import os
import shutil

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgGuardError, PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import restore as backup

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


@pytest.mark.parametrize('name, expected', [
    ('trdrhub_backup_20250115_020000.sql.gz', 'trdrhub_backup_20250115_020000'),
    ('/var/backups/trdrhub_backup_20250115_020000.sql', 'trdrhub_backup_20250115_020000'),
    ('trdrhub_backup_20250115_020000.dump.gz', 'trdrhub_backup_20250115_020000'),
    ('nightly.backup', 'nightly.backup'),
])
def test_backup_id_of_strips_the_dump_suffix(name, expected):
    assert backup.backup_id_of(name) == expected


def test_backup_timestamp_is_utc_and_rejects_other_names():
    assert backup.backup_timestamp('trdrhub_backup_20250115_143000') == datetime.datetime(
        2025, 1, 15, 14, 30, tzinfo=datetime.timezone.utc)
    assert backup.backup_timestamp('trdrhub_backup_20251315_143000') is None   # month 13
    assert backup.backup_timestamp('backup_20250115_143000') is None


def test_resolve_backup_by_id_and_dir(tmp_path):
    path = write(tmp_path / 'trdrhub_backup_20250115_020000.sql.gz', CUSTOM)
    assert backup.resolve_backup(None, 'trdrhub_backup_20250115_020000', str(tmp_path)) == path
    write(tmp_path / 'trdrhub_backup_20250115_020000.sql', PLAIN)
    with pytest.raises(PgInputError, match='ambiguous'):
        backup.resolve_backup(None, 'trdrhub_backup_20250115_020000', str(tmp_path))
    with pytest.raises(PgInputError, match='no backup trdrhub_backup_20250116_020000 in'):
        backup.resolve_backup(None, 'trdrhub_backup_20250116_020000', str(tmp_path))
    with pytest.raises(PgInputError, match='not a path'):
        backup.resolve_backup(None, '../etc/passwd', str(tmp_path))
    with pytest.raises(PgInputError, match='either backup'):
        backup.resolve_backup(path, 'trdrhub_backup_20250115_020000', str(tmp_path))


def test_detect_custom_format_under_a_sql_gz_name(tmp_path):
    info = backup.detect_format(write(tmp_path / 'trdrhub_backup_20250115_020000.sql.gz', CUSTOM))
    assert info['format'] == 'custom' and info['compressed'] is False and info['size_bytes'] == len(CUSTOM)


def test_detect_really_gzipped_files(tmp_path):
    custom = tmp_path / 'a.sql.gz'
    custom.write_bytes(gzip.compress(CUSTOM))
    plain = tmp_path / 'b.sql.gz'
    plain.write_bytes(gzip.compress(PLAIN.encode()))
    assert (backup.detect_format(str(custom))['format'], backup.detect_format(str(custom))['compressed']) == ('custom', True)
    assert backup.detect_format(str(plain))['format'] == 'plain' and backup.detect_format(str(plain))['compressed']


@pytest.mark.parametrize('content, kind', [
    (PLAIN, 'pg_dump'),
    ('-- my fix-up script\nBEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n', 'sql'),
])
def test_detect_plain_sql(tmp_path, content, kind):
    info = backup.detect_format(write(tmp_path / 'x.sql', content))
    assert info['format'] == 'plain' and info['plain_kind'] == kind


@pytest.mark.parametrize('content, message', [
    (b'', 'is empty'),
    ('hello, this is not a dump\n', 'is not a PostgreSQL dump'),
    (b'\x00\x01binary\xff\xfe', 'is not a PostgreSQL dump'),
    (b'\x1f\x8b\x08\x00garbage-after-gzip-magic', 'cannot be decompressed'),
])
def test_detect_refuses_what_is_not_a_dump(tmp_path, content, message):
    with pytest.raises(PgInputError, match=message):
        backup.detect_format(write(tmp_path / 'x.sql.gz', content))


def test_detect_missing_file_and_directory(tmp_path):
    with pytest.raises(PgInputError, match='does not exist'):
        backup.detect_format(str(tmp_path / 'nope.sql.gz'))
    with pytest.raises(PgInputError, match='not a regular file'):
        backup.detect_format(str(tmp_path))


def test_sha256_is_streamed_and_equals_hashlib(tmp_path, monkeypatch):
    data = os.urandom(3 * 1024 + 17)
    monkeypatch.setattr(backup, 'CHUNK', 1024)   # several chunks
    assert backup.sha256_file(write(tmp_path / 'f', data)) == hashlib.sha256(data).hexdigest()


def test_sidecar_in_sha256sum_format(tmp_path):
    path = write(tmp_path / 'trdrhub_backup_20250115_020000.sql.gz', CUSTOM)
    digest = hashlib.sha256(CUSTOM).hexdigest()
    assert backup.read_sidecar(path) is None
    (tmp_path / 'trdrhub_backup_20250115_020000.sql.gz.sha256').write_text(
        f'{digest.upper()} *trdrhub_backup_20250115_020000.sql.gz\n')
    assert backup.read_sidecar(path) == digest
    assert backup.expected_checksum(path, None, None) == (digest, 'sidecar')
    (tmp_path / 'trdrhub_backup_20250115_020000.sql.gz.sha256').write_text(f'{digest}  other_file.sql.gz\n')
    with pytest.raises(PgInputError, match='no SHA-256 line for trdrhub_backup_20250115_020000.sql.gz'):
        backup.read_sidecar(path)


def test_expected_checksum_option_and_refusals(tmp_path):
    path = write(tmp_path / 'x.sql.gz', CUSTOM)
    digest = 'AB' * 32
    assert backup.expected_checksum(path, f'sha256:{digest}', None) == (digest.lower(), 'option')
    with pytest.raises(PgInputError, match='64 hexadecimal digits'):
        backup.expected_checksum(path, 'abc', None)
    with pytest.raises(PgInputError, match='verify_checksum: false explicitly'):
        backup.expected_checksum(path, None, None)
    with pytest.raises(PgInputError, match='no checksum'):
        backup.expected_checksum(path, None, True)
    assert backup.expected_checksum(path, None, False) == (None, 'none')


def test_parse_toc_counts_entries_and_lists_tables():
    toc = backup.parse_toc(TOC)
    assert toc == {'entries': 6, 'declared_entries': 9, 'tables': ['public.audit_log_entries', 'public.tenants'],
                   'dbname': 'lcopilot'}


def test_scan_plain_sql_tables_and_trailer(tmp_path):
    with open(write(tmp_path / 'x.sql', PLAIN), 'rb') as handle:
        scan = backup.scan_plain_sql(handle)
    assert scan == {'tables': ['Odd.Mixed Case', 'public.audit_log_entries', 'public.tenants'], 'complete': True,
                    'entries': 3}
    with open(write(tmp_path / 'y.sql', PLAIN[:PLAIN.index('-- PostgreSQL database dump complete')]), 'rb') as handle:
        assert backup.scan_plain_sql(handle)['complete'] is False


def test_derive_target():
    assert backup.derive_target(None, 'lcopilot', 'trdrhub_backup_20250115_020000') == 'lcopilot_recovery_20250115_020000'
    assert backup.derive_target('drill', None, 'whatever') == 'drill'
    with pytest.raises(PgInputError, match='set target_db'):
        backup.derive_target(None, 'lcopilot', 'nightly')
    with pytest.raises(PgInputError, match='set source_db or target_db'):
        backup.derive_target(None, None, 'trdrhub_backup_20250115_020000')
    with pytest.raises(PgInputError, match='longer than 63 bytes'):
        backup.derive_target(None, 'x' * 40, 'trdrhub_backup_20250115_020000')


def test_refuse_source_needs_force_and_the_typed_name():
    assert backup.refuse_source('lcopilot_recovery_1', ['lcopilot', None], False, None) is False
    with pytest.raises(PgGuardError, match='force_overwrite_source: true and confirm_overwrite'):
        backup.refuse_source('lcopilot', ['lcopilot', None], False, None)
    with pytest.raises(PgGuardError, match='confirm_overwrite is not the database name'):
        backup.refuse_source('lcopilot', [None, 'lcopilot'], True, 'LCOPILOT')
    with pytest.raises(PgGuardError):
        backup.refuse_source('lcopilot', ['lcopilot'], False, 'lcopilot')
    assert backup.refuse_source('lcopilot', ['lcopilot'], True, 'lcopilot') is True


def test_find_binary_prefers_explicit_then_path_then_newest_version(tmp_path, monkeypatch):
    for version in ('9.6', '15', '16'):
        bindir = tmp_path / version / 'bin'
        bindir.mkdir(parents=True)
        tool = bindir / 'pg_restore'
        tool.write_text('#!/bin/sh\n')
        tool.chmod(0o755)
    monkeypatch.setattr(backup, 'PG_BIN_GLOB', str(tmp_path / '*' / 'bin'))
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    assert backup.find_binary('pg_restore', None) == str(tmp_path / '16' / 'bin' / 'pg_restore')
    monkeypatch.setattr(shutil, 'which', lambda name: '/usr/bin/' + name)
    assert backup.find_binary('pg_restore', None) == '/usr/bin/pg_restore'
    with pytest.raises(PgInputError, match='pg_restore_path .* is not an executable file'):
        backup.find_binary('pg_restore', str(tmp_path / 'nope'))
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    with pytest.raises(PgInputError, match='psql not found'):
        backup.find_binary('psql', None)
