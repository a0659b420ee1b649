# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What makes an access-log line or a client suspicious: signatures, scanner agents, bursts, scores.

Signatures are matched against the request line after URL-decoding it up to three times
(so ``%2527`` is seen as ``'``), with ``+`` read as a space, SQL comments ``/**/`` read as a
space and everything lower-cased. Only request lines that contain one of the characters or
strings of ``prefilter`` are decoded and matched at all: a plain ``GET /api/v1/orders/42``
costs one C-level scan.

Bursts are counted per client address with the matching responses of the last ``window``
seconds (time, and the client's request number at that time), at most ``count`` of them, so
one rule costs at most ``count`` pairs per client however long the log is, and an ordinary
client with a 404 now and then keeps one or two.
"""

from __future__ import annotations

import ipaddress
import math
import re
import typing as t
from urllib.parse import unquote_to_bytes

# ----------------------------------------------------------------------------------------------
# Categories and scoring

SIGNATURE_CATEGORIES = ('sql_injection', 'path_traversal', 'xss')
BURST_CATEGORIES = ('brute_force', 'error_burst', 'not_found_burst')
CATEGORIES = SIGNATURE_CATEGORIES + ('scanner',) + BURST_CATEGORIES
# score = sum over an address's categories of weight * (1 + log2(count)), one decimal.
WEIGHTS = {'sql_injection': 10, 'path_traversal': 8, 'xss': 6, 'scanner': 5, 'brute_force': 6, 'error_burst': 3,
           'not_found_burst': 3}

# Burst rules: responses with one of ``statuses`` from one address, at least ``count`` of them at most
# ``window`` seconds apart, making up at least ``min_ratio`` of that address's requests over the same
# stretch; and (checked at the end, when ``baseline_factor`` is not 0) the address's share of such
# responses over the whole window at least ``baseline_factor`` times the share among all other clients.
# The baseline is on for server errors only: an outage gives everybody 5xx, while a distributed brute
# force or content discovery from many addresses would hide itself behind its own baseline.
DEFAULT_RULES = {
    'brute_force': {'count': 20, 'window': 60, 'statuses': ['401', '403'], 'min_ratio': 0.5, 'baseline_factor': 0.0},
    'error_burst': {'count': 50, 'window': 60, 'statuses': ['5xx'], 'min_ratio': 0.5, 'baseline_factor': 2.0},
    'not_found_burst': {'count': 50, 'window': 60, 'statuses': ['404'], 'min_ratio': 0.5, 'baseline_factor': 0.0},
}


def score_of(counts: dict[str, int]) -> float:
    return round(sum(WEIGHTS[category] * (1.0 + math.log2(count)) for category, count in counts.items() if count > 0), 1)


# ----------------------------------------------------------------------------------------------
# Signatures

# Lines whose request contains none of these are never decoded or matched (the hot path). Every
# alternative starts with a literal, so the regex engine scans for their first characters in C.
_PREFILTER = re.compile(rb"%|'|\"|<|>|\(|\)|\\|;|\+|:|`|\*|\.\.|etc/|proc/|win\.ini|boot\.ini|WIN\.INI")


def prefilter(request: bytes) -> bool:
    return _PREFILTER.search(request) is not None


# The signature regexes see decoded, lower-cased text (``decode_request``). As in the prefilter, every
# top-level alternative begins with a literal character: word boundaries are checked by lookbehinds
# after the first characters, which keeps the engine's first-character scan.
_SQL = (
    rb"union(?<=\bunion)(?:\s|\()+(?:all\s+|distinct\s+)?select\b"
    rb"|select(?<=\bselect)\s+(?:@@|version\s*\(|user\s*\(|database\s*\(|current_user|pg_sleep|sleep\s*\(|load_file"
    rb"|char\s*\(|concat\s*\(|null\s*,)"
    rb"|'[\s)]*(?:or|and|xor|\|\||&&)\b\s*['\"(]*[\w@.]+['\")]*\s*(?:=|<>|!=|<|>|like\b|is\b|in\b)"
    rb"|\"[\s)]*(?:or|and|xor|\|\||&&)\b\s*['\"(]*[\w@.]+['\")]*\s*(?:=|<>|!=|<|>|like\b|is\b|in\b)"
    rb"|\)[\s)]*(?:or|and|xor|\|\||&&)\b\s*['\"(]*[\w@.]+['\")]*\s*(?:=|<>|!=|<|>|like\b|is\b|in\b)"
    rb"|'[\s)]*(?:or|and)\s+(?:true|false|not|exists|sleep|benchmark)\b"
    rb"|\"[\s)]*(?:or|and)\s+(?:true|false|not|exists|sleep|benchmark)\b"
    rb"|or(?<=\sor)\s+\d+\s*(?:=|<>|<|>)\s*\d+\b|and(?<=\sand)\s+\d+\s*(?:=|<>|<|>)\s*\d+\b"
    rb"|sleep\s*\(\s*\d+\s*\)|pg_sleep\s*\(|benchmark\s*\(\s*\d+\s*,|waitfor\s+delay\s"
    rb"|information_schema|pg_catalog\b|sysobjects\b|mysql\.user\b|@@version"
    rb"|load_file\s*\(|into\s+(?:out|dump)file\b|xp_cmdshell\b|extractvalue\s*\(|updatexml\s*\("
    rb"|;\s*(?:drop\s+(?:table|database|schema|user)|delete\s+from|insert\s+into|update\s+\w+\s+set|truncate\s+table"
    rb"|shutdown\b|exec(?:ute)?\s+\w|alter\s+(?:table|user|role)|create\s+(?:table|user|role))\b"
    rb"|'\s*(?:--|#|/\*)|\"\s*(?:--|#|/\*)|\)\s*(?:--(?:\s|$|-)|#|/\*)"
    rb"|--(?<=\d--)(?:\s|$)|--(?<=\d\s--)(?:\s|$)"
    rb"|char(?<=\bchar)\s*\(\s*\d+\s*(?:,\s*\d+\s*){2,}\)")

_TRAVERSAL = (
    rb"\.\.(?:[/\\]|;/)|/\.\.(?:$|\s|\?|&)|\\\.\.(?:$|\s|\?|&)|=\.\.(?:$|\s|\?|&)"
    rb"|\xc0\xae|\xc0\xaf|%c0%ae|%u002e"
    rb"|/etc/(?:passwd|shadow|group|hosts|issue|hostname)\b|/proc/self/|win\.ini\b|boot\.ini\b"
    rb"|:[/\\]+windows[/\\]|windows[/\\]+system32\b")

_XSS = (
    rb"<\s*/?\s*script\b|javascript\s*:|vbscript\s*:"
    rb"|on(?<=\bon)(?:error|load|mouseover|mouseenter|focus|blur|click|toggle|begin|animationstart|pointerover|wheel"
    rb"|input|change|submit)\s*="
    rb"|alert(?<=\balert)(?:\(|`)|prompt(?<=\bprompt)(?:\(|`)|confirm(?<=\bconfirm)(?:\(|`)"
    rb"|<\s*(?:iframe|svg|object|embed|img|body|details|video|audio|math|base)\b[^>]*(?:\bon\w+\s*=|src\s*=|>)"
    rb"|document\s*\.\s*(?:cookie|domain|location|write)|eval(?<=\beval)\(|string\s*\.\s*fromcharcode|data:text/html")

SIGNATURES = (('sql_injection', re.compile(_SQL)), ('path_traversal', re.compile(_TRAVERSAL)), ('xss', re.compile(_XSS)))
_COMMENT = re.compile(rb'/\*.*?\*/')


def decode_request(request: bytes) -> bytes:
    """URL-decode up to three times (double and triple encoding), ``+`` as space, SQL comments as space, lower-case."""
    text = request
    rounds = 0
    while rounds < 3 and b'%' in text:
        decoded = unquote_to_bytes(text)
        if decoded == text:
            break
        text = decoded
        rounds += 1
    if b'+' in text:
        text = text.replace(b'+', b' ')
    if b'/*' in text:
        text = _COMMENT.sub(b' ', text)
    return text.lower()


def signature_hits(request: bytes) -> tuple[str, ...]:
    """The signature categories a request line matches (it has passed ``prefilter``)."""
    decoded = decode_request(request)
    return tuple(category for category, pattern in SIGNATURES if pattern.search(decoded) is not None)


SCANNER_AGENTS = ('sqlmap', 'nikto', 'nmap', 'masscan', 'zgrab', 'wpscan', 'dirbuster', 'gobuster', 'nuclei', 'acunetix',
                  'netsparker', 'openvas', 'nessus', 'w3af', 'havij', 'fimap', 'ffuf', 'feroxbuster', 'wfuzz', 'arachni',
                  'skipfish', 'zmeu', 'jorgee', 'commix', 'whatweb', 'appscan', 'webinspect', 'paros', 'xsstrike',
                  'joomscan', 'dirb', 'zmap', 'l9explore', 'interactsh', 'burpcollaborator')


def scanner_pattern(extra: t.Iterable[str] = ()) -> t.Pattern[bytes]:
    """One regex for the scanner names (whole words, case-insensitive) plus ``extra`` substrings."""
    words = b'|'.join(re.escape(name.encode()) for name in SCANNER_AGENTS)
    parts = [rb'(?<![a-z0-9])(?:' + words + rb')(?![a-z])']
    parts.extend(re.escape(str(name).lower().encode('utf-8')) for name in extra if str(name))
    return re.compile(b'|'.join(parts))


# ----------------------------------------------------------------------------------------------
# Options


def parse_statuses(values: t.Iterable[t.Any], rule: str) -> set[bytes]:
    """``[401, '403', '5xx', '50x']`` -> the three-digit status strings they cover."""
    out: set[bytes] = set()
    for value in values:
        text = str(value).strip().lower()
        if len(text) != 3 or not re.match(r'^[1-5][0-9x][0-9x]$', text) or (text[1] == 'x' and text[2] != 'x'):
            raise ValueError(f'thresholds.{rule}.statuses: {value!r} is not a status (401) or a class (5xx, 50x)')
        if 'x' not in text:
            out.add(text.encode())
        else:
            prefix = text.rstrip('x')
            span = 10 ** (3 - len(prefix))
            out.update(b'%03d' % code for code in range(int(prefix) * span, (int(prefix) + 1) * span))
    return out


def burst_rules(options: dict[str, t.Any] | None) -> list[tuple]:
    """Merged burst options -> ``[(category, count, window, min_ratio, baseline_factor, statuses)]`` of enabled rules."""
    options = options or {}
    unknown = set(options) - set(DEFAULT_RULES)
    if unknown:
        raise ValueError(f"thresholds: unknown rule(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULT_RULES)}")
    rules = []
    for category, defaults in DEFAULT_RULES.items():
        given = {k: v for k, v in (options.get(category) or {}).items() if v is not None}
        rule = dict(defaults, **given)
        count, window = int(rule['count']), float(rule['window'])
        min_ratio, factor = float(rule['min_ratio']), float(rule['baseline_factor'])
        if count < 0 or window <= 0 or not 0.0 <= min_ratio <= 1.0 or factor < 0:
            raise ValueError(f'thresholds.{category}: count must be 0 (off) or more, window more than 0 seconds, '
                             f'min_ratio between 0 and 1 and baseline_factor 0 (off) or more')
        if count == 0:
            continue
        statuses = parse_statuses(rule['statuses'], category)
        if not statuses:
            raise ValueError(f'thresholds.{category}.statuses is empty: give statuses, or count 0 to turn the rule off')
        rules.append((category, count, window, min_ratio, factor, statuses))
    return rules


def status_table(rules: list[tuple]) -> dict[bytes, tuple[int, ...]]:
    """Every status ``000``-``999`` (three ASCII digits) -> indexes of the rules it feeds (often none).

    One dictionary lookup on the hot path both validates the status field and finds its rules.
    """
    table: dict[bytes, tuple[int, ...]] = {b'%03d' % code: () for code in range(1000)}
    for index, rule in enumerate(rules):
        for status in rule[5]:
            table[status] += (index,)
    return table


class Excluder:
    """Addresses never flagged (``exclude`` CIDRs); decisions cached per address string."""

    def __init__(self, cidrs: t.Iterable[t.Any]) -> None:
        self.networks = []
        for cidr in cidrs:
            try:
                self.networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
            except ValueError:
                raise ValueError(f'exclude: {cidr!r} is not an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)') from None
        self.cache: dict[bytes, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def excluded(self, ip: bytes) -> bool:
        decision = self.cache.get(ip)
        if decision is None:
            try:
                address = ipaddress.ip_address(ip.decode('ascii').strip('[]'))
            except (ValueError, UnicodeDecodeError):
                decision = False
            else:
                if getattr(address, 'ipv4_mapped', None):
                    address = address.ipv4_mapped
                decision = any(address.version == net.version and address in net for net in self.networks)
            if len(self.cache) > 65536:
                self.cache.clear()
            self.cache[ip] = decision
        return decision


# ----------------------------------------------------------------------------------------------
# Per-address state
#
# A tracked address is a list (cheaper than an object on the hot path):
#   [REQ] requests in the window, [FIRST]/[LAST] first and last time seen,
#   [COUNTS] {category: count} or None, [BURSTS] per rule [recent, hits, counted_upto] or None,
#   [SAMPLES] [[categories], text] or None
REQ, FIRST, LAST, COUNTS, BURSTS, SAMPLES = range(6)


def new_state(ts: float) -> list:
    return [0, ts, ts, None, None, None]


def burst_hit(state: list, index: int, rule: tuple, ts: float, nrules: int) -> int:
    """Record one matching response for rule ``index``; return how many responses newly joined a burst.

    A burst is ``count`` matching responses at most ``window`` seconds apart that make up at least
    ``min_ratio`` of the address's requests from the first of them to the last. Each response is counted
    once, however many overlapping bursts it belongs to.

    The address keeps ``[recent, hits, counted]`` per rule: ``recent`` holds ``(time, request number)``
    of its matching responses of the last ``window`` seconds only, at most ``count`` of them (older ones
    can never be part of a burst again), so an ordinary client with a 404 now and then keeps one or two.
    """
    bursts = state[BURSTS]
    if bursts is None:
        bursts = state[BURSTS] = [None] * nrules
    entry = bursts[index]
    if entry is None:
        entry = bursts[index] = [[], 0, 0]
    recent = entry[0]
    entry[1] += 1
    requests = state[REQ]
    window = rule[2]
    while recent and ts - recent[0][0] > window:
        del recent[0]
    recent.append((ts, requests))
    count = rule[1]
    if len(recent) < count:
        return 0
    if len(recent) > count:
        del recent[0]
    if count < rule[3] * (requests - recent[0][1] + 1):
        return 0
    new = min(count, entry[1] - entry[2])
    entry[2] = entry[1]
    return new


def add_sample(state: list, category: str, line: bytes, max_samples: int, length: int) -> None:
    """Keep up to ``max_samples`` lines per address, one per category first; a line is kept once.

    A sample is ``[categories, text]``. When the samples are full, a line of a category none of them
    shows replaces the newest sample whose categories the others show as well.
    """
    if max_samples <= 0:
        return
    samples = state[SAMPLES]
    if samples is None:
        samples = state[SAMPLES] = []
    elif len(samples) >= max_samples and any(category in kept for kept, _text in samples):
        return                                            # the common case of a long attack: nothing to do
    text = truncate(line, length)
    for sample in samples:
        if sample[1] == text:
            if category not in sample[0]:
                sample[0].append(category)
            return
    if len(samples) < max_samples:
        samples.append([[category], text])
        return
    if any(category in kept for kept, _text in samples):
        return
    for position in range(len(samples) - 1, -1, -1):
        others = {c for index, (kept, _text) in enumerate(samples) if index != position for c in kept}
        if all(c in others for c in samples[position][0]):
            samples[position] = [[category], text]
            return


def drop_category(state: list, category: str) -> None:
    """Forget a category's samples (a burst the baseline comparison did not confirm)."""
    samples = state[SAMPLES]
    if samples:
        for sample in samples:
            if category in sample[0]:
                sample[0].remove(category)
        state[SAMPLES] = [sample for sample in samples if sample[0]]


def truncate(line: bytes, length: int) -> str:
    text = line.rstrip(b'\r\n').decode('utf-8', 'backslashreplace')
    return text if len(text) <= length else text[:max(length - 3, 0)] + '...'
