# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""pg_migration_info against a fake catalog: version table states, expectations, key tables, bad input."""

from __future__ import annotations

import datetime
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgPermissionError
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import client as _postgres
from ansible_collections.trdrhub.incident.plugins.modules import (
    pg_migration_info as module,
)

CONN = {'login_unix_socket': '/var/run/postgresql', 'login_user': 'ops', 'login_db': 'lcopilot'}
ANALYZED = datetime.datetime(2025, 1, 15, 2, 0, tzinfo=datetime.timezone.utc)


class Catalog:
    """Tables by (schema, name) and the version rows; records every statement."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], dict[str, t.Any]] = {
            ('public', 'alembic_version'): {'reltuples': 1, 'n_live_tup': 1, 'size_bytes': 8192, 'last_analyzed': None},
            ('public', 'audit_log_entries'): {'reltuples': 1048576, 'n_live_tup': 1048000, 'size_bytes': 402653184,
                                              'last_analyzed': ANALYZED},
        }
        self.versions = ['7c1f0e2a9b44']
        self.statements: list[str] = []
        self.deny_versions = False

    def answer(self, statement: t.Any, args: t.Any) -> list[dict[str, t.Any]]:
        text = statement if isinstance(statement, str) else repr(statement)
        self.statements.append(text)
        if statement == _postgres.SET_STATEMENT_TIMEOUT:
            return [{'set_config': args[0]}]
        if statement == module.SERVER_SQL:
            return [{'database': 'lcopilot', 'server_version': '15.20', 'server_version_num': 150020,
                     'size_bytes': 8437891, 'size': '8241 kB'}]
        if statement == module.TABLE_SQL:
            key = (args['schema'] or 'public', args['name'])
            row = self.tables.get(key)
            return [dict(row, schema=key[0], name=key[1])] if row else []
        if text.startswith('Composed'):
            if self.deny_versions:
                raise PgPermissionError('Query failed: SELECT version_num FROM ... -- server said: permission denied')
            return [{'version_num': v} for v in self.versions]
        raise AssertionError(f'unexpected statement: {text}')


class FakeClient(_postgres.PgClient):
    def __init__(self, params: dict[str, t.Any], catalog: Catalog) -> None:
        self.catalog = catalog
        super().__init__(params, conn=object())

    def query(self, statement: t.Any, args: t.Any = None) -> list[dict[str, t.Any]]:
        self.queries.append(_postgres.condense(statement if isinstance(statement, str) else 'SELECT version_num FROM ...'))
        return self.catalog.answer(statement, args)

    def close(self) -> None:
        pass


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    fake = Catalog()
    monkeypatch.setattr(module, 'PgClient', lambda params: FakeClient(params, fake))
    monkeypatch.setattr(module, 'PSYCOPG2', ('psycopg2', True, None))
    return fake


def test_report_without_expectation(run_module, catalog):
    result = run_module(module, CONN)
    assert result['changed'] is False
    assert result['database'] == 'lcopilot' and result['server_version_num'] == 150020
    assert result['database_size_bytes'] == 8437891 and result['database_size'] == '8241 kB'
    assert result['initialized'] is True and result['version_table'] == 'public.alembic_version'
    assert result['revisions'] == ['7c1f0e2a9b44'] and result['revision'] == '7c1f0e2a9b44'
    assert result['expected_revisions'] == [] and result['up_to_date'] is None and result['pending'] is None
    assert result['missing_revisions'] == [] and result['unexpected_revisions'] == []
    assert result['tables'] == {
        'audit_log_entries': {'exists': True, 'table': 'public.audit_log_entries', 'row_estimate': 1048576,
                              'estimate_source': 'reltuples', 'size_bytes': 402653184,
                              'last_analyzed': '2025-01-15T02:00:00+00:00'},
        'secret_rotation_logs': {'exists': False, 'table': 'secret_rotation_logs', 'row_estimate': None,
                                 'estimate_source': None, 'size_bytes': None, 'last_analyzed': None},
    }
    assert not any('statement_timeout' in query for query in result['queries'])   # set per transaction, not listed


@pytest.mark.parametrize('expected, up_to_date, missing, unexpected', [
    ('7c1f0e2a9b44', True, [], []),
    (['7c1f0e2a9b44', ' 7c1f0e2a9b44 '], True, [], []),
    ('9d3e5f7a1b2c', False, ['9d3e5f7a1b2c'], ['7c1f0e2a9b44']),
    (['7c1f0e2a9b44', '9d3e5f7a1b2c'], False, ['9d3e5f7a1b2c'], []),
])
def test_expected_revision(run_module, catalog, expected, up_to_date, missing, unexpected):
    result = run_module(module, dict(CONN, expected_revision=expected))
    assert result['up_to_date'] is up_to_date
    assert result['missing_revisions'] == missing and result['unexpected_revisions'] == unexpected
    if up_to_date:
        assert result['pending'] is None
    else:
        assert result['pending'].startswith('database lcopilot is at revision 7c1f0e2a9b44, the release expects ')
        assert f"missing: {', '.join(missing) or 'none'}" in result['pending']


def test_several_heads_recorded(run_module, catalog):
    catalog.versions = ['b2', 'a1']
    result = run_module(module, dict(CONN, expected_revision=['a1', 'b2']))
    assert result['revisions'] == ['a1', 'b2'] and result['revision'] is None and result['up_to_date'] is True


def test_absent_version_table_is_reported_not_failed(run_module, catalog):
    del catalog.tables[('public', 'alembic_version')]
    result = run_module(module, dict(CONN, expected_revision='7c1f0e2a9b44'))
    assert 'failed' not in result
    assert result['initialized'] is False and result['revisions'] == [] and result['version_table'] == 'alembic_version'
    assert result['up_to_date'] is False
    assert result['pending'] == ('alembic_version does not exist in database lcopilot: no Alembic migration has run '
                                 'there, the release expects 7c1f0e2a9b44')
    assert not any(s.startswith('Composed') for s in catalog.statements)


def test_empty_version_table(run_module, catalog):
    catalog.versions = []
    result = run_module(module, dict(CONN, expected_revision='7c1f0e2a9b44'))
    assert result['initialized'] is True and result['up_to_date'] is False
    assert 'is empty: no revision is recorded' in result['pending']


def test_other_schema_and_table_list(run_module, catalog):
    catalog.tables[('migrations', 'alembic_version')] = catalog.tables.pop(('public', 'alembic_version'))
    catalog.tables[('public', 'lc_documents')] = {'reltuples': -1, 'n_live_tup': 200, 'size_bytes': 65536,
                                                  'last_analyzed': None}
    result = run_module(module, dict(CONN, version_table='migrations.alembic_version', tables=['lc_documents']))
    assert result['version_table'] == 'migrations.alembic_version' and result['initialized'] is True
    assert result['tables'] == {'lc_documents': {'exists': True, 'table': 'public.lc_documents', 'row_estimate': 200,
                                                 'estimate_source': 'n_live_tup', 'size_bytes': 65536, 'last_analyzed': None}}


def test_check_mode_is_identical(run_module, catalog):
    args = dict(CONN, expected_revision='9d3e5f7a1b2c')
    assert run_module(module, args, check_mode=True) == run_module(module, args)


@pytest.mark.parametrize('args, message', [
    ({'expected_revision': ['']}, "expected_revision: '' is not an Alembic revision id"),
    ({'expected_revision': ['a b']}, "expected_revision: 'a b' is not an Alembic revision id"),
    ({'version_table': ' '}, 'version_table must name a table, for example alembic_version'),
    ({'version_table': '.alembic_version'}, 'version_table: table must be "table" or "schema.table"'),
    ({'tables': ['public.']}, 'tables: table must be "table" or "schema.table", got "public."'),
])
def test_bad_input(run_module, catalog, args, message):
    result = run_module(module, dict(CONN, **args))
    assert result['failed'] is True and result['msg'].startswith(message)
    assert catalog.statements == []   # refused before connecting


def test_permission_error_is_one_clean_message(run_module, catalog):
    catalog.deny_versions = True
    result = run_module(module, CONN)
    assert result['failed'] is True and 'permission denied' in result['msg']


def test_missing_psycopg2(run_module, monkeypatch):
    monkeypatch.setattr(module, 'PSYCOPG2', ('psycopg2', False, 'ImportError'))
    result = run_module(module, CONN)
    assert result['failed'] is True and 'psycopg2' in result['msg']
