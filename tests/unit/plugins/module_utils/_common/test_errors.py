# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One error root, one base per domain: PostgreSQL's errors are PostgreSQL's only."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
    PgIncidentError,
    PgInputError,
    TrdrhubError,
)

MODULE_UTILS = Path(__file__).resolve().parents[5] / 'plugins' / 'module_utils'
PACKAGE = 'ansible_collections.trdrhub.incident.plugins.module_utils'
# Files whose errors are PostgreSQL's: the client, the other _postgres code, and errors.py itself.
POSTGRES_FILES = ('_common/errors.py',)
POSTGRES_PACKAGES = ('_postgres',)


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for path in sorted(MODULE_UTILS.rglob('*.py')):
        rel = path.relative_to(MODULE_UTILS).as_posix()
        module = importlib.import_module(f"{PACKAGE}.{rel[:-3].replace('/', '.')}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f'{rel}:{name}'] = value
    return found


ERRORS = _error_classes()


def test_there_are_errors_to_check():
    assert len(ERRORS) > 40


@pytest.mark.parametrize('where', sorted(ERRORS))
def test_every_error_has_the_one_root(where):
    assert issubclass(ERRORS[where], TrdrhubError), where


@pytest.mark.parametrize('where', sorted(ERRORS))
def test_only_postgresql_errors_are_postgresql_errors(where):
    rel = where.split(':')[0]
    if rel in POSTGRES_FILES or rel.split('/')[0] in POSTGRES_PACKAGES:
        return
    assert not issubclass(ERRORS[where], PgIncidentError), f'{where} derives from PgIncidentError'


@pytest.mark.parametrize('name, base', [
    ('_approval/approval.py:ApprovalError', TrdrhubError), ('_ledger/ledger.py:LedgerError', TrdrhubError),
    ('_pir/pir.py:PirError', TrdrhubError), ('_redis.py:RedisError', TrdrhubError),
    ('_incident/errors.py:IncidentError', InputError), ('_audit/chain_verify.py:AuditError', TrdrhubError),
])
def test_each_domain_has_its_base_under_the_root(name, base):
    assert ERRORS[name].__bases__ == (base,)


@pytest.mark.parametrize('name', [
    '_incident/errors.py:AssessmentError', '_incident/errors.py:EscalationError', '_incident/errors.py:ObligationError',
])
def test_the_incident_errors_share_their_base(name):
    assert issubclass(ERRORS[name], ERRORS['_incident/errors.py:IncidentError'])


@pytest.mark.parametrize('name', [
    '_redis.py:RedisInputError', '_security/access_log.py:LogInputError', '_notify/communicate.py:CommunicationError',
    '_incident/errors.py:IncidentError', '_audit/chain_sources.py:LedgerFileError',
    '_investigate/investigate.py:InvestigationError', '_audit/chain_verify.py:AuditInputError',
    '_rotate/rotate.py:RotationInputError',
])
def test_refused_inputs_are_input_errors_of_their_domain(name):
    assert issubclass(ERRORS[name], InputError)
    assert not issubclass(ERRORS[name], PgInputError)


def test_redis_errors_keep_their_shape():
    errors = {name.split(':')[1]: cls for name, cls in ERRORS.items() if name.startswith('_redis.py:')}
    assert all(issubclass(cls, errors['RedisError']) for cls in errors.values())
    assert issubclass(errors['RedisPermissionError'], errors['RedisCommandError'])


def test_a_postgresql_input_error_is_an_input_error():
    assert issubclass(PgInputError, PgIncidentError) and issubclass(PgInputError, InputError)


def test_details_are_extra_result_keys():
    exc = InputError('max_sessions exceeded', matched=[1, 2])
    assert str(exc) == 'max_sessions exceeded' and exc.details == {'matched': [1, 2]}
