"""execution-environment.yml and bindep.txt through a real, offline ``ansible-builder create``.

The collection tarball is built with ``ansible-galaxy collection build`` into a temporary copy
of the build directory layout, ansible-builder writes the build context next to it, and the
tests read what a ``podman build`` / ``docker build`` of that context would do: the base image,
the pinned ansible-core (constraints.txt, inside requirements.txt's range), the collection installed from its tarball, the Python requirements and
the system packages. Nothing is pulled or built, no network is used.

ansible-builder is taken from the virtualenv the tests run in (``sys.executable``'s bin dir).
"""
from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUILDER = BIN / "ansible-builder"
GALAXY = BIN / "ansible-galaxy"

pytestmark = [
    pytest.mark.skipif(not BUILDER.exists(), reason=f"ansible-builder is not installed in {BIN}"),
    pytest.mark.timeout(300),
]


def _ee() -> dict:
    return yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text(encoding="utf-8"))


def _galaxy() -> dict:
    return yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))


def _ansible_core_req(filename: str, python_version: str):
    """The ``ansible-core`` line of ``filename`` whose marker holds for ``python_version``."""
    from packaging.requirements import Requirement

    for line in (REPO_ROOT / filename).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.name == "ansible-core" and (req.marker is None or req.marker.evaluate({"python_version": python_version})):
            return req
    raise AssertionError(f"{filename} names no ansible-core for Python {python_version}")


def _ansible_core_pin(python_version: str) -> str:
    """The tested ansible-core (``constraints.txt``), which must lie in requirements.txt's range."""
    pin = _ansible_core_req("constraints.txt", python_version)
    version = str(pin.specifier).removeprefix("==")
    assert str(pin.specifier) == f"=={version}", f"constraints.txt pins no exact ansible-core: {pin}"
    supported = _ansible_core_req("requirements.txt", python_version)
    assert supported.specifier.contains(version), f"ansible-core {version} is outside requirements.txt's {supported.specifier}"
    return f"ansible-core=={version}"


def _ee_python_version() -> str:
    package = _ee()["dependencies"]["python_interpreter"]["package_system"]
    found = re.fullmatch(r"python(\d+\.\d+)", package)
    assert found, f"python_interpreter.package_system {package!r} does not name a Python version"
    return found.group(1)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """Build the collection, then ``ansible-builder create`` a context from a copy of the EE files."""
    work = tmp_path_factory.mktemp("ee")
    for name in ("execution-environment.yml", "bindep.txt", "requirements.txt"):
        shutil.copy2(REPO_ROOT / name, work / name)
    out = work / "build" / "ee"
    out.mkdir(parents=True)
    subprocess.run([str(GALAXY), "collection", "build", "--force", "--output-path", str(out), str(REPO_ROOT)],
                   check=True, capture_output=True, text=True, cwd=work)
    result = subprocess.run([str(BUILDER), "create", "-f", str(work / "execution-environment.yml"),
                             "-c", str(work / "context"), "--output-filename", "Containerfile"],
                            capture_output=True, text=True, cwd=work, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "context"


def test_ee_definition_is_schema_3_with_a_public_base_image():
    ee = _ee()
    assert ee["version"] == 3
    image = ee["images"]["base_image"]["name"]
    assert re.match(r"^(quay\.io|registry\.access\.redhat\.com)/", image), image


def test_ansible_core_matches_requirements_txt():
    python = _ee_python_version()
    pin = _ansible_core_pin(python)
    assert _ee()["dependencies"]["ansible_core"]["package_pip"] == pin
    version = pin.split("==", 1)[1]
    try:
        installed = importlib.metadata.metadata("ansible-core")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - ansible-core runs these tests
        pytest.skip("ansible-core metadata is not available")
    if installed["Version"] == version:
        from packaging.specifiers import SpecifierSet

        assert python in SpecifierSet(installed["Requires-Python"]), (python, installed["Requires-Python"])


def test_containerfile_uses_base_image_python_and_pins(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    ee = _ee()
    assert f'ARG EE_BASE_IMAGE="{ee["images"]["base_image"]["name"]}"' in text
    assert f'ARG PYCMD="{ee["dependencies"]["python_interpreter"]["python_path"]}"' in text
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', text, re.MULTILINE)
    assert refs, text
    assert _ansible_core_pin(_ee_python_version()) in refs.group(1).split()
    assert any(ref.startswith("ansible-runner") for ref in refs.group(1).split())


def test_containerfile_installs_the_collection_tarball(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY _build /build$", text, re.MULTILINE)
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", text, re.MULTILINE)

    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    (entry,) = requirements["collections"]
    assert entry["type"] == "file"
    # /build in the image is _build in the context (COPY _build /build).
    assert entry["name"].startswith("/build/")
    tarball = context / "_build" / entry["name"][len("/build/"):]
    galaxy = _galaxy()
    assert tarball.name == f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert tarball.is_file(), sorted(p.name for p in (context / "_build").rglob("*"))

    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (galaxy["namespace"], galaxy["name"], galaxy["version"])
    assert info["dependencies"] == {}
    # The installed collection carries its own requirements for ansible-builder's introspection.
    assert {"requirements.txt", "bindep.txt"} <= names
    playbooks = {f"playbooks/{p.name}" for p in (REPO_ROOT / "playbooks").glob("*.yml")}
    assert playbooks and playbooks <= names, sorted(playbooks - names)


def test_containerfile_installs_python_and_system_requirements(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    assert "COPY _build/requirements.txt requirements.txt" in text
    assert "COPY _build/bindep.txt bindep.txt" in text
    assert re.search(r"introspect\.py introspect .*--user-pip=requirements\.txt .*--user-bindep=bindep\.txt", text)
    assert "/output/scripts/install-from-bindep" in text
    for name in ("requirements.txt", "bindep.txt"):
        assert (context / "_build" / name).read_text(encoding="utf-8") == (REPO_ROOT / name).read_text(encoding="utf-8")


def test_containerfile_enables_the_ledger_callback(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    final = text.split("AS final", 1)[1]
    assert "ENV ANSIBLE_CALLBACKS_ENABLED=trdrhub.incident.ledger" in final


def test_containerfile_selects_the_screen_output_without_library_warnings(context):
    final = (context / "Containerfile").read_text(encoding="utf-8").split("AS final", 1)[1]
    assert "ENV ANSIBLE_STDOUT_CALLBACK=trdrhub.incident.runbook" in final
    assert 'ENV PYTHONWARNINGS="ignore:DSA is deprecated"' in final


@pytest.mark.parametrize(("platform", "wanted"), [
    (["platform:rpm", "platform:centos", "platform:redhat"], {"postgresql", "iptables-nft", "openssh-clients"}),
    (["platform:dpkg", "platform:debian", "platform:ubuntu"], {"postgresql-client", "iptables", "openssh-client"}),
])
def test_bindep_selects_the_clients_per_platform(platform, wanted):
    from bindep.depends import Depends

    rules = Depends((REPO_ROOT / "bindep.txt").read_text(encoding="utf-8")).active_rules(platform)
    names = {rule[0] for rule in rules}
    assert wanted <= names, names
    other = {"postgresql-client", "openssh-client"} if "platform:rpm" in platform else {"openssh-clients", "iptables-nft"}
    assert not names & other, names & other
