# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The PostgreSQL side of secret rotation: the role whose password changes, and the rotation log.

``ALTER ROLE ... PASSWORD`` always receives a SCRAM-SHA-256 verifier computed on this host,
never the password. Whether the server accepts a password is decided from ``pg_authid``
when the login role may read it (superuser), else by logging in as the role.

The rotation log is TRDR Hub's ``secret_rotation_logs`` table (or the one configured). Its
column names are looked up, not assumed: the row holds fingerprints only, never a secret.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgQueryError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    table_identifier,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PgClient,
    condense,
    connection_kwargs,
    scrub,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import (
    verifier_matches,
)

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:
    psycopg2 = sql = None

ROLE_SQL = 'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = %s'
VERIFIER_SQL = 'SELECT rolpassword FROM pg_authid WHERE rolname = %s'
ALTER_SQL = 'ALTER ROLE {role} PASSWORD %s'
TABLE_SQL = 'SELECT to_regclass(%s) IS NOT NULL AS present'
COLUMNS_SQL = ('SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a '
               'WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped')
LAST_SQL = ('SELECT max({stamp}) AS last FROM {table} WHERE {type_col} = %s AND {env_col} = %s AND {status_col} = %s')
INSERT_SQL = 'INSERT INTO {table} ({columns}) VALUES ({values})'

# Logical field -> column names the log table may use, first match wins.
LOG_COLUMNS: dict[str, tuple[str, ...]] = {
    'secret_type': ('secret_type',),
    'environment': ('environment', 'env'),
    'rotation_method': ('rotation_method', 'method', 'backend'),
    'rotated_by': ('rotated_by', 'actor'),
    'old_fingerprint': ('old_secret_fingerprint', 'old_fingerprint', 'old_secret_hash', 'old_hash', 'old_secret_sha256'),
    'new_fingerprint': ('new_secret_fingerprint', 'new_fingerprint', 'new_secret_hash', 'new_hash', 'new_secret_sha256'),
    'services_restarted': ('services_restarted',),
    'downtime_seconds': ('downtime_seconds',),
    'status': ('status',),
    'error_message': ('error_message', 'error', 'failure_reason'),
    'rotation_id': ('rotation_id',),
    'started_at': ('started_at', 'rotation_started_at'),
    'completed_at': ('completed_at', 'rotated_at', 'rotation_completed_at'),
}
REQUIRED_LOG_FIELDS = ('secret_type', 'environment', 'status')


class PgRole:
    """The role whose password is rotated, seen through the admin connection."""

    def __init__(self, client: PgClient, role: str, verify_params: t.Mapping[str, t.Any]) -> None:
        self.client = client
        self.role = role
        self.verify_params = verify_params

    def check(self) -> None:
        rows = self.client.query(ROLE_SQL, (self.role,))
        if not rows:
            raise PgQueryError(f'Role {self.role} does not exist on the server; nothing was changed')
        if not rows[0]['rolcanlogin']:
            raise PgQueryError(f'Role {self.role} cannot log in (NOLOGIN); its password cannot be verified')

    def verifier(self) -> str | None:
        """The stored verifier, or None when the login role may not read pg_authid (not a superuser)."""
        try:
            rows = self.client.query(VERIFIER_SQL, (self.role,))
        except PgQueryError:
            return None
        return rows[0]['rolpassword'] if rows else None

    def set_verifier(self, verifier: str) -> None:
        self.client.query(sql.SQL(ALTER_SQL).format(role=sql.Identifier(self.role)), (verifier,))

    def login(self, password: str) -> tuple[bool, str]:
        """Log in as the role with ``password`` and run SELECT 1: (worked, reason)."""
        kwargs = connection_kwargs(dict(self.verify_params))
        kwargs.update(user=self.role, password=password)
        conn = None
        try:
            conn = psycopg2.connect(self.verify_params.get('dsn') or '', **kwargs)
            with conn.cursor() as cur:
                cur.execute('SELECT 1')
                cur.fetchone()
            return True, 'SELECT 1 answered'
        except psycopg2.Error as exc:
            return False, scrub(condense(str(exc)), [password]) or type(exc).__name__
        finally:
            if conn is not None:
                with contextlib.suppress(psycopg2.Error):
                    conn.close()

    def accepts(self, password: str, verifier: str | None = None) -> tuple[bool, str]:
        """Whether the server accepts ``password``: from the verifier when readable, else by logging in."""
        match = verifier_matches(verifier, password, self.role)
        if match is not None:
            return match, 'pg_authid verifier ' + ('matches' if match else 'does not match')
        return self.login(password)


class RotationLog:
    """Rows of the rotation log table; absent table -> ``present`` False and a warning upstream."""

    def __init__(self, client: PgClient, table: str) -> None:
        self.client = client
        self.table = table
        self.ident = table_identifier(table)
        self.present = bool(client.query(TABLE_SQL, (self.ident.as_string(client.conn),))[0]['present'])
        self.columns: dict[str, str] = {}
        self.types: dict[str, str] = {}
        if self.present:
            names = {r['name']: r['type'] for r in client.query(COLUMNS_SQL, (self.ident.as_string(client.conn),))}
            for field, candidates in LOG_COLUMNS.items():
                found = next((c for c in candidates if c in names), None)
                if found:
                    self.columns[field] = found
            self.types = names
            missing = [f for f in REQUIRED_LOG_FIELDS if f not in self.columns]
            if missing:
                raise PgQueryError(f'Table {table} is not a rotation log: it has no column for {", ".join(missing)}')

    def last_completed(self, secret_type: str, environment: str) -> datetime.datetime | None:
        stamp = self.columns.get('completed_at') or self.columns.get('started_at')
        if not self.present or not stamp:
            return None
        rows = self.client.query(sql.SQL(LAST_SQL).format(
            stamp=sql.Identifier(stamp), table=self.ident, type_col=sql.Identifier(self.columns['secret_type']),
            env_col=sql.Identifier(self.columns['environment']), status_col=sql.Identifier(self.columns['status'])),
            (secret_type, environment, 'completed'))
        last = rows[0]['last'] if rows else None
        if isinstance(last, datetime.datetime) and last.tzinfo is None:
            last = last.replace(tzinfo=datetime.timezone.utc)
        return last

    def _value(self, column: str, value: t.Any) -> t.Any:
        kind = self.types.get(column, '')
        if isinstance(value, (list, dict)):
            if kind in ('json', 'jsonb'):
                return json.dumps(value)
            if kind.endswith('[]'):
                return list(value)
            return ', '.join(map(str, value))
        return value

    def insert(self, row: t.Mapping[str, t.Any]) -> None:
        pairs = [(self.columns[f], self._value(self.columns[f], v)) for f, v in row.items() if f in self.columns]
        self.client.query(sql.SQL(INSERT_SQL).format(
            table=self.ident, columns=sql.SQL(', ').join(sql.Identifier(c) for c, _v in pairs),
            values=sql.SQL(', ').join(sql.Placeholder() for _p in pairs)), [v for _c, v in pairs])
