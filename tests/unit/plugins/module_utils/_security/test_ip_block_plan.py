# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The IP block planner: addresses, allowlist, cap, expiry, rule comments, idempotent plans.

Nothing here touches a firewall: rules are given as ``iptables -S`` lines (StaticReader) or
answered by a fake ``run_command`` (RuleReader, the module's default reader).
"""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._security import ip_block as ipb
from ansible_collections.trdrhub.incident.plugins.module_utils._security.ip_block_plan import (
    IpBlockPlan,
    RuleReader,
    StaticReader,
)

NOW = 1_736_951_400   # 2025-01-15T14:30:00Z


CHAIN = 'TRDRHUB-BLOCK'


def line(address: str, incident: str = 'INC-1', exp: int | str = NOW + 3600, jump: str = 'DROP', extra: str = '') -> str:
    return f'-A {CHAIN} -s {address}{extra} -m comment --comment "trdrhub:{incident}:exp={exp}" -j {jump}'


def plan(current: list[str] | None = None, **params) -> dict:
    params.setdefault('incident_id', 'INC-1')
    return IpBlockPlan(params, now=NOW).run(StaticReader(current or []))


def test_invalid_addresses_are_reported_together_and_nothing_is_planned():
    with pytest.raises(ipb.IpBlockError) as caught:
        IpBlockPlan({'addresses': ['203.0.113.5', 'nope', '1.2.3.4/33'], 'incident_id': 'INC-1'}, now=NOW)
    msg = str(caught.value)
    assert msg.startswith('2 invalid values') and "'nope'" in msg and "'1.2.3.4/33'" in msg
    assert msg.endswith('Nothing was planned.')


# --- allowlist: overlap in either direction, both families ----------------------------------

@pytest.mark.parametrize('address, protector', [
    ('10.20.3.4', '10.20.0.0/16'),             # inside an allowlisted range
    ('10.0.0.0/8', '10.20.0.0/16'),            # contains an allowlisted range
    ('0.0.0.0/0', '10.20.0.0/16'),             # the catch-all contains everything
    ('2001:db8:100:1::5', '2001:db8:100::/48'),
    ('2001:db8::/32', '2001:db8:100::/48'),
    ('127.0.0.53', 'implied: IPv4 loopback'),
    ('169.254.169.254', 'implied: IPv4 link-local'),
    ('::1', 'implied: IPv6 loopback'),
    ('fe80::1', 'implied: IPv6 link-local'),
    ('::/0', '2001:db8:100::/48'),
])
def test_allowlist_overlap_refuses(address, protector):
    result = plan(addresses=[address], allowlist=['10.20.0.0/16', '2001:db8:100::/48'])
    assert result['to_block'] == [] and result['rules'] == []
    assert [r['protected_by'] for r in result['refused']] == [protector]
    assert result['refused'][0]['reason']


def test_allowlist_compares_within_a_family_only():
    result = plan(addresses=['203.0.113.5', '2001:db8:bad::1'], allowlist=['203.0.113.0/24'])
    assert result['to_block'] == ['2001:db8:bad::1/128']
    assert [r['address'] for r in result['refused']] == ['203.0.113.5/32']


def test_allowlist_entry_with_host_bits_protects_the_whole_network():
    result = plan(addresses=['192.0.2.200'], allowlist=['192.0.2.10/24'])
    assert result['refused'][0]['protected_by'] == '192.0.2.0/24'


def test_invalid_allowlist_entry_fails():
    with pytest.raises(ipb.IpBlockError, match="allowlist entry 'admin-net'"):
        IpBlockPlan({'addresses': ['203.0.113.5'], 'allowlist': ['admin-net'], 'incident_id': 'INC-1'}, now=NOW)


def test_ipv4_mapped_address_is_checked_against_the_ipv4_allowlist():
    result = plan(addresses=['::ffff:10.20.1.1'], allowlist=['10.20.0.0/16'])
    assert result['refused'][0]['address'] == '10.20.1.1/32'


# --- cap ------------------------------------------------------------------------------------

def addresses(count: int) -> list[str]:
    return [f'198.51.100.{n}' for n in range(1, count + 1)]


def test_cap_exceeded_fails_naming_count_and_cap_with_nothing_planned():
    with pytest.raises(ipb.IpBlockError) as caught:
        plan(addresses=addresses(6), max_addresses=5)
    assert '6 addresses would be blocked, more than the cap of 5' in str(caught.value)
    assert caught.value.details['rules'] == [] and caught.value.details['to_block'] == []
    assert caught.value.details['cap'] == {'limit': 5, 'count': 6, 'override_reason': None}


def test_cap_counts_already_blocked_but_not_refused():
    current = [line('198.51.100.1/32'), line('198.51.100.2/32')]
    ok = plan(current, addresses=addresses(3) + ['10.0.0.1', '10.0.0.2'], allowlist=['10.0.0.0/8'], max_addresses=3)
    assert ok['cap'] == {'limit': 3, 'count': 3, 'override_reason': None}
    with pytest.raises(ipb.IpBlockError, match='4 addresses'):
        plan(current, addresses=addresses(4), max_addresses=3)


def test_cap_override_is_bounded_and_needs_a_reason():
    result = plan(addresses=addresses(6), max_addresses=5, max_addresses_override=10, override_reason='botnet wave')
    assert len(result['to_block']) == 6 and result['cap']['override_reason'] == 'botnet wave'
    with pytest.raises(ipb.IpBlockError, match='override_reason'):
        plan(addresses=addresses(6), max_addresses=5, max_addresses_override=10)
    with pytest.raises(ipb.IpBlockError, match='between 1 and 1000'):
        plan(addresses=addresses(6), max_addresses_override=5000, override_reason='x')
    with pytest.raises(ipb.IpBlockError, match='between 1 and 1000'):
        plan(addresses=addresses(1), max_addresses=0)


def test_expire_after_and_expires_at_set_the_rule_expiry():
    assert plan(addresses=['203.0.113.5'], expire_after='30m')['rules'][0]['expires_epoch'] == NOW + 1800
    at = plan(addresses=['203.0.113.5'], expires_at='2025-01-16T00:00:00Z', expire_after='30m')
    assert at['rules'][0]['expires_at'] == '2025-01-16T00:00:00Z'
    assert at['rules'][0]['comment'] == f"trdrhub:INC-1:exp={ipb.parse_time('2025-01-16T00:00:00Z')}"


def test_past_expiry_only_when_allowed():
    with pytest.raises(ipb.IpBlockError, match='not in the future'):
        plan(addresses=['203.0.113.5'], expires_at=str(NOW - 60))
    result = plan(addresses=['203.0.113.5'], expires_at=str(NOW - 60), allow_past_expiry=True)
    assert result['rules'][0]['expires_epoch'] == NOW - 60


# --- plans from existing rules --------------------------------------------------------------

def test_plan_is_idempotent_once_the_rules_exist():
    first = plan(addresses=['203.0.113.5', '2001:db8:bad::/48'])
    applied = [line(r['address'], exp=r['expires_epoch']) for r in first['rules']]
    second = plan(applied, addresses=['203.0.113.5', '2001:db8:bad::/48'])
    assert second['to_block'] == [] and second['rules'] == [] and second['to_unblock'] == []
    assert sorted(r['requested'] for r in second['already_blocked']) == ['2001:db8:bad::/48', '203.0.113.5/32']
    assert second['diff']['before'] == second['diff']['after']


def test_address_inside_a_blocked_cidr_is_already_blocked():
    result = plan([line('203.0.113.0/24')], addresses=['203.0.113.77'])
    assert result['to_block'] == [] and result['already_blocked'][0]['covered_by'] == '203.0.113.0/24'


def test_expired_block_of_a_requested_address_is_replaced():
    old = line('203.0.113.5/32', incident='INC-0', exp=NOW - 1)
    result = plan([old], addresses=['203.0.113.5'])
    assert result['to_block'] == ['203.0.113.5/32']
    assert [(r['address'], r['incident_id'], r['reason'].split(':')[0]) for r in result['to_unblock']] == [
        ('203.0.113.5/32', 'INC-0', 'replaced')]
    assert [r['address'] for r in result['expired']] == ['203.0.113.5/32']


def test_reject_target_plans_the_reject_type_iptables_reports():
    result = plan(addresses=['203.0.113.5', '2001:db8::5'], target='REJECT')
    assert {r['family']: r['reject_with'] for r in result['rules']} == ipb.REJECT_WITH


def test_absent_selectors_combine():
    current = [line('192.0.2.1/32', 'INC-A', NOW - 10), line('192.0.2.2/32', 'INC-A', NOW + 10),
               line('192.0.2.3/32', 'INC-B', NOW - 10), line('2001:db8::4/128', 'INC-B', NOW + 10),
               f'-A {CHAIN} -s 192.0.2.9/32 -j DROP']

    def lifted(**params):
        return sorted(r['address'] for r in plan(current, state='absent', **params)['to_unblock'])

    assert lifted(incident_id='INC-A') == ['192.0.2.1/32', '192.0.2.2/32']
    assert lifted(incident_id=None, expired_only=True) == ['192.0.2.1/32', '192.0.2.3/32']
    assert lifted(incident_id='INC-A', expired_only=True) == ['192.0.2.1/32']
    assert lifted(incident_id=None, addresses=['2001:db8::4']) == ['2001:db8::4/128']
    foreign = plan(current, state='absent', incident_id=None, addresses=['192.0.2.9', '192.0.2.50'])
    assert foreign['to_unblock'] == [] and foreign['refused'][0]['address'] == '192.0.2.9/32'
    assert foreign['not_found'] == ['192.0.2.50/32']
    assert foreign['unmanaged'] == [f'-A {CHAIN} -s 192.0.2.9/32 -j DROP']


def test_absent_needs_a_selector_and_present_needs_an_incident():
    with pytest.raises(ipb.IpBlockError, match='refusing to lift every block'):
        IpBlockPlan({'state': 'absent'}, now=NOW)
    with pytest.raises(ipb.IpBlockError, match='incident_id is required'):
        IpBlockPlan({'addresses': ['203.0.113.5']}, now=NOW)
    with pytest.raises(ipb.IpBlockError, match='Invalid incident_id'):
        IpBlockPlan({'addresses': ['203.0.113.5'], 'incident_id': 'INC/../x'}, now=NOW)


# --- the reader the module uses -------------------------------------------------------------

class FakeIptables:
    """run_command for iptables/ip6tables -S, answering from per-family tables."""

    def __init__(self, tables: dict[str, list[str] | None], missing_chain_error: str) -> None:
        self.tables, self.error, self.calls = tables, missing_chain_error, []

    def __call__(self, argv: list[str]):
        self.calls.append(argv)
        family = 'ipv6' if argv[0].endswith('ip6tables') else 'ipv4'
        lines = self.tables.get(family)
        if lines is None:
            return 4, '', "can't initialize ip6tables table `filter': Permission denied (you must be root)"
        if len(argv) == 2:
            return 0, '\n'.join(lines) + '\n', ''
        chain = argv[2]
        if f'-N {chain}' not in lines and chain not in ('INPUT', 'FORWARD'):
            return 1, '', self.error
        return 0, '\n'.join(x for x in lines if x.split()[1:2] == [chain]) + '\n', ''


@pytest.mark.parametrize('error', ['iptables: No chain/target/match by that name.',
                                   "iptables v1.8.9 (nf_tables): chain `TRDRHUB-BLOCK' in table `filter' is incompatible, use 'nft' tool."])
def test_rule_reader_treats_a_missing_chain_as_empty(error):
    fake = FakeIptables({'ipv4': ['-P INPUT ACCEPT'], 'ipv6': ['-P INPUT ACCEPT']}, error)
    reader = RuleReader(fake, lambda name: f'/usr/sbin/{name}')
    result = IpBlockPlan({'addresses': ['203.0.113.5'], 'incident_id': 'INC-1'}, now=NOW).run(reader)
    assert result['to_block'] == ['203.0.113.5/32']
    assert result['chains']['ipv4']['exists'] is False and result['chains']['ipv4']['available'] is True
    assert all(call[1] == '-S' for call in fake.calls)   # read-only


def test_rule_reader_reports_hooks_and_fails_only_for_a_family_it_needs():
    v4 = ['-P INPUT ACCEPT', f'-N {CHAIN}', '-A INPUT -j TRDRHUB-BLOCK', line('203.0.113.5/32')]
    fake = FakeIptables({'ipv4': v4, 'ipv6': None}, 'No chain/target/match by that name.')
    reader = RuleReader(fake, lambda name: f'/usr/sbin/{name}')
    params = {'addresses': ['198.51.100.1'], 'incident_id': 'INC-1', 'hook_chains': ['INPUT', 'FORWARD']}
    result = IpBlockPlan(params, now=NOW).run(reader)
    assert result['chains']['ipv4']['hooked_from'] == ['INPUT'] and result['chains']['ipv4']['missing_hooks'] == ['FORWARD']
    assert result['chains']['ipv6']['available'] is False
    with pytest.raises(ipb.IpBlockError, match='Cannot read the ipv6 rules.*Permission denied'):
        IpBlockPlan(dict(params, addresses=['2001:db8::1']), now=NOW).run(RuleReader(fake, lambda name: f'/usr/sbin/{name}'))


def test_rule_reader_without_binary():
    reader = RuleReader(lambda argv: (0, '', ''), lambda name: None)
    with pytest.raises(ipb.IpBlockError, match='iptables was not found'):
        IpBlockPlan({'addresses': ['203.0.113.5'], 'incident_id': 'INC-1'}, now=NOW).run(reader)
