"""Valid hash chains for the audit-chain tests and the benchmark, hashed WITHOUT the collection's code.

The hashes here follow FACTS.md's description of the application's ``compute_entry_hash``
and of the incident ledger directly, so a bug in ``module_utils/_audit/chain.py`` cannot make
the tests agree with it.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import uuid

UTC = datetime.timezone.utc
T0 = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)
TENANTS = ("tenant-a", "tenant-b", "tenant-c")
# Every column of audit_log_entries, in table order.
COLUMNS = ("id", "sequence_number", "tenant_id", "actor_id", "actor_role", "actor_ip", "actor_user_agent",
           "resource_type", "resource_id", "resource_name", "action", "action_description", "severity",
           "before_hash", "after_hash", "prev_entry_hash", "entry_hash", "event_metadata", "correlation_id",
           "created_at")
ACTIONS = ("create", "read", "update", "delete", "approve", "reject", "export", "login", "logout")


def app_entry_hash(row: dict) -> str:
    """FACTS.md: sha256 of json.dumps(d, sort_keys=True, default=str) over exactly ten keys."""
    d = {
        "sequence_number": row["sequence_number"],
        "tenant_id": row["tenant_id"],
        "actor_id": str(row["actor_id"]) if row["actor_id"] is not None else None,
        "resource_type": row["resource_type"],
        "resource_id": row["resource_id"],
        "action": row["action"],
        "before_hash": row["before_hash"],
        "after_hash": row["after_hash"],
        "prev_entry_hash": row["prev_entry_hash"],
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
    }
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def ledger_entry_hash(entry: dict) -> str:
    """The ledger: compact sorted JSON, UTF-8 without ASCII escaping, over everything but ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def audit_rows(count: int, tenants=TENANTS, first_seq: int = 1, seed: int = 0):
    """``count`` valid rows; sequence numbers are global (unique across the table) and the tenants take
    turns, so each tenant's own numbers have holes, as in the application. Yields dicts in sequence order."""
    heads: dict = {}
    ns = uuid.UUID(int=seed)
    for i in range(count):
        seq = first_seq + i
        tenant = tenants[i % len(tenants)]
        micro = 0 if i % 7 == 0 else (i * 7919) % 1_000_000   # isoformat() drops a zero microsecond
        row = {
            "id": str(uuid.uuid5(ns, f"row-{seq}")),
            "sequence_number": seq,
            "tenant_id": tenant,
            "actor_id": None if i % 5 == 0 else str(uuid.uuid5(ns, f"actor-{i % 11}")),
            "actor_role": "admin" if i % 3 else "viewer",
            "actor_ip": f"10.42.{i % 256}.{(i * 7) % 256}",
            "actor_user_agent": "Mozilla/5.0 (itest)",
            "resource_type": "lc_document",
            "resource_id": f"LC-{seq:06d}" if i % 4 else f"LC-Zürich-{seq}-✓",
            "resource_name": f"Letter of credit {seq}",
            "action": ACTIONS[i % len(ACTIONS)],
            "action_description": "itest entry",
            "severity": "medium",
            "before_hash": None if i % 6 == 0 else hashlib.sha256(f"before-{i}".encode()).hexdigest(),
            "after_hash": hashlib.sha256(f"after-{i}".encode()).hexdigest(),
            "prev_entry_hash": heads.get(tenant),
            "event_metadata": json.dumps({"i": i}),
            "correlation_id": str(uuid.uuid5(ns, f"corr-{i}")),
            "created_at": T0 + datetime.timedelta(seconds=i, microseconds=micro),
        }
        row["entry_hash"] = heads[tenant] = app_entry_hash(row)
        yield row


def _copy_value(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_rows(conn, table: str, rows, batch: int = 50_000) -> int:
    """COPY rows (dicts with COLUMNS) into ``table`` in batches; returns how many."""
    total = 0
    buf = io.StringIO()
    with conn.cursor() as cur:
        for row in rows:
            buf.write("\t".join(_copy_value(row[c]) for c in COLUMNS) + "\n")
            total += 1
            if total % batch == 0:
                buf.seek(0)
                cur.copy_from(buf, table, columns=COLUMNS)
                buf = io.StringIO()
        if buf.tell():
            buf.seek(0)
            cur.copy_from(buf, table, columns=COLUMNS)
    return total


AUDIT_DB = "itest_audit"


def ensure_audit_db(pg, dbname: str = AUDIT_DB) -> str:
    """A database of its own with the application's schema (workload), so audit tests touch nothing else."""
    from trdrhub_harness import workload

    workload.create_trdrhub_db(pg, dbname=dbname)
    return dbname


def create_audit_table(conn, name: str, *, unique_sequence: bool = True, hash_not_null: bool = True) -> None:
    """A fresh copy of the application's audit_log_entries layout (LIKE ... INCLUDING ALL).

    The application's table has sequence_number UNIQUE and entry_hash NOT NULL; a duplicate
    sequence or a null hash can only be staged after dropping those, which only this copy does.
    """
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(f"CREATE TABLE {name} (LIKE audit_log_entries INCLUDING ALL)")
        if not unique_sequence:
            cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'", (name,))
            for (conname,) in cur.fetchall():
                cur.execute(f'ALTER TABLE {name} DROP CONSTRAINT "{conname}"')
        if not hash_not_null:
            cur.execute(f"ALTER TABLE {name} ALTER COLUMN entry_hash DROP NOT NULL")


def ledger_entries(incident_id: str, count: int, first_seq: int = 1) -> list:
    """A valid incident ledger: one entry per task event, each linked to the one before."""
    entries, prev = [], None
    for seq in range(first_seq, first_seq + count):
        entry = {
            "v": 1, "seq": seq, "incident_id": incident_id,
            "ts": (T0 + datetime.timedelta(seconds=seq)).isoformat(),
            "event": "task_end", "phase": "contain", "actor": "oncall@trdrhub.example", "host": "bastion-1",
            "play": "Contain database incident", "task": f"step {seq} — terminate", "module": "trdrhub.incident.pg_terminate_sessions",
            "changed": seq % 2 == 0, "failed": False, "args": {"max_sessions": 25, "pids": [seq, seq + 1]},
            "data": {"note": "Zürich ✓", "ratio": 0.5}, "prev_hash": prev,
        }
        entry["hash"] = prev = ledger_entry_hash(entry)
        entries.append(entry)
    return entries


def write_ledger(path, entries) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), encoding="utf-8")


def by_kind(result: dict) -> dict:
    """{kind: [(tenant_id, sequence_number, id), ...]} of a verification result's violations."""
    out: dict = {}
    for v in result["violations"]:
        out.setdefault(v["kind"], []).append((v["tenant_id"], v["sequence_number"], v["id"]))
    return out
