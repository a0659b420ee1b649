"""Bad input through ansible-playbook: one plain sentence, before anything is contacted, secrets masked.

The unit test ``tests/unit/plugins/modules/test_bad_input.py`` covers every option of every
module in-process; this runs a few of the same cases for real, through AnsiballZ modules and
the controller-side action plugins, where a crash would show as "Module failed:" and where
Ansible itself prints the registered result (``invocation`` included).
"""
from __future__ import annotations

import re

import pytest
from _itest_batch import run_batch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "Pa55-in-connect-params-7f3a"
EMAIL = {"host": "127.0.0.1", "port": 1, "sender": "ops@trdrhub.example", "to": ["ops@customer.example"],
         "subject": "Delayed processing", "body": "Document processing is delayed."}
PYTHON_NAMES = re.compile(r"<class|\b(?:str|int|float|dict|NoneType)\b|_Ansible\w+")


def test_bad_input_is_one_sentence_through_ansible_playbook(ansible, tmp_path):
    runs = run_batch(ansible, {
        "email-timeout": ("email_notify", dict(EMAIL, timeout=-1)),
        "email-port": ("email_notify", dict(EMAIL, port=70000)),
        "set-env-nested": ("k8s_rollout", {"host": "https://127.0.0.1:1", "name": "trdrhub-api", "action": "set_env",
                                           "container": "api", "env": {"READ_ONLY": {"nested": [1, 2]}}}),
        "pg-port-type": ("pg_activity_info", {"login_host": "127.0.0.1", "login_port": "five",
                                              "connect_params": {"password": SECRET}}),
        "pg-timeout-range": ("pg_activity_info", {"login_host": "127.0.0.1", "login_port": 1, "connect_timeout": -1,
                                                  "connect_params": {"password": SECRET}}),
        "ledger-timeout-range": ("ledger_record", {"incident_id": "INC-BAD-1", "msg": "x", "root": str(tmp_path),
                                                   "connect_timeout": -1, "connect_params": {"password": SECRET}}),
        "ledger-msg-type": ("ledger_record", {"incident_id": "INC-BAD-1", "msg": {"text": "x"}, "root": str(tmp_path)}),
    })
    expected = {
        "email-timeout": "timeout must be greater than 0 and at most 86400, got -1",
        "email-port": "port must be between 1 and 65535, got 70000",
        "set-env-nested": "env.READ_ONLY must be a string, a number or a boolean (null removes the variable), got a mapping",
        "pg-port-type": "login_port must be an integer, got a string",
        "pg-timeout-range": "connect_timeout must be at least 0, got -1",
        "ledger-timeout-range": "connect_timeout must be at least 0, got -1",
        "ledger-msg-type": "msg must be a string, got a mapping",
    }
    for name, message in expected.items():
        res = runs[name]
        assert res.failed and res["msg"] == message, (name, res.get("msg"))
        assert not PYTHON_NAMES.search(res["msg"]) and "Module failed" not in res["msg"]
    assert runs["set-env-nested"].get("requests", []) == []
    output = runs["email-timeout"].output
    assert SECRET not in output and "Traceback" not in output
    assert not (tmp_path / "INC-BAD-1").exists()
