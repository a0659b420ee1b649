# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where audit_chain_verify reads from: table names and column maps, ledger and audit rows from a table, the prefetching reader, read errors while streaming.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._audit import chain_sources as _chain_sources
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    PROFILES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import (
    ChainVerifier,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common import incidents_home as _incidents_home
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgInputError,
)


def entries(incident='INC-2025-0042', count=5):
    """A valid ledger, hashed here from the format's definition (compact, sorted, UTF-8, all but hash)."""
    out, prev = [], None
    for seq in range(1, count + 1):
        entry = {'v': 1, 'seq': seq, 'incident_id': incident, 'ts': f'2025-01-15T14:3{seq % 10}:00+00:00',
                 'event': 'task_end', 'phase': 'contain', 'actor': 'oncall', 'host': 'bastion', 'play': 'Contain',
                 'task': 'Terminate — ü', 'module': 'trdrhub.incident.pg_terminate_sessions', 'changed': True,
                 'failed': False, 'args': {'pids': [seq]}, 'data': {}, 'prev_hash': prev}
        body = json.dumps(entry, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
        entry['hash'] = prev = hashlib.sha256(body).hexdigest()
        out.append(entry)
    return out


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + '\n'
                            for line in lines), encoding='utf-8')
    return path


def test_read_error_while_streaming_is_one_message(monkeypatch, tmp_path):
    path = write(tmp_path / 'ledger.jsonl', entries())

    def broken_open(*_args, **_kwargs):
        raise IsADirectoryError(21, 'Is a directory')

    monkeypatch.setattr(_incidents_home, 'open', broken_open, raising=False)   # the one ledger-file reader
    with pytest.raises(_chain_sources.LedgerFileError, match='cannot read ledger file .*: Is a directory'):
        _chain_sources.read_ledger_file(str(path), ChainVerifier(PROFILES['ledger']), None, None, None)


@pytest.mark.parametrize('name, expected', [
    ('audit_log_entries', (None, 'audit_log_entries')), ('forensics.audit_log', ('forensics', 'audit_log')),
    ('Mixed.Case', ('Mixed', 'Case')),
])
def test_split_table(name, expected):
    assert _chain_sources.split_table(name) == expected


@pytest.mark.parametrize('name', ['', '.t', 'schema.'])
def test_split_table_refuses(name):
    with pytest.raises(PgInputError, match='schema.table'):
        _chain_sources.split_table(name)


def test_column_map():
    mapping = _chain_sources.column_map('table', {'sequence_number': 'seq_no', 'entry_hash': 'hash'})
    assert mapping['sequence_number'] == 'seq_no' and mapping['entry_hash'] == 'hash' and mapping['id'] == 'id'
    with pytest.raises(PgInputError, match=r'unknown field\(s\) sequence for source ledger_table; known: incident_id, seq,'):
        _chain_sources.column_map('ledger_table', {'sequence': 'n'})


def test_ledger_table_rows_flag_disagreeing_columns():
    good = entries(count=3)
    rows = [(e['incident_id'], e['seq'], e, e['hash'], e['prev_hash']) for e in good]
    rows[1] = ('INC-2025-0042', 2, good[1], 'c' * 64, good[1]['prev_hash'])
    rows[2] = ('INC-OTHER', 3, good[2], good[2]['hash'], good[2]['prev_hash'])
    verifier = ChainVerifier(PROFILES['ledger'])
    _chain_sources.TableReader._verify_ledger_rows(rows, verifier)  # pylint: disable=protected-access
    result = verifier.result()
    assert [(v['kind'], v['sequence_number']) for v in result['violations']] == [
        ('column_mismatch', 2), ('column_mismatch', 3)]
    assert 'column entry_hash says' in result['violations'][0]['message']
    assert 'column incident_id says' in result['violations'][1]['message']


def test_audit_rows_with_a_null_sequence_are_malformed_not_a_crash():
    created = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=datetime.timezone.utc)
    row = ['id-1', None, 't1', None, 'lc_document', 'LC-1', 'read', None, None, None, 'h' * 64, created]
    verifier = ChainVerifier(PROFILES['trdrhub'], scope='table')
    _chain_sources.TableReader._verify_audit_rows([tuple(row)], verifier)  # pylint: disable=protected-access
    result = verifier.result()
    assert [(v['kind'], v['tenant_id'], v['id']) for v in result['violations']] == [('malformed_entry', 't1', 'id-1')]
    assert 'NULL' in result['violations'][0]['message']


def audit_rows(count, tenants=('t1', 't2')):
    """Table rows in TABLE_COLUMNS order with valid chains, hashed by the profile's mapping path."""
    rows, prev = [], {}
    created = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=datetime.timezone.utc)
    for seq in range(1, count + 1):
        tenant = tenants[seq % len(tenants)]
        record = {'sequence_number': seq, 'tenant_id': tenant, 'actor_id': None if seq % 3 else f'actor-{seq}',
                  'resource_type': 'lc_document', 'resource_id': f'LC-"{seq}"-ü', 'action': 'approve\n',
                  'before_hash': None, 'after_hash': 'a' * 64, 'prev_entry_hash': prev.get(tenant),
                  'created_at': created + datetime.timedelta(microseconds=seq)}
        record['entry_hash'] = prev[tenant] = PROFILES['trdrhub'].compute(record)
        record['id'] = f'id-{seq}'
        rows.append(tuple(record[name] for name in _chain_sources.TABLE_COLUMNS['table']))
    return rows


def test_audit_rows_fast_path_agrees_with_the_mapping_path():
    rows = audit_rows(50)
    rows[20] = rows[20][:6] + ('tampered',) + rows[20][7:]
    fast = ChainVerifier(PROFILES['trdrhub'], scope='table')
    _chain_sources.TableReader._verify_audit_rows(rows, fast)  # pylint: disable=protected-access
    slow = ChainVerifier(PROFILES['trdrhub'], scope='table')
    for row in rows:
        record = dict(zip(_chain_sources.TABLE_COLUMNS['table'], row))
        slow.add(record['tenant_id'], record['sequence_number'], record['id'], record['prev_entry_hash'],
                 record['entry_hash'], hashlib.sha256(json.dumps(
                     {k: record[k] for k in ('sequence_number', 'tenant_id', 'actor_id', 'resource_type', 'resource_id',
                                             'action', 'before_hash', 'after_hash', 'prev_entry_hash')}
                     | {'created_at': record['created_at'].isoformat()}, sort_keys=True, default=str).encode()).hexdigest())
    got, want = fast.result(), slow.result()
    assert [(v['kind'], v['sequence_number']) for v in got['violations']] == [('hash_mismatch', 21)]
    assert got['violations'] == want['violations'] and got['chains'] == want['chains']


class _Cursor:
    """fetchmany over a list; optionally raising after some batches."""

    def __init__(self, rows, fail_after=None):
        self.rows, self.fail_after, self.calls = list(rows), fail_after, 0

    def fetchmany(self, size):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError('connection lost')
        batch, self.rows = self.rows[:size], self.rows[size:]
        return batch


@pytest.mark.parametrize('depth', [1, 3])
def test_prefetched_batches_keep_every_row_in_order(depth):
    rows = list(range(10_007))
    batches = list(_chain_sources._prefetched(_Cursor(rows), 1000, depth))  # pylint: disable=protected-access
    assert [len(b) for b in batches] == [1000] * 10 + [7]
    assert [row for batch in batches for row in batch] == rows


def test_prefetched_reader_error_is_raised_in_the_caller():
    got = []
    with pytest.raises(RuntimeError, match='connection lost'):
        for batch in _chain_sources._prefetched(_Cursor(range(5000), fail_after=2), 1000, 1):  # pylint: disable=protected-access
            got.extend(batch)
    assert got == list(range(2000))


def test_prefetched_closed_early_stops_the_reader():
    cursor = _Cursor(range(100_000))
    batches = _chain_sources._prefetched(cursor, 100, 1)  # pylint: disable=protected-access
    assert next(batches) == list(range(100))
    batches.close()
    assert not any(th.name == 'trdrhub-chain-fetch' for th in threading.enumerate())
    assert cursor.calls <= 4  # read ahead by at most the queue's depth, not to the end
