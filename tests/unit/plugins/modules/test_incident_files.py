# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""incident_files executed directly on a host: check mode writes nothing, a real run writes with the modes, a re-run changes nothing."""

from __future__ import annotations

import hashlib
import stat

from ansible_collections.trdrhub.incident.plugins.modules import incident_files

FILES = {'bundle.json': '{"pids": [4242]}\n', 'summary.md': '# INC-1\n\nAPI down\n'}


def test_check_mode_writes_nothing_and_names_the_files(run_module, tmp_path):
    target = tmp_path / 'INC-1' / 'diagnostics'
    result = run_module(incident_files, {'path': str(target), 'files': FILES}, check_mode=True, diff=True)
    assert not result.get('failed') and result['changed'] is True
    assert not target.exists()
    digests = sorted(entry['sha256'] for entry in result['files'])
    assert digests == sorted(hashlib.sha256(text.encode()).hexdigest() for text in FILES.values())


def test_a_run_writes_the_files_with_their_modes_and_a_rerun_changes_nothing(run_module, tmp_path):
    target = tmp_path / 'INC-1' / 'diagnostics'
    first = run_module(incident_files, {'path': str(target), 'files': FILES})
    assert not first.get('failed') and first['changed'] is True
    assert {p.name: p.read_text() for p in target.iterdir()} == FILES
    assert stat.S_IMODE((target / 'summary.md').stat().st_mode) == 0o640
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    again = run_module(incident_files, {'path': str(target), 'files': FILES})
    assert not again.get('failed') and again['changed'] is False


def test_a_file_name_with_a_directory_part_is_refused(run_module, tmp_path):
    result = run_module(incident_files, {'path': str(tmp_path), 'files': {'../escape.txt': 'x'}})
    assert result['failed'] and '../escape.txt' in result['msg']
    assert not (tmp_path.parent / 'escape.txt').exists()
