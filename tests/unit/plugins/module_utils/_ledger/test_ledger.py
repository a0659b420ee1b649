# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident ledger's storage, hashing, actor detection and redaction.

Chains are checked with ``independent_check`` below, which hashes entries with hashlib
directly (the format in docs/ledger.md), not with the collection's _chain module.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgConnectionError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    NO_LOG_MARKER,
    REDACTED,
    Redactor,
    is_secret_key,
    jsonable,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    FileLedger,
    LedgerError,
    PgLedger,
    detect_actor,
    make_entry,
    preview,
    record_event,
    resolve_root,
    validate_incident_id,
)

FIELDS = ('v', 'seq', 'incident_id', 'ts', 'event', 'phase', 'actor', 'host', 'play', 'task', 'module', 'changed',
          'failed', 'args', 'data', 'prev_hash', 'hash')


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != 'hash'}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()).hexdigest()


def independent_check(lines: list[bytes], incident_id: str) -> list[dict]:
    """Every line a compact sorted entry with exactly the documented fields, hashed and linked, seq 1..n."""
    entries = []
    prev = None
    for number, line in enumerate(lines, start=1):
        entry = json.loads(line)
        assert tuple(sorted(entry)) == tuple(sorted(FIELDS))
        assert line.decode() == json.dumps(entry, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
        assert entry['v'] == 1 and entry['incident_id'] == incident_id
        assert entry['seq'] == number, f'line {number} has seq {entry["seq"]}'
        assert entry['prev_hash'] == prev
        assert entry['hash'] == entry_hash(entry)
        prev = entry['hash']
        entries.append(entry)
    return entries


def ledger_lines(root, incident_id='INC-1') -> list[bytes]:
    return (root / incident_id / 'ledger.jsonl').read_bytes().splitlines()


def note(text: str = 'hello', **extra) -> dict:
    return dict({'event': 'note', 'actor': 'local:tester', 'data': {'message': text}}, **extra)


# ---------------------------------------------------------------------------- entries


def test_entry_has_the_documented_fields_and_hash():
    entry = make_entry('INC-1', 1, None, note(), ts='2026-11-26T16:40:00.123456+00:00')
    assert tuple(sorted(entry)) == tuple(sorted(FIELDS))
    assert entry['hash'] == entry_hash(entry)
    assert entry['prev_hash'] is None and entry['args'] == {} and entry['changed'] is None
    # Every field is hashed: changing any of them changes the hash.
    for field, value in (('data', {'message': 'other'}), ('actor', 'x'), ('ts', '2026-11-26T16:40:00.123457+00:00'),
                         ('prev_hash', 'ab' * 32), ('phase', 'contain'), ('failed', True)):
        changed = dict(entry, **{field: value})
        assert entry_hash(changed) != entry['hash'], field


def test_timestamp_is_utc_with_microseconds():
    ts = make_entry('INC-1', 1, None, note())['ts']
    assert ts.endswith('+00:00') and len(ts.split('.')[1]) == len('123456+00:00')


@pytest.mark.parametrize('value, stored', [
    (float('nan'), 'nan'), (float('inf'), 'inf'), (1e20, '1e+20'), (0.25, 0.25), (True, True), (7, 7),
    ('a\x00b', 'a\ufffdb'), (b'bytes', 'bytes'), ({3, 1, 2}, [1, 2, 3]), ((1, 'x'), [1, 'x']), ({1: 'a'}, {'1': 'a'}),
])
def test_values_are_made_json_safe(value, stored):
    assert jsonable(value) == stored
    entry = make_entry('INC-1', 1, None, note(data={'v': value}))
    assert entry['data'] == {'v': stored}
    assert entry['hash'] == entry_hash(entry)


def test_str_subclasses_become_plain_strings():
    class Unsafe(str):
        pass
    value = jsonable({'k': Unsafe('v')})
    assert value['k'] == 'v' and not isinstance(value['k'], Unsafe)


# ---------------------------------------------------------------------------- incident ids


@pytest.mark.parametrize('good', ['INC-2025-0042', 'db-20261126T164000Z-3fa2c1', 'a', 'x' * 128, 'inc_1.2'])
def test_good_incident_ids(good):
    assert validate_incident_id(good) == good


@pytest.mark.parametrize('bad', ['', None, '..', '.', 'a/b', '../etc', 'INC 42', 'x' * 129, 'a..b', 'inc\n1', 'ü'])
def test_bad_incident_ids_are_one_clear_error(bad):
    with pytest.raises(LedgerError, match='cannot name a ledger'):
        validate_incident_id(bad)


# ---------------------------------------------------------------------------- file backend


def test_file_appends_form_one_chain(tmp_path):
    ledger = FileLedger(str(tmp_path))
    written = [ledger.append('INC-1', note(f'n{i}')) for i in range(5)]
    entries = independent_check(ledger_lines(tmp_path), 'INC-1')
    assert entries == written
    assert ledger.head('INC-1') == (5, written[-1]['hash'])
    assert ledger.location('INC-1') == str(tmp_path / 'INC-1' / 'ledger.jsonl')
    assert (tmp_path / 'INC-1' / 'ledger.lock').exists()


def test_incidents_have_separate_chains(tmp_path):
    ledger = FileLedger(str(tmp_path))
    ledger.append('INC-1', note())
    ledger.append('INC-2', note())
    ledger.append('INC-1', note())
    assert [e['seq'] for e in independent_check(ledger_lines(tmp_path, 'INC-1'), 'INC-1')] == [1, 2]
    assert [e['seq'] for e in independent_check(ledger_lines(tmp_path, 'INC-2'), 'INC-2')] == [1]


def test_head_is_read_from_the_end_of_a_large_ledger(tmp_path, monkeypatch):
    ledger = FileLedger(str(tmp_path))
    for i in range(30):
        ledger.append('INC-1', note('x' * 3000 + str(i)))   # entries larger than one read chunk
    reads = []
    real_pread = os.pread
    monkeypatch.setattr(os, 'pread', lambda fd, n, off: reads.append(n) or real_pread(fd, n, off))
    last = ledger.append('INC-1', note('last'))
    assert last['seq'] == 31
    assert sum(reads) < 20000, 'the whole ledger was read to find its head'
    independent_check(ledger_lines(tmp_path), 'INC-1')


def _append_many(root: str, incident_id: str, count: int, worker: int) -> None:
    ledger = FileLedger(root)
    for i in range(count):
        ledger.append(incident_id, note(f'worker {worker} entry {i}'))


def test_concurrent_processes_never_fork_or_lose_entries(tmp_path):
    workers, per_worker = 8, 25
    ctx = multiprocessing.get_context('fork')
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), 'INC-1', per_worker, w)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    entries = independent_check(ledger_lines(tmp_path), 'INC-1')
    assert len(entries) == workers * per_worker
    messages = {e['data']['message'] for e in entries}
    assert messages == {f'worker {w} entry {i}' for w in range(workers) for i in range(per_worker)}


def test_an_incomplete_last_line_is_refused_not_extended(tmp_path):
    ledger = FileLedger(str(tmp_path))
    ledger.append('INC-1', note())
    path = tmp_path / 'INC-1' / 'ledger.jsonl'
    with open(path, 'ab') as handle:
        handle.write(b'{"seq":2,"ha')
    before = path.read_bytes()
    with pytest.raises(LedgerError, match='does not end with a complete entry'):
        ledger.append('INC-1', note())
    assert path.read_bytes() == before


def test_a_last_line_that_is_not_an_entry_is_refused(tmp_path):
    (tmp_path / 'INC-1').mkdir()
    (tmp_path / 'INC-1' / 'ledger.jsonl').write_text('not json\n')
    with pytest.raises(LedgerError, match='is not a ledger entry'):
        FileLedger(str(tmp_path)).append('INC-1', note())


def test_a_ledger_of_another_incident_is_refused(tmp_path):
    FileLedger(str(tmp_path)).append('INC-1', note())
    os.rename(tmp_path / 'INC-1', tmp_path / 'INC-2')
    with pytest.raises(LedgerError, match="belongs to incident 'INC-1'"):
        FileLedger(str(tmp_path)).append('INC-2', note())


def test_a_short_write_leaves_no_half_entry(tmp_path, monkeypatch):
    ledger = FileLedger(str(tmp_path))
    ledger.append('INC-1', note())
    before = (tmp_path / 'INC-1' / 'ledger.jsonl').read_bytes()
    real_write = os.write
    monkeypatch.setattr(os, 'write', lambda fd, data: real_write(fd, data[:10]))
    with pytest.raises(LedgerError, match='No space left on device; nothing was appended'):
        ledger.append('INC-1', note())
    monkeypatch.setattr(os, 'write', real_write)
    assert (tmp_path / 'INC-1' / 'ledger.jsonl').read_bytes() == before
    ledger.append('INC-1', note())
    independent_check(ledger_lines(tmp_path), 'INC-1')


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores directory permissions')
def test_an_unwritable_directory_is_one_clear_error(tmp_path):
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(LedgerError, match=f'Cannot create the ledger directory {tmp_path}/INC-1: Permission denied'):
            FileLedger(str(tmp_path)).append('INC-1', note())
    finally:
        tmp_path.chmod(stat.S_IRWXU)


def test_a_root_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(LedgerError, match='Cannot create the ledger directory .*/file/INC-1'):
        FileLedger(str(tmp_path / 'file')).append('INC-1', note())


def test_preview_creates_nothing(tmp_path):
    ledger = FileLedger(str(tmp_path / 'incidents'))
    entry = preview(ledger, 'INC-1', note())
    assert entry['seq'] == 1 and entry['prev_hash'] is None
    assert not (tmp_path / 'incidents').exists()
    first = ledger.append('INC-1', note())
    nxt = preview(ledger, 'INC-1', note())
    assert (nxt['seq'], nxt['prev_hash']) == (2, first['hash'])
    assert len(ledger_lines(tmp_path / 'incidents')) == 1


@pytest.mark.parametrize('root, base, expected', [
    (None, '/srv/pb', '{home}'),
    (None, '/home/u/.ansible/collections/ansible_collections/trdrhub/incident/playbooks', '{home}'),
    ('ledgers', '/srv/pb', '/srv/pb/ledgers'),
    ('/var/lib/trdrhub/incidents', '/srv/pb', '/var/lib/trdrhub/incidents'),
    ('incidents', None, '{cwd}/incidents'),
])
def test_without_an_explicit_root_the_incidents_home_is_never_the_playbook_directory(root, base, expected, monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path))
    home = str(tmp_path / 'trdrhub-incident' / 'incidents')
    assert resolve_root(root, base) == expected.format(cwd=os.getcwd(), home=home)


# ---------------------------------------------------------------------------- actor


@pytest.mark.parametrize('env, variables, actor, data', [
    ({'AWX_USER_NAME': 'alice', 'AWX_JOB_ID': '4711'}, {}, 'awx:alice', {'actor_source': 'awx', 'job_id': '4711'}),
    ({'TOWER_USER_NAME': 'bob', 'JOB_ID': '12'}, {}, 'awx:bob', {'actor_source': 'awx', 'job_id': '12'}),
    ({'JOB_ID': '12'}, {'awx_user_name': 'carol', 'awx_job_id': 12}, 'awx:carol', {'actor_source': 'awx', 'job_id': '12'}),
    ({}, {'awx_job_id': 9, 'awx_schedule_name': 'nightly'}, 'awx:schedule nightly', {'actor_source': 'awx', 'job_id': '9'}),
    ({'RD_JOB_USERNAME': 'dave', 'RD_JOB_EXECID': '88'}, {}, 'rundeck:dave', {'actor_source': 'rundeck', 'job_id': '88'}),
])
def test_actor_from_the_scheduler(env, variables, actor, data):
    assert detect_actor(env, variables) == (actor, data)


def test_actor_is_the_os_user_otherwise(monkeypatch):
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'erin')
    assert detect_actor({}, {}) == ('local:erin', {'actor_source': 'local'})
    assert detect_actor({'SUDO_USER': 'frank'}, {}) == ('local:erin', {'actor_source': 'local', 'sudo_user': 'frank'})

    def no_user():
        raise KeyError('uid not found')
    monkeypatch.setattr(_ledger.getpass, 'getuser', no_user)
    assert detect_actor({}, {})[0] == f'local:uid-{os.getuid()}'


# ---------------------------------------------------------------------------- record_event


def params(ledger_root, **kw):
    return dict({'incident_id': 'INC-1', 'event': 'decision', 'phase': 'contain', 'msg': 'go', 'data': {},
                 'backend': 'file', 'root': str(ledger_root)}, **kw)


def test_record_event_appends_with_provenance(tmp_path):
    out = record_event(params(tmp_path, data={'sessions': 3, 'actor_source': 'forged', 'job_id': 'forged'}),
                       env={'AWX_USER_NAME': 'alice', 'AWX_JOB_ID': '7', 'TRDRHUB_LEDGER_RUN': 'abc'},
                       context={'host': 'bastion-1', 'play': 'P', 'task': 'T'})
    entry = independent_check(ledger_lines(tmp_path), 'INC-1')[0]
    assert out['entry'] == entry and out['changed'] is True
    assert (out['seq'], out['hash'], out['prev_hash']) == (1, entry['hash'], None)
    assert out['ledger'] == str(tmp_path / 'INC-1' / 'ledger.jsonl') and out['backend'] == 'file'
    assert out['incident_dir'] == str(tmp_path / 'INC-1')
    assert entry['actor'] == 'awx:alice' and entry['event'] == 'decision' and entry['phase'] == 'contain'
    assert (entry['host'], entry['play'], entry['task']) == ('bastion-1', 'P', 'T')
    assert entry['module'] == 'trdrhub.incident.ledger_record'
    assert entry['data'] == {'sessions': 3, 'message': 'go', 'actor_source': 'awx', 'job_id': '7', 'run': 'abc'}


def test_record_event_actor_override_keeps_who_recorded_it(tmp_path, monkeypatch):
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')
    entry = record_event(params(tmp_path, actor='ic:maria'), env={})['entry']
    assert entry['actor'] == 'ic:maria'
    assert entry['data']['recorded_by'] == 'local:oncall'


def test_record_event_check_mode_writes_nothing(tmp_path):
    root = tmp_path / 'incidents'
    out = record_event(params(root), check_mode=True, env={})
    assert out['changed'] is False and out['seq'] == 1 and out['prev_hash'] is None
    assert not root.exists()


def test_record_event_takes_backend_and_root_from_the_environment(tmp_path):
    p = params(None, backend=None, root=None)
    out = record_event(p, env={'TRDRHUB_LEDGER_DIR': str(tmp_path), 'TRDRHUB_LEDGER_BACKEND': 'file'})
    assert out['ledger'] == str(tmp_path / 'INC-1' / 'ledger.jsonl')


def test_record_event_redacts_data_and_message(tmp_path):
    out = record_event(params(tmp_path, msg='db at postgresql://ops:hunter2hunter2@db/x, token: abcdef123456',
                              data={'login_password': 'hunter2hunter2', 'nested': [{'api_key': 'k' * 20}],
                                    'note': 'the password was hunter2hunter2'}), env={})
    text = (tmp_path / 'INC-1' / 'ledger.jsonl').read_text()
    for secret in ('hunter2hunter2', 'k' * 20, 'abcdef123456'):
        assert secret not in text
    assert out['entry']['data']['login_password'] == REDACTED
    assert out['entry']['data']['nested'] == [{'api_key': REDACTED}]


def test_record_event_bad_incident_id(tmp_path):
    with pytest.raises(LedgerError, match="incident_id '../x' cannot name a ledger"):
        record_event(params(tmp_path, incident_id='../x'), env={})
    assert list(tmp_path.iterdir()) == []


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(LedgerError, match="ledger backend 'sqlite' is not one of file, postgres"):
        record_event(params(tmp_path, backend=None), env={'TRDRHUB_LEDGER_BACKEND': 'sqlite'})


# ---------------------------------------------------------------------------- postgres backend (fake client)


class FakeConn:
    def __init__(self):
        self.autocommit = True
        self.closed = 0
        self.events: list[str] = []

    def commit(self):
        self.events.append('COMMIT')

    def rollback(self):
        self.events.append('ROLLBACK')


class FakePg:
    """Answers PgLedger's statements from a list of rows, recording what ran and in which transaction state."""

    def __init__(self, present=True, fail_on=None):
        self.conn = FakeConn()
        self.present = present
        self.rows: list[dict] = []
        self.fail_on = fail_on
        self.statements: list[tuple[str, object, bool]] = []

    def query(self, statement, args=None):
        text = statement if isinstance(statement, str) else repr(statement)
        self.statements.append((text, args, self.conn.autocommit))
        self.conn.events.append(text)
        if self.fail_on and self.fail_on in text:
            raise _ledger.PgQueryError(f'Query failed: {self.fail_on}')
        if text == _ledger.EXISTS_SQL:
            return [{'present': self.present}]
        if 'CREATE TABLE' in text:
            self.present = True
            return []
        if 'ORDER BY seq DESC' in text:
            mine = [r for r in self.rows if r['incident_id'] == args[0]]
            return [max(mine, key=lambda r: r['seq'])] if mine else []
        if 'INSERT INTO' in text:
            self.rows.append({'incident_id': args[0], 'seq': args[1], 'entry': json.loads(args[2]),
                              'entry_hash': args[3], 'prev_hash': args[4]})
        return []


@pytest.fixture
def fake_sql(monkeypatch):
    """psycopg2.sql stand-ins whose repr is the statement text with the identifier filled in."""
    class Ident:
        def __init__(self, *parts):
            self.parts = parts

        def as_string(self, conn):
            return '.'.join(f'"{p}"' for p in self.parts)

    class SQL:
        def __init__(self, text):
            self.text = text

        def format(self, table):
            return SQL(self.text.replace('{table}', table.as_string(None)))

        def __repr__(self):
            return self.text

    monkeypatch.setattr(_ledger, 'sql', type('sql', (), {'Identifier': Ident, 'SQL': SQL}))


def test_pg_appends_under_an_advisory_lock_in_one_transaction(fake_sql):
    client = FakePg(present=False)
    ledger = PgLedger(client, 'ops.incident_ledger')
    first = ledger.append('INC-1', note())
    second = ledger.append('INC-1', note())
    assert (first['seq'], second['seq'], second['prev_hash']) == (1, 2, first['hash'])
    assert [r['entry'] for r in client.rows] == [first, second]
    assert all(r['entry_hash'] == r['entry']['hash'] == entry_hash(r['entry']) for r in client.rows)
    texts = [s for s in client.conn.events if not s.startswith('SELECT to_regclass')]
    assert texts[0].startswith('CREATE TABLE IF NOT EXISTS "ops"."incident_ledger"')
    append = texts[1:5]
    assert append[0] == _ledger.LOCK_SQL and 'ORDER BY seq DESC' in append[1] and 'INSERT INTO' in append[2]
    assert append[3] == 'COMMIT'
    lock = next(s for s in client.statements if s[0] == _ledger.LOCK_SQL)
    assert lock[1] == ('ops.incident_ledger', 'INC-1') and lock[2] is False   # inside the transaction
    assert client.conn.autocommit is True


def test_pg_failure_rolls_back_and_raises(fake_sql):
    client = FakePg(fail_on='INSERT INTO')
    with pytest.raises(_ledger.PgQueryError):
        PgLedger(client).append('INC-1', note())
    assert client.conn.events[-1] == 'ROLLBACK' and client.conn.autocommit is True and client.rows == []


def test_pg_head_without_a_table_creates_nothing(fake_sql):
    client = FakePg(present=False)
    assert PgLedger(client).head('INC-1') is None
    assert not any('CREATE' in s[0] for s in client.statements)


@pytest.mark.parametrize('table', ['a.b.c', '1abc', 'x;drop table y', '', 'a.', 'bad name'])
def test_bad_table_names_are_refused(table):
    with pytest.raises(LedgerError, match='is not a valid ledger table name'):
        _ledger.table_identifier(table)


def test_pg_params_use_the_ledger_dsn_only_when_nothing_else_is_given():
    env = {'TRDRHUB_LEDGER_DSN': 'host=db password=x'}
    assert _ledger.pg_params({}, env)['dsn'] == 'host=db password=x'
    assert 'dsn' not in _ledger.pg_params({'login_host': 'other'}, env)
    assert _ledger.pg_params({'dsn': 'host=mine'}, env)['dsn'] == 'host=mine'


# ---------------------------------------------------------------------------- redaction


SECRET = 'S3cr3t-Value-9f2c'


@pytest.mark.parametrize('data, leaked', [
    pytest.param({'login_password': SECRET}, SECRET, id='password-key'),
    pytest.param({'PASSWD': SECRET}, SECRET, id='passwd-key'),
    pytest.param({'client_secret': SECRET}, SECRET, id='secret-key'),
    pytest.param({'auth_token': SECRET}, SECRET, id='token-key'),
    pytest.param({'api_key': SECRET, 'X-Api-Key': SECRET + '2', 'apikey': SECRET + '3'}, SECRET, id='api-key-keys'),
    pytest.param({'ssh_private_key': SECRET}, SECRET, id='private-key'),
    pytest.param({'dsn': f'host=db password={SECRET}'}, SECRET, id='dsn-key'),
    pytest.param({'TRDRHUB_LEDGER_DSN': 'postgresql://u@db/x'}, 'postgresql://u@db/x', id='env-dsn-key'),
    pytest.param({'aws_credentials': SECRET}, SECRET, id='credential-key'),
    pytest.param({'routing_key': SECRET}, SECRET, id='pagerduty-routing-key'),
    pytest.param({'slack_webhook_url': 'https://hooks.slack.com/services/T0/B0/' + SECRET}, SECRET, id='webhook-key'),
    pytest.param({'headers': {'Authorization': 'OAuth ' + SECRET}}, SECRET, id='authorization-header'),
    pytest.param({'url': f'https://ops:{SECRET}@api.example/v1'}, SECRET, id='url-credentials'),
    pytest.param({'conn': f"host=db user=ops password='{SECRET}' dbname=x"}, SECRET, id='libpq-password'),
    pytest.param({'msg': f'token: {SECRET}'}, SECRET, id='token-in-text'),
    pytest.param({'msg': f'"api_key": "{SECRET}"'}, SECRET, id='api-key-in-json-text'),
    pytest.param({'cmd': f'curl -H "Authorization: Bearer {SECRET}" x'}, SECRET, id='bearer-in-text'),
    pytest.param({'text': 'post to https://hooks.slack.com/services/T1/B2/' + SECRET}, SECRET, id='slack-url-in-text'),
    pytest.param({'list': [{'deep': [{'password': SECRET}]}]}, SECRET, id='nested'),
    pytest.param({'login_password': NO_LOG_MARKER}, NO_LOG_MARKER, id='ansible-no-log-marker'),
    pytest.param({'msg': f'failed with {NO_LOG_MARKER}'}, NO_LOG_MARKER, id='no-log-marker-in-text'),
])
def test_redaction_removes_every_secret_shape(data, leaked):
    out = Redactor().clean(data)
    assert leaked not in json.dumps(out)


def test_known_secrets_are_masked_wherever_they_appear():
    redactor = Redactor([SECRET])
    out = redactor.redact({'note': f'pw {SECRET} again {SECRET}', 'same': SECRET, 'list': [SECRET]})
    assert out == {'note': 'pw ******** again ********', 'same': REDACTED, 'list': [REDACTED]}


def test_secrets_learned_from_secret_keys_are_masked_elsewhere():
    out = Redactor().clean({'login_password': SECRET, 'msg': f'could not log in with {SECRET}'})
    assert out == {'login_password': REDACTED, 'msg': 'could not log in with ********'}


def test_harmless_values_are_kept():
    data = {'login_user': 'trdrhub_ops', 'sessions': 3, 'update_password': None, 'password_set': True, 'pids': [1, 2],
            'msg': 'terminated 3 sessions', 'url': 'https://status.example/incidents/1', 'empty_password': ''}
    assert Redactor().clean(data) == data


def test_short_secrets_are_redacted_as_values_but_not_searched_in_text():
    redactor = Redactor(['ab'])
    assert redactor.redact({'x': 'ab', 'y': 'about'}) == {'x': REDACTED, 'y': 'about'}


@pytest.mark.parametrize('key, secret', [
    ('login_password', True), ('dsn', True), ('ledger_dsn', True), ('ansible_become_pass', True), ('auth', True),
    ('login_user', False), ('dsname', False), ('passive', False), ('bypass_host_loop', False), ('author', False),
    ('rotate_secrets_login_password', True), ('rotate_secrets_key', True), ('webhook_url', True),
    # about a secret, not the secret: the role whose password is rotated, where it is kept, its type
    ('rotate_secrets_role', False), ('rotate_secrets_path', False), ('secret_type', False),
    ('vault_password_file', False), ('rotate_secrets_k8s_namespace', False), ('secret_id', True),
])
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_values_about_a_secret_stay_readable_and_are_not_masked_elsewhere():
    redactor = Redactor()
    variables = {'rotate_secrets_role': 'trdrhub_app', 'rotate_secrets_path': '/srv/inventory/app.env',
                 'rotate_secrets_login_password': 'S3cret-Pw-42'}
    for name, value in variables.items():
        if is_secret_key(name):
            redactor.learn(value, secret=True)
    out = redactor.redact({**variables, 'msg': 'rotated trdrhub_app in /srv/inventory/app.env with S3cret-Pw-42'})
    assert out['rotate_secrets_role'] == 'trdrhub_app' and out['rotate_secrets_path'] == '/srv/inventory/app.env'
    assert out['rotate_secrets_login_password'] == REDACTED
    assert 'trdrhub_app in /srv/inventory/app.env' in out['msg'] and 'S3cret-Pw-42' not in out['msg']


# -- the one opener --------------------------------------------------------------------------------
def test_connect_opens_the_file_ledger_the_options_name(tmp_path):
    ledger = _ledger.connect({'root': 'incidents'}, base_dir=str(tmp_path), env={})
    assert isinstance(ledger, _ledger.FileLedger) and ledger.root == str(tmp_path / 'incidents')
    with pytest.raises(_ledger.LedgerError, match="ledger backend 'tape' is not one of file, postgres"):
        _ledger.connect({'backend': 'tape'}, env={})


def _refuse(attempts):
    def refuse(params):
        attempts.append(params)
        raise PgConnectionError('Cannot connect to PostgreSQL at db:5432: connection refused')
    return refuse


def test_open_ledger_names_the_table_a_connection_failure_was_for(monkeypatch):
    monkeypatch.setattr(_ledger, 'PSYCOPG2', _ledger.PSYCOPG2._replace(present=True))
    monkeypatch.setattr(_ledger, 'PgClient', _refuse([]))
    with pytest.raises(_ledger.LedgerError, match='^Cannot open the incident ledger table ops.ledger: Cannot connect to PostgreSQL'):
        with _ledger.open_ledger({'backend': 'postgres', 'table': 'ops.ledger'}, env={}):
            pass


def test_the_ledger_cache_opens_each_ledger_once_and_pauses_after_a_failure(tmp_path, monkeypatch):
    cache = _ledger.LedgerCache(retry_after=30.0)
    first = cache.get({'backend': 'file', 'root': str(tmp_path)}, {})
    assert cache.get({'backend': 'file', 'root': str(tmp_path)}, {}) is first
    assert cache.get({'backend': 'file', 'root': str(tmp_path / 'other')}, {}) is not first
    attempts: list = []
    monkeypatch.setattr(_ledger, 'PSYCOPG2', _ledger.PSYCOPG2._replace(present=True))
    monkeypatch.setattr(_ledger, 'PgClient', _refuse(attempts))
    with pytest.raises(PgConnectionError, match='^Cannot connect to PostgreSQL'):
        cache.get({'backend': 'postgres', 'dsn': 'host=db'}, {})
    with pytest.raises(_ledger.LedgerError, match='^the ledger database was unreachable moments ago; the next attempt is 30s away'):
        cache.get({'backend': 'postgres', 'dsn': 'host=db'}, {})
    assert len(attempts) == 1 and attempts[0]['dsn'] == 'host=db'
    cache.close()   # nothing was opened: nothing to close
