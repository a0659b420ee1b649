# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""One scan of nginx access logs for suspicious clients: ``AccessLogScan(params).run()``.

A block of plain combined lines (about 1 MiB) is taken apart at once by ``BlockScan``
(access_log_bulk): a few C-level splits, set operations and counters instead of a Python step
per line; only the lines with a watched status, a signature or a scanner agent are walked one
by one. Every block it cannot prove plain goes through the line-by-line loop, with the same
result (tests/unit/plugins/module_utils/_security/test_access_log_bulk.py compares the two).

The per-line work is one loop in ``_scan_stream`` with everything it touches bound to locals:
find the time (cached per distinct time string) and skip lines outside the window before
anything else; split the line on ``"`` once; count the address; feed the burst rules only for
the statuses they watch; match signatures only when the request passes the prefilter; look
the user agent up in a cache. Everything kept per address is bounded (see the module's
``max_tracked_ips``, ``max_samples``, ``sample_length``), so memory depends on those options
and not on the size of the logs.
"""

from __future__ import annotations

import os
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import (
    FORMATS,
    LogInputError,
    close_log,
    expand_paths,
    iso,
    line_blocks,
    now,
    open_log,
    parse_clf_time,
    parse_combined_slow,
    parse_json_line,
    parse_moment,
    read_errors,
    seek_to_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_bulk import (
    CACHE_LIMIT,
    BlockScan,
    watched_prefixes,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_detect import (
    _PREFILTER,
    BURSTS,
    CATEGORIES,
    COUNTS,
    FIRST,
    LAST,
    REQ,
    SAMPLES,
    WEIGHTS,
    Excluder,
    add_sample,
    burst_hit,
    burst_rules,
    drop_category,
    new_state,
    scanner_pattern,
    score_of,
    signature_hits,
    status_table,
    truncate,
)

ORDER_SLACK = 600.0          # how far out of time order a time_ordered file may be (seconds)
SEEK_MIN_SIZE = 4 << 20      # smaller plain files are read from the start
UNPARSED_SAMPLES = 3

DEFAULTS = {
    'format': 'auto', 'since': '-1h', 'until': 'now', 'exclude': [], 'missing_ok': False, 'time_ordered': True,
    'thresholds': None, 'min_score': 1.0, 'max_results': 500, 'max_samples': 5, 'sample_length': 400,
    'max_tracked_ips': 50000, 'scanner_user_agents': [],
}


class AccessLogScan(BlockScan, Worker):
    """Validates the options when built; ``run()`` reads the logs and returns the module result."""

    def __init__(self, params: dict[str, t.Any], clock: t.Callable[[], float] = now) -> None:
        p = dict(DEFAULTS)
        p.update({k: v for k, v in params.items() if v is not None})
        super().__init__(p)
        paths = p.get('paths')
        if isinstance(paths, (str, bytes)):
            paths = [paths]
        if not paths:
            raise LogInputError('paths is empty: give the access log files or glob patterns (/var/log/nginx/access.log*)')
        self.patterns = [str(path) for path in paths]
        if p['format'] not in FORMATS:
            raise LogInputError(f"format must be one of {', '.join(FORMATS)}, not {p['format']!r}")
        self.format = p['format']
        current = clock()
        self.since = parse_moment(p['since'], 'since', current)
        self.until = parse_moment(p['until'], 'until', current)
        if self.since > self.until:
            raise LogInputError(f'since ({iso(self.since)}) is later than until ({iso(self.until)}): the window is empty')
        try:
            self.rules = burst_rules(p['thresholds'])
            self.excluder = Excluder(p['exclude'] or [])
        except ValueError as exc:
            raise LogInputError(str(exc)) from None
        self.status_rules = status_table(self.rules)
        self.scanner = scanner_pattern(p['scanner_user_agents'] or [])
        self.time_ordered = bool(p['time_ordered'])
        self.max_tracked = int(p['max_tracked_ips'])
        self.max_samples, self.sample_length = int(p['max_samples']), int(p['sample_length'])
        # State of one run.
        self.ips: dict[bytes, list] = {}
        self.rule_hits = [0] * len(self.rules)
        self.times: dict = {}
        self.agents: dict[bytes, bool] = {}
        self.requests: dict[bytes, tuple] = {}
        self.stats: dict[str, t.Any] = {
            'files_read': 0, 'files_skipped': 0, 'files': [], 'bytes_read': 0, 'bytes_skipped': 0, 'lines_read': 0,
            'lines_in_window': 0, 'lines_outside_window': 0, 'unparsed_lines': 0, 'blank_lines': 0, 'excluded_lines': 0,
            'untracked_lines': 0, 'ips_seen': 0, 'ips_evicted': 0, 'unparsed_samples': []}
        self.refused = 0
        self.sweep_after = 0
        # Whole blocks of plain combined lines are taken apart at once (access_log_bulk); False: line by line only.
        self.bulk = True
        self.zone_times: dict[bytes, dict[bytes, float]] = {}
        self.watched_prefixes = watched_prefixes(self.status_rules)
        self.bad_requests: set[bytes] = set()
        self.bad_agents: set[bytes] = set()
        self.latest = float('-inf')         # the latest time of a line taken by blocks so far

    # ------------------------------------------------------------------------------------------

    def run(self, client: t.Any = None) -> dict[str, t.Any]:
        started = time.monotonic()
        files, missing = expand_paths(self.patterns)
        if missing:
            described = ', '.join(f'{m} (no match)' if any(c in m for c in '*?[') else m for m in missing)
            if not self.params['missing_ok']:
                raise LogInputError(f'access log not found: {described}. Set missing_ok to scan only the logs that exist.')
            self.warnings.append(f'access log not found, skipped (missing_ok): {described}')
        for path in files:
            self._scan_file(path)
        self.stats['duration'] = round(time.monotonic() - started, 3)
        return self._result()

    def _scan_file(self, path: str) -> None:
        entry: dict[str, t.Any] = {'path': path, 'compressed': False, 'bytes': 0, 'lines': 0}
        if self.time_ordered:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                mtime = None
            if mtime is not None and mtime < self.since - ORDER_SLACK:
                entry['skipped'] = f'last written {iso(int(mtime))}, before the window'
                self.stats['files_skipped'] += 1
                self.stats['files'].append(entry)
                return
        handle, entry['compressed'] = open_log(path)
        try:
            if not entry['compressed'] and self.time_ordered:
                size = os.fstat(handle.fileno()).st_size
                if size >= SEEK_MIN_SIZE:
                    entry['skipped_bytes'] = seek_to_time(handle, size, self.since - ORDER_SLACK, self.format, self.times)
                    self.stats['bytes_skipped'] += entry['skipped_bytes']
            try:
                self._scan_stream(handle, entry)
            except read_errors() as exc:
                entry['error'] = str(exc) or type(exc).__name__
                self.warnings.append(f'{path}: stopped reading after {entry["lines"]} lines: {entry["error"]} '
                                     f'(a damaged or still-being-written compressed file); the lines before were scanned')
        finally:
            close_log(handle)
        self.stats['files_read'] += 1
        self.stats['files'].append(entry)

    def _scan_stream(self, handle: t.Any, entry: dict[str, t.Any]) -> None:  # noqa: C901 - the hot loop, kept in one piece
        since, until = self.since, self.until
        stop_after = until + ORDER_SLACK if self.time_ordered else float('inf')
        allow_json, allow_combined = self.format != 'combined', self.format != 'json'
        times, agents, requests, ips = self.times, self.agents, self.requests, self.ips
        excluded_fn = self.excluder.excluded if self.excluder else None
        status_rules, rules, nrules, rule_hits = self.status_rules, self.rules, len(self.rules), self.rule_hits
        prefilter = _PREFILTER.search
        scanner = self.scanner.search
        record, track, unparsed_sample = self._record, self._track, self._unparsed
        counters = {'bytes': 0, 'overlong': 0}
        read = in_window = outside = unparsed = blank = excluded = untracked = 0
        stopped = False
        bulk = self._bulk_block if self.bulk and allow_combined else None
        latest = float('-inf')
        try:
            for block in line_blocks(handle, counters):
                if bulk is not None:
                    taken = bulk(block)
                    if taken is not None:
                        read += taken[0]
                        in_window += taken[1]
                        outside += taken[2]
                        continue
                latest = self.latest
                batch = block.split(b'\n')
                read += len(batch)
                before = in_window + outside + unparsed + blank
                for line in batch:
                    ok = False
                    is_json = line[:1] == b'{'
                    if is_json:
                        parsed = parse_json_line(line, times) if allow_json else None
                    else:
                        start = line.find(b' [')
                        if start > 0 and allow_combined:
                            raw = line[start + 2:start + 28]
                            ts = times.get(raw)
                            if ts is None:
                                ts = parse_clf_time(raw)
                                if ts is not None:
                                    if len(times) > CACHE_LIMIT:
                                        times.clear()
                                    times[raw] = ts
                            if ts is not None:
                                if ts < since or ts > until:
                                    outside += 1
                                    if ts > stop_after:
                                        stopped = True
                                        break
                                    continue
                                parts = line.split(b'"', 6)
                                if len(parts) == 7 and parts[4] == b' ':
                                    status = parts[2][1:4]
                                    watched = status_rules.get(status)
                                    if watched is not None:
                                        ip, request, agent = line[:line.find(b' ')], parts[1], parts[5]
                                        ok = True
                        if not ok:
                            parsed = parse_combined_slow(line, times) if allow_combined else None
                            if parsed is None and not line.strip():
                                blank += 1
                                continue
                    if not ok:
                        # A JSON line, or a combined line the fast path refused.
                        if parsed is None:
                            unparsed += 1
                            if len(self.stats['unparsed_samples']) < UNPARSED_SAMPLES:
                                unparsed_sample(line)
                            continue
                        ip, ts, request, status, agent = parsed
                        if ts < since or ts > until:
                            outside += 1
                            if is_json and ts > stop_after:
                                stopped = True
                                break
                            continue
                        watched = status_rules[status]
                    in_window += 1
                    if ts > latest:
                        latest = ts
                    if excluded_fn is not None and excluded_fn(ip):
                        excluded += 1
                        continue
                    if watched:
                        for index in watched:
                            rule_hits[index] += 1
                    state = ips.get(ip)
                    if state is None:
                        state = track(ip, ts)
                        if state is None:
                            untracked += 1
                            continue
                    state[0] += 1
                    if ts > state[2]:
                        state[2] = ts
                    elif ts < state[1]:
                        state[1] = ts
                    if watched:
                        for index in watched:
                            joined = burst_hit(state, index, rules[index], ts, nrules)
                            if joined:
                                record(state, rules[index][0], joined, line)
                    if prefilter(request) is not None:
                        hits = requests.get(request)
                        if hits is None:
                            hits = signature_hits(request)
                            if len(requests) > CACHE_LIMIT:
                                requests.clear()
                            requests[request] = hits
                            if hits:
                                self.bad_requests.add(request)
                        for category in hits:
                            record(state, category, 1, line)
                    hit = agents.get(agent)
                    if hit is None:
                        hit = scanner(agent.lower()) is not None
                        if len(agents) > CACHE_LIMIT:
                            agents.clear()
                        agents[agent] = hit
                        if hit:
                            self.bad_agents.add(agent)
                    if hit:
                        record(state, 'scanner', 1, line)
                self.latest = latest
                if stopped:
                    read -= len(batch) - (in_window + outside + unparsed + blank - before)
                    entry['stopped_early'] = f'a line later than {iso(stop_after)} (until plus {int(ORDER_SLACK)} s): the rest of the file is later'
                    break
        finally:
            stats = self.stats
            unparsed += counters['overlong']
            entry['lines'] = read
            entry['bytes'] = counters['bytes']
            for key, value in (('lines_read', read), ('lines_in_window', in_window), ('lines_outside_window', outside),
                               ('unparsed_lines', unparsed), ('blank_lines', blank), ('excluded_lines', excluded),
                               ('untracked_lines', untracked), ('bytes_read', counters['bytes'])):
                stats[key] += value

    # ------------------------------------------------------------------------------------------

    def _record(self, state: list, category: str, count: int, line: bytes) -> None:
        counts = state[COUNTS]
        if counts is None:
            counts = state[COUNTS] = {}
        counts[category] = counts.get(category, 0) + count
        add_sample(state, category, line, self.max_samples, self.sample_length)

    def _unparsed(self, line: bytes) -> None:
        self.stats['unparsed_samples'].append(truncate(line, 200))

    def _track(self, ip: bytes, ts: float) -> list | None:
        """A new address: tracked unless ``max_tracked_ips`` is reached and no clean address can make room."""
        ips = self.ips
        if len(ips) >= self.max_tracked:
            if self.refused < self.sweep_after:
                self.refused += 1
                return None
            self._evict()
            if len(ips) >= self.max_tracked:
                self.refused += 1
                return None
        state = ips[ip] = new_state(ts)
        self.stats['ips_seen'] += 1
        return state

    def _evict(self) -> None:
        """Forget the longest-idle quarter of the addresses with no finding (their counters restart if they return)."""
        clean = [(state[LAST], ip) for ip, state in self.ips.items() if state[COUNTS] is None]
        clean.sort()
        room = max(1, self.max_tracked // 4)
        for _last, ip in clean[:room]:
            del self.ips[ip]
        evicted = min(room, len(clean))
        self.stats['ips_evicted'] += evicted
        if evicted < max(1, self.max_tracked // 16):
            # Too few clean addresses to make sweeping worth it: refuse the next new addresses without sweeping.
            self.sweep_after = self.refused + max(1, self.max_tracked // 16)
            if not any('max_tracked_ips' in w for w in self.warnings):
                self.warnings.append(f'max_tracked_ips ({self.max_tracked}) reached with (nearly) every tracked address '
                                     f'flagged: lines of new addresses were not tracked (stats.untracked_lines); raise '
                                     f'max_tracked_ips or narrow the window')

    # ------------------------------------------------------------------------------------------

    def _result(self) -> dict[str, t.Any]:
        stats = self.stats
        total = stats['lines_in_window'] - stats['excluded_lines']
        suppressed: dict[str, int] = {}
        flagged = []
        for ip, state in self.ips.items():
            counts = state[COUNTS]
            if not counts:
                continue
            for index, rule in enumerate(self.rules):
                category, factor = rule[0], rule[4]
                if category not in counts or factor <= 0:
                    continue
                hits = state[BURSTS][index][1]
                others = total - state[REQ]
                if others > 0 and hits / state[REQ] < factor * (self.rule_hits[index] - hits) / others:
                    del counts[category]
                    suppressed[category] = suppressed.get(category, 0) + 1
                    drop_category(state, category)
            score = score_of(counts)
            if not counts or score < float(self.params['min_score']):
                continue
            flagged.append((score, state[REQ], ip, state))
        flagged.sort(key=lambda item: (-item[0], -item[1], item[2]))
        suspicious = []
        by_category = dict.fromkeys(CATEGORIES, 0)
        for score, requests, ip, state in flagged:
            counts = state[COUNTS]
            for category in counts:
                by_category[category] += 1
            if len(suspicious) >= int(self.params['max_results']):
                continue
            reasons = sorted(counts, key=lambda c: (-WEIGHTS[c] * counts[c], CATEGORIES.index(c)))
            suspicious.append({
                'ip': ip.decode('utf-8', 'backslashreplace'), 'score': score, 'reasons': reasons,
                'counts': {c: counts[c] for c in reasons}, 'requests': requests,
                'first_seen': iso(state[FIRST]), 'last_seen': iso(state[LAST]),
                'samples': [text for _categories, text in state[SAMPLES] or ()]})
        stats.update(ips_tracked=len(self.ips), suspicious_total=len(flagged), suspicious_listed=len(suspicious),
                     flagged_by_category=by_category, bursts_suppressed=suppressed)
        if suppressed:
            self.warnings.append('not flagged, because other clients got the same responses as often (an outage?): '
                                 + ', '.join(f'{n} address(es) with a {c}' for c, n in sorted(suppressed.items())))
        read = stats['lines_read'] - stats['blank_lines']
        if read >= 20 and stats['unparsed_lines'] * 2 > read:
            self.warnings.append(f"{stats['unparsed_lines']} of {read} lines could not be parsed as format "
                                 f"{self.format}: is it the nginx combined or a JSON log? (stats.unparsed_samples)")
        if len(flagged) > len(suspicious):
            self.warnings.append(f'{len(flagged)} suspicious addresses, the top {len(suspicious)} are detailed '
                                 f'(max_results); suspicious_ips lists all of them')
        return {
            'changed': False,
            'suspicious': suspicious,
            'suspicious_ips': [ip.decode('utf-8', 'backslashreplace') for _s, _r, ip, _st in flagged],
            'stats': stats,
            'window': {'since': iso(self.since), 'until': iso(self.until)},
        }
