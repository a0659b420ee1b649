# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Render extensions/awx/definitions/*.yml into the document ``awx import`` reads (awxkit).

    python3 extensions/awx/render.py                   # writes extensions/awx/trdrhub.json
    python3 extensions/awx/render.py --check           # fails when trdrhub.json is out of date
    python3 extensions/awx/render.py --kinds credential_types --output -   # only the credential types
    awx --conf.host https://awx.example.com import < extensions/awx/trdrhub.json

The document is awxkit's export format: one list per resource kind, each object with the fields
AWX accepts on POST, foreign keys and its own identity as ``natural_key`` objects, and the related
sets (credentials, survey_spec, workflow_nodes, success/failure nodes, approval templates) under
``related``. Re-importing updates the objects in place. No secret is part of it: credentials are
created in AWX (docs/awx.md) and attached by name.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import typing as t
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DEFINITIONS = HERE / "definitions"
OUTPUT = HERE / "trdrhub.json"

KINDS = (
    "organizations", "execution_environments", "credential_types", "projects", "inventory",
    "inventory_sources", "job_templates", "workflow_job_templates",
)
JT_PREFIX = "trdrhub.incident "
WF_PREFIX = "trdrhub.incident respond "
ALWAYS_CREDENTIALS = ("machine", "ledger")


def _load(name: str) -> dict[str, t.Any]:
    return yaml.safe_load((DEFINITIONS / name).read_text(encoding="utf-8"))


def jt_name(playbook: str) -> str:
    """The job template name of playbooks/<playbook>.yml."""
    return JT_PREFIX + playbook


def _question(spec: dict[str, t.Any]) -> dict[str, t.Any]:
    question = {"question_description": "", "required": False}
    if spec["type"] not in ("integer", "float"):
        question["default"] = ""
    question.update(copy.deepcopy(spec))
    return question


def _survey(name: str, keys: list[t.Any], questions: dict[str, t.Any]) -> dict[str, t.Any]:
    spec = [_question(questions[key] if isinstance(key, str) else key) for key in keys]
    return {"name": name, "description": "", "spec": spec}


def render() -> dict[str, list[dict[str, t.Any]]]:
    """The whole import document."""
    base = _load("organization.yml")
    org_def, ee_def, project_def = base["organization"], base["execution_environment"], base["project"]
    org = {"name": org_def["name"], "type": "organization"}
    ee = {"name": ee_def["name"], "type": "execution_environment"}
    project = {"organization": org, "name": project_def["name"], "type": "project"}

    doc: dict[str, list[dict[str, t.Any]]] = {kind: [] for kind in KINDS}
    doc["organizations"].append({**org_def, "natural_key": org})
    doc["execution_environments"].append({**ee_def, "organization": org, "natural_key": ee})
    doc["projects"].append({**project_def, "organization": org, "default_environment": ee, "natural_key": project})

    inventories: dict[str, dict[str, t.Any]] = {}
    for inv in _load("inventories.yml")["inventories"]:
        key = {"organization": org, "name": inv["name"], "type": "inventory"}
        inventories[inv["name"]] = key
        doc["inventory"].append({"name": inv["name"], "description": inv["description"], "organization": org,
                                 "variables": "---\n", "natural_key": key})
        source_name = inv["name"] + " from the project"
        doc["inventory_sources"].append({
            "name": source_name, "description": "inventories/ of the trdrhub.incident project",
            "inventory": key, "source": "scm", "source_project": project, "source_path": inv["source_path"],
            "execution_environment": ee, "overwrite": True, "overwrite_vars": True, "update_on_launch": True,
            "natural_key": {"organization": org, "name": source_name, "inventory": key, "type": "inventory_source"},
        })
    production = next(key for name, key in inventories.items() if "production" in name)

    for ctype in _load("credential_types.yml")["credential_types"]:
        doc["credential_types"].append({
            **ctype, "kind": "cloud",
            "natural_key": {"name": ctype["name"], "kind": "cloud", "type": "credential_type"},
        })

    jt_defs = _load("job_templates.yml")
    credentials = {
        key: {"organization": org, "name": cred["name"], "type": "credential",
              "credential_type": {"name": cred["credential_type"], "kind": cred["kind"], "type": "credential_type"}}
        for key, cred in jt_defs["credentials"].items()
    }
    templates: dict[str, dict[str, t.Any]] = {}
    for tpl in jt_defs["templates"]:
        name = jt_name(tpl["playbook"])
        key = {"organization": org, "name": name, "type": "job_template"}
        templates[tpl["playbook"]] = key
        attached = list(ALWAYS_CREDENTIALS) + [c for c in tpl.get("credentials", []) if c not in ALWAYS_CREDENTIALS]
        doc["job_templates"].append({
            "name": name,
            "description": tpl["description"],
            "job_type": "run",
            "inventory": production,
            "project": project,
            "playbook": f"playbooks/{tpl['playbook']}.yml",
            "execution_environment": ee,
            "ask_job_type_on_launch": True,
            "ask_inventory_on_launch": True,
            "ask_limit_on_launch": True,
            "ask_diff_mode_on_launch": True,
            "ask_variables_on_launch": True,
            # Optional credentials (Alertmanager, API token, SMTP) are added at launch or attached once.
            "ask_credential_on_launch": True,
            "survey_enabled": True,
            "allow_simultaneous": not tpl.get("destructive", False),
            "natural_key": key,
            "related": {
                "credentials": [credentials[c] for c in attached],
                "survey_spec": _survey(name, tpl["survey"], jt_defs["questions"]),
            },
        })

    wf_defs = _load("workflows.yml")
    destructive = {tpl["playbook"] for tpl in jt_defs["templates"] if tpl.get("destructive")}
    for wf in wf_defs["workflows"]:
        doc["workflow_job_templates"].append(
            _workflow(wf, wf_defs, org, templates, destructive, jt_defs["questions"]))
    return doc


def _workflow(wf: dict[str, t.Any], wf_defs: dict[str, t.Any], org: dict[str, t.Any],
              templates: dict[str, dict[str, t.Any]], destructive: set[str],
              questions: dict[str, t.Any]) -> dict[str, t.Any]:
    priority = wf["priority"]
    name = WF_PREFIX + priority
    wf_key = {"organization": org, "name": name, "type": "workflow_job_template"}

    def node_key(identifier: str) -> dict[str, t.Any]:
        return {"workflow_job_template": wf_key, "identifier": identifier, "type": "workflow_job_template_node"}

    nodes: dict[str, dict[str, t.Any]] = {}

    def add(identifier: str, playbook: str | None = None, extra: dict[str, t.Any] | None = None,
            approval: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        node: dict[str, t.Any] = {"identifier": identifier, "all_parents_must_converge": False,
                                  "extra_data": extra or {}, "natural_key": node_key(identifier),
                                  "related": {"success_nodes": [], "failure_nodes": [], "always_nodes": []}}
        if playbook is not None:
            node["unified_job_template"] = templates[playbook]
        if approval is not None:
            node["related"]["create_approval_template"] = approval
        nodes[identifier] = node
        return node

    def link(parent: str, kind: str, child: str) -> None:
        nodes[parent]["related"][kind].append(node_key(child))

    escalate = wf_defs["on_failure"]
    add(escalate, escalate)
    # (node, edge) pairs that lead to whatever comes next.
    pending: list[tuple[str, str]] = []
    for step in wf_defs["steps"]:
        if step in destructive:
            gate = f"approve_{step}"
            add(gate, approval={
                "name": f"Approve {step} ({priority})",
                "description": (f"Approve to run {jt_name(step)} for this incident ({priority}); deny or let it time "
                                f"out to skip it. Review the investigate job's output and diagnostics bundle first."),
                "timeout": wf["approval_timeout"],
            })
            for parent, edge in pending:
                link(parent, edge, gate)
            extra = {k: (v.format(priority=priority) if isinstance(v, str) else v)
                     for k, v in wf_defs["approved_extra_data"].get(step, {}).items()}
            add(step, step, extra)
            link(gate, "success_nodes", step)
            link(step, "failure_nodes", escalate)
            pending = [(step, "success_nodes"), (gate, "failure_nodes")]
        else:
            add(step, step)
            for parent, edge in pending:
                link(parent, edge, step)
            pending = [(step, "success_nodes")]

    return {
        "name": name,
        "description": wf["description"],
        "organization": org,
        "survey_enabled": True,
        "ask_variables_on_launch": False,
        "allow_simultaneous": True,
        "natural_key": wf_key,
        "related": {
            "survey_spec": _survey(name, wf_defs["survey"], questions),
            "workflow_nodes": list(nodes.values()),
        },
    }


def dumps(doc: dict[str, t.Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--output", "-o", default=str(OUTPUT), help="file to write, - for stdout (default: %(default)s)")
    parser.add_argument("--kinds", help=f"comma-separated subset of: {', '.join(KINDS)}")
    parser.add_argument("--check", action="store_true", help="fail when the output file differs from the definitions")
    args = parser.parse_args(argv)

    doc = render()
    if args.kinds:
        wanted = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
        unknown = sorted(set(wanted) - set(KINDS))
        if unknown:
            parser.error(f"unknown kinds: {', '.join(unknown)}")
        doc = {kind: doc[kind] for kind in wanted}
    text = dumps(doc)

    if args.check:
        current = Path(args.output).read_text(encoding="utf-8") if Path(args.output).exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run python3 extensions/awx/render.py\n")
            return 1
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
