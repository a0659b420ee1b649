# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The IP block planner: what to block, what to lift, what is refused and why - never acting.

The plan is computed from the rules already in the chain, so a second run with the same
request plans nothing (idempotent) and an expired block of a requested address is replaced
by a fresh one. The caller (the ``block_ips`` role) applies ``rules`` and ``to_unblock``
with ``ansible.builtin.iptables`` using exactly the comment planned here.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._security.ip_block import (
    IMPLIED_ALLOWLIST,
    REJECT_WITH,
    IpBlockError,
    Network,
    chain_exists_in,
    check_chain,
    check_incident_id,
    family_of,
    format_comment,
    hooks_in,
    iso,
    parse_duration,
    parse_network,
    parse_rule_line,
    parse_time,
)

ABSOLUTE_MAX_ADDRESSES = 1000
FAMILIES = ('ipv4', 'ipv6')
BINARIES = {'ipv4': 'iptables', 'ipv6': 'ip6tables'}


class RuleReader:
    """Reads a chain and its hooks with ``iptables -S`` / ``ip6tables -S``: read-only, safe in check mode."""

    def __init__(self, run_command: t.Callable[..., t.Any], get_bin_path: t.Callable[[str], str | None]) -> None:
        self._run = run_command
        self._bin = get_bin_path
        self.commands: list[str] = []
        self.reads_hooks = True

    def _list(self, family: str, chain: str) -> tuple[int, str, str]:
        binary = self._bin(BINARIES[family])
        if not binary:
            return -1, '', f'{BINARIES[family]} was not found on this host (install the iptables package)'
        self.commands.append(f'{BINARIES[family]} -S {chain}'.strip())
        rc, out, err = self._run([binary, '-S'] + ([chain] if chain else []))
        return rc, out or '', (err or '').strip()

    def read(self, family: str, chain: str) -> dict[str, t.Any]:
        rc, out, err = self._list(family, chain)
        if rc == 0:
            return {'available': True, 'exists': True, 'lines': out.splitlines(), 'error': None}
        if rc > 0:
            # A missing chain is an error of "-S <chain>" ("No chain/target/match" with iptables-legacy,
            # "incompatible, use 'nft' tool" with some iptables-nft releases): the whole table tells.
            rc_all, out_all, dummy = self._list(family, '')
            if rc_all == 0 and not chain_exists_in(out_all.splitlines(), chain):
                return {'available': True, 'exists': False, 'lines': [], 'error': None}
        return {'available': False, 'exists': False, 'lines': [], 'error': err or f'exit code {rc}'}

    def hooked(self, family: str, hook: str, chain: str) -> bool | None:
        """True/False, or None when the hook chain itself does not exist (DOCKER-USER without Docker)."""
        rc, out, dummy = self._list(family, hook)
        return hooks_in(out.splitlines(), hook, chain) if rc == 0 else None

    def close(self) -> None:
        """Nothing to release; run_worker closes every client."""


class StaticReader:
    """The caller's ``current_rules`` (lines of ``iptables -S <chain>`` and ``ip6tables -S <chain>``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = [str(line) for line in lines]
        self.commands: list[str] = []
        self.reads_hooks = False

    def read(self, family: str, chain: str) -> dict[str, t.Any]:
        mine = []
        for line in self.lines:
            rule = parse_rule_line(line, chain)
            if rule is not None and rule.get('family') in (family, None):
                mine.append(line)
        exists = chain_exists_in(self.lines, chain) or bool(mine)
        return {'available': True, 'exists': exists, 'lines': mine, 'error': None}

    def close(self) -> None:
        """Nothing to release."""


def _public(rule: dict[str, t.Any], **extra: t.Any) -> dict[str, t.Any]:
    keys = ('address', 'family', 'comment', 'incident_id', 'expires_at', 'expires_epoch', 'jump', 'reject_with')
    out = {k: rule.get(k) for k in keys}
    out.update(extra)
    return out


class IpBlockPlan(Worker):
    """Validates the request when built (before anything is read) and plans in ``run(client)`` (the reader of the firewall rules)."""

    def __init__(self, params: dict[str, t.Any], now: float | None = None) -> None:
        super().__init__(params)
        self.now = int(now if now is not None else time.time())
        self.state = params.get('state') or 'present'
        self.chain = check_chain(params.get('chain') or 'TRDRHUB-BLOCK')
        self.target = params.get('target') or 'DROP'
        self.hooks = [str(h) for h in params.get('hook_chains') or []]
        self.expired_only = bool(params.get('expired_only'))
        self.incident_id = check_incident_id(params['incident_id']) if params.get('incident_id') else None
        self.addresses = self._networks(params.get('addresses') or [], 'address', strict=True)
        self.allowlist = self._allowlist(params.get('allowlist') or [])
        self.cap, self.cap_reason = self._cap(params)
        self.expires_epoch = None
        if self.state == 'present':
            if not self.incident_id:
                raise IpBlockError('incident_id is required with state=present: every block is labelled with the incident '
                                   'that asked for it.')
            self.expires_epoch = self._expiry(params)
        elif not (self.addresses or self.incident_id or self.expired_only):
            raise IpBlockError('state=absent needs at least one of addresses, incident_id or expired_only=true; '
                               'refusing to lift every block at once.')

    @staticmethod
    def _networks(values: list[t.Any], what: str, strict: bool) -> list[tuple[str, Network]]:
        seen: dict[str, tuple[str, Network]] = {}
        errors = []
        for value in values:
            try:
                net = parse_network(value, what=what, strict=strict)
            except IpBlockError as exc:
                errors.append(str(exc))
                continue
            seen.setdefault(str(net), (str(value).strip(), net))
        if errors:
            head = '' if len(errors) == 1 else f'{len(errors)} invalid values: '
            raise IpBlockError(head + ' '.join(errors) + ' Nothing was planned.')
        return list(seen.values())

    def _allowlist(self, values: list[t.Any]) -> list[tuple[str, Network]]:
        # Non-strict: host bits in an allowlist entry only make the protected range wider, never narrower.
        given = self._networks(values, 'allowlist entry', strict=False)
        return given + [(label, parse_network(cidr)) for cidr, label in IMPLIED_ALLOWLIST]

    @staticmethod
    def _cap(params: dict[str, t.Any]) -> tuple[int, str | None]:
        cap = params.get('max_addresses')
        cap = 50 if cap is None else int(cap)
        if cap < 1 or cap > ABSOLUTE_MAX_ADDRESSES:
            raise IpBlockError(f'max_addresses must be between 1 and {ABSOLUTE_MAX_ADDRESSES}, not {cap}.')
        override = params.get('max_addresses_override')
        reason = (params.get('override_reason') or '').strip() or None
        if override is None:
            return cap, None
        override = int(override)
        if override < 1 or override > ABSOLUTE_MAX_ADDRESSES:
            raise IpBlockError(f'max_addresses_override must be between 1 and {ABSOLUTE_MAX_ADDRESSES}, not {override}.')
        if not reason:
            raise IpBlockError('max_addresses_override needs override_reason (recorded with the plan): say why this '
                               f'incident needs more than {cap} blocks.')
        return override, reason

    def _expiry(self, params: dict[str, t.Any]) -> int:
        if params.get('expires_at'):
            epoch = parse_time(params['expires_at'])
            if epoch <= self.now and not params.get('allow_past_expiry'):
                raise IpBlockError(f'expires_at {params["expires_at"]!r} ({iso(epoch)}) is not in the future: the block '
                                   'would be lifted by the next expiry sweep. Use a later time or expire_after.')
            if epoch - self.now > 366 * 86400:
                raise IpBlockError(f'expires_at {params["expires_at"]!r} is more than 366 days ahead (blocks are temporary).')
            return epoch
        return self.now + parse_duration(params.get('expire_after') or '24h')

    def _protector(self, net: Network) -> str | None:
        for label, allowed in self.allowlist:
            if allowed.version == net.version and allowed.overlaps(net):  # type: ignore[arg-type]
                return label if label.startswith('implied') else str(allowed)
        return None

    def _read(self, reader: t.Any) -> dict[str, dict[str, t.Any]]:
        chains: dict[str, dict[str, t.Any]] = {}
        for family in FAMILIES:
            state = reader.read(family, self.chain)
            rules = [r for r in (parse_rule_line(line, self.chain) for line in state['lines']) if r is not None]
            hooked = {}
            if state['exists'] and getattr(reader, 'reads_hooks', False):
                hooked = {hook: reader.hooked(family, hook, self.chain) for hook in self.hooks}
            chains[family] = {'available': state['available'], 'exists': state['exists'], 'error': state['error'],
                              'hooked_from': sorted(h for h, v in hooked.items() if v),
                              'missing_hooks': sorted(h for h, v in hooked.items() if v is False),
                              'absent_hook_chains': sorted(h for h, v in hooked.items() if v is None and state['exists']),
                              'rules': rules}
        return chains

    def run(self, client: t.Any) -> dict[str, t.Any]:
        chains = self._read(client)
        current = [r for c in chains.values() for r in c['rules']]
        managed = [r for r in current if r['managed']]
        for rule in managed:
            rule['expired'] = rule['expires_epoch'] <= self.now
        expired = [_public(r) for r in managed if r['expired']]
        unmanaged = [r['line'] for r in current if not r['managed']]
        plan = self._present(chains, managed) if self.state == 'present' else self._absent(managed, current)
        after = [r for r in managed if not any(u['comment'] == r['comment'] and u['address'] == r['address']
                                               for u in plan['to_unblock'])]
        before_lines = sorted(f"{r['address']} {r['comment']}" for r in managed)
        after_lines = sorted([f"{r['address']} {r['comment']}" for r in after] +
                             [f"{r['address']} {r['comment']}" for r in plan['rules']])
        result = {
            'changed': False,
            'state': self.state,
            'chain': self.chain,
            'incident_id': self.incident_id,
            'expires_at': iso(self.expires_epoch) if self.expires_epoch else None,
            'expired': expired,
            'unmanaged': unmanaged,
            'current': [_public(r, expired=r['expired']) for r in managed],
            'chains': {f: {k: v for k, v in c.items() if k != 'rules'} for f, c in chains.items()},
            'commands': list(client.commands),
            'diff': {'before': '\n'.join(before_lines) + ('\n' if before_lines else ''),
                     'after': '\n'.join(after_lines) + ('\n' if after_lines else '')},
        }
        result.update(plan)
        result['msg'] = self._summary(result)
        return result

    def _unavailable(self, chains: dict[str, dict[str, t.Any]], family: str, need: str) -> None:
        info = chains[family]
        if not info['available']:
            raise IpBlockError(f'Cannot read the {family} rules of chain {self.chain} to {need}: {info["error"]}. Nothing was planned.')

    def _present(self, chains: dict[str, dict[str, t.Any]], managed: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        refused, already, to_block, to_unblock = [], [], [], []
        existing_all = [r for c in chains.values() for r in c['rules'] if r.get('family')]
        for given, net in self.addresses:
            address, family = str(net), family_of(net)
            protector = self._protector(net)
            if protector:
                refused.append({'address': address, 'given': given, 'family': family, 'protected_by': protector,
                                'reason': f'overlaps the allowlisted range {protector}' if not protector.startswith('implied')
                                else f'overlaps the {protector[len("implied: "):]} range, which is never blocked'})
                continue
            covering = [r for r in existing_all if r['family'] == family and not r.get('expired')
                        and parse_network(r['address']).supernet_of(net)]  # type: ignore[arg-type]
            if covering:
                rule = covering[0]
                already.append(_public(rule, requested=address, managed=rule['managed'],
                                       covered_by=None if rule['address'] == address else rule['address']))
                continue
            to_unblock += [_public(r, reason='replaced: expired block of a requested address')
                           for r in managed if r['address'] == address and r['expired']]
            to_block.append((address, family))
        count = len(to_block) + len(already)
        if count > self.cap:
            raise IpBlockError(
                f'{count} addresses would be blocked, more than the cap of {self.cap} (max_addresses). Nothing was planned. '
                'Narrow the list (aggregate into CIDRs, drop low-confidence addresses) or raise the cap with '
                f'max_addresses_override and override_reason (at most {ABSOLUTE_MAX_ADDRESSES}).',
                cap={'limit': self.cap, 'count': count, 'override_reason': self.cap_reason},
                candidates=[a for a, f in to_block] + [r['requested'] for r in already], refused=refused, to_block=[], rules=[])
        for family in sorted({f for a, f in to_block}):
            self._unavailable(chains, family, 'block addresses')
        comment = format_comment(t.cast(str, self.incident_id), t.cast(int, self.expires_epoch))
        rules = [{'address': a, 'family': f, 'comment': comment, 'incident_id': self.incident_id,
                  'expires_at': iso(t.cast(int, self.expires_epoch)), 'expires_epoch': self.expires_epoch,
                  'jump': self.target, 'reject_with': REJECT_WITH[f] if self.target == 'REJECT' else None}
                 for a, f in to_block]
        return {'to_block': [a for a, f in to_block], 'rules': rules, 'to_unblock': to_unblock, 'refused': refused,
                'already_blocked': already, 'not_found': [],
                'cap': {'limit': self.cap, 'count': count, 'override_reason': self.cap_reason},
                'families': sorted({f for a, f in to_block} | {r['family'] for r in to_unblock})}

    def _absent(self, managed: list[dict[str, t.Any]], current: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        wanted = {str(net) for given, net in self.addresses}
        selected = []
        for rule in managed:
            if self.incident_id and rule['incident_id'] != self.incident_id:
                continue
            if wanted and rule['address'] not in wanted:
                continue
            if self.expired_only and not rule['expired']:
                continue
            reason = 'expired' if rule['expired'] else 'requested address' if wanted else 'incident'
            selected.append(_public(rule, reason=reason))
        refused, not_found = [], []
        for address in sorted(wanted):
            if any(r['address'] == address for r in selected):
                continue
            foreign = [r for r in current if not r['managed'] and r.get('address') == address]
            if foreign:
                refused.append({'address': address, 'family': foreign[0]['family'], 'protected_by': None,
                                'reason': f'the rule for it in {self.chain} was not written by trdrhub.incident '
                                          '(no trdrhub comment); left in place'})
            else:
                not_found.append(address)
        if not_found:
            self.warnings.append(f'No block of {self.chain} matches {", ".join(not_found)}'
                                 + (f' for incident {self.incident_id}' if self.incident_id else '')
                                 + (' that has expired' if self.expired_only else '') + '; nothing to lift for them.')
        return {'to_block': [], 'rules': [], 'to_unblock': selected, 'refused': refused, 'already_blocked': [],
                'not_found': not_found, 'cap': {'limit': self.cap, 'count': 0, 'override_reason': self.cap_reason},
                'families': sorted({r['family'] for r in selected})}

    @staticmethod
    def _summary(result: dict[str, t.Any]) -> str:
        parts = [f"{len(result['to_block'])} to block", f"{len(result['to_unblock'])} to unblock",
                 f"{len(result['refused'])} refused", f"{len(result['already_blocked'])} already blocked",
                 f"{len(result['expired'])} expired in {result['chain']}"]
        return 'Plan: ' + ', '.join(parts) + '.'
