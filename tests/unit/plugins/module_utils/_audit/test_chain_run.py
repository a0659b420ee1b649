"""AuditChainVerification: the options' rules and one verification of a ledger file, as the module and its action plugin run it."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_run import (
    AuditChainVerification,
    chain_argument_spec,
    failure_message,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError, TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import validate_task_args
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_COMMON_ARGS


def ledger(path, incident='INC-7', count=4, tamper_at=None):
    prev, lines = None, []
    for seq in range(1, count + 1):
        entry = {'v': 1, 'seq': seq, 'incident_id': incident, 'ts': f'2025-01-15T14:0{seq}:00+00:00', 'event': 'note',
                 'phase': 'triage', 'actor': 'oncall', 'host': 'bastion', 'play': 'P', 'task': 'T', 'module': None,
                 'changed': False, 'failed': False, 'args': {}, 'data': {'n': seq}, 'prev_hash': prev}
        body = json.dumps(entry, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()
        entry['hash'] = prev = hashlib.sha256(body).hexdigest()
        if seq == tamper_at:
            entry['data'] = {'n': 'changed afterwards'}
        lines.append(json.dumps(entry))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path


def params(**args):
    validated, problem = validate_task_args(chain_argument_spec(POSTGRES_COMMON_ARGS), args)
    assert problem is None, problem
    return validated


def test_a_valid_ledger_file_and_its_head(tmp_path):
    path = ledger(tmp_path / 'INC-7' / 'ledger.jsonl')
    result = AuditChainVerification(params(source='ledger_file', path=str(tmp_path / 'INC-7'))).run(None)
    assert result['is_valid'] is True and result['changed'] is False
    assert result['total_entries'] == 4 and result['ledger_path'] == str(path)
    assert result['chains']['INC-7']['head']['sequence_number'] == 4
    assert result['profile'] == 'ledger' and result['sequence_scope'] == 'chain'


def test_a_tampered_entry_is_a_violation_and_the_failure_message_names_it(tmp_path):
    ledger(tmp_path / 'l.jsonl', tamper_at=2)
    result = AuditChainVerification(params(source='ledger_file', path=str(tmp_path / 'l.jsonl'))).run(None)
    assert result['is_valid'] is False and result['violation_count'] >= 1
    assert result['violations'][0]['sequence_number'] == 2
    message = failure_message(result)
    assert message.startswith('audit chain verification failed: ') and 'in 4 entries' in message


@pytest.mark.parametrize('args, words', [
    ({'source': 'ledger_file'}, 'source is ledger_file but path is missing'),
    ({'source': 'ledger_file', 'path': '/x', 'profile': 'trdrhub'}, 'profile trdrhub cannot verify source ledger_file'),
    ({'source': 'ledger_file', 'path': '/x', 'tenant_id': ['t1']}, 'tenant_id is used with source table only'),
])
def test_option_rules_are_one_sentence(args, words):
    with pytest.raises(TrdrhubError) as caught:
        AuditChainVerification(params(**args))
    assert words in str(caught.value)
    assert isinstance(caught.value, InputError)
