# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Addresses, durations, rule comments and ``iptables -S`` lines of the IP blocking feature.

A block is one rule ``-A <chain> -s <cidr> -m comment --comment "trdrhub:<incident>:exp=<epoch>" -j DROP``
in a chain of its own. The comment is what makes a rule ours, tells which incident asked for it and
when it may be lifted; nothing else is stored anywhere, so the firewall itself is the state.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shlex
import typing as t

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_z as iso
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import parse_epoch

UTC = datetime.timezone.utc

# Never blocked, whatever the caller's allowlist says: blocking them breaks the host itself.
IMPLIED_ALLOWLIST: tuple[tuple[str, str], ...] = (
    ('127.0.0.0/8', 'implied: IPv4 loopback'),
    ('169.254.0.0/16', 'implied: IPv4 link-local'),
    ('::1/128', 'implied: IPv6 loopback'),
    ('fe80::/10', 'implied: IPv6 link-local'),
)

COMMENT_PREFIX = 'trdrhub'
COMMENT_RE = re.compile(r'^trdrhub:(?P<incident>[A-Za-z0-9._-]{1,128}):exp=(?P<exp>\S+)$')
INCIDENT_RE = re.compile(r'^[A-Za-z0-9._-]{1,128}$')
# iptables limits chain names to 28 characters; no spaces, no option-like names.
CHAIN_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,27}$')
DURATION_RE = re.compile(r'(\d+)\s*([smhdw])')
DURATION_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
MAX_EXPIRY_S = 366 * 86400
REJECT_WITH = {'ipv4': 'icmp-port-unreachable', 'ipv6': 'icmp6-port-unreachable'}
_V4_MAPPED = ipaddress.ip_network('::ffff:0:0/96')


class IpBlockError(TrdrhubError):
    """Every failure a caller can cause: ``str(exc)`` is the module's ``msg``, ``details`` extra result keys."""


def family_of(net: Network) -> str:
    return 'ipv4' if net.version == 4 else 'ipv6'


def parse_network(text: t.Any, *, what: str = 'address', strict: bool = True) -> Network:
    """An address or CIDR as a network; IPv4-mapped IPv6 (``::ffff:203.0.113.5``) becomes IPv4.

    Dual-stack servers log IPv4 clients in the mapped form, and an ip6tables rule for such an
    address never matches an IPv4 packet, so it is turned into the IPv4 rule that does.
    ``strict`` refuses host bits below the prefix (``10.0.0.5/24``): the caller meant either the
    host or the network, and guessing the wider one could block far more than intended.
    """
    raw = str(text).strip() if text is not None else ''
    if not raw:
        raise IpBlockError(f'Invalid {what} {text!r}: an empty value is not an IP address or CIDR.')
    try:
        net = ipaddress.ip_network(raw, strict=strict)
    except ValueError as exc:
        hint = ''
        if strict and 'host bits set' in str(exc):
            hint = f' - did you mean {ipaddress.ip_network(raw, strict=False)} (the whole network) or the single host?'
        raise IpBlockError(f'Invalid {what} {raw!r}: not an IPv4/IPv6 address or CIDR ({exc}){hint}.') from None
    if net.version == 6 and net.subnet_of(_V4_MAPPED):  # type: ignore[arg-type]
        mapped = ipaddress.ip_network(f'{ipaddress.IPv4Address(int(net.network_address) & 0xFFFFFFFF)}/{net.prefixlen - 96}')
        return mapped
    return net


def parse_duration(text: t.Any) -> int:
    """``30m``, ``24h``, ``7d``, ``1h30m`` or bare seconds, as seconds (more than 0, at most a year)."""
    raw = str(text).strip().lower() if text is not None else ''
    seconds = None
    if raw.isdigit():
        seconds = int(raw)
    elif raw and DURATION_RE.sub('', raw).strip() == '':
        seconds = sum(int(n) * DURATION_UNITS[unit] for n, unit in DURATION_RE.findall(raw))
    if seconds is None:
        raise IpBlockError(f'Invalid duration {text!r}: use a number with a unit s, m, h, d or w, for example 30m, 24h, 7d or 1h30m.')
    if seconds <= 0 or seconds > MAX_EXPIRY_S:
        raise IpBlockError(f'Invalid duration {text!r}: it must be more than 0 and at most 366 days (blocks are temporary).')
    return seconds


def parse_time(text: t.Any) -> int:
    """A UTC epoch (``1736951400``) or an ISO 8601 time (``2025-01-15T14:30:00Z``; no offset means UTC) as epoch seconds."""
    try:
        return int(parse_epoch(str(text) if text is not None else '', required=True))
    except ValueError:
        raise IpBlockError(f'Invalid time {text!r}: use an ISO 8601 time such as 2025-01-15T14:30:00Z or a UTC epoch.') from None


def check_incident_id(incident_id: t.Any) -> str:
    value = str(incident_id or '').strip()
    if not INCIDENT_RE.match(value) or '..' in value:
        raise IpBlockError(f'Invalid incident_id {incident_id!r}: use 1 to 128 letters, digits, ".", "_" or "-" '
                           '(no ".."), for example INC-2025-0042.')
    return value


def check_chain(chain: t.Any) -> str:
    value = str(chain or '')
    if not CHAIN_RE.match(value) or value.upper() in ('INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING', 'POSTROUTING'):
        raise IpBlockError(f'Invalid chain {chain!r}: a dedicated chain of 1 to 28 letters, digits, "_", "." or "-", '
                           'not a built-in chain.')
    return value


def format_comment(incident_id: str, expires_epoch: int) -> str:
    return f'{COMMENT_PREFIX}:{incident_id}:exp={int(expires_epoch)}'


def parse_comment(comment: str | None) -> tuple[str, int] | None:
    """``(incident_id, expires_epoch)`` of a comment this feature wrote, else None (epoch or ISO accepted)."""
    match = COMMENT_RE.match(comment or '')
    if not match:
        return None
    try:
        return match.group('incident'), parse_time(match.group('exp'))
    except IpBlockError:
        return None


def parse_rule_line(line: str, chain: str) -> dict[str, t.Any] | None:
    """One ``iptables -S <chain>`` line as a rule dict; None for ``-N``/``-P`` lines and other chains.

    A rule is ``managed`` when it is exactly what this feature writes (source, our comment, DROP
    or REJECT, nothing else); anything else in the chain is left alone and reported as unmanaged.
    """
    try:
        words = shlex.split(line)
    except ValueError:
        return {'line': line, 'managed': False, 'address': None, 'family': None, 'reason': 'unparsable line'}
    if len(words) < 2 or words[0] != '-A' or words[1] != chain:
        return None
    rule: dict[str, t.Any] = {'line': line, 'address': None, 'family': None, 'comment': None, 'jump': None,
                              'reject_with': None, 'incident_id': None, 'expires_epoch': None, 'expires_at': None,
                              'managed': False}
    extra = []
    rest = words[2:]
    i = 0
    while i < len(rest):
        word, value = rest[i], rest[i + 1] if i + 1 < len(rest) else None
        if word in ('-s', '--source') and value is not None:
            rule['address'] = value
        elif word == '-m' and value == 'comment':
            pass
        elif word == '--comment' and value is not None:
            rule['comment'] = value
        elif word in ('-j', '--jump') and value is not None:
            rule['jump'] = value
        elif word == '--reject-with' and value is not None:
            rule['reject_with'] = value
        else:
            extra.append(word)
            i += 1
            continue
        i += 2
    if rule['address']:
        try:
            net = parse_network(rule['address'], what='source')
        except IpBlockError:
            net = None
        if net is not None:
            rule['address'], rule['family'] = str(net), family_of(net)
    parsed = parse_comment(rule['comment'])
    if parsed:
        rule['incident_id'], rule['expires_epoch'] = parsed
        rule['expires_at'] = iso(parsed[1])
    rule['managed'] = bool(parsed and rule['family'] and rule['jump'] in ('DROP', 'REJECT') and not extra)
    if extra:
        rule['extra'] = extra
    return rule


def chain_exists_in(lines: t.Iterable[str], chain: str) -> bool:
    return any(line.strip() == f'-N {chain}' for line in lines)


def hooks_in(lines: t.Iterable[str], hook: str, chain: str) -> bool:
    """Whether ``iptables -S <hook>`` output jumps to ``chain``."""
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) >= 4 and words[0] == '-A' and words[1] == hook and '-j' in words:
            jump = words.index('-j')
            if words[jump + 1:jump + 2] == [chain]:
                return True
    return False
