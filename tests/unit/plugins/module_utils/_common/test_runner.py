# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The run contract: the worker base, the missing-library check, one fail_json per expected error, warnings, the client always closed."""

from __future__ import annotations

import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError, TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import (
    Call,
    Library,
    Worker,
    request_log,
    run_worker,
)


class Exited(Exception):
    """What exit_json/fail_json raise here instead of leaving the process."""


class FakeModule:
    def __init__(self) -> None:
        self.result: dict[str, t.Any] = {}
        self.failed: bool | None = None
        self.warnings: list[str] = []

    def fail_json(self, **kwargs: t.Any) -> None:
        self.result, self.failed = kwargs, True
        raise Exited()

    def exit_json(self, **kwargs: t.Any) -> None:
        self.result, self.failed = kwargs, False
        raise Exited()

    def warn(self, warning: str) -> None:
        self.warnings.append(warning)


class Client:
    def __init__(self) -> None:
        self.closed = False
        self.requests = [{'method': 'GET', 'url': 'https://api.example/v1'}]

    def close(self) -> None:
        self.closed = True


class Scripted(Worker):
    def __init__(self, outcome: t.Any, warnings: list[str] | None = None) -> None:
        super().__init__({})
        self.outcome = outcome
        self.warnings.extend(warnings or [])

    def run(self, client: t.Any) -> dict[str, t.Any]:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return dict(self.outcome, client_open=client is not None and not client.closed)


def run(worker: Scripted, client: Client | None = None, **kwargs: t.Any) -> FakeModule:
    module = FakeModule()
    with pytest.raises(Exited):
        run_worker(module, lambda: worker, (lambda made: client) if client else None, **kwargs)
    return module


def test_success_exits_with_the_result_and_the_workers_warnings_while_the_client_is_open():
    client = Client()
    module = run(Scripted({'changed': True}, warnings=['one', 'two']), client)
    assert module.failed is False and module.result == {'changed': True, 'client_open': True}
    assert module.warnings == ['one', 'two'] and client.closed


def test_an_expected_error_is_one_message_with_its_details_and_secrets_masked():
    error = InputError('login refused for password hunter2hunter2')
    error.details = {'evidence': {'pids': [1]}}
    client = Client()
    module = run(Scripted(error, warnings=['seen before the failure']), client, secrets=['hunter2hunter2'],
                 error_extra=lambda made: {'requests': made.requests})
    assert module.failed is True
    assert module.result['msg'] == 'login refused for password ********'
    assert module.result['evidence'] == {'pids': [1]} and module.result['requests'] == client.requests
    assert module.warnings == ['seen before the failure'] and client.closed


def test_a_missing_library_fails_before_the_worker_or_client_is_built():
    built = []
    module = FakeModule()
    with pytest.raises(Exited):
        run_worker(module, lambda: built.append('worker'), lambda made: built.append('client'),
                   requires=[Library('requests'), Library('psycopg2', False, 'ImportError: no psycopg2')])
    assert built == [] and module.failed is True
    assert 'psycopg2' in module.result['msg'] and module.result['exception'] == 'ImportError: no psycopg2'


def test_finish_turns_a_result_into_a_failure_that_keeps_the_result():
    module = run(Scripted({'changed': False, 'firing': 3}),
                 finish=lambda result, client: f"{result['firing']} alerts firing" if result['firing'] else None)
    assert module.failed is True and module.result['msg'] == '3 alerts firing' and module.result['firing'] == 3


def test_an_unexpected_exception_is_not_swallowed_and_the_client_is_still_closed():
    client = Client()
    with pytest.raises(ZeroDivisionError):
        run_worker(FakeModule(), lambda: Scripted(ZeroDivisionError('bug')), lambda made: client)
    assert client.closed


def test_only_the_listed_errors_are_mapped():
    class Other(Exception):
        pass
    module = run(Scripted(Other('rotation failed at restart')), errors=(Other,))
    assert module.failed is True and module.result['msg'] == 'rotation failed at restart'
    with pytest.raises(Other):
        run_worker(FakeModule(), lambda: Scripted(Other('x')), errors=(TrdrhubError,))


def test_request_log_and_call():
    client = Client()
    assert request_log(None, client) == {'requests': client.requests}
    assert request_log(None, None) == {'requests': []}
    assert Call(lambda: {'changed': False}).run(None) == {'changed': False}


def test_library_missing_keeps_the_traceback():
    lib = None
    try:
        import trdrhub_no_such_library  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        lib = Library.missing('trdrhub-no-such-library')
    assert lib is not None and lib.name == 'trdrhub-no-such-library' and lib.present is False
    assert 'trdrhub_no_such_library' in lib.error


class Checked(Worker):
    def check(self) -> None:
        if not self.params.get('name'):
            raise InputError('name must not be empty')

    def run(self, client: t.Any) -> dict[str, t.Any]:
        self.warnings.append(f"read {self.params['name']}")
        return {'changed': False, 'check_mode': self.check_mode, 'diff': self.diff}


def test_a_worker_checks_its_options_when_built_before_any_client():
    built: list[t.Any] = []
    module = FakeModule()
    with pytest.raises(Exited):
        run_worker(module, lambda: Checked({'name': ''}), built.append)
    assert (module.failed, module.result['msg']) == (True, 'name must not be empty')
    assert built == []        # the client was never made


def test_a_worker_carries_check_and_diff_mode_and_its_warnings_become_module_warnings():
    worker = Checked({'name': 'db'}, check_mode=True, diff=True)
    assert (worker.params, worker.warnings) == ({'name': 'db'}, [])
    module = run(worker)
    assert module.result == {'changed': False, 'check_mode': True, 'diff': True}
    assert module.warnings == ['read db']


def test_the_base_worker_has_no_run_of_its_own():
    with pytest.raises(NotImplementedError):
        Worker({}).run(None)
