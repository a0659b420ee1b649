# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trdrhub.incident.ledger callback, fed with fake task results (no ansible-playbook run).

The fakes carry just what the callback reads from Ansible's objects: a task (name, action,
args, no_log, role), a host, a play with a variable manager, and a result dict.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.trdrhub.incident.plugins.callback import ledger as ledger_cb
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger import ledger as _ledger

SECRET = 'Pg-Ops-Secret-7d1e'
NO_LOG_MARKER = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


class FakeDisplay:
    verbosity = 0

    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def display(self, msg, **kw):
        self.lines.append(('display', msg))

    def warning(self, msg, **kw):
        self.lines.append(('warning', msg))

    def error(self, msg, **kw):
        self.lines.append(('error', msg))

    def vvvv(self, msg, **kw):
        pass

    def of(self, kind):
        return [msg for k, msg in self.lines if k == kind]


class FakeRole:
    def __init__(self, name):
        self.name = name

    def get_name(self, include_role_fqcn=True):
        return f'trdrhub.incident.{self.name}' if include_role_fqcn else self.name


class FakeTask:
    def __init__(self, name, action, args=None, no_log=None, role=None, check_mode=None):
        self.name = name
        self.action = action
        self._resolved_action = action if '.' in action else f'ansible.builtin.{action}'
        self.args = args or {}
        self.no_log = no_log
        self._role = FakeRole(role) if role else None
        self.check_mode = check_mode

    def get_name(self, include_role_fqcn=True):
        return f'{self._role.get_name(include_role_fqcn)} : {self.name}' if self._role else self.name


class FakeHost:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeVars:
    def __init__(self, host_vars, extra):
        self.host_vars = host_vars
        self.extra_vars = extra

    def get_vars(self, play=None, host=None, task=None, include_hostvars=True):
        return dict(self.host_vars.get(host.get_name(), {}), **self.extra_vars)


class FakePlay:
    def __init__(self, host_vars=None, extra=None, name='Contain runaway PostgreSQL sessions'):
        self.vm = FakeVars(host_vars or {}, extra or {})
        self.name = name

    def get_name(self):
        return self.name

    def get_variable_manager(self):
        return self.vm

    def get_loader(self):
        return None


class FakeResult:
    def __init__(self, task, host, result, changed=False):
        self.task, self.host, self.result, self._changed = task, FakeHost(host), result, changed

    def is_changed(self):
        return self._changed


class FakeStats:
    def __init__(self, hosts):
        self.processed = {h: 1 for h in hosts}

    def summarize(self, host):
        return {'ok': 2, 'changed': 1, 'failures': 0, 'unreachable': 0, 'skipped': 0, 'rescued': 0, 'ignored': 0}


class FakePlaybook:
    def __init__(self, path, basedir):
        self._file_name = path
        self._basedir = basedir


OPTIONS = {'backend': 'file', 'dir': None, 'dsn': None, 'table': 'trdrhub_incident_ledger', 'incident_id': None,
           'record_skipped': True, 'record_check_mode': False,
           'skip_actions': ['set_fact', 'include_tasks', 'include_role', 'import_tasks', 'import_role', 'meta'],
           'connect_timeout': 5}


@pytest.fixture
def callback(tmp_path, monkeypatch):
    """A callback writing to tmp_path, in a run of playbooks/contain_db.yml with incident INC-1 on host db1."""
    monkeypatch.setattr(_ledger.getpass, 'getuser', lambda: 'oncall')
    for var in ('AWX_USER_NAME', 'TOWER_USER_NAME', 'AWX_JOB_ID', 'RD_JOB_USERNAME', 'RD_JOB_EXECID', 'SUDO_USER'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('TRDRHUB_LEDGER_RUN', 'outer')   # restored after the test
    display = FakeDisplay()
    cb = ledger_cb.CallbackModule(display=display)
    cb._plugin_options = dict(OPTIONS, dir=str(tmp_path))
    cb.display_ = display
    cb.v2_playbook_on_start(FakePlaybook('playbooks/contain_db.yml', str(tmp_path / 'playbooks')))
    cb.v2_playbook_on_play_start(FakePlay({'db1': {'trdrhub_incident_id': 'INC-1', 'contain_db_login_password': SECRET}},
                                          {'contain_db_confirm': True}))
    return cb


def entries(tmp_path, incident='INC-1'):
    path = tmp_path / incident / 'ledger.jsonl'
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def check_chain(items):
    prev = None
    for seq, entry in enumerate(items, start=1):
        body = {k: v for k, v in entry.items() if k != 'hash'}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode())
        assert (entry['seq'], entry['prev_hash'], entry['hash']) == (seq, prev, digest.hexdigest())
        prev = entry['hash']


def pg_task(**kw):
    return FakeTask('Inspect | Read database statistics', 'trdrhub.incident.pg_activity_info',
                    args={'long_running_threshold': '{{ contain_db_min_duration }}'}, role='contain_db', **kw)


def test_a_task_result_is_recorded_after_a_playbook_start(callback, tmp_path):
    res = {'changed': False, 'sessions': [{'pid': 1}, {'pid': 2}], 'queries': ['SELECT 1'],
           'invocation': {'module_args': {'login_user': 'trdrhub_ops', 'login_password': NO_LOG_MARKER,
                                          'long_running_threshold': 3.0}}}
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', res))
    start, task = entries(tmp_path)
    check_chain([start, task])
    assert start['event'] == 'playbook_start' and start['phase'] == 'contain'
    assert start['data']['playbook'] == 'playbooks/contain_db.yml' and start['data']['extra_vars'] == ['contain_db_confirm']
    assert start['data']['run'] == callback.run_id and start['actor'] == 'local:oncall'
    assert task['event'] == 'task' and task['module'] == 'trdrhub.incident.pg_activity_info'
    assert (task['host'], task['play'], task['task']) == ('db1', 'Contain runaway PostgreSQL sessions',
                                                          'Inspect | Read database statistics')
    assert (task['changed'], task['failed'], task['phase']) == (False, False, 'contain')
    assert task['args'] == {'login_user': 'trdrhub_ops', 'login_password': '<redacted>', 'long_running_threshold': 3.0}
    assert task['data']['counts'] == {'sessions': 2, 'queries': 1}
    assert task['data']['status'] == 'ok' and task['data']['role'] == 'trdrhub.incident.contain_db'


def test_a_no_log_task_keeps_neither_arguments_nor_result(callback, tmp_path):
    task = FakeTask('Use the secret', 'ansible.builtin.command', args={'cmd': f'echo {SECRET}'}, no_log=True)
    censored = {'censored': "the output has been hidden due to the fact that 'no_log: true' was specified",
                'changed': True, '_ansible_no_log': True}
    callback.v2_runner_on_ok(FakeResult(task, 'db1', censored, changed=True))
    callback.v2_runner_on_failed(FakeResult(task, 'db1', dict(censored, failed=True, msg=f'boom {SECRET}')))
    recorded = entries(tmp_path)[1:]
    assert [e['args'] for e in recorded] == ['<censored: no_log task>'] * 2
    assert [e['data']['status'] for e in recorded] == ['changed', 'failed']
    assert all('msg' not in e['data'] for e in recorded)
    assert SECRET not in (tmp_path / 'INC-1' / 'ledger.jsonl').read_text()


def test_without_invocation_the_task_args_are_redacted(callback, tmp_path):
    task = FakeTask('Call the API', 'ansible.builtin.uri',
                    args={'url': f'https://ops:{SECRET}@api.example', 'headers': {'Authorization': 'Bearer abcdefghijkl'},
                          '_ansible_check_mode': False})
    callback.v2_runner_on_failed(FakeResult(task, 'db1', {'failed': True, 'msg': f'401 for {SECRET}'}), ignore_errors=True)
    entry = entries(tmp_path)[-1]
    assert entry['args'] == {'url': 'https://ops:********@api.example', 'headers': {'Authorization': '<redacted>'}}
    assert entry['data']['msg'] == '401 for ********' and entry['data']['ignored'] is True
    assert entry['failed'] is True


def test_a_secret_from_the_variables_is_masked_in_messages(callback, tmp_path):
    task = FakeTask('Show', 'ansible.builtin.debug', args={'msg': '{{ contain_db_login_password }}'})
    callback.v2_runner_on_ok(FakeResult(task, 'db1', {'msg': f'the password is {SECRET}'}))
    assert entries(tmp_path)[-1]['data']['msg'] == 'the password is ********'
    assert SECRET not in (tmp_path / 'INC-1' / 'ledger.jsonl').read_text()


def test_skipped_unreachable_and_internal_actions(callback, tmp_path):
    callback.v2_runner_on_skipped(FakeResult(FakeTask('Gate | Stop', 'ansible.builtin.fail'), 'db1',
                                             {'skipped': True, 'skip_reason': 'Conditional result was False'}))
    callback.v2_runner_on_unreachable(FakeResult(pg_task(), 'db1', {'unreachable': True, 'msg': 'ssh: timeout'}))
    for action in ('set_fact', 'ansible.builtin.include_tasks', 'ansible.legacy.meta'):
        callback.v2_runner_on_ok(FakeResult(FakeTask('internal', action), 'db1', {}))
    skipped, unreachable = entries(tmp_path)[1:]
    assert skipped['data']['status'] == 'skipped' and skipped['data']['skip_reason'] == 'Conditional result was False'
    assert unreachable['data']['status'] == 'unreachable' and unreachable['failed'] is True


def test_skipped_tasks_can_be_left_out(callback, tmp_path):
    callback._plugin_options['record_skipped'] = False
    callback.v2_runner_on_skipped(FakeResult(FakeTask('x', 'ansible.builtin.debug'), 'db1', {'skipped': True}))
    assert entries(tmp_path) == []


def test_ledger_record_is_recorded_only_when_it_failed(callback, tmp_path):
    record = FakeTask('Gate | Record the decision', 'trdrhub.incident.ledger_record', args={'incident_id': 'INC-1'})
    callback.v2_runner_on_ok(FakeResult(record, 'db1', {'changed': False, 'entry': {}}))
    assert entries(tmp_path) == []
    callback.v2_runner_on_failed(FakeResult(record, 'db1', {'failed': True, 'msg': 'Cannot append'}))
    assert entries(tmp_path)[-1]['module'] == 'trdrhub.incident.ledger_record'


def test_results_before_the_incident_id_are_held_then_written(callback, tmp_path):
    callback.play.vm.host_vars['db2'] = {}
    early = FakeTask('Incident | Refuse two different incident ids', 'ansible.builtin.assert')
    callback.v2_runner_on_ok(FakeResult(early, 'db2', {'msg': 'All assertions passed'}))
    assert entries(tmp_path) == []
    callback.play.vm.host_vars['db2'] = {'trdrhub_run_incident_id': 'INC-1'}   # the role chose it (set_fact)
    callback.v2_runner_on_ok(FakeResult(FakeTask('Show', 'ansible.builtin.debug'), 'db2', {'msg': 'Incident INC-1'}))
    start, held, later = entries(tmp_path)
    assert held['task'] == 'Incident | Refuse two different incident ids' and 'observed_at' in held['data']
    assert later['task'] == 'Show'
    check_chain([start, held, later])


def test_results_that_never_get_an_incident_id_are_reported(callback, tmp_path):
    callback.play.vm.host_vars['db3'] = {}
    callback.v2_runner_on_ok(FakeResult(FakeTask('t', 'ansible.builtin.debug'), 'db3', {}))
    callback.v2_runner_on_ok(FakeResult(FakeTask('t', 'ansible.builtin.debug'), 'db3', {}))
    callback.v2_playbook_on_stats(FakeStats(['db3']))
    assert entries(tmp_path) == []
    assert callback.display_.of('warning') == ['trdrhub.incident.ledger: 2 task result(s) of db3 were NOT recorded: '
                                               'no incident id (set trdrhub_incident_id or TRDRHUB_INCIDENT_ID).']
    assert callback.display_.of('display') == []


def test_the_incident_id_from_the_environment_option(callback, tmp_path):
    callback.play.vm.host_vars['db3'] = {}
    callback._plugin_options['incident_id'] = 'INC-ENV'
    callback.v2_runner_on_ok(FakeResult(FakeTask('t', 'ansible.builtin.debug'), 'db3', {}))
    assert len(entries(tmp_path, 'INC-ENV')) == 2


def test_the_end_of_the_playbook_is_recorded_and_summarised(callback, tmp_path):
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    record = FakeTask('Gate | Record the decision', 'trdrhub.incident.ledger_record')
    appended = _ledger.FileLedger(str(tmp_path)).append('INC-1', {'event': 'decision', 'data': {'run': callback.run_id}})
    callback.v2_runner_on_ok(FakeResult(record, 'db1', {'entry': appended, 'ledger': str(tmp_path / 'INC-1' / 'ledger.jsonl')}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    items = entries(tmp_path)
    check_chain(items)
    end = items[-1]
    assert end['event'] == 'playbook_end' and end['data']['entries'] == 4 and end['data']['not_recorded'] == 0
    assert end['data']['stats'] == {'db1': FakeStats(['db1']).summarize('db1')}
    assert (end['changed'], end['failed']) == (True, False)
    assert callback.display_.of('display') == [
        f'INCIDENT LEDGER INC-1: 4 entries written to {tmp_path}/INC-1/ledger.jsonl; head seq 4 hash {end["hash"]}']
    assert callback.display_.of('error') == []


def test_the_summary_counts_the_entries_modules_wrote_during_the_run(callback, tmp_path):
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    ledger = _ledger.FileLedger(str(tmp_path))
    # the approval gate's own entries carry the run's id (TRDRHUB_LEDGER_RUN)
    ledger.append('INC-1', {'event': 'approval', 'data': {'approval': 'request', 'run': callback.run_id}})
    ledger.append('INC-1', {'event': 'approval', 'data': {'approval': 'outcome', 'run': callback.run_id}})
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    items = entries(tmp_path)
    assert len(items) == 6 and items[-1]['data']['entries'] == 6
    assert callback.display_.of('display') == [
        f'INCIDENT LEDGER INC-1: 6 entries written to {tmp_path}/INC-1/ledger.jsonl; head seq 6 hash {items[-1]["hash"]}']


def test_the_summary_leaves_out_what_a_concurrent_run_appended(callback, tmp_path):
    """Another run appends to the same incident while this one lasts: its entries are not this run's."""
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    ledger = _ledger.FileLedger(str(tmp_path))
    for i in range(3):
        ledger.append('INC-1', {'event': 'task', 'data': {'run': 'another-run', 'status': 'ok', 'i': i}})
    ledger.append('INC-1', {'event': 'approval', 'data': {'approval': 'request', 'run': callback.run_id}})
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    items = entries(tmp_path)
    check_chain(items)
    assert len(items) == 8
    mine = [e for e in items if e['data'].get('run') == callback.run_id]
    assert len(mine) == 5 and items[-1]['data']['entries'] == 5   # start, task, approval, task, end
    assert callback.display_.of('display') == [
        f'INCIDENT LEDGER INC-1: 5 entries written to {tmp_path}/INC-1/ledger.jsonl; head seq 8 hash {items[-1]["hash"]}']


def test_a_read_only_playbook_is_not_recorded(callback, tmp_path):
    callback.play.vm.host_vars['db1']['trdrhub_ledger_read_only'] = True
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    assert entries(tmp_path) == [] and callback.display_.of('display') == [] and callback.display_.of('warning') == []


def test_a_ledger_that_cannot_be_written_is_reported_not_raised(callback, tmp_path):
    (tmp_path / 'blocker').write_text('')
    callback._plugin_options['dir'] = str(tmp_path / 'blocker')   # a file, not a directory
    callback._file = None
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    errors = callback.display_.of('error')
    assert len(errors) == 3   # each lost entry, then the summary
    assert errors[0].startswith('trdrhub.incident.ledger: NOT recorded: task "trdrhub.incident.contain_db : Inspect')
    assert 'Cannot create the ledger directory' in errors[0]
    assert errors[-1].startswith('trdrhub.incident.ledger: 2 ledger entries were NOT recorded, the ledger is incomplete')


def test_an_unexpected_error_is_reported_not_raised(callback, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError('disk on fire')
    monkeypatch.setattr(_ledger.FileLedger, 'append', explode)
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    assert 'RuntimeError: disk on fire' in callback.display_.of('error')[0]


def test_a_bad_incident_id_is_reported(callback, tmp_path):
    callback.play.vm.host_vars['db1']['trdrhub_incident_id'] = '../../etc'
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    assert list(tmp_path.iterdir()) == []
    assert "cannot name a ledger" in callback.display_.of('error')[0]


def test_postgres_without_a_dsn_is_reported(callback):
    callback._plugin_options['backend'] = 'postgres'
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    assert 'needs TRDRHUB_LEDGER_DSN' in callback.display_.of('error')[0]


def test_an_unreachable_database_is_retried_after_a_pause(callback, monkeypatch):
    callback._plugin_options.update(backend='postgres', dsn=f'host=127.0.0.1 port=1 password={SECRET}', connect_timeout=1)
    attempts = []

    def refuse(params):
        attempts.append(params)
        raise _ledger.LedgerError('Cannot connect to PostgreSQL at 127.0.0.1:1: connection refused')
    monkeypatch.setattr(_ledger, 'PgClient', refuse)   # the one ledger opener's connection
    for _attempt in range(3):
        callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    assert len(attempts) == 1
    errors = callback.display_.of('error')
    assert len(errors) == 3 and 'moments ago' in errors[1]
    assert all(SECRET not in e for e in errors)


@pytest.mark.parametrize('name, phase', [
    ('contain_db', 'contain'), ('verify_audit', 'verify'), ('triage_api.yml', 'triage'), ('notify_statuspage', 'communicate'),
    ('restore_db', 'recover'), ('postmortem', 'review'), ('collect_evidence', 'investigate'), ('site.yml', None),
])
def test_phase_is_inferred_from_role_or_playbook(name, phase):
    assert ledger_cb.infer_phase(name) == phase


def test_phase_variable_wins(callback, tmp_path):
    callback.play.vm.host_vars['db1']['trdrhub_phase'] = 'triage'
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    assert entries(tmp_path)[-1]['phase'] == 'triage'


def test_the_actor_comes_from_awx_extra_vars(tmp_path, monkeypatch):
    cb = ledger_cb.CallbackModule(display=FakeDisplay())
    cb._plugin_options = dict(OPTIONS, dir=str(tmp_path))
    cb.v2_playbook_on_start(FakePlaybook('pb.yml', str(tmp_path)))
    cb.v2_playbook_on_play_start(FakePlay({'h': {'incident_id': 'INC-9'}}, {'awx_user_name': 'alice', 'awx_job_id': 42}))
    cb.v2_runner_on_ok(FakeResult(FakeTask('t', 'ansible.builtin.ping'), 'h', {'ping': 'pong'}))
    entry = entries(tmp_path, 'INC-9')[-1]
    assert entry['actor'] == 'awx:alice' and entry['data']['job_id'] == '42' and entry['data']['actor_source'] == 'awx'


@pytest.fixture
def dry_run(monkeypatch):
    """The run is ansible-playbook --check."""
    monkeypatch.setattr(ledger_cb.context, 'CLIARGS', {'check': True})


def test_a_check_mode_run_records_nothing_and_says_so(callback, tmp_path, dry_run):
    _ledger.FileLedger(str(tmp_path)).append('INC-1', {'event': 'note'})
    before = (tmp_path / 'INC-1' / 'ledger.jsonl').read_bytes()
    callback.play.vm.host_vars['db2'] = {'trdrhub_incident_id': 'INC-NEW'}
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db2', {}, changed=True))
    callback.v2_runner_on_skipped(FakeResult(pg_task(), 'db1', {'skip_reason': 'Conditional result was False'}))
    callback.v2_playbook_on_stats(FakeStats(['db1', 'db2']))
    assert (tmp_path / 'INC-1' / 'ledger.jsonl').read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['INC-1']
    assert callback.display_.of('display') == [
        'INCIDENT LEDGER: check mode - nothing recorded '
        '(TRDRHUB_LEDGER_RECORD_CHECK_MODE=true records dry runs of existing incidents)']
    assert callback.display_.of('warning') == [] and callback.display_.of('error') == []


def test_recorded_dry_runs_are_marked_and_never_open_an_incident(callback, tmp_path, dry_run):
    callback._plugin_options['record_check_mode'] = True
    _ledger.FileLedger(str(tmp_path)).append('INC-1', {'event': 'note'})
    callback.play.vm.host_vars['db2'] = {'trdrhub_incident_id': 'INC-NEW'}
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {}))
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db2', {}))
    callback.v2_playbook_on_stats(FakeStats(['db1', 'db2']))
    note, start, task, end = entries(tmp_path)
    check_chain([note, start, task, end])
    assert [e['event'] for e in (start, task, end)] == ['playbook_start', 'task', 'playbook_end']
    assert all(e['data']['dry_run'] is True for e in (start, task, end)) and 'dry_run' not in note.get('data', {})
    assert start['data']['check_mode'] is True and task['data']['check_mode'] is True
    assert not (tmp_path / 'INC-NEW').exists()
    assert ('INCIDENT LEDGER INC-NEW: check mode - not recorded, the incident has no ledger and a dry run does not '
            'create one') in callback.display_.of('display')


def test_a_normal_run_is_not_marked_as_a_dry_run(callback, tmp_path):
    callback.v2_runner_on_ok(FakeResult(pg_task(check_mode=True), 'db1', {}))
    start, task = entries(tmp_path)
    assert 'dry_run' not in start['data'] and 'dry_run' not in task['data'] and task['data']['check_mode'] is True


def test_without_the_environment_the_inventory_variable_then_the_default_home_are_used(callback, tmp_path, monkeypatch):
    callback._plugin_options['dir'] = None   # TRDRHUB_LEDGER_DIR unset
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path / 'state'))
    callback.v2_playbook_on_play_start(FakePlay({'db1': {'trdrhub_incident_id': 'INC-1', 'trdrhub_incidents_dir': 'records',
                                                         'inventory_dir': str(tmp_path / 'inv')},
                                                 'db2': {'trdrhub_incident_id': 'INC-2'}}))
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {'changed': False}))
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db2', {'changed': False}))
    assert [e['event'] for e in entries(tmp_path / 'inv' / 'records')] == ['playbook_start', 'task']
    assert [e['event'] for e in entries(tmp_path / 'state' / 'trdrhub-incident' / 'incidents', 'INC-2')] == ['playbook_start', 'task']


def test_a_playbook_for_existing_incidents_never_creates_one(callback, tmp_path):
    callback.v2_playbook_on_play_start(FakePlay({'db1': {'trdrhub_incident_id': 'INC-UX-001', 'trdrhub_incident_must_exist': True},
                                                 'db2': {'trdrhub_incident_id': 'INC-1', 'trdrhub_incident_must_exist': True}}))
    callback.v2_runner_on_failed(FakeResult(pg_task(), 'db1', {'failed': True, 'msg': 'no record'}))
    (tmp_path / 'INC-1').mkdir()
    _ledger.FileLedger(str(tmp_path)).append('INC-1', {'event': 'incident'})
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db2', {'changed': False}))
    callback.v2_playbook_on_stats(FakeStats(['db1', 'db2']))
    assert not (tmp_path / 'INC-UX-001').exists()
    assert [e['event'] for e in entries(tmp_path)] == ['incident', 'playbook_start', 'task', 'playbook_end']
    [warning] = [w for w in callback.display_.of('warning') if 'INC-UX-001' in w]
    assert 'no ledger was created' in warning


def test_skipped_checks_alone_do_not_open_an_incident_ledger(callback, tmp_path):
    check = FakeTask('Fail when no host matches', 'fail', role='preflight')
    callback.v2_runner_on_skipped(FakeResult(check, 'db1', {'skipped': True, 'skip_reason': 'Conditional result was False'}))
    assert not (tmp_path / 'INC-1').exists()
    callback.v2_runner_on_ok(FakeResult(pg_task(), 'db1', {'changed': False}))
    start, skipped, task = entries(tmp_path)
    assert (start['event'], skipped['data']['status'], task['data']['status']) == ('playbook_start', 'skipped', 'ok')


def test_skipped_checks_of_an_unknown_incident_leave_nothing(callback, tmp_path):
    callback.v2_playbook_on_play_start(FakePlay({'db1': {'trdrhub_incident_id': 'INC-UX-001'}}))
    callback.v2_runner_on_skipped(FakeResult(FakeTask('Fail when no host matches', 'fail'), 'db1', {'skipped': True}))
    callback.v2_playbook_on_play_start(FakePlay({'db1': {'trdrhub_incident_id': 'INC-UX-001', 'trdrhub_incident_must_exist': True}}))
    callback.v2_runner_on_failed(FakeResult(pg_task(), 'db1', {'failed': True, 'msg': 'no record'}))
    callback.v2_playbook_on_stats(FakeStats(['db1']))
    assert not (tmp_path / 'INC-UX-001').exists() and callback.unknown == {'INC-UX-001': 1}
