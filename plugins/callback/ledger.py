# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ledger
type: notification
short_description: Record every task of an incident playbook in the hash-chained incident ledger
version_added: 1.0.0
author:
  - TRDR Hub SRE (@trdrhub)
description:
  - Appends one ledger entry per task result (ok, changed, failed, unreachable and, unless O(record_skipped=false),
    skipped) and one at the start and at the end of the playbook run, to the ledger of the incident the task belongs
    to. Entries are hash-chained, so removing, editing or reordering one is detected by
    M(trdrhub.incident.audit_chain_verify).
  - "The incident is the first non-empty one of the variables C(trdrhub_incident_id), C(incident_id) and
    C(trdrhub_run_incident_id) of the task's host (any variable source: extra vars, inventory, play, role, set_fact),
    else O(incident_id). C(trdrhub_run_incident_id) is set by a role that chooses or generates the incident id of its
    run (C(contain_db)); no role's own variable is read. A task result without an incident id is NOT recorded: the callback warns once and repeats at
    the end how many results went unrecorded. It never invents an id."
  - "A playbook that acts on an existing incident sets C(trdrhub_incident_must_exist: true): the results of an incident
    that has no ledger yet (a mistyped id) are then not recorded, so no incident is created by mistake; the playbook
    itself refuses such an id in its first task."
  - "A playbook that only reads an incident (C(status.yml)) sets C(trdrhub_ledger_read_only: true): its task results
    are not recorded."
  - Each entry holds the actor (AWX/Tower user, Rundeck user, else the operating-system user), host, play, task, the
    module's FQCN, changed/failed, the task's arguments with every secret removed, and a short result summary
    (status, message, return code, number of items or sessions). The phase is the C(trdrhub_phase) variable, else
    inferred from the role or playbook name (C(contain_db) is V(contain), C(verify_audit) is V(verify)).
  - "Never recorded: the values of C(no_log) options (AnsibleModule's sanitised C(invocation) is used and redacted
    again), anything of a task with C(no_log: true) (its arguments become C(<censored: no_log task>), its result is
    dropped), the values of variables whose names look secret wherever they appear, passwords in URLs and
    connection strings, and the values of extra variables (only their names are recorded)."
  - Internal actions are not recorded - O(skip_actions), by default C(set_fact), C(include_*), C(import_*) and
    C(meta) - and neither is a successful M(trdrhub.incident.ledger_record), which writes its own entry.
  - A run in check mode records nothing unless O(record_check_mode=true).
  - "A ledger that cannot be written never stops the play: an incident must not be left half contained because the
    record keeper failed. Every entry that could not be written is reported with an error at once, and the end of the
    run repeats how many were lost and why. The last line of the run names each ledger written, the number of
    entries and its head (sequence number and hash)."
requirements:
  - Enabled with C(callbacks_enabled = trdrhub.incident.ledger) in C(ansible.cfg) or E(ANSIBLE_CALLBACKS_ENABLED).
  - psycopg2 on the controller for O(backend=postgres).
options:
  backend:
    description:
      - V(file) appends to C(<dir>/<incident_id>/ledger.jsonl), serialised with a file lock.
      - V(postgres) appends to O(table) in the database of O(dsn), serialised with an advisory lock.
    type: str
    choices: [file, postgres]
    default: file
    env:
      - name: TRDRHUB_LEDGER_BACKEND
    ini:
      - section: callback_trdrhub_ledger
        key: backend
  dir:
    description:
      - The incidents home, for the V(file) backend - the directory holding one sub-directory per incident.
      - "The same rule everywhere in the collection (C(docs/ledger.md)): E(TRDRHUB_LEDGER_DIR), else the inventory
        variable C(trdrhub_incidents_dir) of the task's host, else C($XDG_STATE_HOME/trdrhub-incident/incidents)
        (C(~/.local/state/trdrhub-incident/incidents)). Never the playbook's directory or the current directory."
      - A relative E(TRDRHUB_LEDGER_DIR) is taken from the current directory, a relative C(trdrhub_incidents_dir)
        from the inventory's directory.
    type: str
    env:
      - name: TRDRHUB_LEDGER_DIR
  dsn:
    description:
      - libpq connection string or URL of the ledger database, for the V(postgres) backend.
      - A secret - only taken from the environment, never from C(ansible.cfg); never shown in messages.
    type: str
    env:
      - name: TRDRHUB_LEDGER_DSN
  table:
    description:
      - Ledger table (V(name) or V(schema.name)) for the V(postgres) backend; created when it does not exist.
    type: str
    default: trdrhub_incident_ledger
    env:
      - name: TRDRHUB_LEDGER_TABLE
    ini:
      - section: callback_trdrhub_ledger
        key: table
  incident_id:
    description:
      - Incident for task results whose host has none of the incident variables.
    type: str
    env:
      - name: TRDRHUB_INCIDENT_ID
  record_skipped:
    description:
      - Record skipped tasks too, with C(data.status=skipped) and the skip reason. A skipped guard is evidence of the
        path the play took.
    type: bool
    default: true
    env:
      - name: TRDRHUB_LEDGER_RECORD_SKIPPED
    ini:
      - section: callback_trdrhub_ledger
        key: record_skipped
  record_check_mode:
    description:
      - "A run in check mode (C(--check)) writes nothing by default: no ledger entry, no incident directory. A team that
        must record every look at an incident sets this to V(true): entries of check-mode runs are then appended, marked
        with C(data.dry_run=true), and only to the ledger of an incident that already has one - a dry run never creates
        an incident."
    type: bool
    default: false
    env:
      - name: TRDRHUB_LEDGER_RECORD_CHECK_MODE
    ini:
      - section: callback_trdrhub_ledger
        key: record_check_mode
  skip_actions:
    description:
      - Actions never recorded. Short names mean C(ansible.builtin.<name>).
    type: list
    elements: str
    default: [set_fact, include_tasks, include_role, import_tasks, import_role, meta]
    env:
      - name: TRDRHUB_LEDGER_SKIP_ACTIONS
    ini:
      - section: callback_trdrhub_ledger
        key: skip_actions
  connect_timeout:
    description:
      - Seconds to wait for the ledger database. After a failed connection the callback waits 30 seconds before it tries
        again, so an unreachable database slows the play down once, not at every task.
    type: int
    default: 5
    env:
      - name: TRDRHUB_LEDGER_CONNECT_TIMEOUT
    ini:
      - section: callback_trdrhub_ledger
        key: connect_timeout
"""

import collections
import json
import os
import socket
import typing as t
import uuid

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ANSIBLE_VERSION
from ansible.template import Templar
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    ENV_VAR,
    HOME_VARIABLES,
    incidents_home,
    ledger_lines,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
    is_secret_key,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_micro
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    PHASES,
    PSYCOPG2,
    RECORD_MODULE,
    LedgerCache,
    LedgerError,
    detect_actor,
    validate_incident_id,
)

INCIDENT_VARS = ('trdrhub_incident_id', 'incident_id', 'trdrhub_run_incident_id')
# Set by playbooks that act on an existing incident: results of an incident without a ledger are not recorded.
EXISTING_ONLY_VAR = 'trdrhub_incident_must_exist'
READ_ONLY_VAR = 'trdrhub_ledger_read_only'
NO_LOG_ARGS = '<censored: no_log task>'
RUN_ENV = 'TRDRHUB_LEDGER_RUN'
MSG_MAX = 500
RETRY_AFTER = 30.0
# Role or playbook name fragments -> phase, first match wins.
PHASE_HINTS = (
    ('review', ('review', 'postmortem', 'post_mortem', 'retro')),
    ('communicate', ('communicat', 'notify', 'statuspage', 'slack', 'pagerduty', 'announce')),
    ('verify', ('verify', 'audit', 'check_health', 'healthcheck')),
    ('recover', ('recover', 'restore', 'rollback', 'failover')),
    ('contain', ('contain', 'terminate', 'isolate', 'block')),
    ('investigate', ('investigat', 'diagnos', 'forensic', 'evidence')),
    ('triage', ('triage',)),
    ('detect', ('detect', 'alert')),
)
_RESULT_INTERNAL = frozenset(('invocation', 'warnings', 'deprecations', 'exception', 'results', 'diff'))


def infer_phase(name: str | None) -> str | None:
    name = os.path.basename(str(name or '')).lower()
    for phase, hints in PHASE_HINTS:
        if any(hint in name for hint in hints):
            return phase
    return None


def canonical_action(action: str | None) -> str:
    """``set_fact``, ``ansible.legacy.set_fact`` and ``ansible.builtin.set_fact`` are the same action."""
    action = str(action or '')
    if '.' not in action:
        return f'ansible.builtin.{action}'
    if action.startswith('ansible.legacy.'):
        return 'ansible.builtin.' + action.rsplit('.', 1)[1]
    return action


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'trdrhub.incident.ledger'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: t.Any = None, options: t.Any = None) -> None:
        super().__init__(display=display, options=options)
        self.run_id = uuid.uuid4().hex[:12]
        # ledger_record (forked workers) adds it to its entries, tying explicit events to this run.
        os.environ[RUN_ENV] = self.run_id
        self.redactor = Redactor()
        self.playbook_path: str | None = None
        self.started_at = iso_micro()
        self.play: t.Any = None
        self.actor, self.provenance = detect_actor()
        self.extra_var_names: list[str] = []
        self.written: dict[str, dict[str, t.Any]] = {}   # incident -> location, entries, head
        self.pending: dict[str, list[tuple[str, dict[str, t.Any]]]] = {}   # host -> results without an incident id
        self.lost: collections.Counter[str] = collections.Counter()
        self.unknown: collections.Counter[str] = collections.Counter()   # incident -> results not recorded
        self.held: dict[str, list[dict[str, t.Any]]] = {}   # incident without a ledger -> idle results so far
        self.unopened: set[str] = set()   # incidents without a ledger, left alone by a recorded dry run
        self._learned: set[tuple[t.Any, ...]] = set()
        self._ledgers = LedgerCache(RETRY_AFTER)

    # ---------------------------------------------------------------- ansible events

    def v2_playbook_on_start(self, playbook: t.Any) -> None:
        self.playbook_path = getattr(playbook, '_file_name', None)
        self.started_at = iso_micro()

    def v2_playbook_on_play_start(self, play: t.Any) -> None:
        self.play = play
        try:
            extra = dict(play.get_variable_manager().extra_vars)
        except Exception:   # pylint: disable=broad-exception-caught
            extra = {}
        self.actor, self.provenance = detect_actor(os.environ, extra)
        self.extra_var_names = sorted(str(k) for k in extra)

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record(result, 'changed' if result.is_changed() else 'ok')

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record(result, 'failed', ignored=ignore_errors)

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._record(result, 'unreachable')

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        if self.get_option('record_skipped'):
            self._record(result, 'skipped')

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        try:
            self._finish(stats)
        except Exception as exc:   # pylint: disable=broad-exception-caught
            self._display.error(f'trdrhub.incident.ledger: could not close the ledger: {self._reason(exc)}')
        finally:
            self._ledgers.close()

    # ---------------------------------------------------------------- recording

    def _record(self, result: t.Any, status: str, ignored: bool = False) -> None:
        """Never raises: a ledger failure is reported, the play goes on."""
        task, host = result.task, result.host.get_name()
        what = f'task "{task.get_name()}" on {host}'
        if self._dry_run() and not self.get_option('record_check_mode'):
            return
        try:
            action = self._action(task)
            if action in {canonical_action(a) for a in self.get_option('skip_actions') or []}:
                return
            if action == RECORD_MODULE and status != 'failed':
                if status != 'skipped' and not self._check_mode(task):
                    self._count_recorded(result.result)
                return   # ledger_record wrote its own entry
            variables = self._variables(result.host, task)
            if bool(self._render(variables.get(READ_ONLY_VAR), variables)):
                return   # a playbook that only reads the incident (status.yml) is not part of its record
            self._learn(variables, result.host, task)
            fields = self._task_fields(result, status, ignored, action, variables)
            incident = self._incident(variables)
            home = self._home(variables)
            existing_only = bool(self._render(variables.get(EXISTING_ONLY_VAR), variables))
        except Exception as exc:   # pylint: disable=broad-exception-caught
            self._lost(what, self._reason(exc))
            return
        if incident is None:
            # Held until this host has an incident id (contain_db chooses one in its first tasks);
            # observed_at keeps when it happened, ts will say when it was written.
            fields['data']['observed_at'] = iso_micro()
            self.pending.setdefault(host, []).append((what, fields))
            return
        for earlier, held in self.pending.pop(host, []):
            self._append(incident, held, earlier, home, existing_only)
        self._append(incident, fields, what, home, existing_only)

    def _append(self, incident: str, fields: dict[str, t.Any], what: str, home: str | None = None,
                existing_only: bool = False) -> None:
        try:
            incident = validate_incident_id(incident)
            if incident in self.unopened:
                return
            if incident not in self.written:
                if self._dry_run() and self._ledger(home).head(incident) is None:
                    self.unopened.add(incident)   # a dry run never creates an incident
                    return
                if self._ledger(home).head(incident) is None:
                    if existing_only:
                        self.unknown[incident] += 1   # acting on an existing incident never creates one (a mistyped id)
                        return
                    if self._idle(fields):
                        # A skipped check or an argument validation alone does not open an incident's ledger;
                        # it is written, in order, when something else happens to this incident.
                        self.held.setdefault(incident, []).append(fields)
                        return
                self._write(incident, self._start_fields(), home)
                for earlier in self.held.pop(incident, []):
                    self._write(incident, earlier, home)
            self._write(incident, fields, home)
        except Exception as exc:   # pylint: disable=broad-exception-caught
            self._lost(f'{what} (incident {incident})', self._reason(exc))

    @staticmethod
    def _idle(fields: t.Mapping[str, t.Any]) -> bool:
        return fields.get('module') == 'ansible.builtin.validate_argument_spec' or fields['data'].get('status') == 'skipped'

    def _write(self, incident: str, fields: dict[str, t.Any], home: str | None = None) -> dict[str, t.Any]:
        # An incident stays in the ledger its first entry of this run went to.
        ledger = self.written[incident]['ledger'] if incident in self.written else self._ledger(home)
        entry = ledger.append(incident, fields)
        state = self.written.setdefault(incident, {'location': ledger.location(incident), 'entries': 0, 'ledger': ledger,
                                                   'seqs': set()})
        state['entries'] += 1
        state['seqs'].add(entry['seq'])
        state['head'] = (entry['seq'], entry['hash'])
        return entry

    def _run_entries(self, incident: str, state: t.Mapping[str, t.Any], pending: int = 0) -> int:
        """Entries this run wrote to the incident's ledger: this callback's, and those modules (ledger_record, the
        approval gate, the incident record) appended with this run's id - never what another run appended meanwhile.
        ``pending`` entries are about to be written. When the ledger cannot be read, the entries this callback saw."""
        seqs = set(state['seqs'])
        try:
            seqs.update(self._seqs_of_this_run(incident, state['ledger']))
        except Exception:   # pylint: disable=broad-exception-caught
            pass   # the count stays what this callback wrote and saw recorded
        return len(seqs) + pending

    def _seqs_of_this_run(self, incident: str, ledger: t.Any) -> set[int]:
        """The sequence numbers of the incident's entries whose ``data.run`` is this run's id."""
        if getattr(ledger, 'backend', 'file') == 'postgres':
            table = ledger.ident.as_string(ledger.client.conn)
            rows = ledger.client.query(f"SELECT seq FROM {table} WHERE incident_id = %s AND entry->'data'->>'run' = %s",
                                       (incident, self.run_id))
            return {row['seq'] for row in rows}
        found = set()
        for _number, line in ledger_lines(ledger.location(incident)):
            try:
                entry = json.loads(line)
            except ValueError:
                continue   # not an entry: audit_chain_verify reports it
            data = entry.get('data') if isinstance(entry, dict) else None
            if isinstance(data, dict) and data.get('run') == self.run_id:
                found.add(entry.get('seq'))
        return found

    def _count_recorded(self, res: t.Mapping[str, t.Any]) -> None:
        """An entry ledger_record appended to this callback's ledger counts in this run's summary."""
        entry = res.get('entry')
        if not isinstance(entry, dict):
            return
        incident = entry.get('incident_id')
        state = self.written.get(incident)
        if state is not None and state['location'] == res.get('ledger'):
            state['entries'] += 1
            state['seqs'].add(entry.get('seq'))
            if entry.get('seq', 0) > state['head'][0]:
                state['head'] = (entry['seq'], entry['hash'])

    def _home(self, variables: t.Mapping[str, t.Any]) -> str:
        """The incidents home of this host (module_utils/_common/incidents_home.py)."""
        env = dict(os.environ, **{ENV_VAR: self.get_option('dir') or ''})
        wanted = {name: self._render(variables.get(name), variables) for name in HOME_VARIABLES}
        return incidents_home(env, wanted)[0]

    def _ledger(self, home: str | None = None) -> t.Any:
        """The ledger of this incidents home (file backend) or the ledger database, opened once per run."""
        if self.get_option('backend') != 'postgres':
            home = home or incidents_home(dict(os.environ, **{ENV_VAR: self.get_option('dir') or ''}), {})[0]
            return self._ledgers.get({'backend': 'file', 'root': home}, {})
        if not PSYCOPG2.present:
            raise LedgerError('the postgres ledger backend needs psycopg2 on the controller')
        if not self.get_option('dsn'):
            raise LedgerError('backend postgres needs TRDRHUB_LEDGER_DSN (the connection string of the ledger database)')
        return self._ledgers.get({'backend': 'postgres', 'dsn': self.get_option('dsn'), 'table': self.get_option('table'),
                                  'connect_timeout': self.get_option('connect_timeout')}, {})

    # ---------------------------------------------------------------- entry content

    def _task_fields(self, result: t.Any, status: str, ignored: bool, action: str,
                     variables: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        task, res = result.task, result.result
        no_log = bool(res.get('_ansible_no_log')) or 'censored' in res or task.no_log is True
        data: dict[str, t.Any] = self._base_data()
        data['status'] = status
        role = task._role.get_name() if task._role else None
        if role:
            data['role'] = role
        if self._check_mode(task):
            data['check_mode'] = True
        delegated = (res.get('_ansible_delegated_vars') or {}).get('ansible_delegated_host')
        if delegated:
            data['delegated_to'] = str(delegated)
        if ignored:
            data['ignored'] = True
        if no_log:
            args: t.Any = NO_LOG_ARGS
        else:
            invocation = (res.get('invocation') or {}).get('module_args')
            raw = invocation if isinstance(invocation, dict) else task.args or {}
            args = self.redactor.clean({k: v for k, v in raw.items() if not str(k).startswith('_ansible_')})
            data.update(self._summary(res))
        return {'event': 'task', 'phase': self._phase(variables, task), 'actor': self.actor,
                'host': result.host.get_name(), 'play': self.play.get_name() if self.play else None,
                'task': task.name or action, 'module': action, 'changed': status == 'changed',
                'failed': status in ('failed', 'unreachable'), 'args': args, 'data': data}

    def _summary(self, res: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        if res.get('msg'):
            msg = self.redactor.text(res['msg'])
            out['msg'] = msg if len(msg) <= MSG_MAX else msg[:MSG_MAX - 3] + '...'
        for key in ('rc', 'skip_reason'):
            if res.get(key) is not None:
                out[key] = self.redactor.redact(res[key])
        if isinstance(res.get('results'), list):
            out['items'] = len(res['results'])
        counts = {str(k): len(v) for k, v in res.items()
                  if isinstance(v, list) and not str(k).startswith('_') and k not in _RESULT_INTERNAL}
        if counts:
            out['counts'] = counts
        return out

    def _base_data(self) -> dict[str, t.Any]:
        data: dict[str, t.Any] = {'run': self.run_id}
        if self._dry_run():
            data['dry_run'] = True
        data.update({k: v for k, v in self.provenance.items() if v is not None})
        return data

    def _start_fields(self) -> dict[str, t.Any]:
        args = context.CLIARGS
        data = self._base_data()
        data.update(
            playbook=self.playbook_path, started_at=self.started_at, check_mode=bool(args.get('check')),
            diff=bool(args.get('diff')), limit=args.get('subset'), tags=list(args.get('tags') or []),
            skip_tags=list(args.get('skip_tags') or []), extra_vars=self.extra_var_names,
            inventory=[self.redactor.text(i) for i in args.get('inventory') or []],
            ansible_version=ANSIBLE_VERSION, controller=socket.gethostname(),
        )
        return {'event': 'playbook_start', 'phase': infer_phase(self.playbook_path), 'actor': self.actor,
                'play': self.play.get_name() if self.play else None, 'args': {}, 'data': data}

    def _finish(self, stats: t.Any) -> None:
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed)}
        for incident in list(self.written):
            data = self._base_data()
            state = self.written[incident]
            data.update(stats=hosts, entries=self._run_entries(incident, state, pending=1),
                        not_recorded=self._unrecorded() + sum(self.lost.values()))
            fields = {'event': 'playbook_end', 'phase': infer_phase(self.playbook_path), 'actor': self.actor,
                      'play': self.play.get_name() if self.play else None, 'args': {}, 'data': data,
                      'changed': any(s.get('changed') for s in hosts.values()),
                      'failed': any(s.get('failures') or s.get('unreachable') for s in hosts.values())}
            self._append(incident, fields, what='the end of the playbook')
        self._report()

    def _report(self) -> None:
        if self._dry_run():
            if not self.get_option('record_check_mode'):
                self._display.display('INCIDENT LEDGER: check mode - nothing recorded '
                                      '(TRDRHUB_LEDGER_RECORD_CHECK_MODE=true records dry runs of existing incidents)')
            for incident in sorted(self.unopened):
                self._display.display(f'INCIDENT LEDGER {incident}: check mode - not recorded, the incident has no ledger '
                                      'and a dry run does not create one')
        for incident, state in self.written.items():
            seq, digest = state['head']
            self._display.display(f'INCIDENT LEDGER {incident}: {self._run_entries(incident, state)} entries written to {state["location"]}; '
                                  f'head seq {seq} hash {digest}')
        if self._unrecorded():
            hosts = ', '.join(sorted(self.pending))
            self._display.warning(f'trdrhub.incident.ledger: {self._unrecorded()} task result(s) of {hosts} were NOT '
                                  'recorded: no incident id (set trdrhub_incident_id or TRDRHUB_INCIDENT_ID).')
        for incident, count in self.unknown.items():
            self._display.warning(f'trdrhub.incident.ledger: {count} task result(s) of incident {incident} were not '
                                  'recorded: it has no record, and this playbook acts on existing incidents only, so '
                                  'no ledger was created for it.')
        if self.lost:
            reasons = '; '.join(f'{n}x {reason}' for reason, n in self.lost.most_common(3))
            self._display.error(f'trdrhub.incident.ledger: {sum(self.lost.values())} ledger entries were NOT '
                                f'recorded, the ledger is incomplete for this run: {reasons}')

    # ---------------------------------------------------------------- variables

    def _variables(self, host: t.Any, task: t.Any) -> dict[str, t.Any]:
        if self.play is None:
            return {}
        return self.play.get_variable_manager().get_vars(play=self.play, host=host, task=task, include_hostvars=False)

    def _render(self, value: t.Any, variables: t.Mapping[str, t.Any]) -> t.Any:
        if not isinstance(value, str) or ('{{' not in value and '{%' not in value):
            return value
        try:
            return Templar(loader=self.play.get_loader(), variables=variables).template(value)
        except Exception:   # pylint: disable=broad-exception-caught
            return None

    def _incident(self, variables: t.Mapping[str, t.Any]) -> str | None:
        for name in INCIDENT_VARS:
            value = self._render(variables.get(name), variables)
            if value not in (None, ''):
                return str(value)
        return self.get_option('incident_id') or None

    def _phase(self, variables: t.Mapping[str, t.Any], task: t.Any) -> str | None:
        phase = self._render(variables.get('trdrhub_phase'), variables)
        if phase in PHASES:
            return phase
        role = task._role.get_name(include_role_fqcn=False) if task._role else None
        return infer_phase(role) or infer_phase(self.playbook_path)

    def _learn(self, variables: t.Mapping[str, t.Any], host: t.Any, task: t.Any) -> None:
        """Learn the values of secret-looking variables once per play, host and role."""
        key = (id(self.play), host.get_name(), task._role.get_name() if task._role else None)
        if key in self._learned:
            return
        self._learned.add(key)
        for name, value in variables.items():
            if is_secret_key(name) and value not in (None, ''):
                rendered = self._render(value, variables)
                self.redactor.learn(rendered, secret=True)

    @staticmethod
    def _dry_run() -> bool:
        """The whole run is in check mode (--check)."""
        return bool(context.CLIARGS.get('check'))

    @staticmethod
    def _check_mode(task: t.Any) -> bool:
        return task.check_mode if isinstance(task.check_mode, bool) else bool(context.CLIARGS.get('check'))

    @staticmethod
    def _action(task: t.Any) -> str:
        resolved = getattr(task, '_resolved_action', None)
        if not resolved and '{' not in str(task.action):
            try:
                resolved = task.resolved_action
            except Exception:   # pylint: disable=broad-exception-caught
                resolved = None
        return canonical_action(resolved or task.action)

    # ---------------------------------------------------------------- failures

    def _unrecorded(self) -> int:
        return sum(len(held) for held in self.pending.values())

    def _lost(self, what: str, reason: str) -> None:
        self.lost[reason[:300]] += 1
        self._display.error(f'trdrhub.incident.ledger: NOT recorded: {what}: {reason}')

    def _reason(self, exc: BaseException) -> str:
        text = str(exc) if isinstance(exc, TrdrhubError) else f'{type(exc).__name__}: {exc}'
        return self.redactor.text(text)
