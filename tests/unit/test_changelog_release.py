# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The released changelog and the fragments that wait for the next release.

``antsibull-changelog release`` moves the fragments into changelogs/changelog.yaml and removes
them; fragments written afterwards must lint and belong to the next version. These tests check
the committed state (the newest release is galaxy.yml's version or older, no released fragment
lingers, the generated changelogs show the release) and run antsibull-changelog lint on a copy of
changelogs/ with a new fragment, as a change after a release adds one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CHANGELOGS = REPO / "changelogs"
ANTSIBULL_CHANGELOG = Path(sys.executable).parent / "antsibull-changelog"


def _changelog() -> dict:
    return yaml.safe_load((CHANGELOGS / "changelog.yaml").read_text(encoding="utf-8"))


def _galaxy_version() -> Version:
    return Version(yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"])


def test_the_newest_release_is_not_ahead_of_galaxy_yml():
    releases = _changelog().get("releases") or {}
    assert releases, "nothing released: changelogs/changelog.yaml has no release"
    newest = max(Version(v) for v in releases)
    assert newest <= _galaxy_version()
    for name in ("CHANGELOG.rst", "CHANGELOG.md"):
        text = (REPO / name).read_text(encoding="utf-8")
        shown = str(newest) in text or str(newest).replace(".", "\\.") in text   # Markdown escapes the dots
        assert shown, f"{name} does not show release {newest}: run antsibull-changelog generate"


def test_released_fragments_are_gone_and_the_fragments_directory_stays():
    config = yaml.safe_load((CHANGELOGS / "config.yaml").read_text(encoding="utf-8"))
    fragments_dir = CHANGELOGS / config["notesdir"]
    # keep_fragments is false: a release removes its fragments; the directory itself is kept in git.
    assert config["keep_fragments"] is False and (fragments_dir / ".keep").is_file()
    assert config.get("ignore_other_fragment_extensions") is True, ".keep must not be read as a fragment"
    released = {name for release in (_changelog().get("releases") or {}).values() for name in release.get("fragments", [])}
    lingering = sorted(p.name for p in fragments_dir.glob("*.yml") if p.name in released)
    assert not lingering, f"fragments already released would be released again: {lingering}"
    assert {o["file"] for o in config["output"]} == {"CHANGELOG.rst", "CHANGELOG.md"}


@pytest.mark.skipif(not ANTSIBULL_CHANGELOG.exists(), reason=f"antsibull-changelog is not installed in {ANTSIBULL_CHANGELOG.parent}")
def test_a_fragment_written_after_the_release_lints(tmp_path):
    copy = tmp_path / "changelogs"
    shutil.copytree(CHANGELOGS, copy, ignore=shutil.ignore_patterns(".plugin-cache.yaml"))
    (copy / "fragments" / "next_change.yml").write_text(
        "---\nbugfixes:\n  - contain_db - a change after the release (goes to the next version).\n", encoding="utf-8")
    shutil.copy2(REPO / "galaxy.yml", tmp_path / "galaxy.yml")
    ok = subprocess.run([str(ANTSIBULL_CHANGELOG), "lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0 and not ok.stdout.strip(), ok.stdout + ok.stderr
    # The check itself: a broken fragment is reported.
    (copy / "fragments" / "broken.yml").write_text("---\nbugfixes: not a list\n", encoding="utf-8")
    bad = subprocess.run([str(ANTSIBULL_CHANGELOG), "lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert "broken.yml" in bad.stdout + bad.stderr
