"""decision-environment.yml through a real, offline ``ansible-builder create``.

The collection is built into a temporary copy of the build layout, ansible-builder writes the
build context, and the tests read what a ``podman build`` of it would install: ansible-rulebook
and the rules engine at the versions the EDA tests run (tests/requirements-eda.txt), a Java 17
runtime, and the collection tarball carrying the event source and both rulebooks. Nothing is
pulled or built, no network is used.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUILDER = BIN / "ansible-builder"
GALAXY = BIN / "ansible-galaxy"

pytestmark = [
    pytest.mark.skipif(not BUILDER.exists(), reason=f"ansible-builder is not installed in {BIN}"),
    pytest.mark.timeout(300),
]


def _de() -> dict:
    return yaml.safe_load((REPO_ROOT / "decision-environment.yml").read_text(encoding="utf-8"))


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[req.name.lower().replace("_", "-")] = str(req.specifier)
    return pins


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("de")
    for name in ("decision-environment.yml", "bindep.txt", "requirements.txt"):
        shutil.copy2(REPO_ROOT / name, work / name)
    out = work / "build" / "ee"
    out.mkdir(parents=True)
    subprocess.run([str(GALAXY), "collection", "build", "--force", "--output-path", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True, cwd=work)
    result = subprocess.run([str(BUILDER), "create", "-f", str(work / "decision-environment.yml"),
                             "-c", str(work / "context"), "--output-filename", "Containerfile"],
                            capture_output=True, text=True, cwd=work, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "context"


def test_rulebook_engine_at_the_tested_versions():
    de = _de()
    assert de["version"] == 3
    tested = _pins(REPO_ROOT / "tests" / "requirements-eda.txt")
    shipped = {}
    for line in de["dependencies"]["python"]:
        req = Requirement(line)
        shipped[req.name.lower().replace("_", "-")] = str(req.specifier)
    for name in ("ansible-rulebook", "drools-jpy", "aiohttp"):
        assert shipped[name] == tested[name], (name, shipped[name], tested[name])
    assert de["dependencies"]["ansible_runner"]["package_pip"] == "ansible-runner" + tested["ansible-runner"]
    # ansible-rulebook 1.3 runs on Python >= 3.12.
    assert re.fullmatch(r"python3\.(1[2-9])", de["dependencies"]["python_interpreter"]["package_system"])
    assert any(s.startswith("java-17-openjdk-headless") for s in de["dependencies"]["system"])


def test_containerfile_installs_rulebook_java_and_the_collection(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    assert f'ARG EE_BASE_IMAGE="{_de()["images"]["base_image"]["name"]}"' in text
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", text, re.MULTILINE)
    assert 'CMD ["ansible-rulebook", "--version"]' in text
    assert "ansible-rulebook==" in (context / "_build" / "requirements.txt").read_text(encoding="utf-8")
    assert "java-17-openjdk-headless" in (context / "_build" / "bindep.txt").read_text(encoding="utf-8")

    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    (entry,) = requirements["collections"]
    tarball = context / "_build" / entry["name"][len("/build/"):]
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    assert tarball.name == f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz" and tarball.is_file()
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert {"extensions/eda/plugins/event_source/alertmanager.py", "extensions/eda/rulebooks/trdrhub_alerts.yml",
            "extensions/eda/rulebooks/trdrhub_alerts_controller.yml"} <= names
