# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The shape of plugins/module_utils: domain packages, a _common that imports no domain, no cycles."""

from __future__ import annotations

import re
from pathlib import Path

MODULE_UTILS = Path(__file__).resolve().parents[4] / 'plugins' / 'module_utils'
IMPORT = re.compile(r'plugins\.module_utils\.(_\w+)')
MAX_TOP_LEVEL_FILES = 15
MAX_LINES = 450


def _package_of(path: Path) -> str:
    rel = path.relative_to(MODULE_UTILS)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in MODULE_UTILS.rglob('*.py'):
        package = _package_of(path)
        targets = set(IMPORT.findall(path.read_text(encoding='utf-8'))) - {package}
        graph.setdefault(package, set()).update(targets)
    return graph


def test_few_files_directly_in_module_utils() -> None:
    top = sorted(p.name for p in MODULE_UTILS.glob('*.py'))
    assert len(top) <= MAX_TOP_LEVEL_FILES, top


def test_no_file_is_too_long() -> None:
    long_files = {str(p.relative_to(MODULE_UTILS)): n for p in MODULE_UTILS.rglob('*.py')
                  if (n := len(p.read_text(encoding='utf-8').splitlines())) > MAX_LINES}
    assert long_files == {}


def test_common_imports_no_domain() -> None:
    assert _graph()['_common'] == set()


def test_packages_import_each_other_without_cycles() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, ' -> '.join(path + [node])
        if node in done:
            return
        for target in sorted(graph.get(node, ())):
            visit(target, path + [node])
        done.add(node)

    for package in sorted(graph):
        visit(package, [])
