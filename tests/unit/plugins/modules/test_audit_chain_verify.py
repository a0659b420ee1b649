# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""audit_chain_verify without a database: ledger files end to end, option checks, failure messages.

The table sources run against the harness PostgreSQL in tests/integration/plugins/modules/test_audit_chain_verify*.py.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import (
    audit_chain_verify as module,
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


@pytest.fixture
def ledger_dir(tmp_path):
    write(tmp_path / 'incidents' / 'INC-2025-0042' / 'ledger.jsonl', entries())
    return tmp_path / 'incidents'


def run(run_module, check_mode=False, **args):
    return run_module(module, dict(args), check_mode=check_mode)


def test_valid_ledger_file(run_module, ledger_dir):
    path = ledger_dir / 'INC-2025-0042' / 'ledger.jsonl'
    result = run(run_module, source='ledger_file', path=str(path))
    assert 'failed' not in result
    assert result['is_valid'] is True and result['changed'] is False
    assert result['total_entries'] == 5 and result['tenants'] == 1
    assert result['profile'] == 'ledger' and result['source'] == 'ledger_file' and result['sequence_scope'] == 'chain'
    assert result['ledger_path'] == str(path) and 'queries' not in result
    assert result['chains']['INC-2025-0042']['head']['sequence_number'] == 5


@pytest.mark.parametrize('path, incident', [('INC-2025-0042', None), ('.', 'INC-2025-0042')])
def test_directories_resolve_to_the_ledger(run_module, ledger_dir, path, incident):
    args = {'source': 'ledger_file', 'path': str(ledger_dir / path)}
    if incident:
        args['incident_id'] = incident
    result = run(run_module, **args)
    assert result['is_valid'] is True and result['ledger_path'].endswith('INC-2025-0042/ledger.jsonl')


def test_tampered_and_malformed_lines(run_module, tmp_path):
    good = entries()
    good[2]['data'] = {'rewritten': True}
    lines = [good[0], good[1], good[2], '{"seq": 4, "incident_id": "INC-2025-0042", "trunc', '', good[3], good[4],
             '{"v": 1, "v": 2, "seq": 6, "incident_id": "INC-2025-0042"}', '[1, 2]', b'\xff\xfe'.decode('latin-1')]
    path = write(tmp_path / 'ledger.jsonl', lines)
    result = run(run_module, source='ledger_file', path=str(path))
    assert result['is_valid'] is False
    summary = [(v['kind'], v['sequence_number'], v.get('line')) for v in result['violations']]
    assert summary == [('hash_mismatch', 3, 3), ('malformed_entry', None, 4), ('malformed_entry', None, 8),
                       ('malformed_entry', None, 9), ('malformed_entry', None, 10)]
    assert 'appears twice' in result['violations'][2]['message']
    assert result['violations'][0]['incident_id'] == 'INC-2025-0042'
    assert result['total_entries'] == 9  # the blank line is not an entry


def test_truncated_ledger_with_expected_head(run_module, tmp_path):
    full = entries()
    path = write(tmp_path / 'ledger.jsonl', full[:3])
    heads = {'INC-2025-0042': {'seq': 5, 'hash': full[4]['hash']}}
    result = run(run_module, source='ledger_file', path=str(path), expected_heads=heads)
    assert [(v['kind'], v['expected'], v['found']) for v in result['violations']] == [('truncated', 5, 3)]


def test_ledger_file_range_links_to_the_entry_before(run_module, tmp_path):
    full = entries(count=6)
    full[1]['hash'] = 'f' * 64  # before the range: read for the anchor, not verified
    path = write(tmp_path / 'ledger.jsonl', full)
    result = run(run_module, source='ledger_file', path=str(path), start_sequence=4, end_sequence=5)
    assert result['is_valid'] is True and result['total_entries'] == 2
    assert result['chains']['INC-2025-0042']['first_sequence'] == 4
    full[2]['hash'] = 'e' * 64  # the anchor itself changed: the first entry in range no longer links to it
    write(tmp_path / 'ledger.jsonl', full)
    result = run(run_module, source='ledger_file', path=str(path), start_sequence=4)
    assert [(v['kind'], v['sequence_number']) for v in result['violations']] == [('broken_link', 4)]


def test_incident_filter_in_a_shared_file(run_module, tmp_path):
    path = write(tmp_path / 'ledger.jsonl', entries('INC-1', 3) + entries('INC-2', 2))
    result = run(run_module, source='ledger_file', path=str(path), incident_id=['INC-2'])
    assert list(result['chains']) == ['INC-2'] and result['total_entries'] == 2


def test_fail_on_violation_fails_with_counts_and_keeps_the_result(run_module, tmp_path):
    bad = entries()
    bad[1]['actor'] = 'someone-else'
    bad[3]['prev_hash'] = None
    path = write(tmp_path / 'ledger.jsonl', bad)
    result = run(run_module, source='ledger_file', path=str(path), fail_on_violation=True)
    assert result['failed'] is True
    # prev_hash is hashed too: entry 4 is both a broken link and a hash mismatch
    assert result['msg'].startswith('audit chain verification failed: 3 violation(s) in 5 entries '
                                    '(1 broken_link, 2 hash_mismatch); first: incident_id INC-2025-0042 #2')
    assert result['violation_count'] == 3 and len(result['violations']) == 3 and result['chains']


def test_fail_on_violation_passes_a_valid_ledger(run_module, ledger_dir):
    result = run(run_module, source='ledger_file', path=str(ledger_dir / 'INC-2025-0042'), fail_on_violation=True)
    assert 'failed' not in result and result['is_valid'] is True


def test_check_mode_is_identical(run_module, ledger_dir):
    args = {'source': 'ledger_file', 'path': str(ledger_dir / 'INC-2025-0042')}
    normal, checked = run(run_module, **args), run(run_module, check_mode=True, **args)
    for result in (normal, checked):
        result.pop('verified_at')
        result.pop('elapsed_s')
    assert normal == checked


def test_max_violations(run_module, tmp_path):
    bad = entries(count=20)
    for entry in bad:
        entry['host'] = 'elsewhere'
    path = write(tmp_path / 'ledger.jsonl', bad)
    result = run(run_module, source='ledger_file', path=str(path), max_violations=3)
    assert len(result['violations']) == 3 and result['violation_count'] == 20 and result['violations_truncated']
    assert result['violation_counts'] == {'hash_mismatch': 20}


def test_ledger_file_needs_no_psycopg2(run_module, monkeypatch, ledger_dir):
    monkeypatch.setattr(module, 'PSYCOPG2', ('psycopg2', False, None))
    assert run(run_module, source='ledger_file', path=str(ledger_dir / 'INC-2025-0042'))['is_valid'] is True
    result = run(run_module, login_db='trdrhub')
    assert result['failed'] is True and 'psycopg2' in result['msg']


BAD_INPUT = {
    'missing-file': ({'source': 'ledger_file', 'path': '/nonexistent/ledger.jsonl'},
                     'ledger file /nonexistent/ledger.jsonl does not exist'),
    'directory-without-ledger': ({'source': 'ledger_file', 'path': '{tmp}', 'incident_id': 'INC-9'},
                                 'holds no ledger.jsonl or INC-9/ledger.jsonl'),
    'not-a-regular-file': ({'source': 'ledger_file', 'path': '/dev/null'}, 'ledger file /dev/null is not a regular file'),
    'no-path': ({'source': 'ledger_file'}, 'source is ledger_file but path is missing'),
    'profile-mismatch': ({'source': 'ledger_file', 'path': '{tmp}', 'profile': 'trdrhub'},
                         'profile trdrhub cannot verify source ledger_file'),
    'ledger-profile-on-table': ({'profile': 'ledger'}, 'profile ledger cannot verify source table'),
    'tenant-on-ledger': ({'source': 'ledger_file', 'path': '{tmp}', 'tenant_id': 't1'},
                         'tenant_id is used with source table only, not ledger_file'),
    'path-on-table': ({'path': '/tmp/x'}, 'path is used with source ledger_file only, not table'),
    'incident-on-table': ({'incident_id': 'INC-1'}, 'incident_id is used with source ledger_file or ledger_table'),
    'columns-on-file': ({'source': 'ledger_file', 'path': '{tmp}', 'columns': {'seq': 'n'}},
                        'columns is used with source table or ledger_table only'),
    'start-after-end': ({'start_sequence': 10, 'end_sequence': 2},
                        'start_sequence (10) is greater than end_sequence (2)'),
    'negative-max': ({'max_violations': -5}, 'max_violations must be at least 0, got -5'),
    'bad-heads': ({'expected_heads': {'t1': {'sequence_number': 3}}}, 'expected_heads[t1] needs an integer'),
}


@pytest.mark.parametrize('args, needle', BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_fails_with_one_message(run_module, monkeypatch, tmp_path, args, needle):
    monkeypatch.setattr(module, 'PgClient', lambda params: pytest.fail('must fail before connecting'))
    args = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in args.items()}
    result = run(run_module, **args)
    assert result['failed'] is True and needle in result['msg'], result['msg']
    assert 'Traceback' not in result['msg']


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_unreadable_ledger_file(run_module, ledger_dir):
    path = ledger_dir / 'INC-2025-0042' / 'ledger.jsonl'
    path.chmod(0)
    try:
        result = run(run_module, source='ledger_file', path=str(path))
    finally:
        path.chmod(0o600)
    assert result['failed'] is True and 'not readable' in result['msg']
