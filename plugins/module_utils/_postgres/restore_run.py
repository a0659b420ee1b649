# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Restore a TRDR Hub backup into a new recovery database, then verify the copy.

Order matters: the file is validated (format, checksum, table of contents, one full read)
before anything exists on the server; the database is created empty from template0 and
marked with a provenance comment; a restore that fails drops the database it created.
"""

from __future__ import annotations

import datetime
import gzip
import json
import os
import shutil
import tempfile
import time
import typing as t
import zlib

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    PROFILES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_sources import (
    TableReader,
    split_table,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import (
    ChainVerifier,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgInputError,
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import restore as backup
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PgClient,
    condense,
    connection_kwargs,
    scrub,
    secrets_of,
)

try:
    from psycopg2 import sql
    from psycopg2.extensions import parse_dsn
except ImportError:  # the module reports the missing library first
    sql = parse_dsn = None

DATABASES_SQL = 'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname'
TARGET_SQL = """
SELECT d.datname, shobj_description(d.oid, 'pg_database') AS comment, pg_get_userbyid(d.datdba) AS owner,
       current_database() AS connected
FROM (SELECT 1) AS one LEFT JOIN pg_database AS d ON d.datname = %s
"""
TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.reltuples::bigint AS reltuples
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
ORDER BY n.nspname, c.relname
"""
REGCLASS_SQL = 'SELECT to_regclass(%s) IS NOT NULL AS present'
STDERR_TAIL = 12


class Proc(t.NamedTuple):
    """What a client program left behind: exit status (negative: killed by that signal), stdout, stderr."""

    returncode: int
    stdout: bytes
    stderr: bytes


# run(argv, environ_update) -> (rc, stdout, stderr); the module passes AnsibleModule.run_command.
RunCommand = t.Callable[[t.List[str], t.Dict[str, str]], t.Tuple[int, t.Any, t.Any]]


def conninfo(params: dict[str, t.Any], dbname: str) -> tuple[str, str | None]:
    """(libpq connection string without the password, the password) for the client programs."""
    settings: dict[str, t.Any] = dict(parse_dsn(params['dsn'])) if params.get('dsn') else {}
    settings.update(connection_kwargs(params))
    settings['dbname'] = dbname
    password = settings.pop('password', None)
    if settings.get('sslpassword'):
        raise PgInputError('connect_params.sslpassword cannot be given to pg_restore/psql without putting it on their command '
                           'line; use a client key without a passphrase for the restore')
    parts = []
    for key in sorted(settings):
        value = str(settings[key]).replace('\\', '\\\\').replace("'", "\\'")
        parts.append(f"{key}='{value}'")
    return ' '.join(parts), password


def provenance_of(comment: t.Any) -> dict[str, t.Any] | None:
    """The provenance this module wrote into COMMENT ON DATABASE; None for any other comment."""
    if not isinstance(comment, str) or not comment.startswith(backup.PROVENANCE_PREFIX):
        return None
    try:
        data = json.loads(comment[len(backup.PROVENANCE_PREFIX):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def failure_reason(program: str, proc: t.Any, secrets: list[str]) -> str:
    """One line: a crash, a truncated archive, a version mismatch, or the program's last words."""
    err = proc.stderr.decode('utf-8', 'replace') if isinstance(proc.stderr, bytes) else (proc.stderr or '')
    lines = [line for line in err.splitlines() if line.strip()]
    tail = scrub(condense(' '.join(lines[-STDERR_TAIL:])), secrets)
    if proc.returncode < 0:
        return f'{program} crashed (signal {-proc.returncode}) reading the archive: the file is corrupt'
    if 'end of file' in err or 'unexpected end' in err:
        return f'the archive is truncated ({program}: {tail})'
    if 'unsupported version' in err:
        return f'{program} is older than the pg_dump that wrote the archive ({tail}); set pg_restore_path to a newer one'
    return f'{program} exited with {proc.returncode}: {tail or "no error output"}'


class Restorer(Worker):
    """Validates the file when built (before any connection); ``run`` restores and verifies."""

    def __init__(self, params: dict[str, t.Any], run_command: RunCommand, check_mode: bool = False) -> None:
        super().__init__(params, check_mode)
        self.run_command = run_command
        self.secrets = secrets_of(params)
        self.commands: list[list[str]] = []
        self.queries: list[str] = []
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.workdir: str | None = None
        try:
            self._validate()
        except Exception:
            self.cleanup()
            raise

    # -- validation, file only --------------------------------------------------------
    def _validate(self) -> None:
        p = self.params
        self.path = os.path.abspath(backup.resolve_backup(p.get('backup'), p.get('backup_id'), p.get('backup_dir')))
        self.info = backup.detect_format(self.path)
        self.backup_id = backup.backup_id_of(self.path)
        expected, source = backup.expected_checksum(self.path, p.get('sha256'), p.get('verify_checksum'))
        actual = backup.sha256_file(self.path)
        self.checksum = {'expected': expected, 'actual': actual, 'ok': None if expected is None else expected == actual,
                         'source': source}
        if expected is not None and expected != actual:
            raise PgInputError(f'checksum mismatch for {self.path}: expected {expected}, the file has {actual}; the file is '
                               'corrupt or not the recorded backup. Nothing was created.', checksum=self.checksum)
        if expected is None:
            self.warnings.append(f'{self.path} was restored without checksum verification (verify_checksum: false)')
        self.program = backup.find_binary('pg_restore' if self.info['format'] == 'custom' else 'psql',
                                          p.get('pg_restore_path') if self.info['format'] == 'custom' else p.get('psql_path'))
        self.file = self._decompressed() if self.info['compressed'] else self.path
        self.toc = self._read_toc()
        self.timings['validate'] = round(time.monotonic() - self.started, 3)
        self.source_db = p.get('source_db') or self.toc.get('dbname')
        self.target = backup.derive_target(p.get('target_db'), self.source_db, self.backup_id)
        self.overwrite_source = backup.refuse_source(self.target, (p.get('source_db'), self.toc.get('dbname')),
                                                     p.get('force_overwrite_source'), p.get('confirm_overwrite'))

    def _decompressed(self) -> str:
        """Gunzip to a private temporary file, streamed; pg_restore needs a seekable archive for --jobs."""
        self.workdir = tempfile.mkdtemp(prefix='trdrhub-restore-', dir=self.params.get('work_dir') or None)
        target = os.path.join(self.workdir, self.backup_id + ('.dump' if self.info['format'] == 'custom' else '.sql'))
        try:
            with gzip.open(self.path, 'rb') as src, open(target, 'wb') as dst:
                shutil.copyfileobj(src, dst, backup.CHUNK)
        except (OSError, EOFError, zlib.error) as exc:
            raise PgInputError(f'backup file {self.path} is gzip-compressed but cannot be decompressed ({exc}): the file is '
                               'truncated or corrupt. Nothing was created.') from None
        return target

    def _tool(self, argv: list[str], what: str, env: dict[str, str] | None = None) -> Proc:
        self.commands.append(list(argv))
        try:
            rc, out, err = self.run_command(list(argv), env or {})
        except OSError as exc:
            raise PgInputError(f'cannot run {argv[0]} to {what}: {exc}') from None
        as_bytes = [value.encode('utf-8', 'replace') if isinstance(value, str) else (value or b'') for value in (out, err)]
        return Proc(rc, as_bytes[0], as_bytes[1])

    def _read_toc(self) -> dict[str, t.Any]:
        if self.info['format'] == 'plain':
            with open(self.file, 'rb') as handle:
                scan = backup.scan_plain_sql(handle)
            if self.info['plain_kind'] == 'pg_dump' and not scan['complete']:
                raise PgInputError(f'backup file {self.path} is a plain pg_dump script without its closing line '
                                   f'("{backup.PG_DUMP_TRAILER}"): the file is truncated. Nothing was created.')
            return {'entries': scan['entries'], 'tables': scan['tables'], 'dbname': None}
        listing = self._tool([self.program, '--list', self.file], 'read the table of contents')
        if listing.returncode != 0:
            raise PgInputError(f'{self.path} is not a readable custom-format archive: '
                               f'{failure_reason("pg_restore --list", listing, self.secrets)}. Nothing was created.')
        toc = backup.parse_toc(listing.stdout.decode('utf-8', 'replace'))
        if self.params.get('verify_archive', True):
            # --list reads the table of contents only; a cut or damaged data section shows up when read.
            full = self._tool([self.program, '--file', os.devnull, self.file], 'read the whole archive')
            if full.returncode != 0:
                raise PgInputError(f'{self.path} cannot be read to the end: {failure_reason("pg_restore", full, self.secrets)}. '
                                   'Nothing was created.')
        return toc

    def cleanup(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- on the server ---------------------------------------------------------------
    def run(self, client: PgClient) -> dict[str, t.Any]:
        try:
            return self._run(client)
        finally:
            self.cleanup()

    def _decide(self, row: dict[str, t.Any]) -> str:
        """create, unchanged or replace; refuse a database that holds anything else."""
        if row.get('datname') is None:
            return 'create'
        mark = provenance_of(row.get('comment'))
        if mark and mark.get('status') == 'restored' and mark.get('sha256') == self.checksum['actual']:
            return 'unchanged'
        if self.overwrite_source:
            return 'replace'
        if mark is None:
            raise PgGuardError(f'database {self.target} already exists and was not created by this module (no provenance '
                               'comment); it is left alone: choose another target_db. Nothing was changed.')
        what = ('an unfinished restore' if mark.get('status') != 'restored' else
                f"backup {mark.get('backup_id')} (sha256 {mark.get('sha256')})")
        if not self.params.get('replace_existing'):
            raise PgGuardError(f'database {self.target} already exists and holds {what}, not this backup; set '
                               'replace_existing: true to drop it and restore again, or choose another target_db. '
                               'Nothing was changed.', provenance=mark)
        return 'replace'

    def _run(self, client: PgClient) -> dict[str, t.Any]:
        row = client.query(TARGET_SQL, (self.target,))[0]
        action = self._decide(row)
        if action != 'unchanged' and row['connected'] == self.target:
            raise PgInputError(f'the module is connected to {self.target} itself; set login_db to another database '
                               '(for example postgres) to create or replace it')
        before = [r['datname'] for r in client.query(DATABASES_SQL)]
        after = sorted(set(before) | {self.target})
        result: dict[str, t.Any] = {
            'changed': action != 'unchanged', 'action': action, 'target_db': self.target, 'created': False,
            'source_db': self.source_db, 'checksum': self.checksum, 'backup': self.backup_view(),
            'toc_entries': self.toc['entries'], 'toc_tables': self.toc['tables'],
            'diff': {'before': {'databases': before}, 'after': {'databases': after}},
            'tables': None, 'row_counts': None, 'audit_chain': None, 'verified': None,
            'provenance': provenance_of(row.get('comment')),
        }
        if action != 'unchanged' and not self.check_mode:
            self._restore(client, action)
            result['created'] = True
            result['provenance'] = self.provenance('restored')
        if action == 'unchanged' or not self.check_mode:
            result.update(self.verify(analyze=action != 'unchanged'))
        self.timings['total'] = round(time.monotonic() - self.started, 3)
        result.update(duration=self.timings, commands=self.commands, queries=client.queries + self.queries)
        return result

    def backup_view(self) -> dict[str, t.Any]:
        when = backup.backup_timestamp(self.backup_id)
        return {'path': self.path, 'backup_id': self.backup_id, 'format': self.info['format'],
                'compressed': self.info['compressed'], 'size_bytes': self.info['size_bytes'],
                'timestamp': when.isoformat() if when else None}

    def provenance(self, status: str) -> dict[str, t.Any]:
        return {'status': status, 'backup_id': self.backup_id, 'backup_file': os.path.basename(self.path),
                'sha256': self.checksum['actual'], 'source_db': self.source_db, 'format': self.info['format'],
                'restored_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}

    def _mark(self, client: PgClient, status: str) -> None:
        text = backup.PROVENANCE_PREFIX + json.dumps(self.provenance(status), sort_keys=True)
        client.query(sql.SQL('COMMENT ON DATABASE {} IS {}').format(sql.Identifier(self.target), sql.Literal(text)))

    def _restore(self, client: PgClient, action: str) -> None:
        started = time.monotonic()
        ident = sql.Identifier(self.target)
        if action == 'replace':
            client.query(sql.SQL('DROP DATABASE {}').format(ident))
        create = sql.SQL('CREATE DATABASE {} TEMPLATE template0').format(ident)
        if self.params.get('owner'):
            create = create + sql.SQL(' OWNER {}').format(sql.Identifier(self.params['owner']))
        client.query(create)
        try:
            self._mark(client, 'restoring')
            proc = self._load()
        except Exception as exc:
            self._drop_after_failure(client, str(exc))
            raise
        if proc.returncode != 0:
            program = 'pg_restore' if self.info['format'] == 'custom' else 'psql'
            self._drop_after_failure(client, f'the restore failed: {failure_reason(program, proc, self.secrets)}')
        self._mark(client, 'restored')
        self.timings['restore'] = round(time.monotonic() - started, 3)

    def _load(self) -> Proc:
        info, password = conninfo(self.params, self.target)
        env = {'PGPASSWORD': str(password)} if password else {}
        p = self.params
        if self.info['format'] == 'custom':
            argv = [self.program, '--exit-on-error']
            if p.get('no_owner', True):
                argv.append('--no-owner')
            if p.get('no_privileges'):
                argv.append('--no-privileges')
            if (p.get('jobs') or 1) > 1:
                argv.append(f"--jobs={p['jobs']}")
            argv += ['--dbname', info, self.file]
        else:
            if (p.get('jobs') or 1) > 1:
                self.warnings.append('jobs applies to custom-format archives only; the plain SQL backup was loaded by one psql')
            argv = [self.program, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--dbname', info, '--file', self.file]
        return self._tool(argv, 'restore the backup', env)

    def _drop_after_failure(self, client: PgClient, reason: str) -> None:
        try:
            client.query(sql.SQL('DROP DATABASE IF EXISTS {}').format(sql.Identifier(self.target)))
        except PgQueryError as exc:
            raise PgQueryError(f'{reason}; the half-restored database {self.target} could NOT be dropped ({exc}): drop it by '
                               'hand before retrying') from None
        raise PgQueryError(f'{reason}. The half-restored database {self.target} this run created was dropped.')

    # -- verification on the restored copy ----------------------------------------------
    def verify(self, analyze: bool) -> dict[str, t.Any]:
        started = time.monotonic()
        target = PgClient(dict(self.params, login_db=self.target))
        try:
            result = self._verify(target, analyze)
        finally:
            self.queries.extend(target.queries)
            target.close()
        self.timings['verify'] = round(time.monotonic() - started, 3)
        return result

    def _verify(self, client: PgClient, analyze: bool) -> dict[str, t.Any]:
        rows = client.query(TABLES_SQL)
        if not self.check_mode and (analyze or any(r['reltuples'] < 0 for r in rows)):
            # A restored database has no planner statistics; pg_restore's documentation asks for ANALYZE.
            client.query('ANALYZE')
            rows = client.query(TABLES_SQL)
        limit = self.params.get('exact_count_limit')
        limit = 100000 if limit is None else limit
        counts: dict[str, dict[str, t.Any]] = {}
        for r in rows:
            name = f"{r['schema']}.{r['name']}"
            estimate = int(r['reltuples'])
            if estimate < 0:   # never analysed, and check mode does not ANALYZE: no cheap number to give
                counts[name] = {'rows': None, 'exact': False}
            elif estimate < limit:
                stmt = sql.SQL('SELECT count(*) AS n FROM {}').format(sql.Identifier(r['schema'], r['name']))
                counts[name] = {'rows': client.query(stmt)[0]['n'], 'exact': True}
            else:
                counts[name] = {'rows': estimate, 'exact': False}
        restored = sorted(counts)
        expected = self.toc['tables']
        tables = {'count': len(restored), 'expected': len(expected), 'names': restored,
                  'missing': sorted(set(expected) - set(restored)), 'unexpected': sorted(set(restored) - set(expected))}
        chain = self._audit_chain(client)
        verified = not tables['missing'] and chain.get('is_valid') is not False
        return {'tables': tables, 'row_counts': counts, 'audit_chain': chain, 'verified': verified}

    def _audit_chain(self, client: PgClient) -> dict[str, t.Any]:
        table = self.params.get('audit_table') or 'audit_log_entries'
        skipped = {'checked': False, 'table': table, 'is_valid': None, 'total_entries': 0, 'tenants': 0,
                   'violations': [], 'violation_count': 0, 'violation_counts': {}}
        if not self.params.get('verify_audit_chain', True):
            return dict(skipped, reason='verify_audit_chain is false')
        split_table(table)
        if not client.query(REGCLASS_SQL, (table,))[0]['present']:
            return dict(skipped, reason=f'table {table} does not exist in {self.target}')
        verifier = ChainVerifier(PROFILES['trdrhub'], max_violations=self.params.get('max_violations') or 100, scope='table')
        TableReader('table', table, None, None, None, None, 'table').run(client, verifier)
        found = verifier.result()
        if not found['is_valid']:
            self.warnings.append(f"the audit chain of the restored {table} is NOT valid: {found['violation_count']} "
                                 f"violation(s) ({', '.join(found['violation_counts'])})")
        keep = ('is_valid', 'total_entries', 'tenants', 'violations', 'violation_count', 'violation_counts', 'verified_at')
        return dict({key: found[key] for key in keep}, checked=True, table=table)
