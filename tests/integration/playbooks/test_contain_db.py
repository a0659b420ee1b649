"""playbooks/contain_db.yml re-run with nothing to contain, in approval store mode.

A re-run after the runaway sessions are gone (or with filters nothing matches) asks no approval:
no request waits for approvers, no vote or decision is recorded, and the run says there was nothing
to contain. The gate itself, the prompt and the vote are covered by plugins/modules/test_approval.py and
test_next_step_hints.py.
"""
from __future__ import annotations

import json
import uuid

import pytest
from _itest_ansible import REPO_ROOT
from _itest_ledger import read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_a_store_mode_run_with_nothing_to_contain_asks_no_approval(ansible, pg_server, trdrhub_db, sessions, app, tmp_path):
    sessions.active(app + "-api")   # a live session the filters below do not match
    incident = "INC-NOOP-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_OPS_PASSWORD": trdrhub_db["ops"]["password"], "TRDRHUB_LEDGER_DIR": str(root)}
    variables = {"trdrhub_incident_id": incident, "contain_db_applications": [app + "-nothing-runs-as-this*"],
                 "contain_db_min_duration": 1, "contain_db_approval_mode": "store", "contain_db_approval_timeout": 5,
                 "trdrhub_approval_policy": {}}
    run = ansible.run_playbook(REPO_ROOT / "playbooks" / "contain_db.yml", "-i", "inventories/sandbox",
                               "-e", json.dumps(variables), extra_env=env)
    assert run.rc == 0, run.output
    assert "Nothing to contain" in " ".join(run.output.split()), run.output
    entries = read_file_ledger(root / incident / "ledger.jsonl")
    assert [e for e in entries if e["event"] == "approval"] == []
    [decision] = [e for e in entries if e["event"] == "decision"]
    assert decision["data"]["confirmed"] is False and decision["data"]["sessions"] == 0
    assert not (root / incident / "approvals").exists()
