# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures for the unit tests: run a module in-process and a fake PostgreSQL server.

Nothing here talks to a database. The fake server answers the exact statements the
module_utils send (matched by identity of the SQL constants), so the tests exercise
the real selection, guard and signalling code paths.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import sys
import typing as t
from pathlib import Path

import pytest


def _collections_root() -> str:
    """Where ``ansible_collections/trdrhub/incident`` can be imported from."""
    env = os.environ.get('TRDRHUB_COLLECTIONS_ROOT')
    if env:
        return env
    repo = Path(__file__).resolve().parents[2]
    # Under ansible-test the checkout already sits in .../ansible_collections/trdrhub/incident.
    if repo.parent.name == 'trdrhub' and repo.parent.parent.name == 'ansible_collections':
        return str(repo.parent.parent.parent)
    return str(repo / '.collections')


if _collections_root() not in sys.path:
    sys.path.insert(0, _collections_root())

# pylint: disable=wrong-import-position
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import client as _postgres
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import sessions as _sessions

UTC = datetime.UTC
NOW = datetime.datetime(2025, 1, 15, 14, 30, 0, tzinfo=UTC)


class ModuleExit(Exception):
    """Raised instead of sys.exit() so a test can inspect the module's JSON result."""

    def __init__(self, result: dict[str, t.Any], failed: bool) -> None:
        super().__init__(result)
        self.result = result
        self.failed = failed


@pytest.fixture
def run_module(monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    """Run ``module.main()`` with args; return the result dict (``failed`` set on failure).

    The result goes through a JSON round trip, as it would on its way to the
    controller, so a value the controller could not serialise fails the test.
    """

    def fail_json(self: t.Any, msg: str, **kwargs: t.Any) -> None:
        kwargs.update(msg=msg, failed=True)
        raise ModuleExit(kwargs, failed=True)

    warnings: list[str] = []

    def exit_json(self: t.Any, **kwargs: t.Any) -> None:
        kwargs.setdefault('changed', False)
        kwargs['warnings'] = list(warnings)
        raise ModuleExit(kwargs, failed=False)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, warning: warnings.append(warning))

    def run(module: t.Any, args: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> dict[str, t.Any]:
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        warnings.clear()
        with patch_module_args(args), pytest.raises(ModuleExit) as caught:
            module.main()
        return json.loads(json.dumps(caught.value.result))

    return run


def session(pid: int, **overrides: t.Any) -> dict[str, t.Any]:
    """A pg_stat_activity row as SESSIONS_SQL returns it; an active 10 s statement by default."""
    row = {
        'pid': pid, 'datname': 'trdrhub', 'usename': 'trdrhub_app', 'application_name': 'trdrhub-api',
        'client_addr': '10.42.3.17', 'client_hostname': None, 'backend_type': 'client backend', 'state': 'active',
        'backend_start': NOW - datetime.timedelta(hours=1), 'xact_start': NOW - datetime.timedelta(seconds=10),
        'query_start': NOW - datetime.timedelta(seconds=10), 'state_change': NOW - datetime.timedelta(seconds=10),
        'wait_event_type': None, 'wait_event': None, 'query': 'SELECT 1', 'is_superuser': False, 'blocked_by': [],
        'now': NOW, 'own_pid': 1,
    }
    row.update(overrides)
    return row


@pytest.fixture
def make_session() -> t.Callable[..., dict[str, t.Any]]:
    return session


class FakeConn:
    """Just enough of a psycopg2 connection for PgClient outside of query()."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.info = type('Info', (), {'user': server.role})()
        self.closed = False

    def get_backend_pid(self) -> int:
        return self.server.client_side_pid

    def close(self) -> None:
        self.closed = True


class FakeServer:
    """Answers the collection's statements from an in-memory pg_stat_activity.

    ``exit_on_terminate`` controls whether terminated backends disappear (and after
    how many polls), which is how survivors and pid reuse are simulated.
    """

    def __init__(self) -> None:
        self.sessions: list[dict[str, t.Any]] = [session(1, application_name='trdrhub.incident', usename='ops')]
        self.role = 'ops'
        self.is_superuser = False
        self.has_signal_backend = True
        self.own_roles: list[str] = []
        self.backend_pid = 1
        self.client_side_pid = 1
        self.signals: list[tuple[str, list[int]]] = []
        self.statements: list[str] = []
        self.exit_on_terminate = True
        self.signal_result: dict[int, bool] = {}
        self.clock: t.Any = None
        self.settings = {'database': 'trdrhub', 'server_version': '15.20', 'max_connections': 100, 'reserved': 3}
        self.db_stats: dict[str, t.Any] | None = {
            'numbackends': 3, 'xact_commit': 10, 'xact_rollback': 1, 'tup_returned': 5, 'tup_fetched': 4, 'tup_inserted': 3,
            'tup_updated': 2, 'tup_deleted': 1, 'deadlocks': 0, 'blks_hit': 90, 'blks_read': 10, 'conflicts': 0, 'temp_files': 0,
            'temp_bytes': 0, 'stats_reset': None}

    def add(self, pid: int, **overrides: t.Any) -> dict[str, t.Any]:
        row = session(pid, **overrides)
        self.sessions.append(row)
        return row

    def pids(self) -> set[int]:
        return {s['pid'] for s in self.sessions}

    def answer(self, sql: str, args: t.Any) -> list[dict[str, t.Any]]:
        self.statements.append(sql)
        if sql == _postgres.SET_STATEMENT_TIMEOUT:
            return [{'set_config': args[0]}]
        if sql == _postgres.BACKEND_PID:
            return [{'pid': self.backend_pid}]
        if sql == _sessions.SESSIONS_SQL:
            return [dict(copy.deepcopy(s), own_pid=self.backend_pid) for s in self.sessions]
        if sql == _sessions.PRESENT_SQL:
            return [{'pid': s['pid'], 'backend_start': s['backend_start'], 'state': s.get('state'),
                     'query_start': s.get('query_start')} for s in self.sessions if s['pid'] in args[0]]
        if sql == _sessions.PRIVILEGE_SQL:
            return [{'role': self.role, 'is_superuser': self.is_superuser,
                     'has_signal_backend': self.has_signal_backend,
                     'own_roles': [r for r in self.own_roles if r in args[0]]}]
        for kind, statement in _sessions.SIGNAL_SQL.items():
            if sql == statement:
                return self._signal(kind, args[0])
        if sql == 'SELECT 1 AS ok':
            return [{'ok': 1}]
        if 'pg_stat_database' in sql:
            return [dict(self.db_stats)] if self.db_stats is not None else []
        if 'max_connections' in sql:
            return [dict(self.settings)]
        raise AssertionError(f'unexpected statement: {sql}')

    def _signal(self, kind: str, pids: list[int]) -> list[dict[str, t.Any]]:
        self.signals.append((kind, list(pids)))
        rows = []
        for pid in pids:
            ok = self.signal_result.get(pid, pid in self.pids())
            rows.append({'pid': pid, 'signalled': ok})
            if not ok:
                continue
            if kind == 'terminate' and self.exit_on_terminate:
                self.sessions = [s for s in self.sessions if s['pid'] != pid]
            elif kind == 'cancel':
                for s in self.sessions:
                    if s['pid'] == pid and s['state'] == 'active':
                        s.update(state='idle', state_change=NOW)
        return rows


class FakeClient(_postgres.PgClient):
    """PgClient whose cursor is the fake server; statements are still recorded by PgClient."""

    def __init__(self, params: dict[str, t.Any], server: FakeServer) -> None:
        self.server = server
        super().__init__(params, conn=FakeConn(server))

    def query(self, statement: t.Any, args: t.Any = None) -> list[dict[str, t.Any]]:
        if not self.queries or self.queries[-1] != _postgres.condense(statement):
            self.queries.append(_postgres.condense(statement))
        return self.server.answer(statement, args)


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A fake server wired into both modules in place of a real connection; polling does not sleep."""
    from ansible_collections.trdrhub.incident.plugins.modules import (
        pg_activity_info,
        pg_terminate_sessions,
    )

    server = FakeServer()
    for module in (pg_activity_info, pg_terminate_sessions):
        monkeypatch.setattr(module, 'PgClient', lambda params, _s=server: FakeClient(params, _s))
        monkeypatch.setattr(module, 'PSYCOPG2', ('psycopg2', True, None))
    clock = FakeClock()
    monkeypatch.setattr(_sessions, '_clock', clock.monotonic)
    monkeypatch.setattr(_sessions, '_sleep', clock.sleep)
    server.clock = clock
    return server


class FakeClock:
    """Time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(_sessions, '_clock', clock.monotonic)
    monkeypatch.setattr(_sessions, '_sleep', clock.sleep)
    return clock
