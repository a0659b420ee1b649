"""What the rotate_secrets integration tests share: the rotation log table and a throwaway login role.

``secret_rotation_logs`` is the application's table (FACTS: secret rotation); the harness
schema does not have it, so the tests create it. Each test rotates the password of its own
role (never trdrhub_app, which other tests log in as), in its own environment name.
"""
from __future__ import annotations

import hashlib
import uuid

import psycopg2
from psycopg2 import sql

DB = "trdrhub"
CRASH_ENV = "TRDRHUB_ROTATE_TEST_CRASH_AFTER"
LOG_TABLE = "secret_rotation_logs"
LOG_DDL = """
CREATE TABLE IF NOT EXISTS secret_rotation_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_type varchar(64) NOT NULL,
    environment varchar(64) NOT NULL,
    rotation_method varchar(32) NOT NULL,
    rotated_by varchar(128),
    old_secret_fingerprint varchar(64),
    new_secret_fingerprint varchar(64),
    services_restarted jsonb,
    downtime_seconds double precision,
    status varchar(16) NOT NULL,
    error_message text,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
)
"""
LOG_COLUMNS = ("status", "secret_type", "rotation_method", "rotated_by", "old_secret_fingerprint",
               "new_secret_fingerprint", "services_restarted", "downtime_seconds", "error_message", "completed_at")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_log_table(pg) -> str:
    conn = pg.connect(dbname=DB)
    try:
        conn.cursor().execute(LOG_DDL)
    finally:
        conn.close()
    return LOG_TABLE


class RotationRole:
    """A login role with a known password (``old``) in the trdrhub database, and its rotation log rows."""

    def __init__(self, pg, role_prefix: str, environment_prefix: str) -> None:
        self.pg = pg
        self.role = role_prefix + uuid.uuid4().hex[:8]
        self.environment = environment_prefix + uuid.uuid4().hex[:8]
        self.old = "Old-" + uuid.uuid4().hex
        admin = pg.connect(dbname="postgres")
        try:
            cur = admin.cursor()
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(self.old)))
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(DB), sql.Identifier(self.role)))
        finally:
            admin.close()

    def can_login(self, password: str) -> bool:
        try:
            conn = psycopg2.connect(host=self.pg.host, port=self.pg.port, dbname=DB, user=self.role, password=password,
                                    connect_timeout=5)
        except psycopg2.OperationalError:
            return False
        conn.close()
        return True

    def log_rows(self) -> list[dict]:
        conn = self.pg.connect(dbname=DB)
        try:
            cur = conn.cursor()
            cur.execute(sql.SQL("SELECT {} FROM secret_rotation_logs WHERE environment = %s ORDER BY started_at").format(
                sql.SQL(", ").join(map(sql.Identifier, LOG_COLUMNS))), (self.environment,))
            return [dict(zip(LOG_COLUMNS, row)) for row in cur.fetchall()]
        finally:
            conn.close()

    def drop(self) -> None:
        admin = self.pg.connect(dbname="postgres")
        try:
            cur = admin.cursor()
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(DB), sql.Identifier(self.role)))
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.role)))
        finally:
            admin.close()
