# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""TRDR Hub backup files: naming, format detection, checksums, table of contents, target names.

Everything here works on the file alone, before any connection: a backup that is not what
it claims to be is refused before a database is created. The restore itself lives in
``_pg_restore_run.py``.
"""

from __future__ import annotations

import datetime
import glob
import gzip
import hashlib
import os
import re
import shutil
import typing as t
import zlib

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import require_readable_file

BACKUP_ID = re.compile(r'^trdrhub_backup_(\d{8})_(\d{6})$')
# Suffixes the backup scripts and operators use, longest first.
SUFFIXES = ('.sql.gz', '.dump.gz', '.sql', '.dump', '.gz')
CUSTOM_MAGIC = b'PGDMP'
GZIP_MAGIC = b'\x1f\x8b'
CHUNK = 1024 * 1024
HEAD_BYTES = 8192
MAX_IDENTIFIER = 63   # NAMEDATALEN - 1
PG_BIN_GLOB = '/usr/lib/postgresql/*/bin'
PROVENANCE_PREFIX = 'trdrhub.incident.pg_restore_db '

# The first statement of a plain-SQL dump: what pg_dump writes, or what a hand-made SQL script starts with.
PG_DUMP_HEADER = '-- PostgreSQL database dump'
PG_DUMP_TRAILER = '-- PostgreSQL database dump complete'
SQL_START = re.compile(r'^(SET|CREATE|INSERT|COPY|SELECT|BEGIN|START|ALTER|DROP|COMMENT|GRANT|REVOKE|\\connect|'
                       r'\\restrict)\b', re.IGNORECASE)
SQL_CREATE_TABLE = re.compile(r'^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?'
                              r'((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)', re.IGNORECASE)
# `pg_restore --list` lines: "<id>; <catalog oid> <oid> <DESC> <schema> <name> <owner>".
TOC_LINE = re.compile(r'^(\d+);\s+\d+\s+\d+\s+(.*)$')
TOC_DBNAME = re.compile(r'^;\s+dbname:\s+(.+?)\s*$')
TOC_COUNT = re.compile(r'^;\s+TOC Entries:\s+(\d+)\s*$')
SHA256_HEX = re.compile(r'^[0-9a-fA-F]{64}$')


def backup_id_of(path: str) -> str:
    """The backup id a file name carries: its base name without the dump suffix."""
    name = os.path.basename(path)
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def backup_timestamp(backup_id: str) -> datetime.datetime | None:
    """The UTC time of ``trdrhub_backup_YYYYMMDD_HHMMSS``; None when the id does not follow the scheme."""
    match = BACKUP_ID.match(backup_id)
    if not match:
        return None
    try:
        when = datetime.datetime.strptime(match.group(1) + match.group(2), '%Y%m%d%H%M%S')
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.timezone.utc)


def resolve_backup(path: str | None, backup_id: str | None, backup_dir: str | None) -> str:
    """The backup file from O(backup), or the one file O(backup_id) names in O(backup_dir)."""
    if path:
        if backup_id or backup_dir:
            raise PgInputError('give either backup (a path) or backup_id with backup_dir, not both')
        return path
    if not backup_id or not backup_dir:
        raise PgInputError('no backup given: set backup to the file, or backup_id (trdrhub_backup_YYYYMMDD_HHMMSS) '
                           'and backup_dir')
    if '/' in backup_id or backup_id in ('.', '..'):
        raise PgInputError(f'backup_id {backup_id!r} must be a backup id, not a path')
    if not os.path.isdir(backup_dir):
        raise PgInputError(f'backup_dir {backup_dir} is not a directory')
    found = [os.path.join(backup_dir, backup_id + suffix) for suffix in SUFFIXES
             if os.path.isfile(os.path.join(backup_dir, backup_id + suffix))]
    if not found:
        raise PgInputError(f"no backup {backup_id} in {backup_dir} (looked for {', '.join(backup_id + s for s in SUFFIXES)})")
    if len(found) > 1:
        raise PgInputError(f"backup {backup_id} is ambiguous in {backup_dir}: {', '.join(found)}; give backup as a path")
    return found[0]


def _plain_sql_kind(head: bytes) -> str | None:
    """``pg_dump`` for pg_dump's plain format, ``sql`` for another SQL script, None for anything else."""
    if b'\x00' in head:
        return None
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:   # a multi-byte character cut at the end of the sample is fine
            return None
        text = head[:exc.start].decode('utf-8')
    if PG_DUMP_HEADER in text[:512]:
        return 'pg_dump'
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('--'):
            continue
        return 'sql' if SQL_START.match(line) else None
    return None


def detect_format(path: str) -> dict[str, t.Any]:
    """What the file really is, from its content: custom archive, plain SQL, each maybe gzipped.

    The TRDR Hub backups are named ``.sql.gz`` but are custom-format archives, so the name is
    never trusted. Raises PgInputError with one sentence when the file cannot be a dump.
    """
    require_readable_file(path, PgInputError, 'backup file', 'backup')
    size = os.path.getsize(path)
    if size == 0:
        raise PgInputError(f'backup file {path} is empty (0 bytes): the backup did not complete')
    with open(path, 'rb') as handle:
        head = handle.read(HEAD_BYTES)
    compressed = head.startswith(GZIP_MAGIC)
    if compressed:
        try:
            with gzip.open(path, 'rb') as handle:
                head = handle.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise PgInputError(f'backup file {path} starts like gzip but cannot be decompressed: {exc}') from None
    if head.startswith(CUSTOM_MAGIC):
        fmt, kind = 'custom', 'pg_dump'
    else:
        kind = _plain_sql_kind(head)
        if kind is None:
            what = 'gzip-compressed data' if compressed else 'the file'
            raise PgInputError(f'backup file {path} is not a PostgreSQL dump: {what} neither starts with the custom-format '
                               f'magic bytes PGDMP nor looks like plain SQL')
        fmt = 'plain'
    return {'path': path, 'format': fmt, 'compressed': compressed, 'size_bytes': size, 'plain_kind': kind if fmt == 'plain' else None}


def sha256_file(path: str) -> str:
    """SHA-256 of the file, read in 1 MiB chunks (bounded memory for any size)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def read_sidecar(path: str) -> str | None:
    """The checksum in ``<file>.sha256`` (``sha256sum`` format); None when there is no sidecar."""
    sidecar = path + '.sha256'
    if not os.path.isfile(sidecar):
        return None
    try:
        with open(sidecar, encoding='utf-8') as handle:
            lines = [line.strip() for line in handle if line.strip() and not line.startswith('#')]
    except (OSError, UnicodeDecodeError) as exc:
        raise PgInputError(f'checksum file {sidecar} cannot be read: {exc}') from None
    base = os.path.basename(path)
    for line in lines:
        digest, _sep, name = line.partition(' ')
        name = name.strip().lstrip('*')
        if SHA256_HEX.match(digest) and (not name or os.path.basename(name) == base):
            return digest.lower()
    raise PgInputError(f'checksum file {sidecar} has no SHA-256 line for {base} (expected "<64 hex digits>  {base}", '
                       'as sha256sum writes it)')


def expected_checksum(path: str, given: str | None, verify: bool | None) -> tuple[str | None, str]:
    """(expected checksum, where it came from: option, sidecar or none); refuses a restore without one."""
    if given:
        text = given.strip()
        if text.lower().startswith('sha256:'):
            text = text[len('sha256:'):]
        if not SHA256_HEX.match(text):
            raise PgInputError(f'sha256 must be 64 hexadecimal digits, got {given!r}')
        return text.lower(), 'option'
    sidecar = read_sidecar(path)
    if sidecar:
        return sidecar, 'sidecar'
    if verify is False:
        return None, 'none'
    raise PgInputError(f'no checksum for {path}: give sha256, or put a sha256sum-style {os.path.basename(path)}.sha256 '
                       'next to it; to restore an unverified backup set verify_checksum: false explicitly')


def parse_toc(listing: str) -> dict[str, t.Any]:
    """Entries, tables and the source database name from ``pg_restore --list`` output."""
    entries, tables, dbname, declared = 0, [], None, None
    for line in listing.splitlines():
        match = TOC_DBNAME.match(line)
        if match:
            dbname = match.group(1)
            continue
        match = TOC_COUNT.match(line)
        if match:
            declared = int(match.group(1))
            continue
        match = TOC_LINE.match(line)
        if not match:
            continue
        entries += 1
        words = match.group(2).split(' ')
        if len(words) >= 3 and words[0] == 'TABLE' and words[1] != 'DATA':
            tables.append(f'{words[1]}.{words[2]}')
    return {'entries': entries, 'declared_entries': declared, 'tables': sorted(set(tables)), 'dbname': dbname}


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def scan_plain_sql(handle: t.IO[bytes]) -> dict[str, t.Any]:
    """Tables a plain SQL dump creates, and whether pg_dump's closing line is there (streamed)."""
    tables, complete, statements = set(), False, 0
    for raw in handle:
        line = raw.decode('utf-8', 'replace')
        if line.startswith(PG_DUMP_TRAILER):
            complete = True
        match = SQL_CREATE_TABLE.match(line)
        if match:
            statements += 1
            parts = re.findall(r'"(?:[^"]|"")+"|[\w$]+', match.group(1))
            names = [_unquote(part) for part in parts]
            tables.add('.'.join(names) if len(names) == 2 else f'public.{names[0]}')
    return {'tables': sorted(tables), 'complete': complete, 'entries': statements}


def derive_target(target_db: str | None, source_db: str | None, backup_id: str) -> str:
    """O(target_db), else ``<source>_recovery_<YYYYMMDD_HHMMSS>`` of the backup."""
    if target_db:
        name = target_db
    else:
        when = backup_timestamp(backup_id)
        if when is None:
            raise PgInputError(f'cannot derive target_db: {backup_id!r} is not a backup id of the form '
                               'trdrhub_backup_YYYYMMDD_HHMMSS; set target_db')
        if not source_db:
            raise PgInputError('cannot derive target_db: the backup does not name its database; set source_db or target_db')
        name = f"{source_db}_recovery_{when.strftime('%Y%m%d_%H%M%S')}"
    if len(name.encode('utf-8')) > MAX_IDENTIFIER:
        raise PgInputError(f'target database name {name!r} is longer than {MAX_IDENTIFIER} bytes, PostgreSQL would truncate '
                           'it; set a shorter target_db')
    return name


def refuse_source(target: str, sources: t.Iterable[str | None], force: bool, confirm: str | None) -> bool:
    """True when the target is a source (production) database the operator explicitly agreed to overwrite.

    Restoring over production is refused unless force_overwrite_source AND confirm_overwrite equal
    to the database name: the backup scripts' own default (restore with --clean over production)
    is exactly what a recovery must never do by accident.
    """
    hit = sorted({name for name in sources if name and name == target})
    if not hit:
        return False
    if force and confirm == target:
        return True
    how = ('confirm_overwrite is not the database name' if force else
           'set force_overwrite_source: true and confirm_overwrite: <database name> only if that is really meant')
    raise PgGuardError(f'refusing to restore into {target}: it is the source (production) database; restore into a new '
                       f'recovery database instead ({how}). Nothing was created or changed.')


def _version_key(path: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in re.findall(r'\d+|\D+', path))


def find_binary(name: str, explicit: str | None) -> str:
    """The explicit path, else PATH, else /usr/lib/postgresql/<version>/bin, newest version first."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise PgInputError(f'{name}_path {explicit} is not an executable file')
        return explicit
    found = shutil.which(name)
    if found:
        return found
    for bindir in sorted(glob.glob(PG_BIN_GLOB), key=_version_key, reverse=True):
        candidate = os.path.join(bindir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PgInputError(f'{name} not found in PATH nor in {PG_BIN_GLOB}: install the PostgreSQL client of the server\'s '
                       f'major version (or newer) or set {name}_path')
