# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Golden vectors for the two canonical encodings, written from FACTS.md and not from _chain.py.

The expected bytes are spelled out by hand (or built by the few lines of FACTS.md's recipe
below), so the profile code is checked against the application's definition rather than
against itself.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import uuid

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._audit import chain as _chain

UTC = datetime.timezone.utc
ACTOR = '3f0c8a52-6a56-4b1e-9a4e-0c1d2e3f4a5b'
ROW = {
    'sequence_number': 42, 'tenant_id': 'tenant-acme', 'actor_id': ACTOR, 'resource_type': 'lc_document',
    'resource_id': 'LC-000042', 'action': 'approve', 'before_hash': 'b' * 64, 'after_hash': 'a' * 64,
    'prev_entry_hash': 'p' * 64, 'created_at': datetime.datetime(2025, 1, 15, 14, 30, 0, 123456, tzinfo=UTC),
    # Not hashed by the application: must not change anything.
    'id': 'f6b3b4f8-51d4-4d4e-8d3c-1c1f0c9a9e11', 'actor_role': 'admin', 'actor_ip': '10.0.0.7', 'severity': 'high',
    'event_metadata': {'k': 'v'}, 'correlation_id': None, 'resource_name': 'LC 42', 'action_description': 'x',
    'actor_user_agent': 'curl/8',
}
# FACTS.md: json.dumps with Python's default separators (", " and ": "), keys sorted, ASCII escaping.
ROW_CANONICAL = (
    '{"action": "approve", "actor_id": "' + ACTOR + '", "after_hash": "' + 'a' * 64 + '", '
    '"before_hash": "' + 'b' * 64 + '", "created_at": "2025-01-15T14:30:00.123456+00:00", '
    '"prev_entry_hash": "' + 'p' * 64 + '", "resource_id": "LC-000042", "resource_type": "lc_document", '
    '"sequence_number": 42, "tenant_id": "tenant-acme"}'
).encode('ascii')


def facts_hash(row: dict) -> str:
    """FACTS.md's recipe, written out: ten keys, str(UUID), created_at isoformat() in UTC."""
    created = row['created_at']
    d = {
        'sequence_number': row['sequence_number'], 'tenant_id': row['tenant_id'],
        'actor_id': None if row['actor_id'] is None else str(row['actor_id']),
        'resource_type': row['resource_type'], 'resource_id': row['resource_id'], 'action': row['action'],
        'before_hash': row['before_hash'], 'after_hash': row['after_hash'],
        'prev_entry_hash': row['prev_entry_hash'], 'created_at': created.astimezone(UTC).isoformat(),
    }
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def test_trdrhub_canonical_bytes_are_the_applications():
    assert _chain.trdrhub_canonical(ROW) == ROW_CANONICAL
    assert _chain.PROFILES['trdrhub'].compute(ROW) == hashlib.sha256(ROW_CANONICAL).hexdigest()


def test_trdrhub_first_entry_null_actor_no_microseconds_by_hand():
    row = dict(ROW, actor_id=None, prev_entry_hash=None, before_hash=None,
               created_at=datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC))
    expected = ('{"action": "approve", "actor_id": null, "after_hash": "' + 'a' * 64 + '", "before_hash": null, '
                '"created_at": "2025-01-15T14:30:00+00:00", "prev_entry_hash": null, "resource_id": "LC-000042", '
                '"resource_type": "lc_document", "sequence_number": 42, "tenant_id": "tenant-acme"}').encode()
    assert _chain.trdrhub_canonical(row) == expected


def test_trdrhub_non_ascii_is_escaped_by_hand():
    row = dict(ROW, resource_id='LC-Zürich-✓', tenant_id='mandant-ß')
    canonical = _chain.trdrhub_canonical(row)
    assert b'"resource_id": "LC-Z\\u00fcrich-\\u2713"' in canonical
    assert b'"tenant_id": "mandant-\\u00df"' in canonical
    assert canonical.isascii()


TZ_PLUS2 = datetime.timezone(datetime.timedelta(hours=2))
TZ_MINUS530 = datetime.timezone(-datetime.timedelta(hours=5, minutes=30))
VECTORS = {
    'microseconds': {},
    'no-microseconds': {'created_at': datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)},
    'offset-plus-2': {'created_at': datetime.datetime(2025, 1, 15, 16, 30, 0, 123456, tzinfo=TZ_PLUS2)},
    'offset-minus-5h30-across-midnight': {'created_at': datetime.datetime(2025, 1, 15, 0, 5, 0, 1, tzinfo=TZ_MINUS530)},
    'null-actor': {'actor_id': None},
    'uuid-object': {'actor_id': uuid.UUID(ACTOR)},
    'non-ascii': {'resource_id': 'LC-Zürich-✓', 'action': 'export', 'resource_type': 'документ'},
    'first-entry': {'prev_entry_hash': None, 'before_hash': None},
    'big-sequence': {'sequence_number': 2_147_483_647},
}


@pytest.mark.parametrize('overrides', VECTORS.values(), ids=VECTORS.keys())
def test_trdrhub_vectors_match_the_facts_recipe(overrides):
    row = dict(ROW, **overrides)
    assert _chain.PROFILES['trdrhub'].compute(row) == facts_hash(row)


def test_offsets_and_uuid_objects_do_not_change_the_hash():
    same_instant = dict(ROW, created_at=datetime.datetime(2025, 1, 15, 16, 30, 0, 123456, tzinfo=TZ_PLUS2))
    as_uuid = dict(ROW, actor_id=uuid.UUID(ACTOR))
    as_string = dict(ROW, created_at='2025-01-15T14:30:00.123456Z')
    digest = hashlib.sha256(ROW_CANONICAL).hexdigest()
    assert {_chain.PROFILES['trdrhub'].compute(r) for r in (same_instant, as_uuid, as_string)} == {digest}


@pytest.mark.parametrize('column', _chain.TRDRHUB_UNPROTECTED_COLUMNS)
def test_unprotected_columns_do_not_reach_the_hash(column):
    assert _chain.trdrhub_canonical(dict(ROW, **{column: 'tampered'})) == ROW_CANONICAL


@pytest.mark.parametrize('field', _chain.TRDRHUB_HASHED_FIELDS)
def test_every_hashed_field_changes_the_hash(field):
    changed = {'sequence_number': 43, 'created_at': ROW['created_at'] + datetime.timedelta(microseconds=1)}
    row = dict(ROW, **{field: changed.get(field, 'tampered')})
    assert _chain.trdrhub_canonical(row) != ROW_CANONICAL


class _Text(str):
    pass


class _Level(int):
    pass


AWKWARD = {
    'unicode': 'Zürich ✓ документ 東京 😀 \U0001f600',
    'quotes-backslashes': 'say "hi" \\ C:\\path\\ \'single\' \\"',
    'control-chars': 'nul\x00 bell\x07 tab\t nl\n cr\r esc\x1b del\x7f nbsp\xa0 sep\u2028\u2029',
    'lone-surrogate': 'half \ud800 pair',
    'empty': '',
    'none': None,
    'large-int': 2 ** 70,
    'negative-int': -1,
    'bool': True,
    'float': 1.5,
    'nan': float('nan'),
    'decimal': decimal.Decimal('12.50'),
    'uuid': uuid.UUID(ACTOR),
    'str-subclass': _Text('sub "class"'),
    'int-subclass': _Level(7),
    'json-object': {'b': [1, None, 'ü'], 'a': {'z': True}},
    'bytes': b'raw',
}
CREATED = {
    'utc-micro': datetime.datetime(2025, 1, 15, 14, 30, 0, 123456, tzinfo=UTC),
    'utc-whole-second': datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC),
    'plus-5h45': datetime.datetime(2025, 1, 15, 20, 15, 0, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=45))),
    'minus-12h': datetime.datetime(2025, 1, 14, 23, 59, 59, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=-12))),
    'naive': datetime.datetime(2025, 1, 15, 14, 30),
    'string-z': '2025-01-15T14:30:00.5Z',
    'none': None,
}


def json_reference(values: dict) -> bytes:
    """The application's recipe, literally: json.dumps of the ten-key dict, sorted keys, default=str."""
    d = dict(values, actor_id=None if values['actor_id'] is None else str(values['actor_id']),
             created_at=_chain.utc_isoformat(values['created_at']))
    return json.dumps(d, sort_keys=True, default=str).encode()


@pytest.mark.parametrize('created', CREATED.values(), ids=CREATED.keys())
@pytest.mark.parametrize('value', AWKWARD.values(), ids=AWKWARD.keys())
def test_fast_canonical_is_byte_identical_to_json_dumps(value, created):
    for field in _chain.TRDRHUB_HASHED_FIELDS[:-1]:
        values = dict(ROW, **{field: value, 'created_at': created})
        values = {name: values[name] for name in _chain.TRDRHUB_HASHED_FIELDS}
        expected = json_reference(values)
        assert _chain.trdrhub_canonical_values(*values.values()) == expected, field
        assert _chain.trdrhub_canonical(values) == expected, field
        assert _chain.trdrhub_canonical_json(values) == expected, field


def test_fast_canonical_every_field_awkward_at_once():
    values = {name: AWKWARD['control-chars'] + name for name in _chain.TRDRHUB_HASHED_FIELDS}
    values.update(sequence_number=2 ** 63 - 1, actor_id=None, prev_entry_hash=None, created_at=CREATED['plus-5h45'])
    assert _chain.trdrhub_canonical_values(*values.values()) == json_reference(values)


LEDGER_ENTRY = {
    'v': 1, 'seq': 3, 'incident_id': 'INC-2025-0042', 'ts': '2025-01-15T14:31:02.417733+00:00', 'event': 'task_end',
    'phase': 'contain', 'actor': 'oncall', 'host': 'bastion-1', 'play': 'Contain', 'task': 'Terminate — Zürich',
    'module': 'trdrhub.incident.pg_terminate_sessions', 'changed': True, 'failed': False,
    'args': {'pids': [1, 2], 'max_sessions': 25}, 'data': {'ratio': 0.5, 'none': None},
    'prev_hash': 'e' * 64, 'hash': 'ignored-by-the-encoding',
}
# Compact separators, keys sorted at every level, UTF-8 as is (no \\u escapes), no "hash".
LEDGER_CANONICAL = (
    '{"actor":"oncall","args":{"max_sessions":25,"pids":[1,2]},"changed":true,'
    '"data":{"none":null,"ratio":0.5},"event":"task_end","failed":false,"host":"bastion-1",'
    '"incident_id":"INC-2025-0042","module":"trdrhub.incident.pg_terminate_sessions","phase":"contain",'
    '"play":"Contain","prev_hash":"' + 'e' * 64 + '","seq":3,"task":"Terminate — Zürich",'
    '"ts":"2025-01-15T14:31:02.417733+00:00","v":1}'
).encode('utf-8')


def test_ledger_canonical_bytes_by_hand():
    assert _chain.ledger_canonical(LEDGER_ENTRY) == LEDGER_CANONICAL
    assert _chain.PROFILES['ledger'].compute(LEDGER_ENTRY) == hashlib.sha256(LEDGER_CANONICAL).hexdigest()


def test_ledger_hash_covers_every_field_but_hash():
    base = _chain.PROFILES['ledger'].compute(LEDGER_ENTRY)
    assert _chain.PROFILES['ledger'].compute(dict(LEDGER_ENTRY, hash='other')) == base
    for field in LEDGER_ENTRY:
        if field != 'hash':
            assert _chain.PROFILES['ledger'].compute(dict(LEDGER_ENTRY, **{field: 'x'})) != base, field


def test_ledger_refuses_nan():
    with pytest.raises(ValueError):
        _chain.ledger_canonical(dict(LEDGER_ENTRY, data={'x': math.nan}))


def test_profiles_name_their_fields():
    trdrhub, ledger = _chain.PROFILES['trdrhub'], _chain.PROFILES['ledger']
    assert (trdrhub.chain_key, trdrhub.sequence, trdrhub.prev_hash, trdrhub.entry_hash, trdrhub.record_id) == (
        'tenant_id', 'sequence_number', 'prev_entry_hash', 'entry_hash', 'id')
    assert (ledger.chain_key, ledger.sequence, ledger.prev_hash, ledger.entry_hash) == (
        'incident_id', 'seq', 'prev_hash', 'hash')
