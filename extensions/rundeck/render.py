# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Render extensions/rundeck/definitions.yml into Rundeck job definitions (job YAML format).

    python3 extensions/rundeck/render.py            # writes extensions/rundeck/trdrhub-incident-jobs.yml
    python3 extensions/rundeck/render.py --check    # fails when the jobs file is out of date
    rd jobs load -p <project> -F yaml -f extensions/rundeck/trdrhub-incident-jobs.yml

Every job runs one playbook of the collection on the Rundeck server (``ansible-playbook
trdrhub.incident.<playbook>``; Ansible reaches the hosts). Option values reach the playbook as
``-e <variable>=<value>`` from the RD_OPTION_* environment, so nothing is re-parsed by a shell.
The job uuids derive from the job names: loading the file again updates the jobs in place.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import typing as t
import uuid
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFINITIONS = HERE / "definitions.yml"
OUTPUT = HERE / "trdrhub-incident-jobs.yml"
UUID_NAMESPACE = uuid.UUID("6f0b2f6e-4b8a-5f43-9d1e-7472647268ab")
HEADER = (
    "# Rundeck jobs of the trdrhub.incident collection (docs/rundeck.md), rendered by\n"
    "# extensions/rundeck/render.py from definitions.yml - edit those, then run it again.\n"
    "#   rd jobs load -p <project> -F yaml -f extensions/rundeck/trdrhub-incident-jobs.yml\n"
)


def env_name(option: str) -> str:
    """The environment variable Rundeck sets for a job option."""
    return "RD_OPTION_" + "".join(c if c.isalnum() else "_" for c in option).upper()


def _option(name: str, spec: dict[str, t.Any]) -> dict[str, t.Any]:
    option: dict[str, t.Any] = {"name": name, "label": spec.get("label", name)}
    for key in ("description", "required", "enforced", "regex", "multivalued", "delimiter"):
        if key in spec:
            option[key] = spec[key]
    if "value" in spec:
        option["value"] = spec["value"]
    if "values" in spec:
        option["values"] = list(spec["values"])
        option["valuesListDelimiter"] = ","
    return option


def _script(job: dict[str, t.Any], options: dict[str, t.Any], ledger_dir: str) -> str:
    playbook = job["playbook"]
    lines = [
        "#!/bin/bash",
        "# Option values come from the environment (RD_OPTION_*), quoted: each is one value",
        "# (the options' regexes keep quotes, braces and percent signs out).",
        "set -eu",
        f'export TRDRHUB_LEDGER_DIR="${{TRDRHUB_LEDGER_DIR:-{ledger_dir}}}"',
        'export ANSIBLE_CALLBACKS_ENABLED="${ANSIBLE_CALLBACKS_ENABLED:-trdrhub.incident.ledger}"',
        "args=()",
    ]
    for key in job["options"]:
        spec = options[key]
        env = env_name(_option_name(key, options))
        if key == "inventory":
            lines.append(f'args+=(-i "${env}")')
        elif "flag" in spec:
            lines.append(f'if [ "${{{env}:-false}}" = true ]; then args+=({" ".join(spec["flag"])}); fi')
        elif spec.get("json_list"):
            lines.extend([
                f'if [ -n "${{{env}:-}}" ]; then',
                "  args+=(-e \"$(python3 -c 'import json, sys; print(json.dumps({sys.argv[1]: sys.argv[2].split(\",\")}))' \\",
                f'    {spec["var"]} "${env}")")',
                "fi",
            ])
        elif "var" in spec:
            lines.append(f'if [ -n "${{{env}:-}}" ]; then args+=(-e "{spec["var"]}=\'${env}\'"); fi')
    for var, value in job.get("fixed", {}).items():
        lines.append(f"args+=(-e {var}={value})")
    if job.get("approver"):
        lines.append('args+=(-e "approver=$RD_JOB_USERNAME")')
    lines.append(f'exec ansible-playbook trdrhub.incident.{playbook} "${{args[@]}}"')
    return "\n".join(lines) + "\n"


def _option_name(key: str, options: dict[str, t.Any]) -> str:
    """Rundeck option name of an option key (variants of one option share a name)."""
    return options[key].get("name", key)


def _description(job: dict[str, t.Any]) -> str:
    """The job's description with its concurrency decision, so operators see why in Rundeck."""
    if not isinstance(job.get("multiple_executions"), bool) or not job.get("concurrency"):
        raise ValueError(f"job {job['playbook']}: multiple_executions (true/false) and concurrency (why) are required")
    allowed = "allowed" if job["multiple_executions"] else "one at a time (Rundeck refuses a second run while one is running)"
    text = f"{job['description'].strip()}\n\nConcurrent runs: {allowed}. {job['concurrency'].strip()}"
    # Paragraphs wrapped so the rendered YAML keeps within the line length (Rundeck joins the lines again).
    return "\n\n".join(textwrap.fill(paragraph, width=140) for paragraph in text.split("\n\n"))


def render() -> list[dict[str, t.Any]]:
    defs = yaml.safe_load(DEFINITIONS.read_text(encoding="utf-8"))
    jobs = []
    for job in defs["jobs"]:
        name = job.get("name", job["playbook"])
        group = defs["group"]
        job_uuid = str(uuid.uuid5(UUID_NAMESPACE, f"{group}/{name}"))
        jobs.append({
            "defaultTab": "output",
            "description": _description(job),
            "executionEnabled": True,
            "group": group,
            "id": job_uuid,
            "loglevel": "INFO",
            "multipleExecutions": job["multiple_executions"],
            "name": name,
            "nodeFilterEditable": False,
            "options": [_option(_option_name(k, defs["options"]), defs["options"][k]) for k in job["options"]],
            "plugins": {"ExecutionLifecycle": {}},
            "scheduleEnabled": True,
            "sequence": {
                "commands": [{
                    "description": f"ansible-playbook trdrhub.incident.{job['playbook']}",
                    "fileExtension": ".sh",
                    "interpreterArgsQuoted": False,
                    "script": _script(job, defs["options"], defs["ledger_dir"]),
                    "scriptInterpreter": "/bin/bash",
                }],
                "keepgoing": False,
                "strategy": "node-first",
            },
            "uuid": job_uuid,
        })
    return jobs


class _Dumper(yaml.SafeDumper):
    """Block sequences indented under their key, as yamllint's default expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else (">" if len(value) > 100 else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dumps(jobs: list[dict[str, t.Any]]) -> str:
    body = yaml.dump(jobs, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True, explicit_start=True)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--output", "-o", default=str(OUTPUT), help="file to write, - for stdout (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="fail when the output file differs from the definitions")
    args = parser.parse_args(argv)
    text = dumps(render())
    if args.check:
        current = Path(args.output).read_text(encoding="utf-8") if Path(args.output).exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run python3 extensions/rundeck/render.py\n")
            return 1
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
