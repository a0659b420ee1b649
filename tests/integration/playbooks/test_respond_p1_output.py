"""What a person reads from a response procedure: the default screen output of respond_p1.yml.

respond_p1.yml runs against the harness services with the collection's configured stdout callback
(trdrhub.incident.runbook, from ansible.cfg) and PYTHONWARNINGS as docs/output.md says. The output
is short - phase headers, what changed, the decisions and the summary - and its lines say what
happened: an automatic approval is called one, a backup that the guard spared is listed, triage
without acknowledgement says so.
"""
from __future__ import annotations

import re

import pytest
from trdrhub_harness.workload import INCIDENT

from .test_respond_p1 import P1, alert, channels, flat, health, queue, response  # noqa: F401 pylint: disable=unused-import

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MAX_LINES = 150
PHASES = ["triage", "investigate", "contain", "recover", "verify", "communicate", "review"]


def test_p1_default_output_is_short_and_says_what_happened(response, alert, queue, incident, app, channels):  # noqa: F811
    resp = response()
    label = alert("AllWorkersDown", "P1")
    inc = incident()
    inc.long_running(3, seconds=300, application_name=app + "-api")
    inc.idle_in_transaction(2, application_name=app + "-worker")
    backup = inc.protected(seconds=300)            # pg_dump: matches the filter below, spared by the guard
    inc.wait_ready()
    inc.wait_older_than(1.5, timeout=30)
    victims = inc.pids(kind=INCIDENT)
    resp.env.update(ANSIBLE_STDOUT_CALLBACK=None, PYTHONWARNINGS="ignore:DSA is deprecated")
    argv = resp.argv(P1, label, app, queue, **channels["vars"],
                     contain_db_applications=[app + "*", "pg_dump"],
                     trdrhub_approval_policy={"P1": {"terminate_sessions": "automatic"}},
                     triage_acknowledge=False)
    run = resp.run(*argv)
    assert run.rc == 0, run.output
    print(run.output)

    lines = run.output.strip().splitlines()
    assert lines[0].startswith("PLAY ["), lines[:3]          # no library warning first
    assert "Warning" not in run.output
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{run.output}"
    assert not [line for line in lines if line.startswith(("skipping:", "included:"))]
    headers = [line for line in lines if line.startswith("TASK [")]
    assert len(headers) <= 40, "\n".join(headers)
    text = flat(run.output)
    assert "phase 1 is triage" in text
    for number, phase in enumerate(PHASES[1:], start=2):
        assert f"P1 phase {number}/7 {phase} -" in text
    assert "P1 response summary" in text and "PLAY RECAP" in text and "INCIDENT LEDGER" in text

    # The lines say what happened.
    assert "approved automatically by policy" in text and "by nobody" not in text
    assert "Acknowledged: no - triage_acknowledge is false" in text and "none created" not in text
    assert "set to P1 (as assessed)" in text and "overridden from P1 to P1" not in text
    assert re.search(rf"excluded by a guard: +1 pid {backup.pid} \([^)]*pg_dump\): protected application pg_dump", text), text
    written = re.search(r"INCIDENT LEDGER \S+: (\d+) entries written to (\S+); head seq (\d+)", text)
    assert written and int(written.group(1)) == int(written.group(3)) == len(resp.ledger())
    assert f"{len(victims)} session(s) with terminate" in text
