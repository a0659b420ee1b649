# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_terminate_sessions
short_description: Cancel or terminate selected PostgreSQL client sessions, behind guard rails
version_added: 1.0.0
description:
  - Selects PostgreSQL client sessions from C(pg_stat_activity) with filters (database, state, duration, role,
    application, client network, query text, wait event, blockers) and cancels their statement, terminates their
    backend, or cancels first and terminates what is still running after a grace period.
  - Guard rails always apply after the filters and report every session they spare, with the reason. The module never
    signals its own session, non-client backends, superuser sessions (unless O(allow_superuser=true)), sessions of
    O(protected_users) or of O(protected_applications). If more sessions remain than O(max_sessions), it fails without
    signalling anything and returns the matching sessions as evidence.
  - All selected sessions are signalled with one statement; the module then polls C(pg_stat_activity) until they are
    gone (for cancellations, until the statement that was running has ended) and reports survivors.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  mode:
    description:
      - V(cancel) runs C(pg_cancel_backend) - the current statement is cancelled and the connection stays open.
        Cancelling an idle session does nothing.
      - V(terminate) runs C(pg_terminate_backend) - the connection is closed and its transaction rolled back.
      - V(cancel_then_terminate) cancels first, waits up to O(grace) seconds, then terminates the sessions that still
        match the filters.
    type: str
    choices: [cancel, terminate, cancel_then_terminate]
    default: terminate
  grace:
    description:
      - Seconds to wait after C(pg_cancel_backend) for the cancelled statements to end (the session is no longer
        active, or is running a newer statement). Used by O(mode=cancel) and O(mode=cancel_then_terminate).
      - A cancelled session whose statement ended counts as done, whatever the filters now say about it; with
        O(mode=cancel) its backend stays alive by design.
      - Sessions that were idle (or idle in a transaction) when selected have no statement to cancel and are not waited
        for - O(mode=cancel_then_terminate) terminates them at once and O(mode=cancel) reports them as V(survived).
      - Must be V(0) or more.
    type: float
    default: 5
  wait_timeout:
    description:
      - Seconds to wait after C(pg_terminate_backend) for the terminated backends to disappear from
        C(pg_stat_activity). Backends still present afterwards are reported in RV(survivors).
      - Must be V(0) or more.
    type: float
    default: 10
  allow_superuser:
    description:
      - Also signal sessions of superuser roles. Only a superuser login can do that.
    type: bool
    default: false
  protected_applications:
    description:
      - Sessions whose C(application_name) matches one of these shell-style globs are never signalled.
      - Replaces the default list; keep V(trdrhub.incident) in it so that concurrent runs of this collection are spared.
    type: list
    elements: str
    default: [trdrhub.incident, pg_dump, pg_restore, pg_basebackup]
  protected_users:
    description:
      - Sessions of these roles (exact names) are never signalled.
    type: list
    elements: str
    default: []
  max_sessions:
    description:
      - Upper bound on the number of sessions one run may signal. When more sessions pass the filters and guard rails,
        the module fails without signalling anything and returns them in RV(sessions).
      - Must be V(1) or more.
    type: int
    default: 25
  report_activity:
    description:
      - Also return RV(activity), what M(trdrhub.incident.pg_activity_info) returns for the whole server (no filters),
        read before any signal - the "before" picture of a containment, with the evidence in one call.
    type: bool
    default: false
  verify:
    description:
      - After signalling, open a fresh connection and return RV(after) (the activity picture of the server, as for
        O(report_activity)) and RV(remaining) (the sessions the filters select now, O(pids) aside) - the verification
        of a containment, in the same call.
      - Nothing is verified in check mode or when no session was selected.
    type: bool
    default: false
  long_running_threshold:
    description:
      - For RV(activity) and RV(after) - an V(active) session is listed as long-running when its statement has run for
        at least this many seconds. Must be V(0) or more.
    type: float
    default: 60
extends_documentation_fragment:
  - trdrhub.incident.postgres
  - trdrhub.incident.postgres.session_filters
attributes:
  check_mode:
    details:
      - Lists exactly the sessions that would be signalled (RV(sessions[].outcome=would_signal)) and signals nothing.
        No signal is sent inside a transaction to be rolled back - a signal cannot be rolled back.
  diff_mode:
    support: full
    details:
      - Counts of client sessions by state before and after; in check mode the after side is predicted.
notes:
  - At least one filter option must be set; the module refuses to select every client session.
  - The login role needs the C(pg_signal_backend) role (C(GRANT pg_signal_backend TO role)) or superuser to signal
    sessions of other roles; the privilege is checked before anything is signalled. Without superuser it can never
    signal a superuser's session.
  - To see other roles' states, timestamps and query texts (which the filters need), the login role needs
    C(pg_read_all_stats) or C(pg_monitor); otherwise those sessions show no state or duration and rarely match.
  - Through a pooler such as PgBouncer the module detects the pooler and fails before signalling anything.
  - With O(mode=cancel_then_terminate), a cancelled statement inside an explicit transaction leaves the session idle
    in an aborted transaction; it counts as cancelled and is not terminated, although it keeps its locks until the
    client rolls back. Use O(mode=terminate) to release locks.
seealso:
  - module: trdrhub.incident.pg_activity_info
  - name: Server signaling functions
    description: PostgreSQL documentation of pg_cancel_backend and pg_terminate_backend.
    link: https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
"""

EXAMPLES = r"""
- name: Preview the idle-in-transaction API sessions, then terminate the previewed ones
  module_defaults:
    trdrhub.incident.pg_terminate_sessions:
      login_host: db-primary.trdrhub.internal
      login_port: 5432  # the PostgreSQL server itself, not PgBouncer on 6543
      login_user: trdrhub_incident
      login_password: "{{ vault_pg_incident_password }}"
      login_db: trdrhub
      databases: [trdrhub]
      users: [trdrhub_app]
      applications: ["trdrhub-api*"]
      states: [idle in transaction]
      min_duration: 300
  block:
    - name: Preview which sessions would be terminated
      trdrhub.incident.pg_terminate_sessions: {}
      check_mode: true
      register: preview

    - name: Terminate those of them that still match, at most 10, and wait for the backends to exit
      trdrhub.incident.pg_terminate_sessions:
        pids: "{{ preview.sessions | map(attribute='pid') | list }}"
        max_sessions: 10
      register: killed

- name: Cancel runaway report queries, terminate whatever is still running 15 seconds later
  trdrhub.incident.pg_terminate_sessions:
    dsn: "{{ vault_pg_incident_dsn }}"
    mode: cancel_then_terminate
    grace: 15
    applications: ["trdrhub-worker*"]
    states: [active]
    min_duration: 120
    query_pattern: '(?i)\breport_'

- name: Terminate the sessions that block others, except the migration job
  trdrhub.incident.pg_terminate_sessions:
    login_unix_socket: /var/run/postgresql
    login_user: postgres
    login_db: trdrhub
    blockers_only: true
    exclude_applications: [alembic*]
    client_addrs: [10.42.0.0/16]

- name: Use module_defaults for the connection of a whole block
  module_defaults:
    group/trdrhub.incident.postgresql:
      login_host: db-primary.trdrhub.internal
      login_user: trdrhub_incident
      login_password: "{{ vault_pg_incident_password }}"
      login_db: trdrhub
  block:
    - name: Terminate sessions of a compromised client host
      trdrhub.incident.pg_terminate_sessions:
        client_addrs: [10.42.7.19/32]
        max_sessions: 50
"""

RETURN = r"""
activity:
  description:
    - The server's activity before any signal, as M(trdrhub.incident.pg_activity_info) returns it without filters -
      C(database), C(server_version), C(ping), C(stats), C(connections), C(sessions), C(long_running),
      C(idle_in_transaction), C(blockers) and C(hidden).
  returned: when O(report_activity=true)
  type: dict
  sample: {"database": "trdrhub", "connections": {"total": 42, "max_connections": 100, "saturation": 0.42}}
after:
  description:
    - The server's activity read over a fresh connection after the signals, in the shape of RV(activity). Its C(ping)
      says whether the database answers a new client.
  returned: when O(verify=true), not in check mode, and sessions were selected
  type: dict
  sample: {"ping": {"ok": true, "latency_ms": 0.4}, "connections": {"total": 12}}
remaining:
  description:
    - The sessions the filters and guard rails select over that fresh connection (O(pids) not applied), in the shape
      of RV(sessions) - empty when the containment holds.
  returned: when O(verify=true), not in check mode, and sessions were selected
  type: list
  elements: dict
  sample: []
changed:
  description:
    - Whether a signal was delivered to at least one session. In check mode, whether any session would be signalled.
  returned: always
  type: bool
  sample: true
matched:
  description: Number of sessions selected by the filters and allowed by the guard rails.
  returned: always
  type: int
  sample: 2
sessions:
  description:
    - The selected sessions and what happened to each.
    - Each has the keys of RV(trdrhub.incident.pg_activity_info#module:sessions) - C(pid) and C(blocking) (int),
      C(datname), C(usename), C(application_name), C(client_addr), C(state) (as it was when the session was selected),
      C(backend_start), C(query_start), C(xact_start), C(state_change), C(wait_event_type), C(wait_event) and C(query)
      (str), C(duration_s) (float) - and C(signal) and C(outcome).
    - Also returned when the module fails because more than O(max_sessions) sessions matched.
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 48213, "usename": "trdrhub_app", "state": "idle in transaction", "duration_s": 412.383,
            "signal": "terminate", "outcome": "terminated"}]
  contains:
    signal:
      description: Signal the module sends (or would send) to this session.
      type: str
      sample: terminate
      choices: [cancel, terminate, cancel_then_terminate]
    outcome:
      description:
        - V(would_signal) in check mode or when the run failed before signalling.
        - V(terminated) the backend exited after C(pg_terminate_backend).
        - V(cancelled) the statement was cancelled (it ended within O(grace)); the session stays connected.
        - V(survived) still present (terminate) or still running the same statement (cancel) after the wait.
        - V(gone) the session ended before it was signalled.
        - V(signal_failed) the server did not signal a backend that still exists.
      type: str
      sample: terminated
      choices: [would_signal, terminated, cancelled, survived, gone, signal_failed]
excluded:
  description: Sessions that matched the filters but were spared by a guard rail.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Backend process id.
      type: int
      sample: 48177
    usename:
      description: Login role of the session.
      type: str
      sample: postgres
    application_name:
      description: Application name of the session.
      type: str
      sample: pg_dump
    reason:
      description: Which guard rail spared it.
      type: str
      sample: "protected application pg_dump (matches 'pg_dump' in protected_applications)"
survivors:
  description: Pids still present (terminate) or still running the cancelled statement (cancel) when the wait ended.
  returned: always
  type: list
  elements: int
  sample: []
hidden:
  description:
    - Client sessions whose details the server hid from the login role, as RV(trdrhub.incident.pg_activity_info#module:hidden)
      describes them - C(sessions) and C(undecided) (int), C(users) (list of str), C(privilege) and C(msg) (str).
  returned: always
  type: dict
  sample: {"sessions": 12, "undecided": 12, "users": ["trdrhub_app"], "privilege": "pg_read_all_stats", "msg": "..."}
queries:
  description:
    - SQL statements the module ran, in order, without parameter values.
    - A statement repeated back to back (polling) is listed once.
  returned: always
  type: list
  elements: str
  sample:
    - "SELECT pid, pg_terminate_backend(pid) AS signalled FROM unnest(%s::integer[]) AS pid"
elapsed_s:
  description: Seconds the module spent, from connecting to the end of the wait.
  returned: always
  type: float
  sample: 0.087
diff:
  description: Client sessions by state before and after (predicted in check mode).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: State -> number of client sessions before.
      type: dict
      sample: {"active": 4, "idle": 31, "idle in transaction": 2}
    after:
      description: State -> number of client sessions after.
      type: dict
      sample: {"active": 4, "idle": 31}
"""

import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgConnectionError, PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.activity import ActivityReport
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_MUTUALLY_EXCLUSIVE, PSYCOPG2, PgClient, postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.sessions import (
    GUARD_ARGS,
    SESSION_FILTER_ARGS,
    Guard,
    SessionFilter,
    check_signal_privilege,
    count_by_state,
    fetch_sessions,
    login_role,
    poll,
    session_view,
    signal,
    still_present,
    still_running,
    visibility,
)

MODES = ['cancel', 'terminate', 'cancel_then_terminate']
IDLE_STATES = ('idle', 'idle in transaction', 'idle in transaction (aborted)', 'disabled')


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(
        SESSION_FILTER_ARGS, GUARD_ARGS,
        mode={'type': 'str', 'choices': MODES, 'default': 'terminate'},
        grace=bounded({'type': 'float', 'default': 5}, minimum=0),
        wait_timeout=bounded({'type': 'float', 'default': 10}, minimum=0),
        report_activity={'type': 'bool', 'default': False},
        verify={'type': 'bool', 'default': False},
        long_running_threshold=bounded({'type': 'float', 'default': 60}, minimum=0),
    )


def predict_after(sessions: list[dict[str, t.Any]], selected: list[dict[str, t.Any]], mode: str) -> dict[str, int]:
    """Session counts by state once the signals have worked, for check-mode diffs.

    A terminated session disappears. A cancelled statement leaves an autocommit
    session idle and an explicit transaction aborted; idle sessions ignore a cancel.
    """
    chosen = {s['pid'] for s in selected}
    after = []
    for session in sessions:
        if session['pid'] not in chosen:
            after.append(session)
        elif mode == 'cancel' and session.get('state') in ('active', 'fastpath function call'):
            implicit = session.get('xact_start') is None or session.get('xact_start') == session.get('query_start')
            after.append(dict(session, state='idle' if implicit else 'idle in transaction (aborted)'))
        elif mode == 'cancel':
            after.append(session)
    return count_by_state(after)


class SessionTerminator(Worker):
    """Select, guard, signal and verify; check mode stops right before the first signal."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> None:
        super().__init__(params, check_mode, diff)
        self.started = time.monotonic()
        self.mode = params.get('mode') or 'terminate'
        self.filter = SessionFilter.from_params(params)
        self.guard = Guard.from_params(params)
        if not self.filter.narrows:
            raise PgInputError(
                'refusing to select every client session: set at least one filter (databases, states, '
                'min_duration, users, exclude_users, applications, exclude_applications, client_addrs, '
                'query_pattern, wait_event_types or blockers_only)')
        self.connect: t.Callable[[dict[str, t.Any]], t.Any] = PgClient   # the verification's fresh connection

    def run(self, client: PgClient) -> dict[str, t.Any]:
        pooler = client.pooler_warning()
        if pooler:
            raise PgConnectionError('Refusing to signal sessions through a connection pooler. ' + pooler)
        sessions = fetch_sessions(client)
        selected, excluded = self.guard.split(self.filter.select(sessions))
        qmax = self.params.get('query_max_length', 200)
        views = {s['pid']: dict(session_view(s, qmax), signal=self.mode, outcome='would_signal') for s in selected}
        hidden = visibility(login_role(client), sessions, self.filter)
        if hidden['msg']:
            self.warnings.append(hidden['msg'])
        result: dict[str, t.Any] = {
            'matched': len(selected), 'excluded': excluded, 'survivors': [], 'queries': client.queries,
            'hidden': hidden}
        if self.params.get('report_activity'):
            result['activity'] = self.activity(client)
        self.guard.enforce_cap(selected, {
            'sessions': list(views.values()), 'excluded': excluded, 'queries': client.queries,
            **({'activity': result['activity']} if 'activity' in result else {})})
        if selected:
            # Read-only, so check mode asks too: a missing privilege shows up in the
            # evidence run, before anyone confirms a termination that cannot happen.
            check_signal_privilege(client, selected)
        if self.check_mode or not selected:
            result['changed'] = bool(selected)
        else:
            outcomes, result['changed'] = self._signal(client, selected)
            for pid, outcome in outcomes.items():
                views[pid]['outcome'] = outcome
            result['survivors'] = sorted(p for p, o in outcomes.items() if o in ('survived', 'signal_failed'))
            if result['survivors']:
                pids = ', '.join(map(str, result['survivors']))
                self.warnings.append(f"{len(result['survivors'])} session(s) survived: pids {pids}")
            if self.params.get('verify'):
                result.update(self.verify())
        result['sessions'] = list(views.values())
        if self.diff:
            if self.check_mode or not selected:
                after = predict_after(sessions, selected, self.mode)
            else:
                after = count_by_state(fetch_sessions(client))
            result['diff'] = {'before': count_by_state(sessions), 'after': after}
        result['elapsed_s'] = round(time.monotonic() - self.started, 3)
        return result

    def activity(self, client: t.Any) -> dict[str, t.Any]:
        """The whole server's activity picture (pg_activity_info without filters) over ``client``."""
        report = ActivityReport({'long_running_threshold': self.params.get('long_running_threshold', 60),
                                 'query_max_length': self.params.get('query_max_length', 200)})
        picture = report.run(client)
        for key in ('changed', 'queries'):
            picture.pop(key, None)
        return picture

    def verify(self) -> dict[str, t.Any]:
        """After the signals, over a fresh connection: the activity picture and what the filters select now.

        A database that refuses the fresh connection is reported (``after.ping.ok`` false), not raised:
        the verification's verdict is the caller's.
        """
        try:
            fresh = self.connect(self.params)
        except PgConnectionError as exc:
            return {'after': {'ping': {'ok': False, 'latency_ms': None}, 'msg': str(exc)}, 'remaining': []}
        try:
            after = self.activity(fresh)
            sessions = fetch_sessions(fresh)
            unpinned = SessionFilter.from_params(dict(self.params, pids=None))
            selected, _excluded = self.guard.split(unpinned.select(sessions))
            qmax = self.params.get('query_max_length', 200)
            return {'after': after, 'remaining': [session_view(s, qmax) for s in selected]}
        finally:
            fresh.close()

    def _signal(self, client: PgClient, selected: list[dict[str, t.Any]]) -> tuple[dict[int, str], bool]:
        """Return (outcome per pid, whether any signal was delivered)."""
        outcomes: dict[int, str] = {}
        changed = False
        to_terminate = selected
        if self.mode in ('cancel', 'cancel_then_terminate'):
            delivered, changed = self._send(client, 'cancel', selected, outcomes)
            # A cancel only interrupts a running statement: idle sessions have none to
            # end, so waiting for them would just burn the grace period.
            running = [s for s in delivered if s.get('state') not in IDLE_STATES]
            matching = poll(lambda: still_running(client, running), self.params.get('grace', 5))
            matching |= {s['pid'] for s in delivered if s.get('state') in IDLE_STATES}
            for session in delivered:
                outcomes[session['pid']] = 'survived' if session['pid'] in matching else 'cancelled'
            to_terminate = [s for s in delivered if s['pid'] in matching]
        if self.mode in ('terminate', 'cancel_then_terminate') and to_terminate:
            delivered, sent = self._send(client, 'terminate', to_terminate, outcomes)
            changed = changed or sent
            present = poll(lambda: still_present(client, delivered), self.params.get('wait_timeout', 10))
            for session in delivered:
                outcomes[session['pid']] = 'survived' if session['pid'] in present else 'terminated'
        return outcomes, changed

    @staticmethod
    def _send(client: PgClient, kind: str, sessions: list[dict[str, t.Any]],
              outcomes: dict[int, str]) -> tuple[list[dict[str, t.Any]], bool]:
        """Signal all sessions at once; record those the server did not signal as gone or failed."""
        sent = signal(client, kind, [s['pid'] for s in sessions])
        delivered = [s for s in sessions if sent.get(s['pid'])]
        missed = [s for s in sessions if not sent.get(s['pid'])]
        alive = still_present(client, missed)
        for session in missed:
            outcomes[session['pid']] = 'signal_failed' if session['pid'] in alive else 'gone'
        return delivered, bool(delivered)


def main() -> None:
    run_module(argument_spec(), lambda module: SessionTerminator(module.params, check_mode=module.check_mode, diff=module._diff),
               lambda module, terminator: PgClient(module.params), requires=[PSYCOPG2], mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
