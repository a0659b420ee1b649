"""The floors the benchmarks print: a procedure's task mix, and the log scan's field extraction."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def load(name):
    spec = importlib.util.spec_from_file_location(f'bench_{name}', REPO / 'bench' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def procedures():
    for library in ('psycopg2', 'aiosmtpd'):     # the procedures benchmark imports the harness's sandbox
        pytest.importorskip(library)
    return load('procedures_bench')


@pytest.fixture(scope='module')
def log_scan():
    return load('log_scan_bench')


def row(action, skipped=False, seconds=0.5):
    return {'task': action, 'action': action, 'seconds': seconds, 'skipped': skipped}


def test_task_mix_counts_module_processes_and_controller_only_tasks(procedures):
    rows = [row('trdrhub.incident.pg_terminate_sessions'), row('trdrhub.incident.pg_terminate_sessions', skipped=True),
            row('trdrhub.incident.audit_chain_verify'),     # its action plugin runs the module...
            row('trdrhub.incident.audit_chain_verify', seconds=0.05),   # ...or, on a file ledger, works in-process
            row('trdrhub.incident.ledger_record'), row('trdrhub.incident.approval'),   # controller-side action plugins
            row('ansible.builtin.set_fact'), row('debug'), row('ansible.builtin.validate_argument_spec'),
            row('ansible.builtin.copy')]
    assert procedures.task_mix(rows, 0.4) == (3, 7)


def test_floor_rows_price_the_mix(procedures, capsys):
    rows = [row('trdrhub.incident.pg_activity_info')] * 2 + [row('ansible.builtin.debug')] * 10
    floors = procedures.floor_rows('contain_db', rows, 1.0, {'module': 0.5, 'controller': 0.02}, 3.0)
    assert [(f['project'], f['ratio'], f['goal']) for f in floors] == [(2.2, 2.2, None), (2.0, 2.0, None)]
    assert '2 module processes x 0.500 s + 10 controller-only tasks x 0.020 s' in capsys.readouterr().out


def test_fields_floor_reads_every_line_once(log_scan, tmp_path):
    lines = [b'203.0.113.%d - - [07/Dec/2026:10:00:%02d +0000] "GET /api/%d HTTP/1.1" 200 12 "-" "agent %d"'
             % (n % 3, n % 60, n, n % 2) for n in range(15000)]   # about 1.4 MB: more than one 1 MiB block
    path = tmp_path / 'access.log'
    path.write_bytes(b'\n'.join(lines) + b'\n')
    assert log_scan.fields_floor(str(path)) == {'lines': 15000, 'bytes': path.stat().st_size, 'addresses': 3}
    path.write_bytes(b'\n'.join(lines))              # no final newline: the last line still counts
    assert log_scan.fields_floor(str(path))['lines'] == 15000
