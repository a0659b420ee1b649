# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_maintenance without a server: statements, the skip rule, refusals and check-mode planning."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgGuardError, PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import maintenance as maint

BASE = {'poll_interval': 0.5, 'max_tables': 500, 'skip_if_dead_below': 0, 'vacuum_timeout': 3600}


WHEN = datetime.datetime(2025, 1, 15, 2, 0, tzinfo=datetime.timezone.utc)


def stats(oid, name, dead, modified=0):
    return {'oid': oid, 'schema': 'public', 'name': name, 'n_live_tup': 1000, 'n_dead_tup': dead,
            'n_mod_since_analyze': modified, 'last_vacuum': None, 'last_autovacuum': WHEN, 'last_analyze': None,
            'last_autoanalyze': WHEN, 'vacuum_count': 0, 'analyze_count': 0, 'size_bytes': 81920, 'database': 'lcopilot'}


class FakeClient:
    """Answers the catalog reads; anything else (a VACUUM) would be a bug in check mode."""

    def __init__(self, rows, resolve=None):
        self.rows, self.resolve, self.queries = rows, resolve or {}, []

    pooler = None   # what pooler_warning() says: None for the PostgreSQL server itself

    def pooler_warning(self):
        return self.pooler

    def query(self, statement, args=None):
        self.queries.append(statement)
        if statement == maint.STATS_SQL:
            return [dict(r) for r in self.rows]
        if statement == maint.RESOLVE_SQL:
            oid = self.resolve.get(args['name'])
            return [{'oid': oid, 'kind': 'r'}] if oid else []
        raise AssertionError(f'unexpected statement: {statement}')


@pytest.mark.parametrize('mode, verbose, expected', [
    ('vacuum', False, 'VACUUM (ANALYZE) {table}'),
    ('vacuum', True, 'VACUUM (VERBOSE, ANALYZE) {table}'),
    ('vacuum_full', False, 'VACUUM (FULL, ANALYZE) {table}'),
    ('analyze', True, 'ANALYZE (VERBOSE) {table}'),
])
def test_statement_for(mode, verbose, expected):
    assert maint.statement_for(mode, verbose) == expected


def test_skip_rule_uses_dead_tuples_or_changed_rows():
    assert maint.skip_reason('vacuum', {'n_dead_tup': 5}, 0) is None
    assert 'below skip_if_dead_below (10)' in maint.skip_reason('vacuum', {'n_dead_tup': 5}, 10)
    assert maint.skip_reason('vacuum', {'n_dead_tup': 10}, 10) is None
    assert 'changed since the last analyze' in maint.skip_reason('analyze', {'n_dead_tup': 999, 'n_mod_since_analyze': 3}, 10)


@pytest.mark.parametrize('params, error, message', [
    ({'full': True}, PgGuardError, 'ACCESS EXCLUSIVE'),
    ({'full': True, 'allow_full_lock': True, 'analyze_only': True}, PgInputError, 'exclude each other'),
    ({'tables': ['public.']}, PgInputError, 'tables: table must be'),
])
def test_refusals_before_any_connection(params, error, message):
    with pytest.raises(error, match=message):
        maint.Maintenance(dict(BASE, **params))


def test_full_is_allowed_with_the_explicit_flag():
    assert maint.Maintenance(dict(BASE, full=True, allow_full_lock=True)).statement == 'VACUUM (FULL, ANALYZE) {table}'


def test_check_mode_plans_and_runs_nothing():
    client = FakeClient([stats(1, 'audit_log_entries', 5000), stats(2, 'tenants', 3)])
    result = maint.Maintenance(dict(BASE, skip_if_dead_below=100), check_mode=True).run(client)
    actions = {t['table']: (t['action'], t['before']['n_dead_tup']) for t in result['tables']}
    assert actions == {'public.audit_log_entries': ('would_run', 5000), 'public.tenants': ('skipped', 3)}
    assert result['changed'] and result['processed'] == 1 and result['skipped_tables'] == 1 and result['progress'] == []
    assert result['tables'][0]['before']['last_autovacuum'] == WHEN.isoformat()
    assert client.queries == [maint.STATS_SQL]


def test_a_pooler_is_refused_before_anything_is_read_or_run():
    client = FakeClient([stats(1, 'audit_log_entries', 5000)])
    client.pooler = 'this looks like PgBouncer (or another pooler), not PostgreSQL'
    for check_mode in (True, False):
        with pytest.raises(PgGuardError, match='Refusing to maintain through a connection pooler: this looks like PgBouncer'):
            maint.Maintenance(dict(BASE), check_mode=check_mode).run(client)
    assert client.queries == []


def test_everything_below_the_threshold_is_unchanged():
    client = FakeClient([stats(1, 'audit_log_entries', 0), stats(2, 'tenants', 0)])
    result = maint.Maintenance(dict(BASE, skip_if_dead_below=1)).run(client)
    assert not result['changed'] and result['processed'] == 0 and result['skipped_tables'] == 2


def test_listed_tables_must_exist_and_the_cap_holds():
    client = FakeClient([stats(1, 'audit_log_entries', 10), stats(2, 'tenants', 10)], resolve={'tenants': 2})
    chosen = maint.Maintenance(dict(BASE, tables=['tenants']), check_mode=True).run(client)
    assert [t['table'] for t in chosen['tables']] == ['public.tenants']
    with pytest.raises(PgInputError, match='table nope does not exist'):
        maint.Maintenance(dict(BASE, tables=['tenants', 'nope']), check_mode=True).run(client)
    with pytest.raises(PgGuardError, match='more than max_tables \\(1\\)'):
        maint.Maintenance(dict(BASE, max_tables=1), check_mode=True).run(client)
