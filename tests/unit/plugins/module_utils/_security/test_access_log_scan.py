# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The access log scan: the time window (and the binary search of time-ordered files), excluded networks, samples, caps and scores.

Logs are written by hand, and by the harness generator (``trdrhub_harness.accesslog``) for mixed
traffic. Parsing is in test_access_log.py, the rules in test_access_log_detect.py, the module in
tests/unit/plugins/modules/test_access_log_scan.py; real ansible-playbook runs are in
tests/integration/plugins/modules/test_access_log_scan.py.
"""

from __future__ import annotations

import datetime
import gzip
import os
import sys
from pathlib import Path

import pytest

_HARNESS = str(Path(__file__).resolve().parents[4] / 'harness')
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

# pylint: disable=wrong-import-position
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log_scan as _access_log_scan
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import (
    LogInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import (
    AccessLogScan,
)
from trdrhub_harness.accesslog import (
    SCANNERS,
    AccessLogGenerator,
    Attack,
    clf_time,
)

UTC = datetime.UTC


START = datetime.datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


T0 = START.timestamp()


BROWSER = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0'


WHOLE_DAY = {'since': '2025-01-15T00:00:00Z', 'until': '2025-01-15T23:59:59Z'}


def clf(offset: float, ip: str = '198.51.100.7', request: str = 'GET / HTTP/1.1', status: int = 200,
        agent: str = BROWSER, size: int = 512, tz_minutes: int = 0) -> str:
    moment = (START + datetime.timedelta(seconds=offset)).astimezone(datetime.timezone(datetime.timedelta(minutes=tz_minutes)))
    return f'{ip} - - [{clf_time(moment)}] "{request}" {status} {size} "-" "{agent}"'


def write(path: Path, lines, compress: bool = False) -> Path:
    text = ''.join(line + '\n' for line in lines).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text) if compress else text)
    return path


def scan(paths, **params):
    params = {'paths': [str(p) for p in (paths if isinstance(paths, list) else [paths])], **WHOLE_DAY, **params}
    worker = AccessLogScan(params, clock=lambda: T0 + 3600)
    result = worker.run()
    result['warnings'] = worker.warnings
    return result


def by_ip(result):
    return {entry['ip']: entry for entry in result['suspicious']}


def reasons(result):
    return {entry['ip']: set(entry['reasons']) for entry in result['suspicious']}


def generated(tmp_path, lines=6000, attacks=(), name='access.log', **kw):
    gen = AccessLogGenerator(start=START, **kw)
    return gen.write(tmp_path / name, lines=lines, attacks=attacks)


def test_default_window_is_the_last_hour(tmp_path):
    log = write(tmp_path / 'access.log', [clf(-1, ip='203.0.113.1', request='GET /?q=<script>x HTTP/1.1'),
                                          clf(3000, ip='203.0.113.2', request='GET /?q=<script>x HTTP/1.1')])
    worker = AccessLogScan({'paths': [str(log)]}, clock=lambda: T0 + 3600)
    result = worker.run()
    assert result['suspicious_ips'] == ['203.0.113.2']
    assert result['window'] == {'since': '2025-01-15T12:00:00Z', 'until': '2025-01-15T13:00:00Z'}


# ----------------------------------------------------------------------------------------------
# The time window


def test_window_filters_lines_and_until_is_inclusive(tmp_path):
    lines = [clf(offset, ip=f'203.0.113.{70 + n}', request='GET /?q=<script> HTTP/1.1')
             for n, offset in enumerate((0, 599, 600, 1200, 1201))]
    result = scan(write(tmp_path / 'access.log', lines), since='2025-01-15T12:10:00Z', until='2025-01-15T12:20:00Z')
    assert sorted(result['suspicious_ips']) == ['203.0.113.72', '203.0.113.73']
    assert result['stats']['lines_outside_window'] == 3
    assert result['stats']['lines_in_window'] == 2


def test_since_after_until_is_refused(tmp_path):
    with pytest.raises(LogInputError, match='since .* is later than until'):
        scan(write(tmp_path / 'a.log', [clf(0)]), since='2025-01-15T13:00:00Z', until='2025-01-15T12:00:00Z')


def big_ordered_log(tmp_path, **kw):
    attacks = [Attack('203.0.113.80', 'sql_injection', count=10, start=100),       # early in the file
               Attack('203.0.113.81', 'xss', count=10, start=5000),                # inside the window
               Attack('203.0.113.82', 'path_traversal', count=10, start=7800)]     # late
    return AccessLogGenerator(start=START, rate=5, **kw).write(tmp_path / 'access.log', lines=40000, attacks=attacks)


def test_time_ordered_binary_search_skips_bytes_and_finds_the_same(tmp_path):
    log = big_ordered_log(tmp_path)
    assert log.path.stat().st_size > _access_log_scan.SEEK_MIN_SIZE
    window = {'since': '2025-01-15T13:20:00Z', 'until': '2025-01-15T13:40:00Z'}   # 4800 s .. 6000 s
    fast = scan(log.path, **window)
    slow = scan(log.path, time_ordered=False, **window)
    assert fast['suspicious_ips'] == slow['suspicious_ips'] == ['203.0.113.81']
    assert fast['stats']['lines_in_window'] == slow['stats']['lines_in_window']
    entry = fast['stats']['files'][0]
    assert entry['skipped_bytes'] > log.path.stat().st_size * 0.4
    assert 'stopped_early' in entry
    assert fast['stats']['lines_read'] < slow['stats']['lines_read'] / 2
    st = fast['stats']
    assert st['lines_read'] == st['lines_in_window'] + st['lines_outside_window'] + st['unparsed_lines'] + st['blank_lines']
    assert fast['suspicious'] == slow['suspicious']


def test_binary_search_never_skips_past_unparseable_stretches(tmp_path):
    path = tmp_path / 'access.log'
    noise = ['garbage line without time ' + 'x' * 80] * 60000
    lines = [clf(i, ip='198.51.100.1') for i in range(2000)] + noise + [clf(3000, ip='203.0.113.83', request='GET /?<script> HTTP/1.1')]
    write(path, lines)
    assert path.stat().st_size > _access_log_scan.SEEK_MIN_SIZE
    result = scan(path, since='2025-01-15T12:40:00Z', until='2025-01-15T13:00:00Z')
    assert result['suspicious_ips'] == ['203.0.113.83']


def test_file_last_written_before_the_window_is_not_opened(tmp_path):
    old = write(tmp_path / 'access.log.1', [clf(0, ip='203.0.113.84', request='GET /?<script> HTTP/1.1')])
    os.utime(old, (T0 + 60, T0 + 60))
    current = write(tmp_path / 'access.log', [clf(7200, ip='203.0.113.85', request='GET /?<script> HTTP/1.1')])
    window = {'since': '2025-01-15T13:30:00Z', 'until': '2025-01-15T14:30:00Z'}
    result = scan([old, current], **window)
    assert result['suspicious_ips'] == ['203.0.113.85']
    assert result['stats']['files_skipped'] == 1 and result['stats']['files_read'] == 1
    assert 'before the window' in result['stats']['files'][0]['skipped']
    assert scan([old, current], time_ordered=False, **window)['stats']['files_read'] == 2


def test_exclude_networks(tmp_path):
    attacks = [Attack('10.0.0.99', 'scanner', count=30, agent=SCANNERS[7]), Attack('203.0.113.140', 'xss', count=5),
               Attack('2001:db8:ffff::7', 'sql_injection', count=5)]
    log = generated(tmp_path, lines=5000, attacks=attacks)
    assert set(scan(log.path)['suspicious_ips']) == {'10.0.0.99', '203.0.113.140', '2001:db8:ffff::7'}
    result = scan(log.path, exclude=['10.0.0.0/24', '2001:db8:ffff::/48'])
    assert result['suspicious_ips'] == ['203.0.113.140']
    assert result['stats']['excluded_lines'] >= 35


def test_exclude_refuses_what_is_not_a_network(tmp_path):
    with pytest.raises(LogInputError, match="exclude: 'monitoring' is not an IP address or CIDR"):
        scan(write(tmp_path / 'a.log', [clf(0)]), exclude=['monitoring'])


# ----------------------------------------------------------------------------------------------
# Result shape and bounds


def test_samples_are_bounded_and_prefer_one_per_category(tmp_path):
    lines = [clf(i, ip='203.0.113.150', request=f'GET /p?id={i}%27%20OR%201=1-- HTTP/1.1') for i in range(30)]
    lines += [clf(40, ip='203.0.113.150', request='GET /?q=<script>' + 'A' * 600 + ' HTTP/1.1')]
    result = scan(write(tmp_path / 'a.log', lines), max_samples=3, sample_length=120)
    entry = by_ip(result)['203.0.113.150']
    assert len(entry['samples']) == 3
    assert all(len(sample) <= 120 for sample in entry['samples'])
    assert entry['samples'][-1].endswith('...') and '<script>' in entry['samples'][-1]
    assert set(entry['reasons']) == {'sql_injection', 'xss'}
    assert scan(write(tmp_path / 'a.log', lines), max_samples=0)['suspicious'][0]['samples'] == []


def test_a_line_with_two_categories_is_one_sample(tmp_path):
    result = scan(write(tmp_path / 'a.log', [clf(0, ip='203.0.113.151', request='GET /p?id=1%27+or+1=1-- HTTP/1.1',
                                                 agent=SCANNERS[0])]))
    entry = result['suspicious'][0]
    assert entry['reasons'] == ['sql_injection', 'scanner'] and len(entry['samples']) == 1


def test_max_results_caps_details_not_the_address_list(tmp_path):
    lines = [clf(i, ip=f'203.0.113.{i}', request='GET /?<script> HTTP/1.1') for i in range(1, 21)]
    result = scan(write(tmp_path / 'a.log', lines), max_results=5)
    assert len(result['suspicious']) == 5 and len(result['suspicious_ips']) == 20
    assert result['stats']['suspicious_total'] == 20 and result['stats']['suspicious_listed'] == 5
    assert any('max_results' in w for w in result['warnings'])


def test_min_score(tmp_path):
    lines = [clf(0, ip='203.0.113.160', agent=SCANNERS[2])] + \
        [clf(i, ip='203.0.113.161', request='GET /p?id=1%27--', agent=SCANNERS[0]) for i in range(1, 40)]
    result = scan(write(tmp_path / 'a.log', lines), min_score=20)
    assert result['suspicious_ips'] == ['203.0.113.161']


def test_tracked_addresses_are_capped_and_clean_ones_evicted(tmp_path):
    gen = AccessLogGenerator(start=START, clients=3000, busy_ip=None)
    log = gen.write(tmp_path / 'a.log', lines=20000, attacks=[Attack('203.0.113.170', 'sql_injection', count=10, start=200)])
    result = scan(log.path, max_tracked_ips=200)
    assert result['suspicious_ips'] == ['203.0.113.170']
    stats = result['stats']
    assert stats['ips_tracked'] <= 200 and stats['ips_evicted'] > 2000 and stats['untracked_lines'] == 0


def test_when_every_tracked_address_is_flagged_new_ones_are_not_tracked(tmp_path):
    lines = [clf(i, ip=f'203.0.113.{i % 250}', request='GET /?<script> HTTP/1.1') for i in range(500)]
    result = scan(write(tmp_path / 'a.log', lines), max_tracked_ips=100)
    assert len(result['suspicious_ips']) == 100
    assert result['stats']['untracked_lines'] == 300
    assert any('max_tracked_ips' in w for w in result['warnings'])
