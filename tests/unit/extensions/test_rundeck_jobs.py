# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""extensions/rundeck: the Rundeck job definitions of the collection's playbooks.

The YAML is checked as Rundeck reads it (job keys, uuids, option names and values), and every
job's script is run with bash against stand-ins for ``ansible-playbook`` and ``ansible`` that
record their arguments: the playbook it runs, the extra variables it passes (each one a variable
the playbook reads, each value arriving intact), check mode, the approval gate in store mode
before every destructive step, and the approver of the approve job being the Rundeck user.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
import uuid
from collections import deque
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
RUNDECK = REPO / "extensions" / "rundeck"
JOBS_FILE = RUNDECK / "trdrhub-incident-jobs.yml"
PLAYBOOKS = REPO / "playbooks"
PENDING_PLAYBOOKS = {"contain_security", "block_ips", "unblock_ips", "recover_db"}
# Steps that change production state (docs/approvals.md): each waits for an approval.
DESTRUCTIVE = {"contain_db", "contain_app", "use_pooler", "contain_security", "block_ips", "rotate_secrets", "recover_db", "rollback", "recover_app",
               "maintain_db", "config_rollback", "respond", "respond_p1", "respond_p2", "respond_p3", "respond_p4"}
OPTION_NAME = re.compile(r"^[a-zA-Z_0-9.-]+$")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A role the playbook or a task file really uses: roles:, import_role:, include_role: names.
ROLE_REF = re.compile(r"^\s*-?\s*(?:name|role):\s*[\"']?trdrhub\.incident\.(\w+)[\"']?\s*$", re.MULTILINE)
BASH = shutil.which("bash")

# Values a person would enter; each must pass the option's regex.
SAMPLES = {
    "incident_id": "INC-2025-0042",
    "inventory": "/etc/trdrhub/inventories/production",
    "triage_title": "API 5xx on /health/ready (payments)",
    "replicas": "6",
    "expected_replicas": "3",
    "to_revision": "12",
    "db_role": "trdrhub_app",
    "addresses": "203.0.113.5,2001:db8:bad::/48",
    "expire_after": "24h",
    "pir_summary": "Runaway sessions after the 14:00 deploy; contained at 14:12.",
    "pir_root_cause": "Missing index on audit_log_entries (tenant_id, seq).",
    "request": "req-3f9a1c2b7d4e",
    "comment": "Reviewed the 4 sessions: all from the stuck worker, go.",
    "evidence_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "respond_contain": "db,app",
    "escalate_level": "3",
    "backup_id": "trdrhub_backup_20250115_020000",
    "backup_dir": "/var/backups/trdrhub",
    "target_db": "lcopilot_recovery_20250115",
    "security_since": "24h",
    "dead_tuples": "10000",
    "config_commit": "3f1c2a9d8e7b",
    "obligation": "regulator",
    "notified_to": "ICO, case 4711",
    "notified_note": "online form, reference 99-12",
    "notified_at": "2025-01-16T09:00:00Z",
}


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@functools.lru_cache(maxsize=None)
def reachable_roles(playbook: str) -> tuple[str, ...]:
    """Roles the playbook uses, directly or through roles it includes."""
    text = _strip_comments((PLAYBOOKS / f"{playbook}.yml").read_text(encoding="utf-8"))
    seen: list[str] = []
    queue = deque(ROLE_REF.findall(text))
    while queue:
        role = queue.popleft()
        if role in seen or not (REPO / "roles" / role).is_dir():
            continue
        seen.append(role)
        for path in sorted((REPO / "roles" / role / "tasks").rglob("*.yml")):
            queue.extend(ROLE_REF.findall(_strip_comments(path.read_text(encoding="utf-8"))))
    return tuple(seen)


@functools.lru_cache(maxsize=None)
def playbook_reads(playbook: str) -> set[str]:
    """Names the playbook, the roles it uses (transitively) and their argument specs mention."""
    texts = [_strip_comments((PLAYBOOKS / f"{playbook}.yml").read_text(encoding="utf-8"))]
    for role in reachable_roles(playbook):
        for path in sorted((REPO / "roles" / role).rglob("*")):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
                texts.append(_strip_comments(path.read_text(encoding="utf-8")))
    return set(WORD.findall("\n".join(texts)))


def approval_mode_options() -> set[str]:
    """Role options that choose an approval gate's mode."""
    names = set()
    for spec in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
        for entry in (data.get("argument_specs") or {}).values():
            names.update(name for name in (entry.get("options") or {}) if name.endswith("_approval_mode"))
    return names


@functools.lru_cache(maxsize=None)
def modes_set_by_roles(playbook: str) -> set[str]:
    """Approval modes a role sets itself for a role it includes (that gate is pre-approved by the outer one)."""
    found = set()
    for path in (p for role in reachable_roles(playbook) for p in (REPO / "roles" / role / "tasks").glob("*.yml")):
        for name in re.findall(r"^\s+(\w+_approval_mode):\s*(?![\"']?\{\{)\S", path.read_text(encoding="utf-8"), re.MULTILINE):
            found.add(name)
    return found


@functools.lru_cache(maxsize=1)
def _jobs() -> list[dict[str, t.Any]]:
    return yaml.safe_load(JOBS_FILE.read_text(encoding="utf-8"))


def _playbook_of(job: dict[str, t.Any]) -> str:
    script = job["sequence"]["commands"][-1]["script"]
    found = re.findall(r"ansible-playbook trdrhub\.incident\.(\w+)", script)
    assert len(found) == 1, job["name"]
    return found[0]


JOB_IDS = [job["name"] for job in _jobs()]


def _job(name: str) -> dict[str, t.Any]:
    return next(job for job in _jobs() if job["name"] == name)


def test_committed_jobs_are_rendered_from_the_definitions(tmp_path):
    spec = importlib.util.spec_from_file_location("trdrhub_rundeck_render", RUNDECK / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    assert render.dumps(render.render()) == JOBS_FILE.read_text(encoding="utf-8"), (
        "extensions/rundeck/trdrhub-incident-jobs.yml is stale: run python3 extensions/rundeck/render.py")
    stale = tmp_path / "jobs.yml"
    stale.write_text("---\n[]\n", encoding="utf-8")
    assert render.main(["--check", "--output", str(stale)]) == 1
    assert render.main(["--output", str(stale)]) == 0 and render.main(["--check", "--output", str(stale)]) == 0


def test_jobs_file_is_rundeck_job_yaml():
    jobs = _jobs()
    assert isinstance(jobs, list) and jobs
    uuids = [job["uuid"] for job in jobs]
    assert len(set(uuids)) == len(uuids)
    names = [(job["group"], job["name"]) for job in jobs]
    assert len(set(names)) == len(names)
    for job in jobs:
        assert {"name", "group", "description", "uuid", "id", "sequence", "executionEnabled", "loglevel"} <= set(job)
        assert uuid.UUID(job["uuid"]) and job["id"] == job["uuid"]
        assert job["executionEnabled"] is True and job["loglevel"] in ("INFO", "DEBUG", "VERBOSE", "WARN", "ERROR")
        assert "nodefilters" not in job, "the jobs run on the Rundeck server; Ansible reaches the hosts"
        sequence = job["sequence"]
        assert sequence["keepgoing"] is False and sequence["strategy"] in ("node-first", "step-first", "sequential")
        assert sequence["commands"]
        for command in sequence["commands"]:
            assert ("exec" in command) ^ ("script" in command), command
        option_names = [option["name"] for option in job.get("options", [])]
        assert len(set(option_names)) == len(option_names), job["name"]
        for option in job.get("options", []):
            assert OPTION_NAME.match(option["name"]), option
            if option.get("enforced"):
                assert option["values"], option
                if "value" in option:
                    assert option["value"] in option["values"], option
            if "regex" in option:
                pattern = re.compile(option["regex"])
                if "value" in option:
                    assert pattern.fullmatch(option["value"]), option
                if option["name"] in SAMPLES:
                    assert pattern.fullmatch(SAMPLES[option["name"]]), (option, SAMPLES[option["name"]])
                # Nothing that could start a template or break the quoting gets through.
                for bad in ("{{ lookup('pipe', 'id') }}", "a' b", "%{x}", 'x"y'):
                    assert not pattern.fullmatch(bad), (option["name"], bad)
            if option.get("required") and not option.get("enforced") and "value" not in option:
                assert "regex" in option, option


@pytest.mark.parametrize("playbook", sorted(p.stem for p in PLAYBOOKS.glob("*.yml")))
def test_every_playbook_has_a_job(playbook):
    assert playbook in {_playbook_of(job) for job in _jobs()}, f"no Rundeck job runs playbooks/{playbook}.yml"


def test_approve_job():
    job = _job("Approve incident action")
    assert _playbook_of(job) == "approve"
    options = {o["name"]: o for o in job["options"]}
    assert options["decision"]["enforced"] and options["decision"]["values"] == ["approve", "deny"]
    assert options["request"]["required"]
    assert "approver" not in options, "the approver is the Rundeck user, not a value the user types"


def _fake_tools(tmp_path: Path) -> tuple[Path, Path]:
    """Stand-ins for ansible-playbook and ansible that append their arguments to CAPTURE."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    capture = tmp_path / "calls"
    for tool in ("ansible-playbook", "ansible"):
        path = bin_dir / tool
        path.write_text(
            "#!/bin/bash\n"
            f"{{ printf '%s\\0' {tool} \"${{TRDRHUB_LEDGER_DIR-}}\" \"${{ANSIBLE_CALLBACKS_ENABLED-}}\" \"$@\"; "
            "printf '\\1'; } >> \"$CAPTURE\"\n",
            encoding="utf-8")
        path.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    return bin_dir, capture


def _calls(capture: Path) -> list[dict[str, t.Any]]:
    calls = []
    for record in capture.read_bytes().decode("utf-8").split("\1"):
        if record:
            tool, ledger_dir, callbacks, *argv = record.split("\0")[:-1]
            calls.append({"tool": tool, "argv": argv, "ledger_dir": ledger_dir, "callbacks": callbacks})
    return calls


def _run(job: dict[str, t.Any], tmp_path: Path, check: bool, user: str = "bob") -> list[dict[str, t.Any]]:
    bin_dir, capture = _fake_tools(tmp_path)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "CAPTURE": str(capture),
           "RD_JOB_USERNAME": user, "RD_JOB_EXECID": "4242"}
    for option in job.get("options", []):
        name = option["name"]
        value = SAMPLES.get(name, option.get("value", (option.get("values") or [""])[0]))
        if name == "check_mode":
            value = "true" if check else "false"
        env["RD_OPTION_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()] = value
    script = tmp_path / "step.sh"
    script.write_text(job["sequence"]["commands"][0]["script"], encoding="utf-8")
    result = subprocess.run([BASH, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return _calls(capture)


def _extra_vars(argv: list[str]) -> dict[str, t.Any]:
    from ansible.parsing.splitter import parse_kv

    found: dict[str, t.Any] = {}
    for flag, value in zip(argv, argv[1:]):
        if flag == "-e":
            found.update(json.loads(value) if value.startswith("{") else parse_kv(value))
    return found


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("name", JOB_IDS)
def test_job_script_runs_the_playbook_with_what_it_reads(name, check, tmp_path):
    job = _job(name)
    playbook = _playbook_of(job)
    if not (PLAYBOOKS / f"{playbook}.yml").is_file():
        if playbook in PENDING_PLAYBOOKS:
            pytest.skip(f"playbooks/{playbook}.yml is not in the collection yet")
        pytest.fail(f"playbooks/{playbook}.yml does not exist")
    calls = _run(job, tmp_path, check)
    assert calls and calls[-1]["tool"] == "ansible-playbook"
    argv = calls[-1]["argv"]
    assert f"trdrhub.incident.{playbook}" in argv
    assert calls[-1]["callbacks"] == "trdrhub.incident.ledger" and calls[-1]["ledger_dir"]
    options = {o["name"] for o in job.get("options", [])}
    if "inventory" in options:
        assert argv[argv.index("-i") + 1] == SAMPLES["inventory"]
    assert ("--check" in argv) == (check and "check_mode" in options)

    extra = _extra_vars(argv)
    reads = playbook_reads(playbook)
    assert set(extra) <= reads, f"playbooks/{playbook}.yml never reads {sorted(set(extra) - reads)}"
    # Values arrive whole, spaces and punctuation included.
    for option in job.get("options", []):
        sample = SAMPLES.get(option["name"])
        if sample and option["name"] not in ("inventory", "respond_contain"):
            assert sample in [str(v) for v in extra.values()], (option["name"], extra)
    if "respond_contain" in options:
        assert extra["respond_contain"] == SAMPLES["respond_contain"].split(",")

    # Every gate the playbook has runs in store mode; a playbook without one gets it before it runs.
    internal = modes_set_by_roles(playbook)
    modes = (approval_mode_options() & reads) - internal
    for mode in modes:
        assert extra.get(mode) == "store", (playbook, mode, extra.get(mode))
    for mode in internal:
        assert mode not in extra, f"{mode} would override the gate {playbook} decides itself"
    # The playbooks gate themselves (tests/unit/test_gate_reachability.py); the job only runs them.
    assert not [c for c in calls[:-1] if c["tool"] == "ansible"], "a job runs ansible before its playbook"
    if playbook in DESTRUCTIVE:
        assert modes, f"{name} changes production without an approval gate in store mode"
    if playbook == "approve":
        assert extra["approver"] == "bob"
        assert {"request", "decision", "approver"} <= reads


# --- concurrency: Rundeck's multipleExecutions, decided per job -----------------------------------
# Jobs where two runs at once would act on the same target in conflicting ways (docs/rundeck.md):
# a rotation's pending record, a rollback "one revision back" from whatever is current.
SINGLE_EXECUTION = {"rotate_secrets", "rollback", "config_rollback"}


def _documented_concurrency() -> dict[str, bool]:
    """docs/rundeck.md's concurrency table: job name -> whether concurrent runs are allowed."""
    text = (REPO / "docs" / "rundeck.md").read_text(encoding="utf-8")
    section = text.split("## Concurrent runs", 1)[1].split("\n## ", 1)[0]
    table = {}
    for row in re.findall(r"^\|([^|]+)\|([^|]+)\|[^|]+\|$", section, re.MULTILINE):
        names, decision = row[0].strip(), row[1].strip().strip("*")
        if decision in ("allowed", "one at a time"):
            for name in names.split(","):
                table[name.strip()] = decision == "allowed"
    return table


def test_every_job_decides_multiple_executions_and_says_why():
    documented = _documented_concurrency()
    for job in _jobs():
        playbook = _playbook_of(job)
        assert isinstance(job.get("multipleExecutions"), bool), f"{job['name']}: multipleExecutions is not decided"
        assert "\n\nConcurrent runs: " in job["description"], f"{job['name']}: the description does not say why"
        assert job["multipleExecutions"] is (playbook not in SINGLE_EXECUTION), job["name"]
        name = job["name"] if job["name"] in documented else playbook
        assert documented.get(name) is job["multipleExecutions"], f"docs/rundeck.md does not explain the concurrency of {job['name']}"


def test_gated_jobs_of_different_incidents_do_not_block_each_other():
    # A job that waits at an approval gate (hours at P3/P4) and is single-execution would make
    # Rundeck refuse every other incident's run of it meanwhile.
    gated = [job for job in _jobs() if re.search(r"-e \w+_approval_mode=store", job["sequence"]["commands"][-1]["script"])]
    assert {_playbook_of(job) for job in gated} >= {"contain_db", "contain_app", "block_ips", "recover_db", "respond_p1"}
    for job in gated:
        if _playbook_of(job) not in SINGLE_EXECUTION:
            assert job["multipleExecutions"] is True, job["name"]
    assert _job("Approve incident action")["multipleExecutions"] is True, "approvers vote on several requests at once"


def test_render_requires_a_concurrency_decision():
    spec = importlib.util.spec_from_file_location("trdrhub_rundeck_render", RUNDECK / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    job = {"playbook": "verify", "description": "Checks."}
    with pytest.raises(ValueError, match="multiple_executions"):
        render._description(job)
    with pytest.raises(ValueError, match="multiple_executions"):
        render._description({**job, "multiple_executions": "yes", "concurrency": "why"})
    text = render._description({**job, "multiple_executions": False, "concurrency": "Because."})
    assert text == "Checks.\n\nConcurrent runs: one at a time (Rundeck refuses a second run while one is running). Because."
