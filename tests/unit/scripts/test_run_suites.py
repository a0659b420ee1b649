"""scripts/run_suites.sh runs make targets in lanes and ends with a table a reader can compare between runs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

MAKEFILE = """\
fast:
\t@echo fast ran
slow:
\t@sleep 1; echo slow ran
broken:
\t@echo the reason it broke; exit 3
"""


def run_suites(tmp_path, *lanes):
    (tmp_path / 'scripts').mkdir()
    shutil.copy(REPO / 'scripts' / 'run_suites.sh', tmp_path / 'scripts' / 'run_suites.sh')
    (tmp_path / 'Makefile').write_text(MAKEFILE)
    return subprocess.run(['bash', str(tmp_path / 'scripts' / 'run_suites.sh'), *lanes], cwd=str(tmp_path),
                          env={'PATH': os.environ['PATH']}, capture_output=True, text=True, timeout=120, check=False)


def test_lanes_pass_and_the_table_names_targets_cpu_steal_and_the_reference(tmp_path):
    done = run_suites(tmp_path, 'fast slow', 'fast')
    assert done.returncode == 0, done.stdout + done.stderr
    table = (tmp_path / 'build' / 'test-logs' / 'timings.txt').read_text()
    assert table in done.stdout
    assert re.search(r'^slow +[12] +passed$', table, re.M) and len(re.findall(r'^fast +\d+ +passed$', table, re.M)) == 2
    assert re.search(r'^cpu busy +\d+%  of \d+ cores over the run \(\d+ CPU-seconds\)$', table, re.M), table
    assert re.search(r'^cpu steal +\d+%  ', table, re.M), table
    assert re.search(r'^reference +\d+\.\d\d s  fixed CPU work before the run', table, re.M), table
    assert (tmp_path / 'build' / 'test-logs' / 'slow.log').read_text() == 'slow ran\n'


def test_a_failed_target_fails_the_run_and_its_log_tail_is_shown(tmp_path):
    done = run_suites(tmp_path, 'fast', 'broken')
    assert done.returncode == 1
    assert re.search(r'^broken +\d+ +FAILED$', done.stdout, re.M)
    assert '===== broken failed; last 60 lines of build/test-logs/broken.log =====' in done.stdout
    assert 'the reason it broke' in done.stdout
