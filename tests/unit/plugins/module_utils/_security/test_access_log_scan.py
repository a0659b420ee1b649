# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""access_log_scan in-process: parsing (combined, JSON, gzip), the window, each category, thresholds, messages.

Logs are written by hand for the parser and the rules, and by the harness generator
(``trdrhub_harness.accesslog``) for mixed traffic. Real ansible-playbook runs are in
tests/integration/test_access_log_scan.py.
"""

from __future__ import annotations

import calendar
import datetime
import gzip
import json
import os
import sys
from pathlib import Path

import pytest

_HARNESS = str(Path(__file__).resolve().parents[4] / 'harness')
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)

# pylint: disable=wrong-import-position
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log as _access_log
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log_detect as _access_log_detect
from ansible_collections.trdrhub.incident.plugins.module_utils._security import access_log_scan as _access_log_scan
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import (
    LogInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import (
    AccessLogScan,
)
from ansible_collections.trdrhub.incident.plugins.modules import (
    access_log_scan as module,
)
from trdrhub_harness.accesslog import (
    SCANNERS,
    AccessLogGenerator,
    Attack,
    clf_time,
    default_attacks,
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


# ----------------------------------------------------------------------------------------------
# Time


@pytest.mark.parametrize('raw, expected', [
    (b'15/Jan/2025:12:00:00 +0000', '2025-01-15T12:00:00+00:00'),
    (b'15/Jan/2025:05:00:00 -0700', '2025-01-15T12:00:00+00:00'),
    (b'15/Jan/2025:17:30:00 +0530', '2025-01-15T12:00:00+00:00'),
    (b'01/Mar/2024:00:00:01 +0000', '2024-03-01T00:00:01+00:00'),
])
def test_clf_time(raw, expected):
    assert _access_log.parse_clf_time(raw) == datetime.datetime.fromisoformat(expected).timestamp()


@pytest.mark.parametrize('raw', [b'15/Foo/2025:12:00:00 +0000', b'15/Jan/2025 12:00:00 +0000', b'15/Jan/2025:12:00:00 Z0000',
                                 b'xx/Jan/2025:12:00:00 +0000', b'15/Jan/2025:12:00:00', b''])
def test_clf_time_malformed(raw):
    assert _access_log.parse_clf_time(raw) is None


@pytest.mark.parametrize('text, expected', [
    ('2025-01-15T12:00:00Z', T0), ('2025-01-15T12:00:00+00:00', T0), ('2025-01-15T13:00:00+01:00', T0),
    ('2025-01-15 12:00', T0), ('2025-01-15T12:00:00.250Z', T0 + 0.25), ('2025-01-15', T0 - 12 * 3600),
    ('2025-01-15T07:00:00-0500', T0),
])
def test_iso_times(text, expected):
    assert _access_log.parse_iso(text) == expected


@pytest.mark.parametrize('text, seconds_ago', [('-2h', 7200), ('-30m', 1800), ('-1d', 86400), ('-90s', 90),
                                               ('2h', 7200), ('now', 0), ('-1.5h', 5400), ('-1w', 604800)])
def test_relative_times(text, seconds_ago):
    assert _access_log.parse_moment(text, 'since', 1_000_000.0) == 1_000_000.0 - seconds_ago


@pytest.mark.parametrize('text', ['yesterday', '-2x', '2025-13-01', '2025-01-15T25:00:00Z', '+2h', ''])
def test_bad_times_are_refused_with_the_accepted_forms(text):
    with pytest.raises(LogInputError, match=r'since=.*ISO 8601.*-2h'):
        _access_log.parse_moment(text, 'since', 0.0)


def test_default_window_is_the_last_hour(tmp_path):
    log = write(tmp_path / 'access.log', [clf(-1, ip='203.0.113.1', request='GET /?q=<script>x HTTP/1.1'),
                                          clf(3000, ip='203.0.113.2', request='GET /?q=<script>x HTTP/1.1')])
    worker = AccessLogScan({'paths': [str(log)]}, clock=lambda: T0 + 3600)
    result = worker.run()
    assert result['suspicious_ips'] == ['203.0.113.2']
    assert result['window'] == {'since': '2025-01-15T12:00:00Z', 'until': '2025-01-15T13:00:00Z'}


# ----------------------------------------------------------------------------------------------
# Parsing


def test_combined_fields_and_variants(tmp_path):
    lines = [
        clf(0, ip='203.0.113.5', request="GET /p?id=1'+or+1=1-- HTTP/1.1", tz_minutes=-420),
        # Apache-style escaped quote inside the request: the regex path
        '203.0.113.6 - - [15/Jan/2025:12:00:01 +0000] "GET /x?q=\\"<script>alert(1)</script> HTTP/1.1" 200 5 "-" "curl/8"',
        # extra fields after the user agent ($request_time, $upstream_addr), CRLF ending
        clf(2, ip='2001:db8::66', request='GET /../../etc/passwd HTTP/1.1') + ' 0.004 "10.0.0.9:8080"\r',
        # remote user and a missing referer/agent pair (common log format)
        '203.0.113.8 - alice [15/Jan/2025:12:00:03 +0000] "GET /a?f=..%2f..%2fwin.ini HTTP/1.1" 404 0',
        clf(4, ip='198.51.100.1'),
    ]
    result = scan(write(tmp_path / 'access.log', lines))
    assert reasons(result) == {'203.0.113.5': {'sql_injection'}, '203.0.113.6': {'xss'},
                               '2001:db8::66': {'path_traversal'}, '203.0.113.8': {'path_traversal'}}
    assert result['stats']['lines_in_window'] == 5
    assert result['stats']['unparsed_lines'] == 0
    assert by_ip(result)['203.0.113.5']['first_seen'] == '2025-01-15T12:00:00Z'   # -0700 converted to UTC


def test_unparsed_and_blank_lines_are_counted_never_fatal(tmp_path):
    lines = ['', 'garbage without structure', clf(1), '   ', '198.51.100.1 - - [15/Jan/2025:12:00:00] "GET / HTTP/1.1" 200 1',
             '{"not": "a log line"}', '[1, 2, 3]', clf(2)]
    result = scan(write(tmp_path / 'access.log', lines))
    stats = result['stats']
    assert stats['lines_read'] == 8
    assert stats['lines_in_window'] == 2
    assert stats['unparsed_lines'] == 4
    assert stats['blank_lines'] == 2
    assert stats['unparsed_samples'][0] == 'garbage without structure'
    assert len(stats['unparsed_samples']) == 3
    assert result['suspicious'] == []


def test_mostly_unparsed_warns_about_the_format(tmp_path):
    result = scan(write(tmp_path / 'access.log', [f'{i} something else entirely' for i in range(30)]))
    assert any('could not be parsed' in w for w in result['warnings'])


def test_json_nginx_keys(tmp_path):
    def line(offset, ip, request, status=200, agent=BROWSER):
        stamp = (START + datetime.timedelta(seconds=offset)).isoformat()
        return json.dumps({'time_iso8601': stamp, 'remote_addr': ip, 'request': request, 'status': status,
                           'body_bytes_sent': 12, 'http_referer': '-', 'http_user_agent': agent, 'request_time': '0.002'})
    lines = [line(0, '203.0.113.20', 'GET /s?q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1'),
             line(1, '203.0.113.21', 'GET / HTTP/1.1', agent=SCANNERS[0]),
             line(2, '198.51.100.2', 'GET /api/v1/orders/42 HTTP/1.1')]
    result = scan(write(tmp_path / 'access.json', lines), format='json')
    assert reasons(result) == {'203.0.113.20': {'xss'}, '203.0.113.21': {'scanner'}}


def test_json_alternative_keys(tmp_path):
    lines = [
        json.dumps({'@timestamp': '2025-01-15T12:00:00.123Z', 'client_ip': '203.0.113.30', 'method': 'GET',
                    'uri': '/download', 'args': 'file=../../etc/passwd', 'protocol': 'HTTP/1.1', 'status_code': '200',
                    'user_agent': BROWSER}),
        json.dumps({'msec': f'{int(T0) + 1}.250', 'clientip': '203.0.113.31', 'request_method': 'GET',
                    'request_uri': "/p?id=1%20UNION%20SELECT%201,2", 'response': 200, 'agent': BROWSER}),
        json.dumps({'time_local': '15/Jan/2025:12:00:02 +0000', 'remote_addr': '203.0.113.32', 'request': 'GET / HTTP/1.1',
                    'status': 200, 'ua': 'Mozilla/5.00 (Nikto/2.5.0)'}),
        json.dumps({'timestamp': int(T0 + 3) * 1000, 'ip': '198.51.100.3', 'url': '/', 'code': 200}),
        json.dumps({'remote_addr': '198.51.100.4', 'request': 'GET / HTTP/1.1', 'status': 200}),   # no time: unparsed
        json.dumps({'time_iso8601': '2025-01-15T12:00:05Z', 'remote_addr': '198.51.100.5', 'status': 'abc'}),  # bad status
    ]
    result = scan(write(tmp_path / 'access.json', lines))
    assert reasons(result) == {'203.0.113.30': {'path_traversal'}, '203.0.113.31': {'sql_injection'},
                               '203.0.113.32': {'scanner'}}
    assert result['stats']['lines_in_window'] == 4
    assert result['stats']['unparsed_lines'] == 2
    assert by_ip(result)['203.0.113.30']['first_seen'] == '2025-01-15T12:00:00.123Z'


def test_format_auto_reads_both_and_explicit_formats_refuse_the_other(tmp_path):
    gen_c = AccessLogGenerator(start=START, fmt='combined', seed=1)
    gen_j = AccessLogGenerator(start=START, fmt='json', seed=2)
    mixed = list(gen_c.lines(count=50)) + list(gen_j.lines(count=50))
    path = tmp_path / 'mixed.log'
    path.write_text(''.join(mixed))
    assert scan(path)['stats']['lines_in_window'] == 100
    combined = scan(path, format='combined')['stats']
    assert (combined['lines_in_window'], combined['unparsed_lines']) == (50, 50)
    as_json = scan(path, format='json')['stats']
    assert (as_json['lines_in_window'], as_json['unparsed_lines']) == (50, 50)


def test_generated_json_logs_match_combined_results(tmp_path):
    attacks = default_attacks(1500)
    results = {}
    for fmt, keys in (('combined', 'nginx'), ('json', 'nginx'), ('json', 'alt')):
        log = AccessLogGenerator(start=START, fmt=fmt, json_keys=keys).write(tmp_path / f'{fmt}-{keys}.log', lines=30000,
                                                                             attacks=attacks)
        result = scan(log.path)
        assert reasons(result) == log.expected(), (fmt, keys)
        results[fmt, keys] = [(e['ip'], e['score'], e['counts'], e['requests']) for e in result['suspicious']]
    assert results['combined', 'nginx'] == results['json', 'nginx'] == results['json', 'alt']


def test_overlong_line_is_dropped_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(_access_log, 'CHUNK', 4096)
    monkeypatch.setattr(_access_log, 'MAX_LINE', 8192)
    huge = clf(1, ip='203.0.113.40', request='GET /' + 'a' * 50000 + ' HTTP/1.1')
    lines = [clf(0), huge, clf(2, ip='203.0.113.41', request='GET /?x=<script> HTTP/1.1'), clf(3)]
    result = scan(write(tmp_path / 'access.log', lines))
    assert result['stats']['unparsed_lines'] == 1
    assert result['stats']['lines_in_window'] == 3
    assert result['suspicious_ips'] == ['203.0.113.41']


def test_line_batches_split_lines_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(_access_log, 'CHUNK', 7)
    path = tmp_path / 'f'
    path.write_bytes(b'alpha\nbeta\n\ngamma-delta-epsilon\nlast')
    counters = {'bytes': 0, 'overlong': 0}
    with open(path, 'rb') as handle:
        lines = [line for batch in _access_log.line_batches(handle, counters) for line in batch]
    assert lines == [b'alpha', b'beta', b'', b'gamma-delta-epsilon', b'last']
    assert counters['bytes'] == path.stat().st_size


# ----------------------------------------------------------------------------------------------
# Files: gzip, rotation, globs


def test_gzip_is_recognised_by_magic_bytes_not_the_name(tmp_path):
    attack = clf(5, ip='203.0.113.50', request='GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1')
    compressed_plain_name = write(tmp_path / 'access.log.1', [clf(0), attack], compress=True)
    plain_gz_name = write(tmp_path / 'access.log.2.gz', [clf(1), clf(6, ip='203.0.113.51', agent='gobuster/3.6')])
    result = scan([compressed_plain_name, plain_gz_name])
    assert reasons(result) == {'203.0.113.50': {'path_traversal'}, '203.0.113.51': {'scanner'}}
    files = {Path(f['path']).name: f for f in result['stats']['files']}
    assert files['access.log.1']['compressed'] is True
    assert files['access.log.2.gz']['compressed'] is False
    assert result['stats']['bytes_read'] == sum(f['bytes'] for f in files.values())


def test_rotated_files_by_glob_oldest_first(tmp_path):
    log = AccessLogGenerator(start=START).write_rotated(tmp_path, lines=9000, files=4,
                                                        attacks=default_attacks(9000 / 50))
    assert [p.name for p in log.paths] == ['access.log.3.gz', 'access.log.2.gz', 'access.log.1', 'access.log']
    result = scan(str(tmp_path / 'access.log*'))
    assert [Path(f['path']).name for f in result['stats']['files']] == [p.name for p in log.paths]
    assert reasons(result) == log.expected()
    assert result['stats']['lines_in_window'] == log.lines
    # The same file through two patterns is read once.
    again = scan([str(tmp_path / 'access.log*'), str(tmp_path / 'access.log.1')])
    assert again['stats']['files_read'] == 4


def test_rotation_order_of_names():
    names = ['access.log', 'access.log.1', 'access.log.10.gz', 'access.log.2.gz', 'error.log', 'access.log-20250114.gz',
             'access.log-20250113.gz']
    ordered = [os.path.basename(p) for p in sorted(('/l/' + n for n in names), key=_access_log.rotation_key)]
    assert ordered.index('access.log.10.gz') < ordered.index('access.log.2.gz') < ordered.index('access.log.1') \
        < ordered.index('access.log')
    assert ordered.index('access.log-20250113.gz') < ordered.index('access.log-20250114.gz') < ordered.index('access.log')


def test_truncated_gzip_warns_and_keeps_what_was_read(tmp_path):
    lines = [clf(i, ip='203.0.113.60' if i == 3 else '198.51.100.9',
                 request='GET /?q=<script> HTTP/1.1' if i == 3 else 'GET / HTTP/1.1') for i in range(4000)]
    data = gzip.compress(''.join(line + '\n' for line in lines).encode())
    path = tmp_path / 'access.log.2.gz'
    path.write_bytes(data[:len(data) // 2])
    result = scan(path)
    assert result['suspicious_ips'] == ['203.0.113.60']
    entry = result['stats']['files'][0]
    assert 'error' in entry and 0 < entry['lines'] < 4000
    assert any('stopped reading' in w and 'access.log.2.gz' in w for w in result['warnings'])


@pytest.mark.parametrize('magic, name', [(b'BZh91AY&SY', 'bzip2'), (b'\xfd7zXZ\x00\x00', 'xz'),
                                         (b'\x28\xb5\x2f\xfd\x00', 'zstd')])
def test_other_compressions_are_refused_by_name(tmp_path, magic, name):
    path = tmp_path / 'access.log.3'
    path.write_bytes(magic + b'\x00' * 64)
    with pytest.raises(LogInputError, match=f'compressed with {name}'):
        scan(path)


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


# ----------------------------------------------------------------------------------------------
# Detection


@pytest.mark.parametrize('request_line, category', [
    ("GET /api/v1/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1'+or+1=1-- HTTP/1.1", 'sql_injection'),
    ("GET /p?id=%2527%2520OR%25201%253D1 HTTP/1.1", 'sql_injection'),            # double-encoded
    ("GET /p?id=1;DROP%20TABLE%20users HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1%20AND%20SLEEP(5) HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1+AND+BENCHMARK(5000000,MD5(1)) HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1/**/UNION/**/SELECT/**/table_name/**/FROM/**/information_schema.tables HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1)%20OR%20(%271%27=%271 HTTP/1.1", 'sql_injection'),
    ("GET /p?id=1%3BWAITFOR%20DELAY%20%270:0:5%27-- HTTP/1.1", 'sql_injection'),
    ("GET /static/../../../../etc/passwd HTTP/1.1", 'path_traversal'),
    ("GET /download?file=..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1", 'path_traversal'),
    ("GET /%2e%2e/%2e%2e/windows/win.ini HTTP/1.1", 'path_traversal'),
    ("GET /..%252f..%252f..%252fetc%252fpasswd HTTP/1.1", 'path_traversal'),      # double-encoded
    ("GET /img?f=..\\..\\boot.ini HTTP/1.1", 'path_traversal'),
    ("GET /x/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/shadow HTTP/1.1", 'path_traversal'),
    ("GET /search?q=<script>alert(1)</script> HTTP/1.1", 'xss'),
    ("GET /search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E HTTP/1.1", 'xss'),
    ("GET /profile?name=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E HTTP/1.1", 'xss'),
    ("GET /redirect?to=javascript:alert(1) HTTP/1.1", 'xss'),
    ("GET /s?q=%253Csvg%2520onload%253Dalert%25281%2529%253E HTTP/1.1", 'xss'),      # double-encoded
])
def test_signatures(tmp_path, request_line, category):
    result = scan(write(tmp_path / 'a.log', [clf(0, ip='203.0.113.90', request=request_line), clf(1)]))
    assert reasons(result) == {'203.0.113.90': {category}}


@pytest.mark.parametrize('request_line', [
    'GET /api/v1/search?q=O%27Reilly+%28books%29 HTTP/1.1', 'GET /api/v1/search?q=red+alert+(film) HTTP/1.1',
    'GET /api/v1/search?q=sleep+(5+tips) HTTP/1.1', 'GET /api/v1/search?q=regular+expression+(regex) HTTP/1.1',
    'GET /blog/2024/12/union-station-opening HTTP/1.1', 'GET /docs/select-a-plan HTTP/1.1',
    'GET /api/v1/orders?page=2&sort=-created_at HTTP/1.1', 'GET /api/v1/search?q=drop+table+tennis HTTP/1.1',
    'GET /images/logo%20small.png HTTP/1.1', 'GET /api/v1/market/ticker?symbols=BTC-USD,ETH-USD HTTP/1.1',
    'GET /api/v1/search?q=rock+and+roll HTTP/1.1', 'GET /api/v1/search?q=tom+%26+jerry%3A+the+movie HTTP/1.1',
    'GET /api/v1/time?at=2025-01-15T14:30:00Z HTTP/1.1', 'GET /api/v1/portfolio/7/positions?fields=symbol,qty,(avg_price) HTTP/1.1',
    'GET /wiki/Foo_(bar)--baz HTTP/1.1', 'GET /static/app..min.js HTTP/1.1', "GET /search?q=it's+2+or+3+days HTTP/1.1",
    'GET /api/v1/notes?text=buttons+onclick+handler HTTP/1.1', 'POST /graphql HTTP/2.0',
])
def test_legitimate_requests_are_not_signatures(tmp_path, request_line):
    assert scan(write(tmp_path / 'a.log', [clf(0, ip='198.51.100.90', request=request_line)]))['suspicious'] == []


@pytest.mark.parametrize('agent', SCANNERS + ('Mozilla/5.0 (compatible; Acunetix Web Vulnerability Scanner)',
                                              'Fuzz Faster U Fool v2.1.0 ffuf', 'feroxbuster/2.10.1'))
def test_scanner_agents(tmp_path, agent):
    assert reasons(scan(write(tmp_path / 'a.log', [clf(0, ip='203.0.113.91', agent=agent)]))) == {'203.0.113.91': {'scanner'}}


@pytest.mark.parametrize('agent', ['curl/8.5.0', 'python-requests/2.31.0', 'Prometheus/2.48.0', 'kube-probe/1.29',
                                   'Unmapped-Client/1.0', 'Mozilla/5.0 (compatible; Googlebot/2.1)', 'Go-http-client/1.1'])
def test_ordinary_agents_are_not_scanners(tmp_path, agent):
    assert scan(write(tmp_path / 'a.log', [clf(0, agent=agent)]))['suspicious'] == []


def test_extra_scanner_agents(tmp_path):
    log = write(tmp_path / 'a.log', [clf(0, ip='203.0.113.92', agent='EvilCorp-Recon/0.1')])
    assert scan(log)['suspicious'] == []
    assert scan(log, scanner_user_agents=['evilcorp-recon'])['suspicious_ips'] == ['203.0.113.92']


def failures(ip, count, spacing, status=401, start=0.0, request='POST /api/v1/auth/login HTTP/1.1'):
    return [clf(start + i * spacing, ip=ip, request=request, status=status) for i in range(count)]


def test_brute_force_threshold_and_window(tmp_path):
    lines = (failures('203.0.113.100', 20, 3.0)               # 20 in 57 s: a burst
             + failures('203.0.113.101', 19, 1.0)             # 19: below the count
             + failures('203.0.113.102', 20, 3.4)             # 20 in 64 s: wider than the window
             + failures('203.0.113.103', 25, 1.0, status=403))
    result = scan(write(tmp_path / 'a.log', sorted(lines, key=lambda line: line.split('[')[1])))
    assert reasons(result) == {'203.0.113.100': {'brute_force'}, '203.0.113.103': {'brute_force'}}
    assert by_ip(result)['203.0.113.100']['counts'] == {'brute_force': 20}
    assert by_ip(result)['203.0.113.103']['counts'] == {'brute_force': 25}
    custom = scan(write(tmp_path / 'a.log', lines), thresholds={'brute_force': {'count': 20, 'window': 70}})
    # With the baseline comparison on, four addresses failing alike hide each other (why it is off by default).
    assert scan(write(tmp_path / 'a.log', lines), thresholds={'brute_force': {'baseline_factor': 2}})['suspicious'] == []
    assert set(custom['suspicious_ips']) == {'203.0.113.100', '203.0.113.102', '203.0.113.103'}
    lower = scan(write(tmp_path / 'a.log', lines), thresholds={'brute_force': {'count': 19}})
    assert set(lower['suspicious_ips']) == {'203.0.113.100', '203.0.113.101', '203.0.113.103'}   # .102: 19 in 61 s
    off = scan(write(tmp_path / 'a.log', lines), thresholds={'brute_force': {'count': 0}})
    assert off['suspicious'] == []


def test_burst_needs_its_share_of_the_requests(tmp_path):
    """20 failed logins among 200 successful requests in a minute: 10 % of the traffic, not a burst (min_ratio 0.5)."""
    lines = []
    for i in range(200):
        lines.append(clf(i * 0.25, ip='198.51.100.110', request='GET /api/v1/orders/1 HTTP/1.1'))
        if i % 10 == 0:
            lines.append(clf(i * 0.25, ip='198.51.100.110', request='GET /api/v1/users/me HTTP/1.1', status=401))
    path = write(tmp_path / 'a.log', lines)
    assert scan(path)['suspicious'] == []
    assert scan(path, thresholds={'brute_force': {'min_ratio': 0.05}})['suspicious_ips'] == ['198.51.100.110']


def test_error_and_not_found_bursts(tmp_path):
    attacks = [Attack('203.0.113.120', 'error_burst', count=80), Attack('203.0.113.121', 'not_found_burst', count=120),
               Attack('203.0.113.122', 'brute_force', count=60)]
    log = generated(tmp_path, lines=12000, attacks=attacks)
    result = scan(log.path)
    assert reasons(result) == log.expected()
    counts = {ip: entry['counts'] for ip, entry in by_ip(result).items()}
    assert counts['203.0.113.120'] == {'error_burst': 80}
    assert counts['203.0.113.121'] == {'not_found_burst': 120}
    assert counts['203.0.113.122'] == {'brute_force': 60}
    # statuses as classes and lists
    only_500 = scan(log.path, thresholds={'error_burst': {'statuses': [500]}})
    assert by_ip(only_500)['203.0.113.120']['counts'] == {'error_burst': 53}    # the 502s no longer count
    assert reasons(scan(log.path, thresholds={'error_burst': {'statuses': ['4xx']}}))['203.0.113.121'] == \
        {'not_found_burst', 'error_burst'}


def test_normal_traffic_flags_nobody(tmp_path):
    """The generator's traffic: IPv6 clients, legitimate queries with ' ( + %, a busy client with 54 404/min."""
    log = generated(tmp_path, lines=60000)
    result = scan(log.path)
    assert result['suspicious'] == [] and result['suspicious_ips'] == []
    assert result['stats']['lines_in_window'] == 60000
    # The busy client does reach the 404 count: only min_ratio keeps it out.
    loose = scan(log.path, thresholds={'not_found_burst': {'min_ratio': 0}})
    assert loose['suspicious_ips'] == ['198.51.100.20']


def test_known_attacks_among_normal_traffic(tmp_path):
    log = generated(tmp_path, lines=40000, attacks=default_attacks(800))
    result = scan(log.path)
    assert reasons(result) == log.expected()
    assert not set(result['suspicious_ips']) & log.normal_ips
    scores = [entry['score'] for entry in result['suspicious']]
    assert scores == sorted(scores, reverse=True)
    assert result['suspicious_ips'] == [entry['ip'] for entry in result['suspicious']]
    sqlmap = by_ip(result)['203.0.113.17']
    assert sqlmap['reasons'] == ['sql_injection', 'scanner'] and result['suspicious'][0]['ip'] == '203.0.113.17'
    assert sqlmap['counts'] == {'sql_injection': 300, 'scanner': 300} and sqlmap['requests'] == 300
    expected_score = round(10 * (1 + __import__('math').log2(300)) + 5 * (1 + __import__('math').log2(300)), 1)
    assert sqlmap['score'] == expected_score


def test_an_outage_flags_nobody_for_errors(tmp_path):
    """Everyone gets 502/503 for 10 minutes: the busy client's 5xx burst is no worse than the others'."""
    log = generated(tmp_path, lines=60000, outage=(300, 600))
    result = scan(log.path)
    assert result['suspicious'] == []
    assert result['stats']['bursts_suppressed'] == {'error_burst': 1}
    assert any('outage' in w for w in result['warnings'])
    assert scan(log.path, thresholds={'error_burst': {'baseline_factor': 0}})['suspicious_ips'] == ['198.51.100.20']
    # A real attacker during the outage is still found.
    attacked = generated(tmp_path, lines=60000, outage=(300, 600), name='b.log',
                         attacks=[Attack('203.0.113.130', 'brute_force', count=100, start=400)])
    assert reasons(scan(attacked.path)) == {'203.0.113.130': {'brute_force'}}


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


def test_burst_state_is_bounded_by_the_count(tmp_path):
    log = write(tmp_path / 'a.log', failures('203.0.113.180', 5000, 0.1))
    worker = AccessLogScan({'paths': [str(log)], **WHOLE_DAY})
    worker.run()
    state = worker.ips[b'203.0.113.180']
    assert len(state[_access_log_detect.BURSTS][0][0]) == 20
    assert len(state[_access_log_detect.SAMPLES]) == 5


def test_ordinary_clients_keep_only_the_last_window_of_matching_responses(tmp_path):
    """A 404 every ten minutes for a day: never more than one remembered, whatever the length of the log."""
    lines = [clf(i * 600, ip='198.51.100.181', request='GET /gone HTTP/1.1', status=404) for i in range(140)]
    log = write(tmp_path / 'a.log', lines)
    worker = AccessLogScan({'paths': [str(log)], 'since': '2025-01-15T00:00:00Z', 'until': '2025-01-17T00:00:00Z'})
    assert worker.run()['suspicious'] == []
    entry = worker.ips[b'198.51.100.181'][_access_log_detect.BURSTS][2]
    assert entry[0] == [(T0 + 139 * 600, 140)] and entry[1] == 140


def test_statuses_option_parsing():
    assert _access_log_detect.parse_statuses(['5xx'], 'r') == {b'%d' % c for c in range(500, 600)}
    assert _access_log_detect.parse_statuses(['50x', 401], 'r') == {b'%d' % c for c in range(500, 510)} | {b'401'}
    for bad in ('5x0', '600', 'abc', '40', 4011):
        with pytest.raises(ValueError, match='is not a status'):
            _access_log_detect.parse_statuses([bad], 'brute_force')


# ----------------------------------------------------------------------------------------------
# The module: options, messages, check mode


def test_module_result_and_check_mode(run_module, tmp_path):
    log = generated(tmp_path, lines=3000, attacks=[Attack('203.0.113.190', 'path_traversal', count=8, start=10)])
    args = {'paths': [str(log.path)], **WHOLE_DAY}
    for check_mode in (False, True):
        result = run_module(module, args, check_mode=check_mode)
        assert result['changed'] is False and not result.get('failed')
        assert result['suspicious_ips'] == ['203.0.113.190']
        entry = result['suspicious'][0]
        assert set(entry) == {'ip', 'score', 'reasons', 'counts', 'requests', 'first_seen', 'last_seen', 'samples'}
        assert entry['reasons'] == ['path_traversal'] and entry['counts'] == {'path_traversal': 8}
        for key in ('files_read', 'lines_read', 'lines_in_window', 'unparsed_lines', 'bytes_read', 'duration'):
            assert key in result['stats']
        assert result['window'] == {'since': '2025-01-15T00:00:00Z', 'until': '2025-01-15T23:59:59Z'}
    assert log.path.read_bytes()  # untouched


def test_missing_files_are_one_clear_message(run_module, tmp_path):
    present = write(tmp_path / 'access.log', [clf(0)])
    result = run_module(module, {'paths': [str(present), str(tmp_path / 'nope.log'), str(tmp_path / 'old/*.gz')], **WHOLE_DAY})
    assert result['failed']
    assert result['msg'] == (f'access log not found: {tmp_path}/nope.log, {tmp_path}/old/*.gz (no match). '
                             'Set missing_ok to scan only the logs that exist.')
    ok = run_module(module, {'paths': [str(present), str(tmp_path / 'nope.log')], 'missing_ok': True, **WHOLE_DAY})
    assert not ok.get('failed') and ok['stats']['files_read'] == 1
    assert ok['warnings'] == [f'access log not found, skipped (missing_ok): {tmp_path}/nope.log']


@pytest.mark.parametrize('args, message', [
    ({'since': 'last tuesday'}, "since='last tuesday' is neither an ISO 8601 time"),
    ({'until': '2025-01-15T25:00'}, "until='2025-01-15T25:00' is neither"),
    ({'exclude': ['10.0.0.0/33']}, "exclude: '10.0.0.0/33' is not an IP address or CIDR"),
    ({'thresholds': {'brute_force': {'statuses': ['2xx', 'x']}}}, "thresholds.brute_force.statuses: 'x' is not a status"),
    ({'thresholds': {'error_burst': {'min_ratio': 2.0}}}, 'thresholds.error_burst.min_ratio must be between 0 and 1, got 2'),
    ({'thresholds': {'not_found_burst': {'statuses': []}}}, 'thresholds.not_found_burst.statuses is empty'),
    ({'max_tracked_ips': 0}, 'max_tracked_ips must be at least 1, got 0'),
    ({'max_samples': -1}, 'max_samples must be at least 0, got -1'),
    ({'paths': []}, 'paths is empty'),
])
def test_bad_input_messages(run_module, tmp_path, args, message):
    log = write(tmp_path / 'access.log', [clf(0)])
    result = run_module(module, {'paths': [str(log)], **args})
    assert result['failed'] and message in result['msg'], result['msg']


def test_a_directory_is_refused_with_a_pattern_hint(run_module, tmp_path):
    result = run_module(module, {'paths': [str(tmp_path)]})
    assert result['failed'] and result['msg'] == (f'{tmp_path} is a directory: name the log files, or a pattern such '
                                                  f'as {tmp_path}/access.log*')


def test_unreadable_file(run_module, tmp_path):
    if os.geteuid() == 0:
        pytest.skip('root reads every file')
    log = write(tmp_path / 'access.log', [clf(0)])
    log.chmod(0)
    result = run_module(module, {'paths': [str(log)]})
    assert result['failed'] and 'permission denied' in result['msg']


def test_argument_spec_rejects_unknown_threshold_rules(run_module, tmp_path):
    log = write(tmp_path / 'access.log', [clf(0)])
    result = run_module(module, {'paths': [str(log)], 'thresholds': {'ddos': {'count': 5}}})
    assert result['failed'] and 'ddos' in result['msg']


def test_epoch_of_generator_times_matches():
    moment = datetime.datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
    assert _access_log.parse_clf_time(clf_time(moment).encode()) == calendar.timegm(moment.utctimetuple())
