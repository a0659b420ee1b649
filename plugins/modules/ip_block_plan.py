# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ip_block_plan
short_description: Plan IP blocks and unblocks for a security incident - allowlist, cap and expiry checked, nothing changed
version_added: 1.0.0
description:
  - Runbook 3.3 "Security Incident Response", containment of suspicious traffic. Computes which addresses to block in a
    dedicated iptables/ip6tables chain, which are refused because they overlap an allowlisted range, which existing
    blocks have expired, and which to lift - from the rules already in the chain, so the plan is idempotent.
  - Never changes the firewall. The C(trdrhub.incident.block_ips) role applies the plan with C(ansible.builtin.iptables),
    using exactly the rules in RV(rules) and RV(to_unblock).
  - Every block is a rule C(-A <chain> -s <cidr> -m comment --comment "trdrhub:<incident_id>:exp=<UTC epoch>" -j DROP).
    The comment names the incident and the expiry, so blocks are discoverable and expirable without any other state.
  - A requested address or CIDR that overlaps an allowlisted range in either direction (inside it, or containing it) is
    refused and reported in RV(refused), never blocked. Loopback (C(127.0.0.0/8), C(::1)) and link-local
    (C(169.254.0.0/16), C(fe80::/10)) are always allowlisted, so a catch-all such as C(0.0.0.0/0) is always refused.
  - IPv4-mapped IPv6 addresses (C(::ffff:203.0.113.5), as dual-stack servers log IPv4 clients) are planned as the IPv4
    address they stand for.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  addresses:
    description:
      - IPv4/IPv6 addresses or CIDRs to block (O(state=present)) or to unblock (O(state=absent)), for example the
        C(suspicious_ips) found by an access-log scan. Duplicates are ignored.
      - A CIDR with host bits set (V(10.0.0.5/24)) is invalid - write the host or the network.
      - Any invalid value fails the module with one message listing them, and nothing is planned.
    type: list
    elements: str
    default: []
  allowlist:
    description:
      - CIDRs that can never be blocked - admin and VPN networks, load balancers, monitoring, the bastion.
      - Loopback and link-local ranges are always added.
    type: list
    elements: str
    default: []
  max_addresses:
    description:
      - Hard cap on the number of distinct addresses this request blocks (new and already blocked; refused ones not
        counted). More fails the module with the count and the cap, and nothing is planned. Between V(1) and V(1000).
    type: int
    default: 50
  max_addresses_override:
    description:
      - Raises the cap for this request (at most V(1000)); requires O(override_reason), which is returned in RV(cap).
    type: int
  override_reason:
    description:
      - Why this request needs more blocks than O(max_addresses). Required with O(max_addresses_override).
    type: str
  expire_after:
    description:
      - How long new blocks last, for example V(30m), V(24h), V(7d) or V(1h30m) (units C(s), C(m), C(h), C(d), C(w)); at
        most 366 days. Ignored when O(expires_at) is set.
    type: str
    default: 24h
  expires_at:
    description:
      - When new blocks expire - ISO 8601 (V(2025-01-16T14:30:00Z); no offset means UTC) or a UTC epoch. Must be in the
        future unless O(allow_past_expiry=true).
    type: str
  allow_past_expiry:
    description:
      - Accept an O(expires_at) in the past. Only for drills and tests of the expiry sweep - such a block is lifted by the
        next sweep.
    type: bool
    default: false
  incident_id:
    description:
      - With O(state=present), the incident the blocks are for (required); it is written in every rule's comment.
      - With O(state=absent), only blocks of this incident are lifted.
    type: str
  state:
    description:
      - V(present) plans blocks for O(addresses); V(absent) plans lifting blocks selected by O(addresses), O(incident_id)
        and O(expired_only) (all given selectors must match; at least one is required).
    type: str
    choices: [present, absent]
    default: present
  expired_only:
    description:
      - With O(state=absent), lift only blocks whose expiry has passed - the periodic expiry sweep.
    type: bool
    default: false
  chain:
    description:
      - The dedicated chain the blocks live in (the same name for iptables and ip6tables); at most 28 characters, not a
        built-in chain.
    type: str
    default: TRDRHUB-BLOCK
  target:
    description:
      - Target of new blocks. V(REJECT) answers with ICMP port unreachable; V(DROP) stays silent.
    type: str
    choices: [DROP, REJECT]
    default: DROP
  hook_chains:
    description:
      - Chains expected to jump to O(chain); the result reports for each family which of them do
        (RV(chains.ipv4.hooked_from)) and which do not yet (RV(chains.ipv4.missing_hooks)).
    type: list
    elements: str
    default: [INPUT]
  current_rules:
    description:
      - The existing rules as lines of C(iptables -S <chain>) and C(ip6tables -S <chain>) output. When given, the module
        reads nothing from the host (hooks are then not reported).
      - When omitted, the module runs C(iptables -S) and C(ip6tables -S) itself (read-only; needs root or
        C(CAP_NET_ADMIN)). A missing chain counts as empty. A family that cannot be read fails the module only when the
        plan needs it.
    type: list
    elements: str
extends_documentation_fragment:
  - trdrhub.incident.attributes
attributes:
  check_mode:
    details:
      - The module only reads the firewall, so it runs unchanged in check mode.
  diff_mode:
    support: full
    details:
      - RV(diff) lists the managed blocks of the chain before and after the plan would be applied.
notes:
  - Runs on the host whose firewall is planned, as root (C(become)). Commands run - C(iptables -S <chain>),
    C(ip6tables -S <chain>) and C(-S) of each O(hook_chains) entry.
  - Rules in O(chain) without a C(trdrhub:) comment, or with extra matches, are never touched and are returned in
    RV(unmanaged).
  - See C(docs/ip_blocking.md) for the playbooks, the allowlist semantics and scheduling the expiry sweep.
seealso:
  - module: ansible.builtin.iptables
"""

EXAMPLES = r"""
- name: Plan blocks for the suspicious addresses of an access-log scan
  trdrhub.incident.ip_block_plan:
    addresses: "{{ scan.suspicious_ips }}"
    allowlist:
      - 10.20.0.0/16          # admin VPN
      - 192.0.2.10/32         # load balancer
      - 2001:db8:100::/48     # monitoring
    incident_id: INC-2025-0042
    expire_after: 24h
    max_addresses: 50
  become: true
  register: plan

- name: Show what would be refused and why
  ansible.builtin.debug:
    msg: "{{ plan.refused | map(attribute='address') | zip(plan.refused | map(attribute='reason')) | list }}"

- name: Plan the expiry sweep (every block whose time has passed)
  trdrhub.incident.ip_block_plan:
    state: absent
    expired_only: true
  become: true
  register: sweep

- name: Plan lifting every block of one incident from rules read elsewhere
  trdrhub.incident.ip_block_plan:
    state: absent
    incident_id: INC-2025-0042
    current_rules: "{{ saved_iptables_s.stdout_lines + saved_ip6tables_s.stdout_lines }}"
"""

RETURN = r"""
msg:
  description: One-line summary of the plan.
  returned: always
  type: str
  sample: "Plan: 2 to block, 0 to unblock, 1 refused, 0 already blocked, 0 expired in TRDRHUB-BLOCK."
state:
  description: The O(state) planned for.
  returned: always
  type: str
  sample: present
chain:
  description: The chain planned for.
  returned: always
  type: str
  sample: TRDRHUB-BLOCK
incident_id:
  description: The incident of new blocks (O(state=present)) or the incident filter (O(state=absent)).
  returned: always
  type: str
  sample: INC-2025-0042
expires_at:
  description: Expiry of the new blocks (ISO 8601, UTC); null with O(state=absent).
  returned: always
  type: str
  sample: "2025-01-16T14:30:00Z"
to_block:
  description: Normalised CIDRs of the new blocks.
  returned: always
  type: list
  elements: str
  sample: ["203.0.113.5/32", "2001:db8:dead::/48"]
rules:
  description: The rules to add, one per RV(to_block) entry, exactly as the role passes them to C(ansible.builtin.iptables).
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Source CIDR.
      type: str
      sample: 203.0.113.5/32
    family:
      description: V(ipv4) or V(ipv6) (the C(ip_version) of C(ansible.builtin.iptables)).
      type: str
      sample: ipv4
    comment:
      description: The rule comment, C(trdrhub:<incident_id>:exp=<UTC epoch>).
      type: str
      sample: "trdrhub:INC-2025-0042:exp=1737037800"
    incident_id:
      description: Incident of the block.
      type: str
      sample: INC-2025-0042
    expires_at:
      description: Expiry, ISO 8601 UTC.
      type: str
      sample: "2025-01-16T14:30:00Z"
    expires_epoch:
      description: Expiry, UTC epoch seconds.
      type: int
      sample: 1737037800
    jump:
      description: V(DROP) or V(REJECT).
      type: str
      sample: DROP
    reject_with:
      description: ICMP type of a V(REJECT) rule, else null.
      type: str
      sample: icmp-port-unreachable
to_unblock:
  description:
    - Existing managed rules to delete, with the same keys as RV(rules) plus C(reason) (V(expired), V(incident),
      V(requested address), or V(replaced) for an expired block of an address requested again).
  returned: always
  type: list
  elements: dict
  sample: [{address: 198.51.100.7/32, family: ipv4, comment: "trdrhub:INC-2025-0040:exp=1736900000", jump: DROP,
            reject_with: null, incident_id: INC-2025-0040, expires_at: "2025-01-15T00:13:20Z", expires_epoch: 1736900000,
            reason: expired}]
refused:
  description: Requested addresses that are not blocked (or not unblocked), each with the reason.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Normalised CIDR.
      type: str
      sample: 10.20.3.4/32
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
    given:
      description: The value as given (O(state=present) only).
      type: str
      sample: 10.20.3.4
    protected_by:
      description: The allowlist entry it overlaps (or C(implied - ...) for loopback and link-local); null otherwise.
      type: str
      sample: 10.20.0.0/16
    reason:
      description: Why it is refused.
      type: str
      sample: overlaps the allowlisted range 10.20.0.0/16
already_blocked:
  description: Requested addresses an active rule already covers (same keys as RV(rules) plus C(requested), C(managed), C(covered_by)).
  returned: always
  type: list
  elements: dict
expired:
  description: Managed rules of the chain whose expiry has passed (same keys as RV(rules)), whatever the request.
  returned: always
  type: list
  elements: dict
current:
  description: Every managed rule of the chain before the plan (same keys as RV(rules) plus C(expired)).
  returned: always
  type: list
  elements: dict
unmanaged:
  description: Lines of the chain not written by this collection; never touched.
  returned: always
  type: list
  elements: str
not_found:
  description: With O(state=absent), requested addresses no selected block matches.
  returned: always
  type: list
  elements: str
cap:
  description: The cap applied.
  returned: always
  type: dict
  contains:
    limit:
      description: The cap (O(max_addresses), or O(max_addresses_override)).
      type: int
      sample: 50
    count:
      description: Distinct addresses the request blocks, new and already blocked.
      type: int
      sample: 2
    override_reason:
      description: O(override_reason) when the cap was overridden.
      type: str
      sample: null
families:
  description: The families (V(ipv4), V(ipv6)) whose rules the plan changes.
  returned: always
  type: list
  elements: str
  sample: [ipv4]
chains:
  description: State of O(chain) per family (keys V(ipv4) and V(ipv6)).
  returned: always
  type: dict
  contains:
    ipv4:
      description: The IPv4 chain.
      type: dict
      contains:
        available:
          description: Whether the rules could be read.
          type: bool
        exists:
          description: Whether the chain exists.
          type: bool
        error:
          description: Why the rules could not be read, else null.
          type: str
        hooked_from:
          description: Entries of O(hook_chains) that jump to the chain.
          type: list
          elements: str
        missing_hooks:
          description: Entries of O(hook_chains) that exist but do not jump to the chain yet.
          type: list
          elements: str
        absent_hook_chains:
          description: Entries of O(hook_chains) that do not exist on the host (for example C(DOCKER-USER) without Docker).
          type: list
          elements: str
    ipv6:
      description: The IPv6 chain, same keys as RV(chains.ipv4).
      type: dict
commands:
  description: The read-only commands run.
  returned: always
  type: list
  elements: str
  sample: ["iptables -S TRDRHUB-BLOCK", "ip6tables -S TRDRHUB-BLOCK"]
diff:
  description: Managed blocks (C(<cidr> <comment>) lines) before and after the plan.
  returned: always
  type: dict
  contains:
    before:
      description: Blocks now.
      type: str
    after:
      description: Blocks once the plan is applied.
      type: str
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._security.ip_block import IpBlockError
from ansible_collections.trdrhub.incident.plugins.module_utils._security.ip_block_plan import ABSOLUTE_MAX_ADDRESSES, IpBlockPlan, RuleReader, StaticReader


def argument_spec() -> dict[str, t.Any]:
    return {
        'addresses': {'type': 'list', 'elements': 'str', 'default': []},
        'allowlist': {'type': 'list', 'elements': 'str', 'default': []},
        'max_addresses': bounded({'type': 'int', 'default': 50}, 1, ABSOLUTE_MAX_ADDRESSES),
        'max_addresses_override': bounded({'type': 'int'}, 1, ABSOLUTE_MAX_ADDRESSES),
        'override_reason': {'type': 'str'},
        'expire_after': {'type': 'str', 'default': '24h'},
        'expires_at': {'type': 'str'},
        'allow_past_expiry': {'type': 'bool', 'default': False},
        'incident_id': {'type': 'str'},
        'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        'expired_only': {'type': 'bool', 'default': False},
        'chain': {'type': 'str', 'default': 'TRDRHUB-BLOCK'},
        'target': {'type': 'str', 'choices': ['DROP', 'REJECT'], 'default': 'DROP'},
        'hook_chains': {'type': 'list', 'elements': 'str', 'default': ['INPUT']},
        'current_rules': {'type': 'list', 'elements': 'str'},
    }


def rule_reader(module: IncidentModule, plan: IpBlockPlan) -> t.Any:   # pylint: disable=unused-argument
    if module.params['current_rules'] is not None:
        return StaticReader(module.params['current_rules'])
    return RuleReader(module.run_command, module.get_bin_path)


def main() -> None:
    run_module(argument_spec(), lambda module: IpBlockPlan(module.params), rule_reader, errors=(IpBlockError,),
               required_by={'max_addresses_override': 'override_reason'})


if __name__ == '__main__':
    main()
