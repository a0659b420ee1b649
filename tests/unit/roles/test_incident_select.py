# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""roles/incident_select: which incident id a role records under, and every reason it refuses one.

One ansible-playbook run (local connection, nothing written, no ledger consulted): each inventory host
is one case, its variables the role's inputs; a rescue prints what the role published or the message
it failed with.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PLAYBOOK_BIN = Path(sys.executable).parent / 'ansible-playbook'
ROOT = Path(__file__).resolve().parents[3]   # the checkout, at ansible_collections/trdrhub/incident through .collections

CASES = {
    'two_ids': {'incident_select_prefix': 'pir', 'incident_select_own': 'INC-1', 'incident_select_shared': 'INC-2'},
    'same_ids': {'incident_select_prefix': 'pir', 'incident_select_own': 'INC-1', 'incident_select_shared': 'INC-1'},
    'missing': {'incident_select_prefix': 'investigate', 'incident_select_required': True,
                'incident_select_needed_for': 'the bundle is kept with it'},
    'missing_plain': {'incident_select_required': True},
    'bad_required': {'incident_select_required': True, 'incident_select_shared': '../x'},
    'bad_optional': {'incident_select_shared': 'INC 42'},
    'none_optional': {},
    'generated': {'incident_select_prefix': 'block_ips', 'incident_select_generate': 'ipb'},
}

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - ansible.builtin.include_role:
            name: trdrhub.incident.incident_select
        - ansible.builtin.debug:
            msg: "CASE {{ {'host': inventory_hostname, 'result': incident_select_result} | to_json }}"
      rescue:
        - ansible.builtin.debug:
            msg: "CASE {{ {'host': inventory_hostname, 'error': ansible_failed_result.msg} | to_json }}"
"""

NOTHING = 'Nothing was written.'
FORMAT = "It must be 1 to 128 letters, digits, '.', '_' or '-' (no '..', no '/', no spaces)"


@pytest.fixture(scope='module')
def outcome(tmp_path_factory):
    if not (ROOT.parent.parent.name == 'ansible_collections' or (ROOT / '.collections').is_dir()):
        pytest.skip('the collection is not reachable as trdrhub.incident from this checkout')
    work = tmp_path_factory.mktemp('incident_select')
    hosts = {name: dict(case, ansible_connection='local', ansible_python_interpreter=sys.executable,
                        incident_select_must_exist=False, incident_select_nothing_done=NOTHING)
             for name, case in CASES.items()}
    (work / 'hosts.json').write_text(json.dumps({'all': {'hosts': hosts}}))
    (work / 'play.yml').write_text(PLAYBOOK)
    (work / 'ansible.cfg').write_text(f'[defaults]\ncollections_path = {ROOT / ".collections"}\nretry_files_enabled = false\n')
    env = dict(os.environ, ANSIBLE_CONFIG=str(work / 'ansible.cfg'), ANSIBLE_NOCOLOR='1', ANSIBLE_LOCAL_TEMP=str(work / 'tmp'),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default', ANSIBLE_CALLBACKS_ENABLED='ansible.builtin.default',
               PYTHONWARNINGS='ignore:DSA is deprecated')
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    proc = subprocess.run([str(PLAYBOOK_BIN), '-i', str(work / 'hosts.json'), str(work / 'play.yml')], capture_output=True,
                          text=True, env=env, cwd=str(work), timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = {}
    for text in re.findall(r'CASE (\{.*\})', proc.stdout.replace('\\"', '"')):
        case = json.loads(text)
        cases[case.pop('host')] = case
    assert sorted(cases) == sorted(CASES), proc.stdout
    return cases


pytestmark = pytest.mark.skipif(not PLAYBOOK_BIN.exists(), reason='ansible-playbook is not installed beside this Python')


def test_the_given_or_generated_id_is_chosen(outcome):
    assert outcome['same_ids'] == {'result': {'incident_id': 'INC-1', 'generated': False}}
    assert outcome['none_optional'] == {'result': {'incident_id': '', 'generated': False}}
    generated = outcome['generated']['result']
    assert generated['generated'] is True and re.fullmatch(r'ipb-\d{8}T\d{6}Z-[0-9a-f]{6}', generated['incident_id'])


def test_two_different_ids_are_refused(outcome):
    assert outcome['two_ids'] == {'error': 'pir_incident_id (INC-1) and trdrhub_incident_id (INC-2) name different incidents, '
                                           f'so this run would be recorded in two ledgers. Set only one of them. {NOTHING}'}


def test_a_missing_id_is_refused_where_the_role_needs_one(outcome):
    assert outcome['missing'] == {'error': 'investigate needs the incident id (-e trdrhub_incident_id=INC-2025-0042): the bundle '
                                           f"is kept with it. {FORMAT}; got ''. {NOTHING}"}
    assert outcome['missing_plain'] == {'error': 'this playbook needs the incident id (-e trdrhub_incident_id=INC-2025-0042). '
                                                 f"{FORMAT}; got ''. {NOTHING}"}


def test_an_id_that_cannot_name_a_ledger_is_refused(outcome):
    assert outcome['bad_required'] == {'error': 'this playbook needs the incident id (-e trdrhub_incident_id=INC-2025-0042). '
                                                f"{FORMAT}; got '../x'. {NOTHING}"}
    assert outcome['bad_optional'] == {'error': "The incident id 'INC 42' cannot name a ledger: use 1 to 128 letters, digits, "
                                                f"'.', '_' or '-' (no '..', no '/', no spaces), for example INC-2025-0042. {NOTHING}"}
