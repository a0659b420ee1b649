# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: canonical encodings of hash-chained records.

Two named profiles share one shape -- a record is hashed over a canonical byte
encoding, and each record names the hash of the one before it in its chain:

``trdrhub``
    TRDR Hub's ``audit_log_entries`` (the application's ``compute_entry_hash``):
    SHA-256 (lowercase hex) of ``json.dumps(d, sort_keys=True, default=str)`` with
    Python's default separators and ASCII escaping, where ``d`` has exactly ten keys:
    sequence_number, tenant_id, actor_id, resource_type, resource_id, action,
    before_hash, after_hash, prev_entry_hash and created_at (ISO 8601 in UTC).
    Every other column -- actor_role, actor_ip, actor_user_agent, resource_name,
    action_description, severity, event_metadata, correlation_id, id -- is NOT hashed:
    changing it cannot be detected by the chain.

``ledger``
    The collection's incident ledger: SHA-256 (lowercase hex) of the entry as
    compact JSON (``separators=(",", ":")``), keys sorted, UTF-8 without ASCII
    escaping, NaN/Infinity refused -- over every field of the entry except ``hash``
    itself (``prev_hash`` included), so every recorded field is protected.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import typing as t

UTC = datetime.timezone.utc

TRDRHUB_HASHED_FIELDS = (
    'sequence_number', 'tenant_id', 'actor_id', 'resource_type', 'resource_id', 'action',
    'before_hash', 'after_hash', 'prev_entry_hash', 'created_at',
)
TRDRHUB_UNPROTECTED_COLUMNS = (
    'id', 'actor_role', 'actor_ip', 'actor_user_agent', 'resource_name', 'action_description',
    'severity', 'event_metadata', 'correlation_id',
)


def utc_isoformat(value: t.Any) -> t.Any:
    """created_at as the application hashes it: isoformat() of the aware value, read in UTC.

    The session time zone changes the offset psycopg2 hands back, never the instant, so
    the value is converted to UTC first. Strings are parsed and normalised the same way.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return str(value)


def trdrhub_canonical(row: t.Mapping[str, t.Any]) -> bytes:
    """The exact bytes the application hashes for one audit_log_entries row."""
    actor = row.get('actor_id')
    d = {
        'sequence_number': row.get('sequence_number'),
        'tenant_id': row.get('tenant_id'),
        'actor_id': str(actor) if actor is not None else None,
        'resource_type': row.get('resource_type'),
        'resource_id': row.get('resource_id'),
        'action': row.get('action'),
        'before_hash': row.get('before_hash'),
        'after_hash': row.get('after_hash'),
        'prev_entry_hash': row.get('prev_entry_hash'),
        'created_at': utc_isoformat(row.get('created_at')),
    }
    return json.dumps(d, sort_keys=True, default=str).encode()


def ledger_canonical(entry: t.Mapping[str, t.Any]) -> bytes:
    """The bytes hashed for one ledger entry: every field but ``hash``, compact and sorted."""
    body = {k: v for k, v in entry.items() if k != 'hash'}
    return json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False).encode('utf-8')


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Profile(t.NamedTuple):
    """Where a profile finds chain key, order, link and hash in a record, and how it hashes."""

    name: str
    chain_key: str
    sequence: str
    prev_hash: str
    entry_hash: str
    record_id: str
    canonical: t.Callable[[t.Mapping[str, t.Any]], bytes]

    def compute(self, record: t.Mapping[str, t.Any]) -> str:
        return sha256_hex(self.canonical(record))


PROFILES: dict[str, Profile] = {
    'trdrhub': Profile('trdrhub', 'tenant_id', 'sequence_number', 'prev_entry_hash', 'entry_hash', 'id',
                       trdrhub_canonical),
    'ledger': Profile('ledger', 'incident_id', 'seq', 'prev_hash', 'hash', 'seq', ledger_canonical),
}
