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

# created_at as the application hashes it: isoformat() of the aware value, read in UTC. The session time
# zone changes the offset psycopg2 hands back, never the instant, so the value is converted to UTC first.
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_utc as utc_isoformat

UTC = datetime.timezone.utc

TRDRHUB_HASHED_FIELDS = (
    'sequence_number', 'tenant_id', 'actor_id', 'resource_type', 'resource_id', 'action',
    'before_hash', 'after_hash', 'prev_entry_hash', 'created_at',
)
TRDRHUB_UNPROTECTED_COLUMNS = (
    'id', 'actor_role', 'actor_ip', 'actor_user_agent', 'resource_name', 'action_description',
    'severity', 'event_metadata', 'correlation_id',
)


# The application's canonical form, spelled out: json.dumps(d, sort_keys=True, default=str) of the ten
# hashed fields puts the keys in this (sorted) order with the default separators, so each row is one
# string formatting of json-encoded values -- byte for byte what json.dumps writes, several times faster.
_TRDRHUB_TEMPLATE = (
    '{"action": %s, "actor_id": %s, "after_hash": %s, "before_hash": %s, "created_at": %s, '
    '"prev_entry_hash": %s, "resource_id": %s, "resource_type": %s, "sequence_number": %s, "tenant_id": %s}'
)
# json's own string encoder (the C one where available): ASCII escaping exactly as json.dumps does it.
_json_str = json.encoder.encode_basestring_ascii
# Any other value exactly as json.dumps(..., sort_keys=True, default=str) encodes it inside the object.
_json_any = json.JSONEncoder(sort_keys=True, default=str).encode


def trdrhub_canonical_values(sequence_number: t.Any, tenant_id: t.Any, actor_id: t.Any, resource_type: t.Any,
                             resource_id: t.Any, action: t.Any, before_hash: t.Any, after_hash: t.Any,
                             prev_entry_hash: t.Any, created_at: t.Any) -> bytes:
    """The exact bytes the application hashes, from the ten hashed values (the hot path of table verification).

    Plain strings, ``None`` and plain integers -- what the columns hold -- are encoded inline; any other
    value goes through json's encoder with ``default=str``, as inside ``json.dumps`` of the whole dict.
    """
    if actor_id is not None:
        actor_id = str(actor_id)
    if created_at.__class__ is datetime.datetime and created_at.tzinfo is UTC:
        created_at = created_at.isoformat()
    else:
        created_at = utc_isoformat(created_at)
    return (_TRDRHUB_TEMPLATE % (
        _json_str(action) if action.__class__ is str else _json_any(action),
        'null' if actor_id is None else _json_str(actor_id),
        _json_str(after_hash) if after_hash.__class__ is str else _json_any(after_hash),
        _json_str(before_hash) if before_hash.__class__ is str else _json_any(before_hash),
        'null' if created_at is None else _json_str(created_at),
        _json_str(prev_entry_hash) if prev_entry_hash.__class__ is str else _json_any(prev_entry_hash),
        _json_str(resource_id) if resource_id.__class__ is str else _json_any(resource_id),
        _json_str(resource_type) if resource_type.__class__ is str else _json_any(resource_type),
        int.__repr__(sequence_number) if sequence_number.__class__ is int else _json_any(sequence_number),
        _json_str(tenant_id) if tenant_id.__class__ is str else _json_any(tenant_id),
    )).encode()


def trdrhub_canonical_json(row: t.Mapping[str, t.Any]) -> bytes:
    """The reference: the application's ``json.dumps`` of the ten-key dict (what the fast path must equal)."""
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


def trdrhub_canonical(row: t.Mapping[str, t.Any]) -> bytes:
    """The exact bytes the application hashes for one audit_log_entries row."""
    get = row.get
    return trdrhub_canonical_values(get('sequence_number'), get('tenant_id'), get('actor_id'), get('resource_type'),
                                    get('resource_id'), get('action'), get('before_hash'), get('after_hash'),
                                    get('prev_entry_hash'), get('created_at'))


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
