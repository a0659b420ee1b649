# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The incident domain's errors: refused inputs under IncidentError, reported by the runner as one message."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError, TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_worker
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.errors import (
    AssessmentError,
    EscalationError,
    IncidentError,
    ObligationError,
)

PARTS = [AssessmentError, EscalationError, ObligationError]


@pytest.mark.parametrize('error', PARTS, ids=lambda cls: cls.__name__)
def test_each_part_is_caught_as_an_incident_error_and_a_refused_input(error):
    with pytest.raises(IncidentError) as caught:
        raise error("severity 'sev0' is not one of sev1, sev2, sev3", evidence={'severity': 'sev0'})
    assert isinstance(caught.value, InputError) and isinstance(caught.value, TrdrhubError)
    assert str(caught.value) == "severity 'sev0' is not one of sev1, sev2, sev3"
    assert caught.value.details == {'evidence': {'severity': 'sev0'}}


def test_the_parts_do_not_catch_each_other():
    with pytest.raises(EscalationError):
        try:
            raise EscalationError('unknown level 9')
        except (AssessmentError, ObligationError):   # pragma: no cover - must not match
            pytest.fail('an escalation error was caught as another part')


def test_the_runner_reports_an_incident_error_as_its_message_and_details():
    class Module:
        def fail_json(self, **kwargs):
            raise SystemExit(kwargs)

        def exit_json(self, **kwargs):   # pragma: no cover - the worker fails
            raise AssertionError(kwargs)

    class Worker:
        warnings: list[str] = []

        def run(self, client):
            raise ObligationError('notification GDPR-72h has no deadline', policy='eu')

    with pytest.raises(SystemExit) as caught:
        run_worker(Module(), Worker)
    assert caught.value.args[0] == {'msg': 'notification GDPR-72h has no deadline', 'policy': 'eu'}
