# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The controller-side modules executed directly on a host: their options and the operation run through the runner."""

from __future__ import annotations

import os
import platform
import types

from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.controller import (
    controller_argument_spec,
    controller_main,
    host_context,
)

OWN = {'incident_id': {'type': 'str', 'required': True}, 'note': {'type': 'str'}}


def test_the_spec_is_postgresql_then_ledger_then_the_modules_own_options():
    spec = controller_argument_spec(OWN)
    assert {'login_host', 'backend', 'root', 'table', 'incident_id', 'note'} <= set(spec)
    assert spec['incident_id'] == OWN['incident_id'] and spec['root']['aliases'] == ['dir']


def test_host_context_names_this_host():
    assert host_context() == {'host': platform.node() or None}


def test_the_operation_runs_with_the_options_check_mode_cwd_and_host(run_module, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    def operation(params, **kwargs):
        calls.append((params['incident_id'], kwargs))
        return {'changed': not kwargs['check_mode'], 'incident_id': params['incident_id']}

    main = types.SimpleNamespace(main=lambda: controller_main(controller_argument_spec(OWN), operation, want_diff=True))
    result = run_module(main, {'incident_id': 'INC-7'}, check_mode=True, diff=True)
    assert not result.get('failed') and result['changed'] is False and result['incident_id'] == 'INC-7'
    (incident, kwargs), = calls
    assert incident == 'INC-7' and kwargs['check_mode'] is True and kwargs['want_diff'] is True
    assert kwargs['base_dir'] == os.getcwd() == str(tmp_path) and kwargs['context'] == host_context()


def test_a_result_marked_failed_is_one_message_with_its_details(run_module):
    def operation(params, **kwargs):
        return {'failed': True, 'msg': 'Incident INC-7 is resolved; reopen it first', 'status': 'resolved'}

    seen = []
    main = types.SimpleNamespace(main=lambda: controller_main(controller_argument_spec(OWN), operation,
                                                              prepare=lambda module: seen.append(module.params['note'])))
    result = run_module(main, {'incident_id': 'INC-7', 'note': 'n'})
    assert result['failed'] and result['msg'] == 'Incident INC-7 is resolved; reopen it first'
    assert result['status'] == 'resolved' and seen == ['n']
