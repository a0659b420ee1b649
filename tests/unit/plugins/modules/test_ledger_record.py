# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""trdrhub.incident.ledger_record run as a module (the path ansible-test and direct execution take)."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgConnectionError
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger
from ansible_collections.trdrhub.incident.plugins.modules import ledger_record

SECRET = 'Ledger-Secret-51f0'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ('TRDRHUB_LEDGER_BACKEND', 'TRDRHUB_LEDGER_DIR', 'TRDRHUB_LEDGER_TABLE', 'TRDRHUB_LEDGER_DSN',
                'TRDRHUB_LEDGER_RUN', 'AWX_USER_NAME', 'TOWER_USER_NAME', 'AWX_JOB_ID', 'RD_JOB_USERNAME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')


def lines(root, incident='INC-7'):
    return [json.loads(line) for line in (root / incident / 'ledger.jsonl').read_bytes().splitlines()]


def args(root, **kw):
    return dict({'incident_id': 'INC-7', 'event': 'decision', 'phase': 'contain', 'msg': 'terminate 3 sessions',
                 'data': {'sessions': 3}, 'root': str(root)}, **kw)


def test_check_mode_writes_nothing_and_predicts_the_entry(run_module, tmp_path):
    root = tmp_path / 'incidents'
    res = run_module(ledger_record, args(root), check_mode=True)
    assert not res.get('failed') and res['changed'] is False
    assert (res['seq'], res['prev_hash']) == (1, None) and res['entry']['seq'] == 1
    assert res['ledger'] == str(root / 'INC-7' / 'ledger.jsonl') and res['backend'] == 'file'
    assert not root.exists()

    first = run_module(ledger_record, args(root))
    assert first['changed'] is True
    predicted = run_module(ledger_record, args(root), check_mode=True)
    assert (predicted['seq'], predicted['prev_hash']) == (2, first['hash'])
    assert len(lines(root)) == 1


def test_appends_link_into_one_chain(run_module, tmp_path):
    results = [run_module(ledger_record, args(tmp_path, msg=f'note {i}', event='note')) for i in range(3)]
    entries = lines(tmp_path)
    assert [r['entry'] for r in results] == entries
    prev = None
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != 'hash'}
        assert entry['hash'] == hashlib.sha256(json.dumps(body, sort_keys=True, separators=(',', ':'),
                                                          ensure_ascii=False).encode()).hexdigest()
        assert entry['prev_hash'] == prev
        prev = entry['hash']
    assert entries[0]['actor'] == 'local:oncall' and entries[0]['module'] == 'trdrhub.incident.ledger_record'
    assert entries[0]['data'] == {'sessions': 3, 'message': 'note 0', 'actor_source': 'local'}


def test_secrets_in_data_and_message_are_redacted(run_module, tmp_path):
    res = run_module(ledger_record, args(tmp_path, msg=f'connected with postgresql://ops:{SECRET}@db/x',
                                         data={'password': SECRET, 'webhook_url': 'https://hooks.slack.com/services/T/B/x',
                                               'note': f'{SECRET} was rotated'}))
    raw = (tmp_path / 'INC-7' / 'ledger.jsonl').read_text()
    assert SECRET not in raw and SECRET not in json.dumps(res)
    assert res['entry']['data']['password'] == '<redacted>'


@pytest.mark.parametrize('incident_id', ['../escape', 'INC 7', 'a/b', '', 'x' * 129])
def test_a_bad_incident_id_fails_with_one_message(run_module, tmp_path, incident_id):
    res = run_module(ledger_record, args(tmp_path, incident_id=incident_id))
    assert res['failed'] and 'cannot name a ledger' in res['msg']
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_directory_fails_with_one_message(run_module, tmp_path):
    (tmp_path / 'file').write_text('')
    res = run_module(ledger_record, args(tmp_path / 'file'))
    assert res['failed'] and res['msg'].startswith(f'Cannot create the ledger directory {tmp_path}/file/INC-7')


def test_postgres_backend_that_cannot_connect_fails_cleanly(run_module, tmp_path, monkeypatch):
    def refuse(params):
        raise PgConnectionError('Cannot connect to PostgreSQL at db:5432, database x, as user ops: refused')
    monkeypatch.setattr(_ledger, 'PgClient', refuse)
    res = run_module(ledger_record, args(tmp_path, backend='postgres', dsn=f'host=db password={SECRET}'))
    assert res['failed']
    assert res['msg'] == ('Cannot open the incident ledger table trdrhub_incident_ledger: Cannot connect to '
                          'PostgreSQL at db:5432, database x, as user ops: refused')
    assert SECRET not in json.dumps(res)


def test_an_invalid_event_is_refused_by_the_argument_spec(run_module, tmp_path):
    res = run_module(ledger_record, args(tmp_path, event='task'))
    assert res['failed'] and 'event' in res['msg']
