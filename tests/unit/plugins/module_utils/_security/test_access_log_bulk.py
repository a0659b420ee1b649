# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The block path of access_log_scan (access_log_bulk) against the line-by-line parse, on every kind of line.

A log is generated with plain lines and every kind of line the block path must leave to the
line-by-line parse or take apart exactly like it: IPv6 and odd addresses, each signature, scanner
agents, bursts of 401/404/5xx, malformed lines, JSON lines, escaped quotes, a remote user, another
zone, lines out of time order and outside the window. Small read chunks mix them into many blocks.
The whole result (findings, samples, counters, warnings) must be the same both ways.
"""

from __future__ import annotations

import calendar
import random
import time

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log as _access_log
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_bulk import (
    special_statuses,
    split_block,
    watched_prefixes,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_detect import (
    burst_rules,
    status_table,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import (
    AccessLogScan,
)

T0 = calendar.timegm((2025, 1, 15, 12, 0, 0))
MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')
BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0'
WINDOW = {'since': '2025-01-15T12:05:00Z', 'until': '2025-01-15T13:30:00Z'}


def stamp(epoch: float, zone: str = '+0000') -> str:
    shift = (1 if zone[0] == '+' else -1) * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    year, month, day, hour, minute, second = time.gmtime(epoch + shift)[:6]
    return f'{day:02d}/{MONTHS[month - 1]}/{year}:{hour:02d}:{minute:02d}:{second:02d} {zone}'


def line(epoch: float, ip: str, request: str = 'GET / HTTP/1.1', status: str = '200', agent: str = BROWSER,
         user: str = '-', zone: str = '+0000') -> str:
    return f'{ip} - {user} [{stamp(epoch, zone)}] "{request}" {status} 512 "-" "{agent}"'


ATTACKS = [
    'GET /search?q=1%27%20OR%20%271%27=%271 HTTP/1.1',                 # sql injection, encoded
    "GET /item?id=1 UNION SELECT password FROM users HTTP/1.1",
    'GET /../../etc/passwd HTTP/1.1',                                   # traversal
    'GET /static/%2e%2e%2f%2e%2e%2fwin.ini HTTP/1.1',
    'GET /q?x=<script>alert(1)</script> HTTP/1.1',                      # xss
    'GET /q?x=%3Cimg%20src=x%20onerror=alert(1)%3E HTTP/1.1',
]
ODD = [
    '',                                                                  # blank
    'not a log line at all',
    '{"remote_addr": "192.0.2.80", "time_iso8601": "2025-01-15T12:20:00+00:00", "status": 404, "request": "GET /x HTTP/1.1"}',
    '{ - - [15/Jan/2025:12:20:00 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
    '192.0.2.81 - - [15/Jan/2025:12:20:01 +0000] "GET /a\\"b HTTP/1.1" 200 1 "-" "x"',     # escaped quote
    '192.0.2.82 - - [15/Jan/2025:12:20:02 +0000] "GET / HTTP/1.1" 2x0 1 "-" "x"',         # bad status
    '192.0.2.83 - - [15/Jan/2025:12:20:03 +0000] "GET / HTTP/1.1" 404 1 "-"',             # no agent
    '192.0.2.84 - - [99/Jan/2025:12:20:04 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',         # bad time
    '192.0.2.85  - - [15/Jan/2025:12:20:05 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',        # two spaces
    '192.0.2.86 - - [15/Jan/2025:12:20:06 +0000] "GET / HTTP/1.1" 200 1 "-" "x" 0.012',   # trailing field
    '192.0.2.87 - - [15/Jan/2025:12:20:07 +0000]  "GET / HTTP/1.1" 200 1 "-" "x"',
    '192.0.2.88 - - [15/Jan/2025:12:20:08 +0000] "GET / HTTP/1.1" 200 1 "-"  "x"',        # two spaces before agent
    '192.0.2.89\t- - [15/Jan/2025:12:20:09 +0000] "GET / HTTP/1.1" 200 1 "-" "x"',
]


def generate(seed: int) -> str:
    rng = random.Random(seed)
    clients = [f'198.51.100.{n}' for n in range(1, 60)] + [f'2001:db8::{n:x}' for n in range(1, 20)] + ['::ffff:192.0.2.9']
    out = []
    epoch = T0
    for number in range(9000):
        epoch += rng.choice((0, 0, 0, 1))
        when = epoch - rng.choice((0,) * 30 + (1, 2, 5))          # now and then a little out of order
        roll = rng.random()
        ip = rng.choice(clients)
        if 3000 <= number < 3080:                                  # content discovery from an IPv6 address
            out.append(line(when, '2001:db8:bad::1', f'GET /dir{number} HTTP/1.1', '404'))
        elif 6000 <= number < 6040:                                # password guessing
            out.append(line(when, '203.0.113.12', f'POST /login?u={number} HTTP/1.1', '401'))
        elif roll < 0.01:
            out.append(rng.choice(ODD).replace('12:20', f'12:{20 + number % 30:02d}'))
        elif roll < 0.03:
            out.append(line(when, '203.0.113.10', rng.choice(ATTACKS)))
        elif roll < 0.04:
            out.append(line(when, '203.0.113.11', agent=rng.choice(('sqlmap/1.7', 'Nikto/2.5', 'nuclei - open-source'))))
        elif roll < 0.08:
            out.append(line(when, '203.0.113.12', f'POST /login?u={number} HTTP/1.1', rng.choice(('401', '403'))))
        elif roll < 0.12:
            out.append(line(when, '2001:db8:bad::1', f'GET /dir{number} HTTP/1.1', '404'))
        elif roll < 0.13:
            out.append(line(when, ip, 'GET /api/v1/orders HTTP/1.1', rng.choice(('500', '502', '503'))))
        elif roll < 0.135:
            out.append(line(when, ip, user='alice'))
        elif roll < 0.14:
            out.append(line(when, ip, zone='+0100'))
        else:
            request = rng.choice(('GET / HTTP/1.1', 'GET /api/v1/market/ticker?symbols=BTC-USD HTTP/1.1',
                                  'GET /images/logo%20small.png HTTP/1.1', 'GET /search?q=O%27Reilly+%28books%29 HTTP/1.1'))
            out.append(line(when, ip, request, rng.choice(('200', '200', '200', '304', '201', '404'))))
    return '\n'.join(out) + '\n'


def both_ways(path, params: dict) -> tuple[dict, dict]:
    results = []
    for bulk in (False, True):
        scan = AccessLogScan(dict({'paths': [str(path)]}, **params))
        scan.bulk = bulk
        result = scan.run()
        result['stats'].pop('duration')
        result['warnings'] = scan.warnings
        results.append(result)
    return results[0], results[1]


@pytest.mark.parametrize('params', [
    {},
    {'time_ordered': False},
    {'exclude': ['198.51.100.0/28', '2001:db8::/120']},
    {'max_tracked_ips': 40},
    {'thresholds': {'brute_force': {'count': 5, 'window': 30}, 'not_found_burst': {'count': 10},
                    'error_burst': {'count': 3, 'statuses': ['50x', 503]}}},
    {'format': 'combined', 'max_samples': 2, 'sample_length': 60},
], ids=['default', 'unordered', 'exclude', 'few-tracked', 'thresholds', 'combined-short-samples'])
@pytest.mark.parametrize('chunk', [4096, 65536])
def test_block_path_gives_the_line_by_line_result(tmp_path, monkeypatch, params, chunk):
    monkeypatch.setattr(_access_log, 'CHUNK', chunk)
    path = tmp_path / 'access.log'
    path.write_text(generate(chunk), encoding='utf-8')
    line_by_line, blocks = both_ways(path, dict(WINDOW, **params))
    assert blocks == line_by_line
    if not params:
        assert {'203.0.113.10', '203.0.113.11', '203.0.113.12', '2001:db8:bad::1'} <= set(blocks['suspicious_ips'])
        assert blocks['stats']['unparsed_lines'] > 0 and blocks['stats']['lines_outside_window'] > 0


def test_block_path_takes_plain_blocks_and_leaves_odd_ones(tmp_path):
    plain = '\n'.join(line(T0 + n, f'198.51.100.{n % 7}') for n in range(50)).encode()
    parsed = split_block(plain, {})
    assert parsed is not None and parsed.count == 50
    assert parsed.ips[3] == b'198.51.100.3' and parsed.times[3] == T0 + 3
    assert parsed.line_text(49) == plain.split(b'\n')[49] and parsed.line_text(0) == plain[:plain.find(b'\n')]
    prefixes = watched_prefixes(status_table(burst_rules(None)))
    for odd in ODD + [line(T0, '198.51.100.1', user='alice'), line(T0, '198.51.100.1', zone='+0100')]:
        parsed = split_block(plain + b'\n' + odd.encode() + b'\n' + plain, {})
        assert parsed is None or special_statuses(parsed.statuses, prefixes) is None, odd
    # A field after the agent ends the last line of a block: the line-by-line parse ignores it as well.
    last = split_block(plain + b'\n' + ODD[9].encode(), {})
    assert last is not None and last.line_text(50) == ODD[9].encode()


def test_special_statuses_finds_watched_and_refuses_non_statuses():
    prefixes = watched_prefixes(status_table(burst_rules(None)))
    assert prefixes == [b'401', b'403', b'404', b'5']
    fields = [b' 200 1 ', b' 404 2 ', b' 503 0 ', b' 401 9 ', b' 304 0 ']
    assert special_statuses(fields, prefixes) == [1, 2, 3]
    assert special_statuses(fields + [b' 2x0 1 '], prefixes) is None
    assert special_statuses(fields + [b'x200 1 '], prefixes) is None
    assert watched_prefixes(status_table(burst_rules({'error_burst': {'statuses': ['50x', 503]}}))) == \
        [b'401', b'403', b'404', b'50']
