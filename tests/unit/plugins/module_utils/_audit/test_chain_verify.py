# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The verification engine: every violation kind, where it is reported, ranges, heads, one pass."""

from __future__ import annotations

import datetime
import hashlib
import json
import tracemalloc

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    PROFILES,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import (
    AuditInputError,
    ChainVerifier,
    parse_expected_heads,
    verify_records,
)

TRDRHUB, LEDGER = PROFILES['trdrhub'], PROFILES['ledger']
UTC = datetime.timezone.utc
T0 = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)
HASHED = ('sequence_number', 'tenant_id', 'actor_id', 'resource_type', 'resource_id', 'action', 'before_hash',
          'after_hash', 'prev_entry_hash')


def app_hash(row: dict) -> str:
    """FACTS.md's compute_entry_hash, independently of _chain."""
    d = {k: row[k] for k in HASHED}
    d['created_at'] = row['created_at'].astimezone(UTC).isoformat()
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def rehash(row: dict) -> dict:
    row['entry_hash'] = app_hash(row)
    return row


def chain(tenants=('t1',), count=6, first=1):
    """Valid rows with one global counter, tenants taking turns (t1: 1, 3, 5; t2: 2, 4, 6 ...)."""
    rows, heads = [], {}
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        row = {'id': f'id-{first + i}', 'sequence_number': first + i, 'tenant_id': tenant, 'actor_id': None,
               'resource_type': 'lc_document', 'resource_id': f'LC-{i}', 'action': 'update', 'before_hash': None,
               'after_hash': 'a' * 64, 'prev_entry_hash': heads.get(tenant),
               'created_at': T0 + datetime.timedelta(seconds=i, microseconds=i * 10)}
        heads[tenant] = rehash(row)['entry_hash']
        rows.append(row)
    return rows


def per_chain(rows):
    """The same rows ordered by (tenant, sequence), as a source with scope chain reads them."""
    return sorted(rows, key=lambda r: (r['tenant_id'], r['sequence_number']))


def found(result):
    return [(v['kind'], v['tenant_id'], v['sequence_number'], v['id']) for v in result['violations']]


def kinds_of(result):
    return [v['kind'] for v in result['violations']]


def by_seq(rows, seq):
    return next(r for r in rows if r['sequence_number'] == seq)


def test_valid_interleaved_tenants_in_table_scope():
    rows = chain(('t1', 't2', 't3'), 30)
    result = verify_records(rows, TRDRHUB, scope='table')
    assert result['is_valid'] is True and result['violations'] == [] and result['violation_count'] == 0
    assert result['total_entries'] == 30 and result['tenants'] == 3
    assert result['chains']['t2'] == {'head': {'sequence_number': 29, 'entry_hash': by_seq(rows, 29)['entry_hash']},
                                      'first_sequence': 2, 'entries': 10, 'violations': 0}
    assert result['violation_counts'] == {} and result['violations_truncated'] is False
    assert datetime.datetime.fromisoformat(result['verified_at']).utcoffset() == datetime.timedelta(0)


def test_interleaved_tenants_in_chain_scope_are_gaps():
    """Scope chain expects each chain numbered 1, 2, 3: TRDR Hub's global numbers do not fit it."""
    result = verify_records(per_chain(chain(('t1', 't2'), 6)), TRDRHUB, scope='chain')
    assert kinds_of(result) == ['sequence_gap'] * 4


def test_violation_shape():
    rows = chain(count=3)
    rows[1]['resource_id'] = 'tampered'
    (v,) = verify_records(rows, TRDRHUB)['violations']
    assert v == {'kind': 'hash_mismatch', 'tenant_id': 't1', 'sequence_number': 2, 'id': 'id-2',
                 'expected': app_hash(rows[1]), 'found': rows[1]['entry_hash'],
                 'message': 'tenant_id t1 #2: stored hash does not match the content: a hashed field was changed'}


@pytest.mark.parametrize('field, value', [
    ('actor_id', '3f0c8a52-6a56-4b1e-9a4e-0c1d2e3f4a5b'), ('resource_type', 'user'),
    ('resource_id', 'LC-x'), ('action', 'delete'), ('before_hash', 'f' * 64), ('after_hash', 'f' * 64),
    ('created_at', T0 + datetime.timedelta(days=1)),
])
def test_changed_content_is_hash_mismatch_only(field, value):
    rows = chain(count=5)
    rows[2][field] = value  # tenant_id and sequence_number: see the move and swap tests
    result = verify_records(rows, TRDRHUB)
    assert found(result) == [('hash_mismatch', 't1', 3, 'id-3')]


def test_missing_hash_is_reported_and_the_next_link_skipped():
    rows = chain(count=6)
    rows[1]['entry_hash'] = None
    rows[3]['entry_hash'] = ''
    rows[5]['prev_entry_hash'] = 'x' * 64  # still caught: the chain continues after a missing hash
    rows[5] = rehash(rows[5])
    result = verify_records(rows, TRDRHUB)
    assert found(result) == [('missing_hash', 't1', 2, 'id-2'), ('missing_hash', 't1', 4, 'id-4'),
                             ('broken_link', 't1', 6, 'id-6')]
    assert result['chains']['t1']['head']['sequence_number'] == 6


def test_missing_hash_at_the_head_reports_a_null_head():
    rows = chain(count=2)
    rows[1]['entry_hash'] = None
    assert verify_records(rows, TRDRHUB)['chains']['t1']['head'] == {'sequence_number': 2, 'entry_hash': None}


def test_recomputed_row_with_a_changed_prev_breaks_two_links():
    rows = chain(count=4)
    rows[1]['prev_entry_hash'] = 'f' * 64
    rehash(rows[1])
    result = verify_records(rows, TRDRHUB)
    assert found(result) == [('broken_link', 't1', 2, 'id-2'), ('broken_link', 't1', 3, 'id-3')]
    assert result['violations'][0]['expected'] == rows[0]['entry_hash']
    assert result['violations'][0]['found'] == 'f' * 64


def test_first_entry_naming_a_previous_hash_is_a_broken_link():
    rows = chain(count=4)[1:]  # the first entry was deleted
    (v,) = verify_records(rows, TRDRHUB)['violations']
    assert (v['kind'], v['sequence_number'], v['expected'], v['found']) == ('broken_link', 2, None, rows[0]['prev_entry_hash'])


def test_deleted_middle_entry():
    rows = chain(count=5)
    del rows[2]
    result = verify_records(rows, TRDRHUB, scope='chain')
    assert found(result) == [('sequence_gap', 't1', 4, 'id-4'), ('broken_link', 't1', 4, 'id-4')]
    gap = result['violations'][0]
    assert (gap['expected'], gap['found']) == (3, 4)
    assert 'sequence number 3 is missing' in gap['message']


def test_global_gap_in_table_scope_is_the_tables_finding():
    rows = chain(('t1', 't2', 't3'), 9)
    del rows[7]  # seq 8: t2's last entry -- no link shows it, the global counter does
    result = verify_records(rows, TRDRHUB, scope='table')
    assert found(result) == [('sequence_gap', None, 8, None)]
    (gap,) = result['violations']
    assert (gap['expected'], gap['found'], gap['missing']) == (8, 9, [8, 8])
    assert gap['message'].startswith('table: sequence number 8 is missing, between tenant_id t1 #7 and tenant_id t3 #9: ')
    assert result['chains']['t3']['violations'] == 0, 't3 follows the hole but was not touched'


def test_deleted_middle_entry_of_one_of_three_interleaved_tenants():
    """One global counter: deleting t2's middle entry breaks t2's chain and leaves one hole in the table.

    The entry after the hole is t3's; t3 and t1 were not touched and stay valid.
    """
    rows = chain(('t1', 't2', 't3'), 12)   # t1: 1 4 7 10, t2: 2 5 8 11, t3: 3 6 9 12
    rows = [r for r in rows if r['sequence_number'] != 5]
    result = verify_records(rows, TRDRHUB, scope='table')
    assert found(result) == [('sequence_gap', None, 5, None), ('broken_link', 't2', 8, 'id-8')]
    assert result['violation_counts'] == {'broken_link': 1, 'sequence_gap': 1}
    assert {key: c['violations'] for key, c in result['chains'].items()} == {'t1': 0, 't2': 1, 't3': 0}
    gap = result['violations'][0]
    assert gap['missing'] == [5, 5] and 'between tenant_id t1 #4 and tenant_id t3 #6' in gap['message']
    assert [v for v in result['violations'] if v['tenant_id'] in ('t1', 't3')] == []


def test_deleted_run_across_tenants_is_one_gap_naming_the_range():
    rows = chain(('t1', 't2', 't3'), 12)
    rows = [r for r in rows if not 5 <= r['sequence_number'] <= 7]   # t2 #5, t3 #6, t1 #7
    result = verify_records(rows, TRDRHUB, scope='table')
    gaps = [v for v in result['violations'] if v['kind'] == 'sequence_gap']
    assert [(g['tenant_id'], g['missing']) for g in gaps] == [(None, [5, 7])]
    assert gaps[0]['message'].startswith('table: sequence numbers 5-7 are missing, between tenant_id t1 #4 and '
                                         'tenant_id t2 #8')
    assert sorted(v['tenant_id'] for v in result['violations'] if v['kind'] == 'broken_link') == ['t1', 't2', 't3']


def test_deleted_last_entry_is_invisible_without_heads():
    rows = chain(('t1', 't2'), 6)
    heads = {'t2': {'sequence_number': 6, 'entry_hash': rows[5]['entry_hash']}}
    assert verify_records(rows[:5], TRDRHUB, scope='table')['is_valid'] is True
    result = verify_records(rows[:5], TRDRHUB, scope='table', expected_heads=heads)
    assert found(result) == [('truncated', 't2', 6, None)]
    assert (result['violations'][0]['expected'], result['violations'][0]['found']) == (6, 4)


def test_duplicate_sequence_within_a_chain():
    rows = chain(count=4)
    copy = dict(rows[1], id='forged')
    rows.insert(2, copy)
    result = verify_records(rows, TRDRHUB, scope='chain')
    # the copy's link points at entry 1, not at the entry 2 it follows
    assert found(result) == [('duplicate_sequence', 't1', 2, 'forged'), ('broken_link', 't1', 2, 'forged')]


def test_duplicate_sequence_across_chains_in_table_scope():
    rows = chain(('t1', 't2'), 4)
    rows[1]['sequence_number'] = 1
    rehash(rows[1])
    result = verify_records(sorted(rows, key=lambda r: r['sequence_number']), TRDRHUB, scope='table')
    assert ('duplicate_sequence', 't2', 1, 'id-2') in found(result)


def test_out_of_order_entries():
    rows = chain(count=4)
    rows[1], rows[2] = rows[2], rows[1]
    kinds = kinds_of(verify_records(rows, TRDRHUB, scope='chain'))
    assert 'out_of_order' in kinds


def test_swapped_sequence_numbers():
    rows = chain(count=5)
    rows[1]['sequence_number'], rows[3]['sequence_number'] = 4, 2
    rows.sort(key=lambda r: r['sequence_number'])
    result = found(verify_records(rows, TRDRHUB))
    assert ('hash_mismatch', 't1', 2, 'id-4') in result and ('hash_mismatch', 't1', 4, 'id-2') in result
    assert ('broken_link', 't1', 2, 'id-4') in result and ('broken_link', 't1', 4, 'id-2') in result
    assert ('broken_link', 't1', 5, 'id-5') in result


def test_row_moved_to_another_tenant():
    rows = chain(('t1', 't2'), 8)
    by_seq(rows, 3)['tenant_id'] = 't2'
    result = found(verify_records(per_chain(rows), TRDRHUB, scope='table', chain_keys=None))
    assert ('hash_mismatch', 't2', 3, 'id-3') in result
    assert ('broken_link', 't2', 3, 'id-3') in result     # its link points into t1's chain
    assert ('broken_link', 't2', 4, 'id-4') in result     # t2's next entry no longer follows its predecessor
    assert ('broken_link', 't1', 5, 'id-5') in result     # t1 lost an entry


def test_forged_entry_with_a_correct_hash():
    rows = chain(count=4)
    forged = rehash(dict(rows[3], id='forged', sequence_number=5, prev_entry_hash=rows[3]['entry_hash'],
                         resource_id='LC-forged'))
    # appended with a correct link and hash: indistinguishable from growth, heads or not
    heads = {'t1': {'seq': 4, 'hash': rows[3]['entry_hash']}}
    assert verify_records(rows + [forged], TRDRHUB, scope='chain', expected_heads=heads)['is_valid'] is True
    # slipped in before the end: the entry after it no longer links to its predecessor
    forged_mid = rehash(dict(rows[1], id='forged', sequence_number=2, prev_entry_hash=rows[0]['entry_hash'],
                             resource_id='LC-forged'))
    result = verify_records([rows[0], forged_mid] + rows[2:], TRDRHUB, scope='chain')
    assert found(result) == [('broken_link', 't1', 3, 'id-3')]


def test_rewritten_history_needs_expected_heads():
    rows = chain(count=5)
    heads = {'t1': {'sequence_number': 5, 'entry_hash': rows[4]['entry_hash']}}
    rows[1]['resource_id'] = 'rewritten'
    for i in range(1, 5):  # the attacker recomputes every later hash and link
        if i > 1:
            rows[i]['prev_entry_hash'] = rows[i - 1]['entry_hash']
        rehash(rows[i])
    assert verify_records(rows, TRDRHUB)['is_valid'] is True
    result = verify_records(rows, TRDRHUB, expected_heads=heads)
    assert found(result) == [('head_mismatch', 't1', 5, 'id-5')]
    assert result['violations'][0]['expected'] == heads['t1']['entry_hash']


def test_expected_head_row_gone_while_the_chain_continues():
    rows = chain(count=6)
    heads = {'t1': {'sequence_number': 4, 'entry_hash': rows[3]['entry_hash']}}
    del rows[3]
    kinds = kinds_of(verify_records(rows, TRDRHUB, scope='chain', expected_heads=heads))
    assert kinds == ['sequence_gap', 'broken_link', 'truncated']


def test_missing_chain_and_heads_spellings():
    rows = chain(('t1', 't2'), 4)
    heads = {'t1': {'seq': '3', 'hash': rows[2]['entry_hash']},  # as an earlier result's chains entry would not be
             'gone': {'head': {'sequence_number': 7, 'entry_hash': 'e' * 64}, 'entries': 7}}
    result = verify_records(rows, TRDRHUB, scope='table', expected_heads=heads)
    assert found(result) == [('missing_chain', 'gone', 7, None)]


def test_heads_from_an_earlier_result_round_trip():
    rows = chain(('t1', 't2'), 10)
    first = verify_records(rows[:6], TRDRHUB, scope='table')
    assert verify_records(rows, TRDRHUB, scope='table', expected_heads=first['chains'])['is_valid'] is True
    kinds = kinds_of(verify_records(rows[:4], TRDRHUB, scope='table', expected_heads=first['chains']))
    assert kinds == ['truncated', 'truncated']


@pytest.mark.parametrize('heads', [['t1'], {'t1': 5}, {'t1': {'sequence_number': 'x', 'entry_hash': 'h'}},
                                   {'t1': {'sequence_number': 1}}, {'t1': {'sequence_number': True, 'entry_hash': 'h'}}])
def test_bad_expected_heads(heads):
    with pytest.raises(AuditInputError, match='expected_heads'):
        parse_expected_heads(heads)


def test_heads_outside_the_selection_are_noted_not_checked():
    rows = chain(('t1', 't2'), 6)
    heads = {'t2': {'sequence_number': 6, 'entry_hash': 'x'}, 't1': {'sequence_number': 1, 'entry_hash': 'y'}}
    verifier = ChainVerifier(TRDRHUB, expected_heads=heads, scope='table', start_sequence=3, chain_keys=['t1'])
    for row in rows[2:]:
        if row['tenant_id'] == 't1':
            verifier.add_record(row)
    result = verifier.result()
    assert result['is_valid'] is False  # t1's first entry in range names a predecessor and has no anchor
    assert any('t2 not checked: chain not selected' in n for n in result['notes'])
    assert any('t1 (sequence 1) not checked: outside the verified range' in n for n in result['notes'])
    assert any('sequence gaps were not checked' in n for n in result['notes'])


def test_range_anchored_to_the_entry_before_it():
    rows = chain(('t1', 't2'), 10)
    verifier = ChainVerifier(TRDRHUB, scope='table', start_sequence=5)
    verifier.anchor('t1', 3, by_seq(rows, 3)['entry_hash'])
    verifier.anchor('t2', 4, 'not-the-real-hash')
    for row in rows[4:]:
        verifier.add_record(row)
    result = verifier.result()
    assert found(result) == [('broken_link', 't2', 6, 'id-6')]
    assert result['chains']['t1']['first_sequence'] == 5 and result['total_entries'] == 6


def test_anchor_without_hash_skips_the_first_link():
    rows = chain(count=4)
    verifier = ChainVerifier(TRDRHUB, scope='chain', start_sequence=3)
    verifier.anchor('t1', 2, None)
    for row in rows[2:]:
        verifier.add_record(row)
    assert verifier.result()['is_valid'] is True


def test_max_violations_caps_the_list_not_the_count():
    rows = chain(count=50)
    for row in rows:
        row['action'] = 'tampered'
    result = verify_records(rows, TRDRHUB, max_violations=7)
    assert len(result['violations']) == 7 and result['violation_count'] == 50
    assert result['violations_truncated'] is True and result['violation_counts'] == {'hash_mismatch': 50}
    assert result['chains']['t1']['violations'] == 50
    nothing = verify_records(rows, TRDRHUB, max_violations=0)
    assert nothing['violations'] == [] and nothing['violation_count'] == 50 and nothing['is_valid'] is False


@pytest.mark.parametrize('options, needle', [
    ({'max_violations': -1}, 'max_violations'), ({'scope': 'global'}, 'sequence_scope'),
    ({'start_sequence': 10, 'end_sequence': 9}, 'start_sequence (10) is greater than end_sequence (9)'),
])
def test_bad_options(options, needle):
    with pytest.raises(AuditInputError, match=needle.replace('(', r'\(').replace(')', r'\)')):
        ChainVerifier(TRDRHUB, **options)


class OnePass:
    """An iterable that can be iterated once only, counting what was pulled from it."""

    def __init__(self, records) -> None:
        self.records, self.iterations, self.pulled = records, 0, 0

    def __iter__(self):
        self.iterations += 1
        assert self.iterations == 1, 'the records were iterated twice'
        for record in self.records:
            self.pulled += 1
            yield record


def lazy_chain(count, tenants=('t1', 't2', 't3', 't4')):
    """Valid rows produced on demand; nothing keeps them."""
    heads = {}
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        row = {'id': None, 'sequence_number': i + 1, 'tenant_id': tenant, 'actor_id': None,
               'resource_type': 'lc_document', 'resource_id': 'LC', 'action': 'read', 'before_hash': None,
               'after_hash': None, 'prev_entry_hash': heads.get(tenant), 'created_at': T0}
        heads[tenant] = rehash(row)['entry_hash']
        yield row


def test_one_pass_over_a_lazy_source():
    source = OnePass(lazy_chain(1000))
    result = verify_records(source, TRDRHUB, scope='table')
    assert result['is_valid'] is True and source.iterations == 1 and source.pulled == 1000


def test_memory_does_not_grow_with_the_number_of_records():
    def peak(count):
        tracemalloc.start()
        verify_records(lazy_chain(count), TRDRHUB, scope='table')
        _current, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1_000), peak(15_000)
    assert large < small * 1.5 + 20_000, (small, large)


def test_interleaved_chains_are_tracked_separately():
    rows = chain(('t1', 't2', 't3'), 12)  # arrives in global order, chains interleaved
    assert verify_records(rows, TRDRHUB, scope='chain')['violation_counts'] == {'sequence_gap': 9}


@pytest.mark.parametrize('record, reason', [
    (['not', 'an', 'object'], 'expected a JSON object, got list'),
    ({'seq': 1}, 'incident_id is missing'),
    ({'incident_id': 'INC-1', 'seq': '1'}, 'seq is missing or not an integer'),
    ({'incident_id': 'INC-1', 'seq': True}, 'seq is missing or not an integer'),
    ({'incident_id': 'INC-1', 'seq': 1, 'data': float('nan')}, 'Out of range float'),
])
def test_malformed_records_are_violations(record, reason):
    verifier = ChainVerifier(LEDGER)
    verifier.add_record(record, line=7)
    result = verifier.result()
    (v,) = result['violations']
    assert v['kind'] == 'malformed_entry' and v['line'] == 7 and reason in v['message']
    assert result['total_entries'] == 1 and result['chains'] == {}


def ledger(incident='INC-1', count=4):
    entries, prev = [], None
    for seq in range(1, count + 1):
        entry = {'v': 1, 'seq': seq, 'incident_id': incident, 'event': 'task_end', 'data': {'n': 'ü'}, 'prev_hash': prev}
        body = json.dumps(entry, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
        entry['hash'] = prev = hashlib.sha256(body).hexdigest()
        entries.append(entry)
    return entries


def test_ledger_profile_chain():
    entries = ledger() + ledger('INC-2', 2)
    result = verify_records(entries, LEDGER)
    assert result['is_valid'] is True and result['tenants'] == 2
    assert result['chains']['INC-1']['head'] == {'sequence_number': 4, 'entry_hash': entries[3]['hash']}
    entries[1]['data'] = {'n': 'changed'}
    (v,) = verify_records(entries, LEDGER)['violations']
    assert (v['kind'], v['tenant_id'], v['incident_id'], v['sequence_number'], v['id']) == (
        'hash_mismatch', 'INC-1', 'INC-1', 2, '2')
    assert v['message'].startswith('incident_id INC-1 #2: ')
