# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The unit and integration tests mirror the code, so the test of anything is one hop away.

- plugins/module_utils/<package>/<file>.py  ->  tests/unit/plugins/module_utils/<package>/test_<file>.py
- plugins/module_utils/_<file>.py (flat)    ->  tests/unit/plugins/module_utils/test_<file>.py
- plugins/modules/<module>.py               ->  tests/unit/plugins/modules/test_<module>.py

Test files of different packages may share a basename: tests/unit/pytest.ini imports test files by
path (importlib mode). A file with no mirror yet is listed in NOT_YET_MIRRORED; the list only shrinks.

Integration tests (against the harness's real services), where there are any:

- plugins/<type>/<name>.py   ->  tests/integration/plugins/<type>/test_<name>.py
- playbooks/<playbook>.yml   ->  tests/integration/playbooks/test_<playbook>.py

beside which test_<name>_<aspect>.py may hold more of the same subject; a file about several
playbooks at once is named after them in the order they run (test_assign_commander_resolve.py).
What is about many modules or playbooks at once stays directly in tests/integration/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / 'plugins'
UNIT = REPO / 'tests' / 'unit' / 'plugins'
INTEGRATION = REPO / 'tests' / 'integration'

# Files whose behaviour is so far tested only through other files' tests (module tests, the
# integration suite). Give one its test_<file>.py and remove it here.
NOT_YET_MIRRORED: frozenset[str] = frozenset()


def code_files() -> list[Path]:
    files = sorted((PLUGINS / 'module_utils').rglob('*.py')) + sorted((PLUGINS / 'modules').glob('*.py'))
    return [f for f in files if f.name != '__init__.py' and '__pycache__' not in f.parts]


def mirror(path: Path) -> list[Path]:
    """The test file(s) that count as the mirror of a plugin file."""
    rel = path.relative_to(PLUGINS)
    if rel.parts[0] == 'module_utils' and len(rel.parts) == 2:   # flat module_utils/_redis.py
        return [UNIT / 'module_utils' / f'test_{path.name.lstrip("_")}', UNIT / 'module_utils' / f'test_{path.name}']
    return [UNIT / rel.parent / f'test_{path.name}']


def key(path: Path) -> str:
    return str(path.relative_to(PLUGINS))


CODE = code_files()


def test_the_code_is_found():
    keys = {key(f) for f in CODE}
    assert 'modules/incident.py' in keys and 'module_utils/_common/errors.py' in keys
    assert len(CODE) > 60


@pytest.mark.parametrize('path', CODE, ids=key)
def test_every_module_and_module_utils_file_has_its_test_file(path):
    if key(path) in NOT_YET_MIRRORED:
        assert not any(m.is_file() for m in mirror(path)), (
            f'{key(path)} has its test file now: remove it from NOT_YET_MIRRORED in {Path(__file__).name}')
        pytest.skip(f'{key(path)}: no test file of its own yet')
    wanted = mirror(path)[0]
    assert any(m.is_file() for m in mirror(path)), (
        f'{key(path)} has no unit test file: add {wanted.relative_to(REPO)} (tests/unit mirrors plugins/)')


def test_the_allowance_names_existing_files_only():
    assert NOT_YET_MIRRORED <= {key(f) for f in CODE}, NOT_YET_MIRRORED - {key(f) for f in CODE}


def test_no_test_file_of_a_plugin_that_does_not_exist():
    """A test file under plugins/module_utils or plugins/modules is named after a file that exists."""
    names = {m for f in CODE for m in mirror(f)}
    for folder in (UNIT / 'module_utils', UNIT / 'modules'):
        for test in sorted(folder.rglob('test_*.py')):
            if test in names or test.parent == UNIT / 'modules':
                continue
            # Several test files per plugin file are fine: test_<file>_<aspect>.py beside test_<file>.py.
            stem = test.stem[len('test_'):]
            siblings = {m.stem[len('test_'):] for m in names if m.parent == test.parent}
            assert any(stem.startswith(s + '_') for s in siblings) or test.name == 'test_layout.py', (
                f'{test.relative_to(REPO)} is named after no file of plugins/{test.parent.relative_to(UNIT)}')


def subjects(folder: Path) -> set[str]:
    """The names an integration test file in ``folder`` (plugins/<type>/ or playbooks/) may be named after."""
    if folder == INTEGRATION / 'playbooks':
        return {p.stem for p in (REPO / 'playbooks').glob('*.yml')}
    return {p.stem for p in (PLUGINS / folder.name).glob('*.py') if p.name != '__init__.py'}


def integration_mirror_files() -> list[Path]:
    return sorted(INTEGRATION.glob('plugins/*/test_*.py')) + sorted(INTEGRATION.glob('playbooks/test_*.py'))


def test_the_integration_mirror_is_found():
    names = {str(f.relative_to(INTEGRATION)) for f in integration_mirror_files()}
    assert 'plugins/modules/test_pg_terminate_sessions.py' in names and 'playbooks/test_triage.py' in names


@pytest.mark.parametrize('test', integration_mirror_files(), ids=lambda p: str(p.relative_to(INTEGRATION)))
def test_every_integration_test_file_is_named_after_a_plugin_or_playbook(test):
    """tests/integration/plugins/<type>/test_<name>[_<aspect>].py and playbooks/test_<name>[_<aspect>].py: <name> exists."""
    names = subjects(test.parent)
    stem = test.stem[len('test_'):]
    where = 'playbooks/*.yml' if test.parent.name == 'playbooks' else f'plugins/{test.parent.name}/'
    assert any(stem == n or stem.startswith(n + '_') for n in names), (
        f'{test.relative_to(REPO)} is named after nothing in {where}: name it test_<name>.py or test_<name>_<aspect>.py')


def test_integration_tests_live_in_the_mirror_or_directly_in_tests_integration():
    """No other folders; a file directly in tests/integration named exactly after a module or playbook belongs in the mirror."""
    allowed = {INTEGRATION, INTEGRATION / 'playbooks'} | {INTEGRATION / 'plugins' / d.name for d in PLUGINS.iterdir() if d.is_dir()}
    stray = [str(t.relative_to(REPO)) for t in sorted(INTEGRATION.rglob('test_*.py'))
             if t.parent not in allowed and '__pycache__' not in t.parts]
    assert not stray, f'integration tests outside tests/integration/, plugins/<type>/ and playbooks/: {stray}'
    mirrored = {'plugins/modules': subjects(INTEGRATION / 'plugins' / 'modules'), 'playbooks': subjects(INTEGRATION / 'playbooks')}
    misplaced = [f'{t.name} -> {kind}/' for t in sorted(INTEGRATION.glob('test_*.py'))
                 for kind, names in mirrored.items() if t.stem[len('test_'):] in names]
    assert not misplaced, f'tests of one module or playbook go into its mirror file: {misplaced}'
