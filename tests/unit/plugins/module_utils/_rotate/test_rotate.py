# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Secret rotation: the rotation flow (rollback, check mode, min_age, recovery of an interrupted run) with fakes, and its option checks."""

from __future__ import annotations

import datetime
import json
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError, PgIncidentError
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import (
    fingerprint,
    scram_verifier,
    short_fingerprint,
    verifier_matches,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import RestartError
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import (
    RotationError,
    Rotator,
    parse_age,
    validate,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FileStore,
)


@pytest.mark.parametrize(('text', 'seconds'), [('30d', 2592000), ('12h', 43200), ('90m', 5400), ('2w', 1209600),
                                               ('45', 45), ('0', 0), (None, 0)])
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


def test_parse_age_rejects_words():
    with pytest.raises(InputError, match="min_age 'a month' is not a duration"):
        parse_age('a month')


def test_validate_needs_a_store_location():
    base = {'length': 32, 'alphabet': ['letters'], 'min_age': '0', 'restart_timeout': 1, 'health_timeout': 1}
    with pytest.raises(InputError, match='path is required'):
        validate(dict(base, store='file'))
    with pytest.raises(InputError, match='k8s_secret and key are required'):
        validate(dict(base, store='k8s_secret', k8s_secret='db'))


# -- the rotation flow with fakes -------------------------------------------------------------

class FakeRole:
    role = 'app'

    def __init__(self, password: str, login_works: bool = True) -> None:
        self.password = password
        self.login_works = login_works
        self.verifiers: list[str] = []

    def check(self) -> None:
        pass

    def verifier(self) -> str:
        return 'SCRAM-SHA-256$old-verifier'

    def set_verifier(self, verifier: str) -> None:
        assert verifier.startswith('SCRAM-SHA-256$')
        self.verifiers.append(verifier)

    def login(self, password: str) -> tuple[bool, str]:
        current = self.verifiers[-1] if self.verifiers else None
        ok = current == 'SCRAM-SHA-256$old-verifier' and password == self.password
        ok = ok or verifier_matches(current, password, 'app') is True or (current is None and password == self.password)
        return (ok and self.login_works), 'answered' if ok else 'password authentication failed'

    def accepts(self, password: str, verifier: str | None = None) -> tuple[bool, str]:
        return self.login(password)


class FakeLog:
    present = True
    table = 'secret_rotation_logs'

    def __init__(self, last: datetime.datetime | None = None) -> None:
        self.rows: list[dict[str, t.Any]] = []
        self.last = last

    def last_completed(self, secret_type: str, environment: str) -> datetime.datetime | None:
        return self.last

    def insert(self, row: dict[str, t.Any]) -> None:
        self.rows.append(row)


class Restarts:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.count = 0

    @staticmethod
    def targets() -> list[str]:
        return ['deployment/api (ns)']

    def restart(self) -> list[str]:
        self.count += 1
        if self.fail:
            raise RestartError('rollout of Deployment api timed out')
        return ['api']


PARAMS = {'length': 24, 'alphabet': ['letters', 'digits'], 'secret_type': 'db_password', 'environment': 'test',
          'min_age': '0', 'force': False, 'log_table': 'secret_rotation_logs', 'log_rotation': True}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / 'api.env'
    path.write_text('DATABASE_PASSWORD=old-password-1234\n')
    return FileStore(str(path), 'DATABASE_PASSWORD')


def rotator(store, role=None, restarter=None, log=None, check_mode=False, **params):
    return Rotator(dict(PARAMS, **params), role or FakeRole('old-password-1234'), store, restarter or Restarts(),
                   log if log is not None else FakeLog(), check_mode=check_mode, actor='local:test', crash=lambda step: None)


def test_successful_rotation(store):
    log, role = FakeLog(), FakeRole('old-password-1234')
    result = rotator(store, role=role, log=log).run()
    new = store.read()
    assert result['status'] == 'completed' and new != 'old-password-1234' and len(new) == 24
    assert [s['step'] for s in result['steps']] == ['pending', 'alter_role', 'store', 'restart', 'verify']
    assert result['services_restarted'] == ['api']
    assert log.rows[0]['status'] == 'completed'
    assert log.rows[0]['old_fingerprint'] == fingerprint('old-password-1234') and log.rows[0]['new_fingerprint'] == fingerprint(new)
    assert store.read_pending() is None
    assert new not in json.dumps(result) and 'old-password-1234' not in json.dumps(result)


def test_failed_rollout_rolls_back_everything(store):
    log, role, restarts = FakeLog(), FakeRole('old-password-1234'), Restarts(fail=True)
    with pytest.raises(RotationError, match='failed at restart and was rolled back') as info:
        rotator(store, role=role, restarter=restarts, log=log).run()
    result = info.value.result
    assert result['status'] == 'rolled_back' and result['failed_step'] == 'restart'
    assert role.verifiers[-1] == 'SCRAM-SHA-256$old-verifier'   # the old verifier from pg_authid is put back
    assert store.read() == 'old-password-1234' and store.read_pending() is None
    assert restarts.count == 2 and log.rows[0]['status'] == 'rolled_back'


def test_failed_verification_rolls_back(store):
    role = FakeRole('old-password-1234')
    role.login = lambda password: (password == 'old-password-1234', 'answered' if password == 'old-password-1234' else 'refused')
    with pytest.raises(RotationError) as info:
        rotator(store, role=role).run()
    assert info.value.result['status'] == 'rolled_back' and info.value.result['failed_step'] == 'verify'
    assert store.read() == 'old-password-1234'


def test_check_mode_plans_only(store):
    role, log = FakeRole('old-password-1234'), FakeLog()
    result = rotator(store, role=role, log=log, check_mode=True).run()
    assert result['status'] == 'planned' and not result['changed']
    assert result['plan']['targets']['restart'] == ['deployment/api (ns)']
    assert result['old_fingerprint'] == short_fingerprint('old-password-1234')
    assert role.verifiers == [] and log.rows == [] and store.read_pending() is None


def test_min_age_skip_and_force(store):
    recent = FakeLog(last=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3))
    assert rotator(store, log=recent, min_age='30d').run()['status'] == 'skipped'
    assert store.read() == 'old-password-1234'
    assert rotator(store, log=recent, min_age='30d', force=True).run()['status'] == 'completed'


def test_recovery_completes_when_the_server_has_the_new_password(store):
    role = FakeRole('old-password-1234')
    role.verifiers.append(scram_verifier('new-password-5678'))
    store.write_pending({'old': 'old-password-1234', 'new': 'new-password-5678', 'rotation_id': 'rot-1'})
    result = rotator(store, role=role).run()
    assert result['recovery'] == {'found': True, 'database_accepts': 'new', 'action': 'completed'}
    assert result['rotation_id'] == 'rot-1' and store.read() == 'new-password-5678' and store.read_pending() is None


def test_recovery_refuses_when_the_server_accepts_neither(store):
    role = FakeRole('old-password-1234', login_works=False)
    store.write_pending({'old': 'old-password-1234', 'new': 'new-password-5678'})
    with pytest.raises(RotationError, match='accepts neither') as info:
        rotator(store, role=role).run()
    assert 'new-password-5678' not in str(info.value)
    assert store.read_pending() is not None


def test_option_errors_are_the_rotations_own_not_postgresqls():
    base = {'length': 32, 'alphabet': ['letters'], 'min_age': '0', 'restart_timeout': 1, 'health_timeout': 1}
    for params in (dict(base, store='file'), dict(base, store='file', path='/run/app.env', restart_timeout=0),
                   dict(base, store='file', path='/run/app.env', min_age='soon')):
        with pytest.raises(InputError) as raised:
            validate(params)
        assert not isinstance(raised.value, PgIncidentError), raised.value
