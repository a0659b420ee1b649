# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""A block of nginx combined lines taken apart with a handful of C-level operations.

The line-by-line parse in ``access_log_scan`` costs a dozen Python steps a line. Most lines of
a real log are plain: ``ip - - [time] "request" status bytes "referer" "agent"``. For a block
(about 1 MiB) of such lines, ``split_block`` splits the block once on ``"`` and the heads once
on spaces, and returns the fields of every line as parallel lists, without a Python step per
line. It returns None unless every line of the block has exactly the shape the line-by-line
parse takes by its fast split, with the same fields, so that the caller can take the block
line by line instead and the results never differ:

- every line has exactly six ``"``, and the text between the fourth and the fifth is one space
  (the line-by-line parse's ``parts[4] == b' '``);
- the head (the text before the first ``"``) is ``ip - - [dd/Mon/yyyy:hh:mm:ss zone] `` with
  single spaces: the address is the text before the first space, the first `` [`` is the
  time's, and the time is the 26 characters after it;
- every line has the same zone, and every time parses.

What the block does not prove (a watched status, an invalid status, a request that matches a
signature, a scanner agent, a time outside the window) the caller finds with set operations
and one regular expression over the joined status fields.
"""

from __future__ import annotations

import typing as t
from collections import Counter
from itertools import compress

from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import (
    parse_clf_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_detect import (
    _PREFILTER,
    FIRST,
    LAST,
    REQ,
    burst_hit,
    signature_hits,
)

CACHE_LIMIT = 16384          # user agents, requests and time strings remembered at most

NEWLINE = b'\n'


class Block(t.NamedTuple):
    """The fields of the ``count`` lines of a block, position ``i`` being line ``i``."""

    count: int
    pieces: list[bytes]        # the block split on '"' (after a leading newline): for line_text
    ips: list[bytes]
    times: list[float]
    statuses: list[bytes]      # the text between the second and the third '"' (' 200 1234 ')
    requests: list[bytes]
    agents: list[bytes]

    def line_text(self, index: int) -> bytes:
        """Line ``index`` as it stands in the log (for samples)."""
        base = 6 * index
        text = b'"'.join(self.pieces[base:base + 6])[1:] + b'"'
        return text + self.pieces[-1] if index == self.count - 1 else text


def split_block(block: bytes, zone_times: dict[bytes, dict[bytes, float]]) -> Block | None:
    """The fields of every line of ``block`` (complete lines, no final newline), or None (see above).

    ``zone_times`` caches the times: zone (``+0000]``) -> ``[dd/Mon/yyyy:hh:mm:ss`` -> epoch seconds.
    """
    count = block.count(NEWLINE) + 1
    pieces = (NEWLINE + block).split(b'"')
    if len(pieces) != 6 * count + 1 or pieces[4::6].count(b' ') != count:
        return None
    heads = pieces[0:6 * count:6]
    # All newlines are in the heads and no head is empty: with the address check below, every head is
    # the newline before its line and the text up to the line's first '"', so every line has six '"'.
    joined = b''.join(heads)
    if joined.count(NEWLINE) != count or b'' in heads or b'\n{' in joined:   # a line starting with '{' is JSON
        return None
    words = joined.split(b' ')
    if len(words) != 5 * count + 1 or words[-1] or words[1::5].count(b'-') != count or words[2::5].count(b'-') != count:
        return None
    addresses = words[0:5 * count:5]
    # Every address word starts with a newline (and so holds exactly one: there are as many as lines).
    marked = b'\0'.join(addresses)
    if marked[:1] != NEWLINE or marked.count(b'\0\n') != count - 1 or marked.count(b'\0') != count - 1:
        return None
    zones = words[4::5]
    zone = zones[0]
    if len(zone) < 5 or zones.count(zone) != count:
        return None
    dates = words[3::5]
    cache = zone_times.get(zone)
    if cache is None:
        if len(zone_times) > 64:
            zone_times.clear()
        cache = zone_times[zone] = {}
    try:
        times = list(map(cache.__getitem__, dates))
    except KeyError:
        if len(cache) > 65536:
            cache.clear()
        for date in set(dates).difference(cache):
            stamp = parse_clf_time(date[1:] + b' ' + zone[:5]) if len(date) == 21 and date[:1] == b'[' else None
            if stamp is None:
                return None
            cache[date] = stamp
        times = list(map(cache.__getitem__, dates))
    ips = b''.join(addresses).split(NEWLINE)
    del ips[0]
    return Block(count, pieces, ips, times, pieces[2::6], pieces[1::6], pieces[5::6])


DIGITS_AS_ZERO = bytes.maketrans(b'123456789', b'000000000')


def watched_prefixes(table: dict[bytes, tuple[int, ...]]) -> list[bytes]:
    """The fewest prefixes (``5``, ``40``, ``404``) that cover exactly the statuses that feed a burst rule."""
    watched = {status for status, rules in table.items() if rules}
    prefixes = []
    for hundreds in sorted({status[:1] for status in watched}):
        if all(b'%s%02d' % (hundreds, rest) in watched for rest in range(100)):
            prefixes.append(hundreds)
            continue
        for tens in sorted({status[:2] for status in watched if status[:1] == hundreds}):
            if all(tens + b'%d' % unit in watched for unit in range(10)):
                prefixes.append(tens)
            else:
                prefixes.extend(sorted(status for status in watched if status[:2] == tens))
    return prefixes


def special_statuses(statuses: list[bytes], prefixes: list[bytes]) -> list[int] | None:
    """Indexes of the status fields that feed a burst rule; None unless every field is `` ddd `` (space, 3 digits, space).

    The line-by-line parse reads the status as characters 1-3 of the field; fields of another shape
    are left to it.
    """
    joined = b'\n' + b'\n'.join(statuses)
    if joined.translate(DIGITS_AS_ZERO).count(b'\n 000 ') != len(statuses):
        return None
    found = []
    for prefix in prefixes:
        needle = b'\n ' + prefix
        position = joined.find(needle)
        while position >= 0:
            found.append(position)
            position = joined.find(needle, position + 1)
    found.sort()
    indexes = []
    index = start = 0
    for position in found:
        index += joined.count(b'\n', start, position)
        start = position
        indexes.append(index)
    return indexes


class BlockScan:
    """The block path of ``AccessLogScan`` (which holds the state these methods read and change)."""

    # Set by AccessLogScan.__init__; declared here for the type checker.
    ips: dict[bytes, list]
    times: dict
    requests: dict[bytes, tuple]
    agents: dict[bytes, bool]
    bad_requests: set[bytes]
    bad_agents: set[bytes]
    zone_times: dict[bytes, dict[bytes, float]]
    watched_prefixes: list[bytes]
    status_rules: dict[bytes, tuple[int, ...]]
    rules: list[tuple]
    rule_hits: list[int]
    scanner: t.Pattern[bytes]
    excluder: t.Any
    since: float
    until: float
    latest: float
    time_ordered: bool
    max_tracked: int
    _track: t.Callable[[bytes, float], t.Any]
    _record: t.Callable[[list, str, int, bytes], None]

    def _bulk_block(self, block: bytes) -> tuple[int, int, int] | None:  # noqa: C901 - the hot path, kept in one piece
        """A whole block of plain combined lines: ``(lines read, in the window, outside)``, or None to go line by line.

        The state after it is the same as after the line-by-line loop over the same lines: the lines of an
        address with a watched status, a signature or a scanner agent in the block are walked in order
        (their request numbers feed the burst rules); the other addresses get their counts, first and last
        times from ``Counter`` and dictionaries built in C. Blocks it cannot prove plain, and blocks with a
        line outside the window, an excluded address or more new addresses than there is room for, go
        line by line.
        """
        # A block that starts outside the window goes line by line: there a line outside costs a look at
        # its time only, less than taking the block apart.
        start = block.find(b' [', 0, 256)
        opening = parse_clf_time(block[start + 2:start + 28]) if start > 0 else None
        if opening is None or opening < self.since or opening > self.until:
            return None
        parsed = split_block(block, self.zone_times)
        if parsed is None:
            return None
        count, ips, times = parsed.count, parsed.ips, parsed.times
        ordered = times == sorted(times)
        low, high = (times[0], times[-1]) if ordered else (min(times), max(times))
        if low < self.since or high > self.until:
            return None
        # Lines that need more than counting: watched or invalid statuses, signatures, scanner agents.
        found = special_statuses(parsed.statuses, self.watched_prefixes)
        if found is None:
            return None
        special = set(found)
        requests, agents = parsed.requests, parsed.agents
        for values, cache, bad, check in ((requests, self.requests, self.bad_requests, self._request_hits),
                                          (agents, self.agents, self.bad_agents, self._scanner_agent)):
            distinct = set(values)
            unknown = distinct.difference(cache)
            if unknown:
                if len(cache) + len(unknown) > CACHE_LIMIT:
                    cache.clear()
                    unknown = distinct
                for value in unknown:
                    hit = cache[value] = check(value)
                    if hit:
                        if len(bad) > CACHE_LIMIT:
                            bad.clear()
                        bad.add(value)
            flagged = distinct & bad
            if flagged:
                special.update(compress(range(count), map(flagged.__contains__, values)))
        state_of = self.ips
        if special:
            distinct: t.Any = set(ips)
        else:
            seen = Counter(ips)
            distinct = seen.keys()
        new = distinct - state_of.keys()
        if len(state_of) + len(new) > self.max_tracked:
            return None
        if self.excluder and any(map(self.excluder.excluded, distinct)):
            return None
        if special:
            seen = self._special_lines(parsed, sorted(special))
        if ordered and low >= self.latest:
            # Later than every line so far: the last time of an address is its last line's, and the first
            # time changes only for a new address.
            last = dict(zip(ips, times))
            first = dict(zip(reversed(ips), reversed(times))) if len(new) > 64 else {ip: times[ips.index(ip)] for ip in new}
        elif ordered:
            last = dict(zip(ips, times))
            first = dict(zip(reversed(ips), reversed(times)))
        else:
            order = sorted(range(count), key=times.__getitem__)
            last = dict(zip(map(ips.__getitem__, order), map(times.__getitem__, order)))
            order.reverse()
            first = dict(zip(map(ips.__getitem__, order), map(times.__getitem__, order)))
        if high > self.latest:
            self.latest = high
        track = self._track
        for ip, lines in seen.items():
            state = state_of.get(ip)
            if state is None:
                state = track(ip, first[ip])
                state[REQ] = lines
                state[LAST] = last[ip]
                continue
            state[REQ] += lines
            stamp = last[ip]
            if stamp > state[LAST]:
                state[LAST] = stamp
            stamp = first.get(ip)
            if stamp is not None and stamp < state[FIRST]:
                state[FIRST] = stamp
        return count, count, 0

    def _special_lines(self, parsed: t.Any, special: list[int]) -> Counter:
        """The findings of the ``special`` lines (in order), each with its address's request number; the lines per address.

        The request numbers are counted with ``Counter.update`` over the stretches between special lines.
        The addresses' request counts are left as they were before the block (the caller adds the block's).
        """
        ips, times = parsed.ips, parsed.times
        state_of, track, record = self.ips, self._track, self._record
        status_rules, rules, nrules, rule_hits = self.status_rules, self.rules, len(self.rules), self.rule_hits
        seen: Counter = Counter()
        before: dict[bytes, int] = {}
        start = 0
        for index in special:
            seen.update(ips[start:index + 1])
            start = index + 1
            ip = ips[index]
            ts = times[index]
            state = state_of.get(ip)
            if state is None:
                state = track(ip, ts)
            if ip not in before:
                before[ip] = state[REQ]
            state[REQ] = before[ip] + seen[ip]
            line = None
            watched = status_rules[parsed.statuses[index][1:4]]
            for rule in watched:
                rule_hits[rule] += 1
            for rule in watched:
                joined = burst_hit(state, rule, rules[rule], ts, nrules)
                if joined:
                    line = line or parsed.line_text(index)
                    record(state, rules[rule][0], joined, line)
            for category in self.requests[parsed.requests[index]]:
                line = line or parsed.line_text(index)
                record(state, category, 1, line)
            if self.agents[parsed.agents[index]]:
                record(state, 'scanner', 1, line or parsed.line_text(index))
        seen.update(ips[start:])
        for ip, count in before.items():
            state_of[ip][REQ] = count
        return seen

    def _request_hits(self, request: bytes) -> tuple[str, ...]:
        return signature_hits(request) if _PREFILTER.search(request) is not None else ()

    def _scanner_agent(self, agent: bytes) -> bool:
        return self.scanner.search(agent.lower()) is not None
