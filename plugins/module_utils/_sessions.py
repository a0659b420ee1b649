# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Session selection, guard rails and signalling shared by the pg_* session modules.

Sessions are read with one query and filtered in Python, so check mode, the real
run and pg_activity_info all decide "which sessions match" with the same code.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import re
import time
import typing as t
from dataclasses import dataclass

from ansible_collections.trdrhub.incident.plugins.module_utils._errors import (
    PgGuardError,
    PgInputError,
    PgPermissionError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._spec import bounded

SESSION_STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)',
                  'fastpath function call', 'disabled']
DEFAULT_PROTECTED_APPLICATIONS = ['trdrhub.incident', 'pg_dump', 'pg_restore', 'pg_basebackup']
# What pg_stat_activity shows instead of the query of a session the login role may not see;
# state, timings, wait events and the client address are NULL then.
HIDDEN_QUERY = '<insufficient privilege>'
STATS_PRIVILEGE = 'pg_read_all_stats'

SESSION_FILTER_ARGS: dict[str, dict[str, t.Any]] = {
    'databases': {'type': 'list', 'elements': 'str'},
    'states': {'type': 'list', 'elements': 'str', 'choices': SESSION_STATES},
    'min_duration': bounded({'type': 'float', 'default': 0}, minimum=0),
    'users': {'type': 'list', 'elements': 'str'},
    'exclude_users': {'type': 'list', 'elements': 'str'},
    'applications': {'type': 'list', 'elements': 'str'},
    'exclude_applications': {'type': 'list', 'elements': 'str'},
    'client_addrs': {'type': 'list', 'elements': 'str'},
    'query_pattern': {'type': 'str'},
    'wait_event_types': {'type': 'list', 'elements': 'str'},
    'blockers_only': {'type': 'bool', 'default': False},
    'pids': {'type': 'list', 'elements': 'int'},
    'query_max_length': bounded({'type': 'int', 'default': 200}, minimum=0),
}

GUARD_ARGS: dict[str, dict[str, t.Any]] = {
    'allow_superuser': {'type': 'bool', 'default': False},
    'protected_applications': {'type': 'list', 'elements': 'str', 'default': DEFAULT_PROTECTED_APPLICATIONS},
    'protected_users': {'type': 'list', 'elements': 'str', 'default': []},
    'max_sessions': bounded({'type': 'int', 'default': 25}, minimum=1),
}

# pg_blocking_pids() takes the lock manager's partition locks, so it is only
# called for sessions that wait on a heavyweight lock -- the only ones it can
# return anything for. Addresses come back as text without the /32 mask.
# The server hides backend_type too from a role without pg_read_all_stats: such a
# row with a login role is kept (as hidden) rather than silently dropped.
SESSIONS_SQL = """
SELECT a.pid, a.datname, a.usename, a.application_name, host(a.client_addr) AS client_addr,
       a.client_hostname, a.backend_type, a.state, a.backend_start, a.xact_start,
       a.query_start, a.state_change, a.wait_event_type, a.wait_event, a.query,
       COALESCE(r.rolsuper, false) AS is_superuser,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid)
            ELSE '{}'::integer[] END AS blocked_by,
       now() AS now, pg_backend_pid() AS own_pid
FROM pg_stat_activity AS a
LEFT JOIN pg_roles AS r ON r.oid = a.usesysid
WHERE a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL)
"""
PRESENT_SQL = 'SELECT pid, backend_start, state, query_start FROM pg_stat_activity WHERE pid = ANY(%s)'
SIGNAL_SQL = {
    'cancel': 'SELECT pid, pg_cancel_backend(pid) AS signalled FROM unnest(%s::integer[]) AS pid',
    'terminate': 'SELECT pid, pg_terminate_backend(pid) AS signalled FROM unnest(%s::integer[]) AS pid',
}
# USAGE, not MEMBER: the server checks has_privs_of_role(), which a NOINHERIT
# member does not pass without SET ROLE.
PRIVILEGE_SQL = """
SELECT current_user AS role, COALESCE(r.rolsuper, false) AS is_superuser,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS has_signal_backend,
       ARRAY(SELECT o.rolname::text FROM pg_roles AS o
             WHERE o.rolname = ANY(%s::text[]) AND pg_has_role(current_user, o.oid, 'USAGE')) AS own_roles
FROM pg_roles AS r WHERE r.rolname = current_user
"""

# Looked up at call time so unit tests can substitute a fake clock.
_clock = time.monotonic
_sleep = time.sleep

# Password literals (ALTER ROLE ... PASSWORD '...') and conninfo passwords (dblink)
# must not be copied from pg_stat_activity into playbook output.
_QUERY_SECRETS = (
    re.compile(r"(\bpassword\s+)(E?'(?:[^']|'')*')", re.IGNORECASE),
    re.compile(r"(\b(?:password|passwd)\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\";)]+)", re.IGNORECASE),
)


def duration_of(session: dict[str, t.Any]) -> float | None:
    """Seconds the session has been in its current situation (see min_duration docs).

    Active statements are measured from query_start (how long the statement runs);
    idle and idle-in-transaction sessions from state_change (how long they have sat
    idle, holding their transaction open); anything else from backend_start.
    """
    state = session.get('state')
    if state in ('active', 'fastpath function call'):
        start = session.get('query_start')
    elif state in ('idle', 'idle in transaction', 'idle in transaction (aborted)'):
        start = session.get('state_change')
    else:
        start = session.get('backend_start')
    now = session.get('now')
    if start is None or now is None:
        return None  # hidden by the server: the login role lacks pg_read_all_stats
    return round(max((now - start).total_seconds(), 0.0), 3)


def annotate(rows: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Add duration_s and blocks (pids each session blocks) from one consistent snapshot."""
    blocks: dict[int, list[int]] = {}
    for row in rows:
        for blocker in row.get('blocked_by') or []:
            blocks.setdefault(blocker, []).append(row['pid'])
    for row in rows:
        row['duration_s'] = duration_of(row)
        row['blocks'] = sorted(blocks.get(row['pid'], []))
    return rows


def is_hidden(session: dict[str, t.Any]) -> bool:
    """The server hid this session's details: the login role lacks pg_read_all_stats (pg_monitor has it)
    and is not a member of the session's role."""
    return session.get('query') == HIDDEN_QUERY and session.get('state') is None


def login_role(client: t.Any) -> str:
    info = getattr(getattr(client, 'conn', None), 'info', None)
    return getattr(info, 'user', None) or 'the login role'


def visibility(role: str, sessions: list[dict[str, t.Any]], session_filter: SessionFilter) -> dict[str, t.Any]:
    """How blind the login role is: hidden sessions, and those the filters could not decide.

    A filter on state, duration, query, wait event, client address or blocking cannot
    match a hidden session, so without this a containment answers "nothing matched"
    while the sessions it was meant for run on unseen.
    """
    hidden = [s for s in sessions if is_hidden(s)]
    undecided = session_filter.undecided(hidden)
    report: dict[str, t.Any] = {
        'sessions': len(hidden), 'undecided': len(undecided),
        'users': sorted({s.get('usename') or '?' for s in hidden}), 'privilege': None, 'msg': None}
    if not hidden:
        return report
    report['privilege'] = STATS_PRIVILEGE
    msg = (f'{len(hidden)} of {len(sessions)} client session(s) are hidden from role {role} '
           f"(sessions of {', '.join(report['users'])}): it lacks {STATS_PRIVILEGE} (GRANT {STATS_PRIVILEGE} TO {role}, "
           'or GRANT pg_monitor), so their state, query, timings and client address are unknown')
    if undecided:
        msg += (f'; {len(undecided)} of them pass the filters on database, user and application but could not be '
                'checked against the others, so they may be exactly the sessions sought')
    report['msg'] = msg
    return report


def fetch_sessions(client: t.Any) -> list[dict[str, t.Any]]:
    return annotate(client.query(SESSIONS_SQL))


def _set(values: list[str] | None) -> frozenset[str] | None:
    # An omitted or empty list means "no filter", as in community.postgresql.
    return frozenset(values) if values else None


@dataclass(frozen=True)
class SessionFilter:
    """The user's selection criteria, validated once and applied to every snapshot."""

    databases: frozenset[str] | None = None
    states: frozenset[str] | None = None
    min_duration: float = 0.0
    users: frozenset[str] | None = None
    exclude_users: frozenset[str] | None = None
    applications: tuple[str, ...] = ()
    exclude_applications: tuple[str, ...] = ()
    client_networks: tuple[t.Any, ...] = ()
    query_regex: t.Any = None
    wait_event_types: frozenset[str] | None = None
    blockers_only: bool = False
    pids: frozenset[int] | None = None

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> SessionFilter:
        networks = []
        for cidr in params.get('client_addrs') or []:
            try:
                networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
            except ValueError as exc:
                raise PgInputError(f'client_addrs: {cidr!r} is not a valid IP address or CIDR network: {exc}') from None
        regex = None
        if params.get('query_pattern') is not None:
            try:
                regex = re.compile(params['query_pattern'])
            except re.error as exc:
                raise PgInputError(f"query_pattern: {params['query_pattern']!r} is not a valid Python regular "
                                   f'expression: {exc}') from None
        return cls(
            databases=_set(params.get('databases')),
            states=_set(params.get('states')),
            min_duration=float(params.get('min_duration') or 0),
            users=_set(params.get('users')),
            exclude_users=_set(params.get('exclude_users')),
            applications=tuple(params.get('applications') or ()),
            exclude_applications=tuple(params.get('exclude_applications') or ()),
            client_networks=tuple(networks),
            query_regex=regex,
            wait_event_types=_set(params.get('wait_event_types')),
            blockers_only=bool(params.get('blockers_only')),
            # Unlike the other lists, an empty pids list selects nothing: it pins to "none approved".
            pids=None if params.get('pids') is None else frozenset(params['pids']),
        )

    @property
    def needs_details(self) -> bool:
        """True when a criterion reads a field the server hides without pg_read_all_stats."""
        return any((self.states, self.min_duration > 0, self.client_networks, self.query_regex is not None,
                    self.wait_event_types, self.blockers_only))

    def undecided(self, hidden: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Hidden sessions that the visible criteria select but the hidden ones cannot judge."""
        if not self.needs_details:
            return []
        visible_only = dataclasses.replace(self, states=None, min_duration=0.0, client_networks=(), query_regex=None,
                                           wait_event_types=None, blockers_only=False)
        return [s for s in hidden if visible_only.matches(s)]

    @property
    def narrows(self) -> bool:
        """True when at least one criterion restricts the selection."""
        return any((
            self.databases, self.states, self.min_duration > 0, self.users, self.exclude_users,
            self.applications, self.exclude_applications, self.client_networks,
            self.query_regex is not None, self.wait_event_types, self.blockers_only, self.pids is not None,
        ))

    def matches(self, session: dict[str, t.Any]) -> bool:
        if self.needs_details and is_hidden(session):
            return False  # counted by visibility(), never signalled on a guess
        app = session.get('application_name') or ''
        user = session.get('usename')
        if self.pids is not None and session.get('pid') not in self.pids:
            return False
        if self.databases is not None and session.get('datname') not in self.databases:
            return False
        if self.states is not None and session.get('state') not in self.states:
            return False
        if self.min_duration > 0:
            duration = session.get('duration_s')
            if duration is None or duration < self.min_duration:
                return False
        if self.users is not None and user not in self.users:
            return False
        if self.exclude_users is not None and user in self.exclude_users:
            return False
        if self.applications and not any(fnmatch.fnmatchcase(app, g) for g in self.applications):
            return False
        if any(fnmatch.fnmatchcase(app, g) for g in self.exclude_applications):
            return False
        if self.client_networks and not self._addr_matches(session.get('client_addr')):
            return False
        if self.query_regex is not None and not self.query_regex.search(session.get('query') or ''):
            return False
        if self.wait_event_types is not None and session.get('wait_event_type') not in self.wait_event_types:
            return False
        return not self.blockers_only or bool(session.get('blocks'))

    def _addr_matches(self, addr: str | None) -> bool:
        # Unix-socket sessions have no client_addr and so never match a network.
        if not addr:
            return False
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in self.client_networks)

    def select(self, sessions: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        return [s for s in sessions if self.matches(s)]


@dataclass(frozen=True)
class Guard:
    """Guard rails applied after the filters; each refusal carries a reason."""

    allow_superuser: bool = False
    protected_applications: tuple[str, ...] = tuple(DEFAULT_PROTECTED_APPLICATIONS)
    protected_users: frozenset[str] = frozenset()
    max_sessions: int = 25

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> Guard:
        max_sessions = params.get('max_sessions', 25)
        return cls(
            allow_superuser=bool(params.get('allow_superuser')),
            protected_applications=tuple(params.get('protected_applications') or ()),
            protected_users=frozenset(params.get('protected_users') or ()),
            max_sessions=max_sessions,
        )

    def reason(self, session: dict[str, t.Any]) -> str | None:
        app = session.get('application_name') or ''
        if session.get('own_pid') is not None and session['pid'] == session['own_pid']:
            return 'own session (the backend running this module)'
        if is_hidden(session):
            return f'details hidden from the login role (it lacks {STATS_PRIVILEGE}): cannot tell what it runs'
        if session.get('backend_type', 'client backend') != 'client backend':
            return f"not a client backend ({session.get('backend_type')})"
        if session.get('is_superuser') and not self.allow_superuser:
            return 'superuser session (set allow_superuser to include it)'
        if session.get('usename') in self.protected_users:
            return f"protected user {session.get('usename')} (protected_users)"
        for glob in self.protected_applications:
            if fnmatch.fnmatchcase(app, glob):
                return f'protected application {app} (matches {glob!r} in protected_applications)'
        return None

    def split(self, sessions: list[dict[str, t.Any]]) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
        """Return (allowed, excluded); excluded entries say why."""
        allowed, excluded = [], []
        for session in sessions:
            why = self.reason(session)
            if why is None:
                allowed.append(session)
            else:
                excluded.append({'pid': session['pid'], 'usename': session.get('usename'),
                                 'application_name': session.get('application_name'), 'reason': why})
        return allowed, excluded

    def enforce_cap(self, selected: list[dict[str, t.Any]], evidence: dict[str, t.Any]) -> None:
        """Refuse the whole run, signalling nothing, when more than max_sessions match."""
        if len(selected) > self.max_sessions:
            raise PgGuardError(
                f'{len(selected)} sessions match the filters and guard rails, more than max_sessions '
                f'({self.max_sessions}); nothing was signalled. Narrow the filters or raise max_sessions.',
                matched=len(selected), **evidence)


def _iso(value: t.Any) -> str | None:
    return value.isoformat() if value is not None else None


def redact_query(query: str | None, max_length: int) -> str | None:
    """Mask password literals (ALTER ROLE ... PASSWORD '...') and truncate for output."""
    if query is None:
        return None
    for pattern in _QUERY_SECRETS:
        query = pattern.sub(r'\g<1>********', query)
    return query[:max_length] + '...' if max_length and len(query) > max_length else query


def session_view(session: dict[str, t.Any], query_max_length: int) -> dict[str, t.Any]:
    """The per-session shape both modules return."""
    return {
        'pid': session['pid'], 'datname': session.get('datname'), 'usename': session.get('usename'),
        'application_name': session.get('application_name'), 'client_addr': session.get('client_addr'),
        'state': session.get('state'), 'backend_start': _iso(session.get('backend_start')),
        'query_start': _iso(session.get('query_start')), 'xact_start': _iso(session.get('xact_start')),
        'state_change': _iso(session.get('state_change')), 'duration_s': session.get('duration_s'),
        'wait_event_type': session.get('wait_event_type'), 'wait_event': session.get('wait_event'),
        'blocking': len(session.get('blocks') or ()),
        'query': redact_query(session.get('query'), query_max_length),
    }


def count_by_state(sessions: t.Iterable[dict[str, t.Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for session in sessions:
        state = session.get('state') or 'unknown'
        counts[state] = counts.get(state, 0) + 1
    return dict(sorted(counts.items()))


def check_signal_privilege(client: t.Any, sessions: list[dict[str, t.Any]]) -> None:
    """Fail before the first signal if any selected session cannot be signalled.

    One statement signals every pid, so a permission error halfway through would
    leave a partial kill; the server's own rules are checked up front instead.
    """
    users = sorted({s['usename'] for s in sessions if s.get('usename')})
    me = (client.query(PRIVILEGE_SQL, (users,)) or [None])[0]
    if me is None or me['is_superuser']:
        return  # no row (role dropped meanwhile): let the server decide
    superuser_pids = ', '.join(str(s['pid']) for s in sessions if s.get('is_superuser'))
    if superuser_pids:
        raise PgPermissionError(
            f"role {me['role']} is not a superuser and cannot signal superuser sessions (pids {superuser_pids}); "
            'drop allow_superuser or run as a superuser')
    if me['has_signal_backend']:
        return
    own = set(me['own_roles'] or ())
    foreign = ', '.join(sorted({s.get('usename') or '?' for s in sessions if s.get('usename') not in own}))
    if foreign:
        raise PgPermissionError(
            f"role {me['role']} lacks pg_signal_backend (GRANT pg_signal_backend TO {me['role']}); it cannot "
            f'signal sessions of {foreign}')


def signal(client: t.Any, kind: str, pids: list[int]) -> dict[int, bool]:
    """Send one kind of signal to all pids in a single round trip."""
    if not pids:
        return {}
    try:
        rows = client.query(SIGNAL_SQL[kind], (sorted(pids),))
    except PgPermissionError as exc:
        role = client.conn.info.user if getattr(client.conn, 'info', None) else 'the login role'
        raise PgPermissionError(
            f'role {role} lacks pg_signal_backend (GRANT pg_signal_backend TO {role}): {exc}') from None
    return {row['pid']: bool(row['signalled']) for row in rows}


def poll(check: t.Callable[[], set[int]], timeout: float) -> set[int]:
    """Call check() until it returns an empty set or timeout passes; return its last answer.

    The first check runs at once; sleeps start at 10 ms and double up to 50 ms, so a
    backend that exits quickly costs almost nothing and a slow one few queries.
    """
    clock, sleep = _clock, _sleep
    deadline = clock() + timeout
    delay = 0.01
    remaining = check()
    while remaining and clock() < deadline:
        sleep(min(delay, max(deadline - clock(), 0)))
        delay = min(delay * 2, 0.05)
        remaining = check()
    return remaining


def still_present(client: t.Any, sessions: list[dict[str, t.Any]]) -> set[int]:
    """Pids whose original backend still exists (same pid *and* backend_start: pids are reused)."""
    started = {s['pid']: s.get('backend_start') for s in sessions}
    if not started:
        return set()
    rows = client.query(PRESENT_SQL, (sorted(started),))
    return {r['pid'] for r in rows if r['pid'] in started and r['backend_start'] == started[r['pid']]}


def still_running(client: t.Any, sessions: list[dict[str, t.Any]]) -> set[int]:
    """Pids whose original backend is still running the statement it ran when selected.

    A cancel has worked once that statement ended -- whatever the session's filters
    would say about it now -- so compare the statement's identity, not the filters.
    """
    before = {s['pid']: s for s in sessions}
    if not before:
        return set()
    rows = client.query(PRESENT_SQL, (sorted(before),))
    return {r['pid'] for r in rows if r['pid'] in before
            and r['backend_start'] == before[r['pid']].get('backend_start')
            and r.get('state') in ('active', 'fastpath function call')
            and r.get('query_start') == before[r['pid']].get('query_start')}
