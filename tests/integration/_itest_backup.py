"""Shared helpers (no tests): real TRDR Hub-style backups - a source database with a valid audit chain, pg_dump, checksums."""
from __future__ import annotations

import glob
import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from _itest_audit import COLUMNS, audit_rows, copy_rows
from psycopg2 import sql
from trdrhub_harness import workload

BACKUP_ID = "trdrhub_backup_20250115_143000"
AUDIT_ROWS = 60


def pg_bin(pg_server, name: str) -> str:
    """The harness server's own client programs (same install), else the newest installed, else PATH."""
    for bindir in [pg_server.bindir or ""] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        path = os.path.join(bindir, name)
        if bindir and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    assert found, f"{name} not found"
    return found


def make_source(pg_server, dbname: str, *, tamper: bool = False) -> None:
    """The application's schema and seed (workload), plus a valid audit chain; ``tamper`` edits a hashed field."""
    drop_database(pg_server, dbname)
    workload.create_trdrhub_db(pg_server, dbname=dbname)
    conn = pg_server.connect(dbname=dbname)
    try:
        copy_rows(conn, "audit_log_entries", audit_rows(AUDIT_ROWS))
        if tamper:
            conn.cursor().execute("UPDATE audit_log_entries SET resource_id = 'LC-FORGED' WHERE sequence_number = 17")
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_sidecar(path: Path) -> Path:
    sidecar = Path(str(path) + ".sha256")
    sidecar.write_text(f"{sha256(path)}  {path.name}\n")
    return sidecar


def dump(pg_server, dbname: str, dest: Path, fmt: str = "custom", gzip_it: bool = False) -> Path:
    """pg_dump like scripts/dr/backup_db.py (custom format under a .sql.gz name), plus a sha256sum sidecar."""
    env = dict(os.environ, PGPASSWORD=pg_server.password)
    info = f"host={pg_server.host} port={pg_server.port} user={pg_server.superuser} dbname={dbname}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    raw = dest.with_name(dest.name + ".raw") if gzip_it else dest
    subprocess.run([pg_bin(pg_server, "pg_dump"), f"--format={fmt}", "--file", str(raw), "--dbname", info],
                   env=env, check=True, capture_output=True)
    if gzip_it:
        with open(raw, "rb") as src, gzip.open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        raw.unlink()
    write_sidecar(dest)
    return dest


def drop_database(pg_server, name: str) -> None:
    conn = pg_server.connect()
    try:
        conn.cursor().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()


def databases(pg_server) -> set:
    conn = pg_server.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def query(pg_server, dbname: str, statement: str, args=None) -> list:
    conn = pg_server.connect(dbname=dbname)
    try:
        cur = conn.cursor()
        cur.execute(statement, args)
        return cur.fetchall()
    finally:
        conn.close()


__all__ = ["BACKUP_ID", "AUDIT_ROWS", "COLUMNS", "pg_bin", "make_source", "dump", "write_sidecar", "sha256",
           "drop_database", "databases", "query"]
