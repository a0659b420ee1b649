# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""access_log_scan, the module: its result in check mode, and missing, unreadable or bad input as one clear message.
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
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import (
    AccessLogScan,
)
from ansible_collections.trdrhub.incident.plugins.modules import (
    access_log_scan as module,
)
from trdrhub_harness.accesslog import (
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


def reasons(result):
    return {entry['ip']: set(entry['reasons']) for entry in result['suspicious']}


def generated(tmp_path, lines=6000, attacks=(), name='access.log', **kw):
    gen = AccessLogGenerator(start=START, **kw)
    return gen.write(tmp_path / name, lines=lines, attacks=attacks)


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
