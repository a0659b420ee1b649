# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""version_added of every plugin and option against galaxy.yml's version and the released changelog.

A plugin (or option) that says it was added in a version newer than the collection's own version
shows a future version in ``ansible-doc`` and is left out of that release's changelog. The
documentation is read from the files as ``ansible-doc`` reads it (the DOCUMENTATION string of a
Python plugin, the DOCUMENTATION key of a filter's sidecar .yml), without importing the plugins.
"""

from __future__ import annotations

import ast
import typing as t
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
# Plugin types with their own documentation; action plugins are documented by their module.
DOCUMENTED_TYPES = ("modules", "lookup", "callback", "filter")


def galaxy_version() -> Version:
    return Version(yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"])


def documentation(path: Path) -> dict[str, t.Any] | None:
    """The parsed DOCUMENTATION of a plugin file, None when it has none."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        return (yaml.safe_load(text) or {}).get("DOCUMENTATION")
    for node in ast.parse(text).body:
        if (isinstance(node, ast.Assign) and any(isinstance(tgt, ast.Name) and tgt.id == "DOCUMENTATION" for tgt in node.targets)
                and isinstance(node.value, ast.Constant)):
            return yaml.safe_load(node.value.value)
    return None


def documented_plugins() -> list[tuple[str, str, dict[str, t.Any]]]:
    """(type, name, DOCUMENTATION) of every documented plugin of the collection."""
    found = []
    for plugin_type in DOCUMENTED_TYPES:
        for path in sorted((PLUGINS / plugin_type).glob("*")):
            if path.name.startswith("_") or path.suffix not in (".py", ".yml", ".yaml"):
                continue
            doc = documentation(path)
            if doc is None:
                # A filter's .py file holds the code of the filters its sidecar files document.
                assert plugin_type == "filter" and path.suffix == ".py", f"{path.relative_to(REPO)} has no DOCUMENTATION"
                continue
            found.append((plugin_type, doc.get("name") or doc.get("module") or path.stem, doc))
    return found


def versions_added(doc: dict[str, t.Any], where: str) -> t.Iterator[tuple[str, str]]:
    """(where, version_added) of the plugin and every option and suboption that states one."""
    if "version_added" in doc:
        yield where, str(doc["version_added"])
    for key in ("options", "suboptions"):
        for name, option in (doc.get(key) or {}).items():
            if isinstance(option, dict):
                yield from versions_added(option, f"{where} option {name}")


PLUGIN_DOCS = documented_plugins()


def test_every_plugin_type_is_found():
    types = {plugin_type for plugin_type, _name, _doc in PLUGIN_DOCS}
    assert types == set(DOCUMENTED_TYPES), types
    assert len(PLUGIN_DOCS) >= 30


@pytest.mark.parametrize("plugin_type,name,doc", PLUGIN_DOCS, ids=[f"{p[0]}/{p[1]}" for p in PLUGIN_DOCS])
def test_version_added_is_not_newer_than_galaxy_yml(plugin_type, name, doc):
    assert "version_added" in doc, f"{plugin_type}/{name} does not say in which version it was added"
    current = galaxy_version()
    for where, added in versions_added(doc, f"{plugin_type}/{name}"):
        assert Version(added) <= current, f"{where}: version_added {added} is newer than galaxy.yml's {current}"


def test_action_plugins_are_documented_by_their_module():
    for path in sorted((PLUGINS / "action").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = PLUGINS / "modules" / path.name
        assert module.is_file(), f"action plugin {path.stem} has no documentation module plugins/modules/{path.name}"
        assert documentation(module) is not None


def test_the_check_catches_a_future_version(tmp_path):
    module = tmp_path / "future.py"
    module.write_text('DOCUMENTATION = r"""\nmodule: future\nversion_added: 99.0.0\noptions:\n'
                      '  late:\n    version_added: 100.1.0\n    description: x\n"""\n', encoding="utf-8")
    doc = documentation(module)
    found = dict(versions_added(doc, "modules/future"))
    assert found == {"modules/future": "99.0.0", "modules/future option late": "100.1.0"}
    assert all(Version(v) > galaxy_version() for v in found.values())


def test_released_plugins_match_their_version_added():
    """Each release of changelogs/changelog.yaml lists as new exactly the plugins added in it."""
    changelog = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    releases = changelog.get("releases") or {}
    if not releases:
        pytest.skip("nothing released yet")
    assert max(Version(v) for v in releases) <= galaxy_version()
    by_release: dict[str, set[tuple[str, str]]] = {}
    for plugin_type, name, doc in PLUGIN_DOCS:
        by_release.setdefault(str(doc["version_added"]), set()).add((plugin_type, name))
    renamed = redirected_plugins()
    for version, release in releases.items():
        listed = {("modules", entry["name"]) for entry in release.get("modules", [])}
        for plugin_type, entries in (release.get("plugins") or {}).items():
            listed |= {(plugin_type, entry["name"]) for entry in entries}
        # A plugin released under a name that meta/runtime.yml now redirects lives on under its new name,
        # which states the version that introduced that name.
        listed -= renamed
        assert listed == by_release.get(version, set()), (version, listed ^ by_release.get(version, set()))


def redirected_plugins() -> set[tuple[str, str]]:
    """(type, old name) of every plugin that meta/runtime.yml's plugin_routing redirects to another name."""
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text(encoding="utf-8")) or {}
    return {(plugin_type, name)
            for plugin_type, routes in (runtime.get("plugin_routing") or {}).items()
            for name, route in (routes or {}).items() if "redirect" in (route or {})}
