# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore_db
short_description: Restore a TRDR Hub backup into a new recovery database and verify the copy
version_added: 1.0.0
description:
  - Runbook 4.1 "Database Recovery". Restores a TRDR Hub backup (C(trdrhub_backup_YYYYMMDD_HHMMSS), written by the
    application's C(scripts/dr/backup_db.py)) into a B(new) database next to production, then verifies the copy. It
    never restores over the production database by default, unlike the application's C(restore_db.py) without a target.
  - "The file is validated before anything is created on the server: it must exist and be readable; its format is read
    from its content, not its name - the backups are named C(.sql.gz) but are C(pg_dump --format=custom) archives (magic
    bytes C(PGDMP)); plain SQL is accepted too, and a file that is really gzip-compressed is detected by its magic bytes
    and decompressed to a private temporary file. The SHA-256 checksum is computed in 1 MiB chunks and compared with
    O(sha256) or the sidecar file; C(pg_restore --list) must read the table of contents, and (O(verify_archive)) the whole
    archive is read once so a truncated or damaged data section is refused too. A plain pg_dump script must end with
    pg_dump's closing line. Any failure is one message and nothing is created."
  - "Then C(CREATE DATABASE ... TEMPLATE template0), a provenance comment (C(COMMENT ON DATABASE), see RV(provenance)),
    and the restore - C(pg_restore --exit-on-error --no-owner) for an archive, C(psql -v ON_ERROR_STOP=1) for plain SQL.
    When the restore fails the module drops the database it has just created and says so."
  - "Verification on the restored copy: the tables it holds against the tables of the archive's table of contents (or the
    C(CREATE TABLE) statements of a plain script), row counts per table, and - when O(audit_table) exists - the audit-chain
    verification of M(trdrhub.incident.audit_chain_verify) (same rules, profile V(trdrhub), O(audit_table) ordered by
    sequence number). A broken chain is reported in RV(audit_chain) and RV(verified), and as a warning; it does not make
    the module fail, because the restored copy is the evidence."
  - "Idempotent: a target that exists and carries this module's provenance for the same checksum is left as it is
    (RV(changed=false)) and verified again. A target holding anything else is refused; O(replace_existing) drops it only
    when its provenance comment shows this module created it. The module never switches the application to the
    recovered database."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  backup:
    description:
      - Path of the backup file on the host that runs the module.
      - Give either O(backup), or O(backup_id) with O(backup_dir).
    type: path
  backup_id:
    description:
      - Backup id, V(trdrhub_backup_YYYYMMDD_HHMMSS) (UTC), looked up in O(backup_dir) as C(<id>.sql.gz), C(<id>.dump.gz),
        C(<id>.sql), C(<id>.dump) or C(<id>.gz); exactly one of them must exist.
    type: str
  backup_dir:
    description:
      - Directory holding the backups, with O(backup_id).
    type: path
  sha256:
    description:
      - The SHA-256 recorded for the backup (64 hexadecimal digits, an optional C(sha256:) prefix is accepted).
      - When omitted, the sidecar file C(<backup file>.sha256) is read - the C(sha256sum) format, C(<digest>  <file name>),
        whose file name must be the backup's (or absent).
      - Without either the module refuses to restore, unless O(verify_checksum=false).
    type: str
  verify_checksum:
    description:
      - V(false) explicitly allows a restore when no checksum is known (neither O(sha256) nor a sidecar). The checksum is
        still computed and recorded in the provenance.
      - A known checksum is always verified; a mismatch always refuses.
    type: bool
  verify_archive:
    description:
      - Read the whole custom-format archive once (C(pg_restore --file /dev/null)) before creating the database, so a
        truncated or damaged archive is refused while nothing exists yet.
      - Costs one extra read and decompression of the file. V(false) relies on C(pg_restore --list), which reads the table
        of contents only; a damaged data section then fails during the restore (and the new database is dropped).
    type: bool
    default: true
  target_db:
    description:
      - The recovery database to create.
      - When omitted, C(<source>_recovery_<YYYYMMDD_HHMMSS>) - the source database (O(source_db), else the database name
        recorded in the archive) and the backup's timestamp, for example V(lcopilot_recovery_20250115_143000).
      - At most 63 bytes.
    type: str
  source_db:
    description:
      - The production database the backup was taken from. Restoring into it is refused (see
        O(force_overwrite_source)); it also names the default O(target_db).
      - When omitted, the database name recorded in the archive; the same refusal applies to that name.
    type: str
  force_overwrite_source:
    description:
      - Allow O(target_db) to be the source (production) database. Needs O(confirm_overwrite) too; the existing database is
        then dropped and recreated from the backup, so every connection to it must be closed first.
      - Never needed for a recovery; it exists for a rebuild of a lost database.
    type: bool
    default: false
  confirm_overwrite:
    description:
      - With O(force_overwrite_source), the name of the database to overwrite, typed again.
    type: str
  state:
    description:
      - V(present) - the recovery database exists and holds this backup.
    type: str
    choices: [present]
    default: present
  replace_existing:
    description:
      - When O(target_db) exists with another backup, or with a restore that did not finish, drop it and restore again.
      - Only a database whose provenance comment shows this module created it is ever dropped; any other existing database
        is refused whatever this option says.
    type: bool
    default: false
  jobs:
    description:
      - Parallel jobs of C(pg_restore --jobs) for a custom-format archive. Ignored (with a warning) for plain SQL.
    type: int
    default: 1
  pg_restore_path:
    description:
      - The C(pg_restore) program. When omitted, C(pg_restore) in E(PATH), else the newest
        C(/usr/lib/postgresql/<version>/bin/pg_restore).
      - It must be of the major version of the pg_dump that wrote the archive, or newer.
    type: path
  psql_path:
    description:
      - The C(psql) program for plain SQL backups; found like O(pg_restore_path).
    type: path
  owner:
    description:
      - Owner of the new database (C(CREATE DATABASE ... OWNER)). When omitted, the login role.
    type: str
  no_owner:
    description:
      - Restore without the archive's ownership (C(pg_restore --no-owner)); the objects then belong to the login role.
      - Plain SQL scripts are run as they are; their C(ALTER ... OWNER) statements need the roles to exist.
    type: bool
    default: true
  no_privileges:
    description:
      - Skip the archive's C(GRANT)/C(REVOKE) statements (C(pg_restore --no-privileges)), for a server without the
        application's roles.
    type: bool
    default: false
  work_dir:
    description:
      - Directory for the decompressed copy of a gzip-compressed backup (removed afterwards). When omitted, the system's
        temporary directory; it needs the uncompressed size free.
    type: path
  exact_count_limit:
    description:
      - Tables whose planner estimate (C(pg_class.reltuples), after the C(ANALYZE) the module runs on a freshly restored
        database) is below this many rows are counted exactly with C(count(*)); larger tables report the estimate
        (C(exact=false) in RV(row_counts)). V(0) reports estimates only.
    type: int
    default: 100000
  verify_audit_chain:
    description:
      - Verify the hash chain of O(audit_table) in the restored copy when that table exists.
    type: bool
    default: true
  audit_table:
    description:
      - The audit table of the restored database, V(table) or V(schema.table).
    type: str
    default: audit_log_entries
  max_violations:
    description:
      - At most this many chain violations are listed in RV(audit_chain.violations) (all are counted).
    type: int
    default: 100
extends_documentation_fragment:
  - trdrhub.incident.postgres
attributes:
  check_mode:
    details:
      - Validates the file, verifies the checksum, reads the table of contents and reports what would be created
        (RV(action)); creates, drops and restores nothing. An existing restored target is verified read-only.
  diff_mode:
    support: full
    details:
      - The databases of the server before and after (the target appears); predicted in check mode.
notes:
  - The connection options name the server and the login role; O(login_db) is the database the module connects to for
    C(CREATE DATABASE) (for example V(postgres)), never the target. The restore and the verification connect to the target.
  - "The login role needs C(CREATEDB) (or superuser); with O(no_owner=false) it must be able to create objects owned by the
    archive's roles. The password is given to C(pg_restore)/C(psql) through E(PGPASSWORD), never on their command line;
    RV(commands) holds the command lines without it."
  - Connect to the PostgreSQL server itself; a restore through PgBouncer (port C(6543)) may break on session state.
  - O(statement_timeout) applies to the verification queries (C(ANALYZE), counts, the chain read); raise it or set V(0)
    for a large database. The restore itself runs without a statement timeout.
  - Row counts above O(exact_count_limit) are planner estimates, usually within a few percent after C(ANALYZE).
  - Switching the application to the recovered database is a separate, manual step (see C(docs/database_recovery.md)).
seealso:
  - module: trdrhub.incident.audit_chain_verify
  - module: trdrhub.incident.pg_maintenance
  - name: pg_restore
    description: The PostgreSQL documentation of pg_restore.
    link: https://www.postgresql.org/docs/current/app-pgrestore.html
"""

EXAMPLES = r"""
- name: Restore last night's backup into a recovery database next to production
  trdrhub.incident.pg_restore_db:
    login_host: db-primary.trdrhub.internal
    login_user: trdrhub_restore
    login_password: "{{ vault_pg_restore_password }}"
    login_db: postgres
    statement_timeout: 600
    backup_id: trdrhub_backup_20250115_020000
    backup_dir: /var/backups/trdrhub
    source_db: lcopilot
    jobs: 4
  register: recovery

- name: Show what was restored
  ansible.builtin.debug:
    msg: >-
      {{ recovery.target_db }}: {{ recovery.tables.count }} tables, audit chain
      {{ 'valid' if recovery.audit_chain.is_valid else 'NOT valid' }}

- name: Check a backup file and its checksum only (creates nothing)
  trdrhub.incident.pg_restore_db:
    login_unix_socket: /var/run/postgresql
    login_db: postgres
    backup: /var/backups/trdrhub/trdrhub_backup_20250115_020000.sql.gz
    sha256: 9f2c5a0e1b7d4c3a2f1e0d9c8b7a69584736251403f2e1d0c9b8a7f6e5d4c3b2
  check_mode: true

- name: Restore a plain SQL backup into a named database, replacing an earlier restore of another backup
  trdrhub.incident.pg_restore_db:
    dsn: "{{ vault_pg_restore_dsn }}"
    backup: /srv/restore/trdrhub_backup_20250114_020000.sql
    target_db: lcopilot_drill
    replace_existing: true
"""

RETURN = r"""
changed:
  description: Whether the target was (or in check mode would be) created or replaced.
  returned: always
  type: bool
  sample: true
action:
  description: V(create), V(replace) or V(unchanged) (the target already holds this backup).
  returned: always
  type: str
  sample: create
target_db:
  description: The recovery database.
  returned: always
  type: str
  sample: lcopilot_recovery_20250115_020000
created:
  description: Whether this run created the target database (false in check mode).
  returned: always
  type: bool
  sample: true
source_db:
  description: The source database (O(source_db), else the name recorded in the archive; null when unknown).
  returned: always
  type: str
  sample: lcopilot
checksum:
  description: The checksum check.
  returned: always
  type: dict
  sample: {expected: 9f2c5a0e..., actual: 9f2c5a0e..., ok: true, source: sidecar}
  contains:
    expected:
      description: The recorded checksum; null when none is known (O(verify_checksum=false)).
      type: str
    actual:
      description: SHA-256 of the file.
      type: str
    ok:
      description: Whether they match; null when nothing was expected.
      type: bool
    source:
      description: V(option) (O(sha256)), V(sidecar) (C(<file>.sha256)) or V(none).
      type: str
backup:
  description: The backup file as detected.
  returned: always
  type: dict
  sample: {path: /var/backups/trdrhub/trdrhub_backup_20250115_020000.sql.gz, backup_id: trdrhub_backup_20250115_020000,
           format: custom, compressed: false, size_bytes: 734003200, timestamp: "2025-01-15T02:00:00+00:00"}
  contains:
    path:
      description: Absolute path of the file.
      type: str
    backup_id:
      description: The file name without its suffix.
      type: str
    format:
      description: V(custom) (pg_dump archive) or V(plain) (SQL script), from the content.
      type: str
    compressed:
      description: Whether the file is really gzip-compressed.
      type: bool
    size_bytes:
      description: Size of the file.
      type: int
    timestamp:
      description: The backup time from its id (ISO 8601, UTC); null when the id does not follow the scheme.
      type: str
toc_entries:
  description: Entries in the archive's table of contents (for plain SQL, the C(CREATE TABLE) statements).
  returned: always
  type: int
  sample: 26
toc_tables:
  description: Tables the archive creates, V(schema.table).
  returned: always
  type: list
  elements: str
  sample: [public.audit_log_entries, public.tenants]
tables:
  description: Tables found in the restored database, compared with RV(toc_tables); null in check mode before a restore.
  returned: always
  type: dict
  sample: {count: 4, expected: 4, names: [public.alembic_version], missing: [], unexpected: []}
  contains:
    count:
      description: Tables in the restored database.
      type: int
    expected:
      description: Tables in the archive.
      type: int
    names:
      description: The restored tables.
      type: list
    missing:
      description: Tables of the archive missing from the restored database.
      type: list
    unexpected:
      description: Restored tables the archive does not list.
      type: list
row_counts:
  description:
    - V(schema.table) to its row count; null in check mode before a restore.
    - C(rows) is null for a table without planner statistics in check mode (which does not run C(ANALYZE)).
  returned: always
  type: dict
  sample: {public.audit_log_entries: {rows: 120, exact: true}}
audit_chain:
  description:
    - The audit-chain verification of the restored copy (the rules of M(trdrhub.incident.audit_chain_verify)); null in
      check mode before a restore.
  returned: always
  type: dict
  sample: {checked: true, table: audit_log_entries, is_valid: true, total_entries: 120, tenants: 3, violations: [],
           violation_count: 0, violation_counts: {}}
  contains:
    checked:
      description: Whether the chain was verified (false when the table does not exist or O(verify_audit_chain=false)).
      type: bool
    is_valid:
      description: No violation found; null when not checked.
      type: bool
    total_entries:
      description: Entries checked.
      type: int
    violations:
      description: The first O(max_violations) violations, as M(trdrhub.incident.audit_chain_verify) returns them.
      type: list
    violation_count:
      description: All violations found.
      type: int
verified:
  description: No table of the archive is missing and the audit chain is valid (or absent); null in check mode before a
    restore.
  returned: always
  type: bool
  sample: true
provenance:
  description: The provenance recorded in the target's C(COMMENT ON DATABASE) (null when the target does not exist yet).
  returned: always
  type: dict
  sample: {status: restored, backup_id: trdrhub_backup_20250115_020000, sha256: 9f2c5a0e..., source_db: lcopilot}
duration:
  description: Seconds spent validating the file, restoring, verifying, and in total.
  returned: always
  type: dict
  sample: {validate: 4.2, restore: 310.5, verify: 12.8, total: 327.9}
commands:
  description: Command lines run (validation and restore), without the password.
  returned: always
  type: list
  elements: list
  sample: [[/usr/bin/pg_restore, --list, /var/backups/trdrhub/trdrhub_backup_20250115_020000.sql.gz]]
queries:
  description: SQL statements the module ran, in order, without parameter values.
  returned: always
  type: list
  elements: str
  sample: ["CREATE DATABASE \"lcopilot_recovery_20250115_020000\" TEMPLATE template0"]
diff:
  description: The databases of the server before and after.
  returned: when diff mode is on
  type: dict
  sample: {before: {databases: [lcopilot, postgres]}, after: {databases: [lcopilot, lcopilot_recovery_20250115_020000, postgres]}}
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_MUTUALLY_EXCLUSIVE, PSYCOPG2, PgClient, postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.restore_run import Restorer


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(
        backup={'type': 'path'},
        backup_id={'type': 'str'},
        backup_dir={'type': 'path'},
        sha256={'type': 'str'},
        verify_checksum={'type': 'bool'},
        verify_archive={'type': 'bool', 'default': True},
        target_db={'type': 'str'},
        source_db={'type': 'str'},
        force_overwrite_source={'type': 'bool', 'default': False},
        confirm_overwrite={'type': 'str'},
        state={'type': 'str', 'choices': ['present'], 'default': 'present'},
        replace_existing={'type': 'bool', 'default': False},
        jobs=bounded({'type': 'int', 'default': 1}, minimum=1),
        pg_restore_path={'type': 'path'},
        psql_path={'type': 'path'},
        owner={'type': 'str'},
        no_owner={'type': 'bool', 'default': True},
        no_privileges={'type': 'bool', 'default': False},
        work_dir={'type': 'path'},
        exact_count_limit=bounded({'type': 'int', 'default': 100000}, minimum=0),
        verify_audit_chain={'type': 'bool', 'default': True},
        audit_table={'type': 'str', 'default': 'audit_log_entries'},
        max_violations=bounded({'type': 'int', 'default': 100}, minimum=0),
    )


def restorer(module: IncidentModule) -> Restorer:
    def run_command(argv: list[str], environ: dict[str, str]) -> tuple[int, t.Any, t.Any]:
        # The password travels in the environment only; the command line holds none.
        return module.run_command(argv, environ_update=environ, encoding=None)

    return Restorer(module.params, run_command, check_mode=module.check_mode)


def drop_diff(module: IncidentModule, result: dict[str, t.Any], client: t.Any) -> None:   # pylint: disable=unused-argument
    """``diff`` only when asked for (the result keeps it otherwise); never a failure."""
    if not module._diff:
        result.pop('diff', None)


def main() -> None:
    run_module(argument_spec(), restorer, lambda module, worker: PgClient(module.params), requires=[PSYCOPG2], finish=drop_diff,
               mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE + [['backup', 'backup_id'], ['backup', 'backup_dir']],
               required_together=[['backup_id', 'backup_dir']], required_one_of=[['backup', 'backup_id']])


if __name__ == '__main__':
    main()
