# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Reading access logs: times (CLF, ISO, relative), combined and JSON lines, unparsed lines counted, bounded memory, gzip and rotated files.

Logs are written by hand, and by the harness generator (tests/harness/trdrhub_harness/accesslog.py) in both formats.
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
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import (
    LogInputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import (
    AccessLogScan,
)
from trdrhub_harness.accesslog import (
    SCANNERS,
    AccessLogGenerator,
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


def test_epoch_of_generator_times_matches():
    moment = datetime.datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
    assert _access_log.parse_clf_time(clf_time(moment).encode()) == calendar.timegm(moment.utctimetuple())
