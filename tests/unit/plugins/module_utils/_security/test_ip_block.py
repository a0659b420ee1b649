# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The IP blocking helpers: networks, durations and times, the rule comment, iptables rule lines, chain names.
"""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._security import ip_block as ipb

NOW = 1_736_951_400   # 2025-01-15T14:30:00Z


CHAIN = 'TRDRHUB-BLOCK'


def line(address: str, incident: str = 'INC-1', exp: int | str = NOW + 3600, jump: str = 'DROP', extra: str = '') -> str:
    return f'-A {CHAIN} -s {address}{extra} -m comment --comment "trdrhub:{incident}:exp={exp}" -j {jump}'


# --- addresses ------------------------------------------------------------------------------

@pytest.mark.parametrize('given, expected', [
    ('203.0.113.5', '203.0.113.5/32'),
    (' 203.0.113.0/24 ', '203.0.113.0/24'),
    ('2001:db8::1', '2001:db8::1/128'),
    ('2001:DB8:BAD::/48', '2001:db8:bad::/48'),
    ('::ffff:198.51.100.7', '198.51.100.7/32'),
    ('::ffff:198.51.100.0/120', '198.51.100.0/24'),
])
def test_parse_network_normalises(given, expected):
    assert str(ipb.parse_network(given)) == expected


@pytest.mark.parametrize('given, words', [
    ('203.0.113.300', ['203.0.113.300']),
    ('10.0.0.5/24', ['host bits', '10.0.0.0/24']),
    ('evil.example', ['evil.example']),
    ('', ['empty']),
    (None, ['empty']),
])
def test_parse_network_refuses_with_one_clear_message(given, words):
    with pytest.raises(ipb.IpBlockError) as caught:
        ipb.parse_network(given)
    for word in words:
        assert word in str(caught.value)


# --- expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize('text, seconds', [
    ('30m', 1800), ('24h', 86400), ('7d', 604800), ('1h30m', 5400), ('2w', 1209600), ('90', 90), (' 12H ', 43200),
])
def test_parse_duration(text, seconds):
    assert ipb.parse_duration(text) == seconds


@pytest.mark.parametrize('text', ['', 'soon', '10y', '5 minutes', '0', '0h', '400d', '-1h', None])
def test_parse_duration_refuses(text):
    with pytest.raises(ipb.IpBlockError):
        ipb.parse_duration(text)


@pytest.mark.parametrize('text', ['2025-01-15T14:30:00Z', '2025-01-15T15:30:00+01:00', '2025-01-15T14:30:00',
                                  '1736951400', '1736951400.9'])
def test_parse_time_is_utc(text):
    assert ipb.parse_time(text) == NOW


def test_parse_time_refuses():
    with pytest.raises(ipb.IpBlockError, match='ISO 8601'):
        ipb.parse_time('tomorrow')


# --- comments and rule lines ----------------------------------------------------------------

def test_comment_round_trip():
    comment = ipb.format_comment('INC-2025-0042', NOW)
    assert comment == f'trdrhub:INC-2025-0042:exp={NOW}'
    assert ipb.parse_comment(comment) == ('INC-2025-0042', NOW)
    assert ipb.parse_comment('trdrhub:INC-2025-0042:exp=2025-01-15T14:30:00Z') == ('INC-2025-0042', NOW)


@pytest.mark.parametrize('comment', [None, '', 'trdrhub:hook', 'ops:INC-1:exp=1', 'trdrhub:INC 1:exp=1',
                                     'trdrhub:INC-1:exp=later'])
def test_foreign_comments_are_not_ours(comment):
    assert ipb.parse_comment(comment) is None


def test_parse_rule_line():
    rule = ipb.parse_rule_line(line('203.0.113.5/32', jump='REJECT') + ' --reject-with icmp-port-unreachable', CHAIN)
    assert rule['managed'] and rule['address'] == '203.0.113.5/32' and rule['family'] == 'ipv4'
    assert rule['incident_id'] == 'INC-1' and rule['expires_epoch'] == NOW + 3600
    assert rule['reject_with'] == 'icmp-port-unreachable'
    assert ipb.parse_rule_line(f'-N {CHAIN}', CHAIN) is None
    assert ipb.parse_rule_line('-A INPUT -j TRDRHUB-BLOCK', CHAIN) is None
    assert not ipb.parse_rule_line(line('203.0.113.5/32', extra=' -p tcp'), CHAIN)['managed']
    assert not ipb.parse_rule_line(f'-A {CHAIN} -s 203.0.113.6/32 -j DROP', CHAIN)['managed']


def test_hooks_in():
    lines = ['-P INPUT ACCEPT', '-A INPUT -m comment --comment "trdrhub:hook" -j TRDRHUB-BLOCK']
    assert ipb.hooks_in(lines, 'INPUT', CHAIN)
    assert not ipb.hooks_in(lines, 'FORWARD', CHAIN)
    assert not ipb.hooks_in(['-A INPUT -j TRDRHUB-BLOCK-2'], 'INPUT', CHAIN)


@pytest.mark.parametrize('chain', ['INPUT', 'forward', 'A' * 29, 'bad chain', '-j', ''])
def test_chain_name_is_checked(chain):
    with pytest.raises(ipb.IpBlockError):
        ipb.check_chain(chain)
