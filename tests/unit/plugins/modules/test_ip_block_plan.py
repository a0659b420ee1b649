# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ip_block_plan: a plan in check mode with its diff, bad input as one message, the cap's failure with its evidence.

Nothing here touches a firewall: the current rules are given with current_rules.
"""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import ip_block_plan

CHAIN = 'TRDRHUB-BLOCK'


def addresses(count: int) -> list[str]:
    return [f'198.51.100.{n}' for n in range(1, count + 1)]


def test_module_plans_from_current_rules_in_check_mode(run_module):
    result = run_module(ip_block_plan, {'addresses': ['203.0.113.5', '10.1.1.1'], 'allowlist': ['10.0.0.0/8'],
                                        'incident_id': 'INC-1', 'current_rules': [f'-N {CHAIN}']},
                        check_mode=True, diff=True)
    assert not result.get('failed') and result['changed'] is False
    assert result['to_block'] == ['203.0.113.5/32'] and result['refused'][0]['protected_by'] == '10.0.0.0/8'
    assert '203.0.113.5/32 trdrhub:INC-1:exp=' in result['diff']['after'] and result['diff']['before'] == ''
    expiry = datetime.datetime.fromisoformat(result['expires_at'].replace('Z', '+00:00'))
    assert datetime.timedelta(hours=23) < expiry - datetime.datetime.now(datetime.timezone.utc) <= datetime.timedelta(hours=24)


@pytest.mark.parametrize('args, words', [
    ({'addresses': ['203.0.113.300'], 'incident_id': 'INC-1'}, ["Invalid address '203.0.113.300'"]),
    ({'addresses': ['203.0.113.5'], 'incident_id': 'INC-1', 'expire_after': 'soon'}, ["Invalid duration 'soon'"]),
    ({'addresses': ['203.0.113.5'], 'incident_id': 'INC-1', 'max_addresses_override': 60},
     ['override_reason']),
    ({'state': 'absent'}, ['refusing to lift every block']),
])
def test_module_bad_input_is_one_message(run_module, args, words):
    result = run_module(ip_block_plan, dict(args, current_rules=[]))
    assert result['failed']
    for word in words:
        assert word in result['msg']
    assert 'Traceback' not in result['msg']


def test_module_cap_failure_carries_the_evidence(run_module):
    result = run_module(ip_block_plan, {'addresses': addresses(3), 'incident_id': 'INC-1', 'max_addresses': 2,
                                        'current_rules': []})
    assert result['failed'] and result['cap']['count'] == 3 and result['cap']['limit'] == 2 and result['rules'] == []
    assert sorted(result['candidates']) == ['198.51.100.1/32', '198.51.100.2/32', '198.51.100.3/32']
