"""The one rule for where incidents live: environment, else inventory variable, else the XDG state directory."""
from __future__ import annotations

import os

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common import incidents_home as _home
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    closest,
    default_home,
    incidents_home,
    known_incidents,
    unknown_incident_message,
)


@pytest.mark.parametrize('env, variables, expected', [
    ({'TRDRHUB_LEDGER_DIR': '/srv/env', 'HOME': '/home/u'}, {'trdrhub_incidents_dir': '/srv/inv'}, ('/srv/env', 'environment')),
    ({'HOME': '/home/u'}, {'trdrhub_incidents_dir': '/srv/inv'}, ('/srv/inv', 'inventory')),
    ({'HOME': '/home/u'}, {'trdrhub_incidents_dir': 'records', 'inventory_dir': '/etc/inv'}, ('/etc/inv/records', 'inventory')),
    ({'TRDRHUB_LEDGER_DIR': '', 'XDG_STATE_HOME': '/var/state'}, {'trdrhub_incidents_dir': ''}, ('/var/state/trdrhub-incident/incidents', 'default')),
    ({'XDG_STATE_HOME': 'relative/is/ignored'}, None, (os.path.expanduser('~/.local/state/trdrhub-incident/incidents'), 'default')),
])
def test_environment_then_inventory_then_default(env, variables, expected):
    assert incidents_home(env, variables) == expected


def test_a_relative_environment_value_is_made_absolute_from_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert incidents_home({'TRDRHUB_LEDGER_DIR': 'inc'}, {}) == (str(tmp_path / 'inc'), 'environment')


def test_the_default_depends_on_neither_the_current_directory_nor_a_playbook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_home({'XDG_STATE_HOME': '/s'}) == '/s/trdrhub-incident/incidents'
    assert str(tmp_path) not in default_home()


def test_known_incidents_and_the_closest_match(tmp_path):
    for name in ('INC-UX-0001', 'INC-UX-0002', 'INC-DB-0100'):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'ledger.jsonl').write_text('{}\n')
    (tmp_path / 'stray').mkdir()   # no ledger: not an incident
    known = known_incidents(str(tmp_path))
    assert known == ['INC-DB-0100', 'INC-UX-0001', 'INC-UX-0002']
    assert closest('INC-UX-001', known) == 'INC-UX-0001'
    assert closest('something-else-entirely', known) is None
    msg = unknown_incident_message('INC-UX-001', str(tmp_path), known)
    assert 'Did you mean INC-UX-0001?' in msg and 'INC-DB-0100, INC-UX-0001, INC-UX-0002' in msg
    assert known_incidents(str(tmp_path / 'missing')) == []


def test_a_relative_inventory_value_of_the_implicit_localhost_is_taken_from_the_first_inventory_source(tmp_path):
    inventory = tmp_path / 'inv' / 'hosts.yml'
    inventory.parent.mkdir()
    inventory.write_text('{}')
    variables = {'trdrhub_incidents_dir': 'records', 'ansible_inventory_sources': [str(inventory)]}
    assert incidents_home({}, variables) == (str(tmp_path / 'inv' / 'records'), 'inventory')
    variables['ansible_inventory_sources'] = [str(inventory.parent)]
    assert incidents_home({}, variables) == (str(tmp_path / 'inv' / 'records'), 'inventory')


# -- the one ledger-file reader --------------------------------------------------------------------
def test_ledger_lines_are_numbered_with_their_newline(tmp_path):
    path = tmp_path / 'ledger.jsonl'
    path.write_bytes(b'{"seq": 1}\n\n{"seq": 2}\n{"seq": 3')
    assert list(_home.ledger_lines(str(path), lock_held=True)) == [(1, b'{"seq": 1}\n'), (2, b'\n'), (3, b'{"seq": 2}\n'),
                                                                   (4, b'{"seq": 3')]


def test_ledger_lines_read_only_what_was_settled(tmp_path, monkeypatch):
    path = tmp_path / 'ledger.jsonl'
    path.write_bytes(b'{"seq": 1}\n{"seq": 2}\n')
    monkeypatch.setattr(_home, 'settled_size', lambda _path: 15)   # an append was in progress past byte 15
    assert list(_home.ledger_lines(str(path))) == [(1, b'{"seq": 1}\n'), (2, b'{"se')]
    assert len(list(_home.ledger_lines(str(path), lock_held=True))) == 2


def test_a_missing_ledger_file_has_no_lines(tmp_path):
    assert list(_home.ledger_lines(str(tmp_path / 'none.jsonl'))) == []
    assert list(_home.ledger_lines(str(tmp_path / 'none.jsonl'), lock_held=True)) == []


def test_other_read_errors_are_the_callers_to_word(tmp_path):
    with pytest.raises(IsADirectoryError):
        list(_home.ledger_lines(str(tmp_path), lock_held=True))
