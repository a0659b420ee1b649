# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Targets parsing and TCP reachability against a listening and a closed loopback port."""

from __future__ import annotations

import socket

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._host import reach
from ansible_collections.trdrhub.incident.plugins.module_utils._host.procfs import HostError


@pytest.mark.parametrize('text, parsed', [
    ('db.internal:5432', ('db.internal', 5432)), ('10.0.0.5:6379', ('10.0.0.5', 6379)), ('[::1]:443', ('::1', 443)),
])
def test_parse_target(text, parsed):
    assert reach.parse_target(text) == parsed


@pytest.mark.parametrize('text', ['db.internal', 'db:0', 'db:70000', ':5432', 'db:http', '[::1]443'])
def test_a_bad_target_names_the_option(text):
    with pytest.raises(HostError, match=r"^targets: .* is not host:port"):
        reach.parse_target(text)


@pytest.fixture
def ports():
    listening = socket.socket()
    listening.bind(('127.0.0.1', 0))
    listening.listen(8)
    closed = socket.socket()
    closed.bind(('127.0.0.1', 0))   # bound, never listening: connections are refused
    yield listening.getsockname()[1], closed.getsockname()[1]
    listening.close()
    closed.close()


def test_reachable_and_refused(ports):
    open_port, closed_port = ports
    up, down = reach.reach_all([f'127.0.0.1:{open_port}', f'localhost:{closed_port}'], timeout=2, attempts=3)
    assert up['reachable'] is True and len(up['samples_ms']) == 3 and up['error'] is None
    assert up['latency_ms'] == sorted(up['samples_ms'])[1]
    assert down == {'target': f'localhost:{closed_port}', 'host': 'localhost', 'port': closed_port, 'address': down['address'],
                    'reachable': False, 'latency_ms': None, 'samples_ms': [], 'error': 'Connection refused'}
    assert down['address'] in ('127.0.0.1', '::1')


def test_an_unknown_name_is_unreachable():
    view = reach.reach('no-such-host.invalid:5432', timeout=2, attempts=1)
    assert view['reachable'] is False and view['address'] is None
    assert view['error'].startswith('name resolution failed: ')


def test_every_target_is_checked_before_connecting(ports, monkeypatch):
    monkeypatch.setattr(reach, 'reach', lambda *a: pytest.fail('connected before checking every target'))
    with pytest.raises(HostError, match='nope'):
        reach.reach_all([f'127.0.0.1:{ports[0]}', 'nope'], timeout=1, attempts=1)
