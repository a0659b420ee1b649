# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rotated role seen through the admin connection, with a scripted client: the checks before anything changes,
the stored verifier, and whether the server accepts a password (the log table runs against PostgreSQL in
tests/integration/plugins/modules/test_rotate_secrets.py)."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgQueryError
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate import pg
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import scram_verifier


class Client:
    def __init__(self, answers):
        self.answers = answers
        self.queries = []

    def query(self, statement, args=None):
        self.queries.append((statement, args))
        answer = self.answers[statement]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize('rows, message', [
    ([], 'Role app does not exist on the server; nothing was changed'),
    ([{'rolname': 'app', 'rolcanlogin': False}], 'Role app cannot log in (NOLOGIN); its password cannot be verified'),
])
def test_check_refuses_a_role_that_is_missing_or_cannot_log_in(rows, message):
    with pytest.raises(PgQueryError) as caught:
        pg.PgRole(Client({pg.ROLE_SQL: rows}), 'app', {}).check()
    assert str(caught.value) == message


def test_check_passes_a_login_role():
    client = Client({pg.ROLE_SQL: [{'rolname': 'app', 'rolcanlogin': True}]})
    pg.PgRole(client, 'app', {}).check()
    assert client.queries == [(pg.ROLE_SQL, ('app',))]


def test_the_verifier_is_none_when_pg_authid_may_not_be_read():
    role = pg.PgRole(Client({pg.VERIFIER_SQL: PgQueryError('permission denied for table pg_authid')}), 'app', {})
    assert role.verifier() is None
    assert pg.PgRole(Client({pg.VERIFIER_SQL: []}), 'app', {}).verifier() is None
    stored = scram_verifier('old-password-1234')
    assert pg.PgRole(Client({pg.VERIFIER_SQL: [{'rolpassword': stored}]}), 'app', {}).verifier() == stored


def test_a_readable_verifier_decides_without_logging_in(monkeypatch):
    def no_login(*_args, **_kwargs):
        raise AssertionError('no login may be attempted when the verifier decides')
    monkeypatch.setattr(pg.PgRole, 'login', no_login)
    role = pg.PgRole(Client({}), 'app', {})
    stored = scram_verifier('new-password-5678')
    assert role.accepts('new-password-5678', stored) == (True, 'pg_authid verifier matches')
    assert role.accepts('old-password-1234', stored) == (False, 'pg_authid verifier does not match')


def test_without_a_verifier_the_server_is_asked_by_logging_in(monkeypatch):
    monkeypatch.setattr(pg.PgRole, 'login', lambda self, password: (password == 'right', 'SELECT 1 answered'))
    role = pg.PgRole(Client({}), 'app', {})
    assert role.accepts('right', None) == (True, 'SELECT 1 answered')
    assert role.accepts('wrong', None)[0] is False


def test_the_log_table_needs_the_required_columns_and_has_candidates_for_each():
    assert set(pg.REQUIRED_LOG_FIELDS) <= set(pg.LOG_COLUMNS)
    assert pg.LOG_COLUMNS['completed_at'][0] == 'completed_at' and 'old_secret_fingerprint' in pg.LOG_COLUMNS['old_fingerprint']
