# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Which sessions match (the filter options) and which may be signalled (the guard rails).

Check mode, the real run and pg_activity_info decide with this same code.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import re
import typing as t
from dataclasses import dataclass

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgGuardError,
    PgInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded

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


def is_hidden(session: dict[str, t.Any]) -> bool:
    """The server hid this session's details: the login role lacks pg_read_all_stats (pg_monitor has it)
    and is not a member of the session's role."""
    return session.get('query') == HIDDEN_QUERY and session.get('state') is None


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
