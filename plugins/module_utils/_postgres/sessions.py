# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Reading and signalling sessions for the pg_* session modules (selection: ``session_filter``).

Sessions are read with one query and filtered in Python, so check mode, the real
run and pg_activity_info all decide "which sessions match" with the same code.
"""

from __future__ import annotations

import re
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgPermissionError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import MASK
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_as_read
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.session_filter import (  # noqa: F401  # pylint: disable=unused-import
    DEFAULT_PROTECTED_APPLICATIONS,
    GUARD_ARGS,
    HIDDEN_QUERY,
    SESSION_FILTER_ARGS,
    SESSION_STATES,
    STATS_PRIVILEGE,
    Guard,
    SessionFilter,
    duration_of,
    is_hidden,
)

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


def redact_query(query: str | None, max_length: int) -> str | None:
    """Mask password literals (ALTER ROLE ... PASSWORD '...') and truncate for output."""
    if query is None:
        return None
    for pattern in _QUERY_SECRETS:
        query = pattern.sub(r'\g<1>' + MASK, query)
    return query[:max_length] + '...' if max_length and len(query) > max_length else query


def session_view(session: dict[str, t.Any], query_max_length: int) -> dict[str, t.Any]:
    """The per-session shape both modules return."""
    return {
        'pid': session['pid'], 'datname': session.get('datname'), 'usename': session.get('usename'),
        'application_name': session.get('application_name'), 'client_addr': session.get('client_addr'),
        'state': session.get('state'), 'backend_start': iso_as_read(session.get('backend_start')),
        'query_start': iso_as_read(session.get('query_start')), 'xact_start': iso_as_read(session.get('xact_start')),
        'state_change': iso_as_read(session.get('state_change')), 'duration_s': session.get('duration_s'),
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
