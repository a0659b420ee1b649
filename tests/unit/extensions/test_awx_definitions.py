# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""extensions/awx: the ``awx import`` document rendered from extensions/awx/definitions.

Structure only (no AWX server): the document is awxkit's import format, every playbook has a job
template, surveys are valid AWX surveys asking for variables the playbooks read, credential types
inject only what they declare and mark secrets, nothing secret is in the files, and every workflow
puts an approval node with the priority's timeout before each destructive step.
"""

from __future__ import annotations

import datetime
import functools
import importlib.util
import json
import re
import typing as t
from collections import deque
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
AWX = REPO / "extensions" / "awx"
PLAYBOOKS = REPO / "playbooks"
# Playbooks the definitions already carry while they are being added to the collection.
PENDING_PLAYBOOKS = {"contain_security", "block_ips", "unblock_ips", "recover_db"}

# awxkit.api.pages.api.EXPORTABLE_RESOURCES (awxkit 24.6.1): the kinds `awx import` reads.
IMPORT_KINDS = {
    "users", "organizations", "teams", "credential_types", "credentials", "notification_templates", "projects",
    "inventory", "inventory_sources", "job_templates", "workflow_job_templates", "execution_environments",
    "applications", "schedules",
}
# The natural key fields awxkit computes per type (awxkit/api/pages/*.py NATURAL_KEY).
NATURAL_KEY_FIELDS = {
    "organization": {"name"},
    "execution_environment": {"name"},
    "credential_type": {"name", "kind"},
    "credential": {"organization", "name", "credential_type"},
    "project": {"organization", "name"},
    "inventory": {"organization", "name"},
    "inventory_source": {"organization", "name", "inventory"},
    "job_template": {"organization", "name"},
    "workflow_job_template": {"organization", "name"},
    "workflow_job_template_node": {"workflow_job_template", "identifier"},
}
KIND_TYPE = {
    "organizations": "organization", "execution_environments": "execution_environment",
    "credential_types": "credential_type", "projects": "project", "inventory": "inventory",
    "inventory_sources": "inventory_source", "job_templates": "job_template",
    "workflow_job_templates": "workflow_job_template",
}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
CREDENTIAL_INPUT_TYPES = {"string", "boolean"}
SECRET_INPUT = re.compile(r"password|secret|token|key|webhook|dsn|kubeconfig", re.IGNORECASE)
TEMPLATE_REF = re.compile(r"{{\s*([A-Za-z_][\w.]*)\s*}}")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A role the playbook or a task file really uses: roles:, import_role:, include_role: names.
ROLE_REF = re.compile(r"^\s*-?\s*(?:name|role):\s*[\"']?trdrhub\.incident\.(\w+)[\"']?\s*$", re.MULTILINE)


# --- what a playbook reads --------------------------------------------------------------------
def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@functools.lru_cache(maxsize=None)
def playbook_reads(playbook: str) -> set[str]:
    """Names the playbook, the roles it uses (transitively) and their argument specs mention."""
    text = _strip_comments((PLAYBOOKS / f"{playbook}.yml").read_text(encoding="utf-8"))
    texts, seen = [text], set()
    queue = deque(ROLE_REF.findall(text))
    while queue:
        role = queue.popleft()
        if role in seen or not (REPO / "roles" / role).is_dir():
            continue
        seen.add(role)
        for path in sorted((REPO / "roles" / role).rglob("*")):
            if path.is_file() and path.suffix in (".yml", ".yaml", ".j2"):
                body = _strip_comments(path.read_text(encoding="utf-8"))
                texts.append(body)
                queue.extend(ROLE_REF.findall(body))
    return set(WORD.findall("\n".join(texts)))


def playbook_option_choices(playbook: str) -> dict[str, list[str]]:
    """Role argument-spec options with choices, for the roles the playbook reaches."""
    found: dict[str, list[str]] = {}
    for spec in (REPO / "roles").glob("*/meta/argument_specs.yml"):
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
        for entry in (data.get("argument_specs") or {}).values():
            for name, option in (entry.get("options") or {}).items():
                if option.get("choices"):
                    found[name] = [str(c) for c in option["choices"]]
    reads = playbook_reads(playbook)
    return {name: choices for name, choices in found.items() if name in reads}


# --- the document -----------------------------------------------------------------------------
def _render_module():
    spec = importlib.util.spec_from_file_location("trdrhub_awx_render", AWX / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def render():
    return _render_module()


@pytest.fixture(scope="module")
def doc() -> dict[str, list[dict[str, t.Any]]]:
    return json.loads((AWX / "trdrhub.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def jt_defs() -> dict[str, t.Any]:
    return yaml.safe_load((AWX / "definitions" / "job_templates.yml").read_text(encoding="utf-8"))


def _freeze(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return frozenset((k, _freeze(v)) for k, v in value.items())
    return value


def _index(doc: dict[str, list[dict[str, t.Any]]]) -> dict[t.Any, dict[str, t.Any]]:
    return {_freeze(asset["natural_key"]): asset for assets in doc.values() for asset in assets}


def _templates_by_playbook(doc) -> dict[str, dict[str, t.Any]]:
    return {Path(jt["playbook"]).stem: jt for jt in doc["job_templates"]}


def _destructive(jt_defs) -> set[str]:
    return {tpl["playbook"] for tpl in jt_defs["templates"] if tpl.get("destructive")}


def test_committed_document_is_rendered_from_the_definitions(render, doc):
    assert render.dumps(render.render()) == (AWX / "trdrhub.json").read_text(encoding="utf-8"), (
        "extensions/awx/trdrhub.json is stale: run python3 extensions/awx/render.py")
    assert render.main(["--check", "--output", str(AWX / "trdrhub.json")]) == 0


def test_render_check_detects_a_stale_document(render, tmp_path):
    stale = tmp_path / "trdrhub.json"
    stale.write_text("{}\n", encoding="utf-8")
    assert render.main(["--check", "--output", str(stale)]) == 1
    assert render.main(["--output", str(stale)]) == 0
    assert render.main(["--check", "--output", str(stale)]) == 0


def test_render_kinds_subset(render, tmp_path, capsys):
    assert render.main(["--kinds", "credential_types", "--output", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["credential_types"] and out["credential_types"]
    with pytest.raises(SystemExit):
        render.main(["--kinds", "credentials", "--output", str(tmp_path / "x.json")])


def test_document_is_in_awx_import_format(doc):
    assert set(doc) <= IMPORT_KINDS
    assert "credentials" not in doc, "credentials (secrets) are created in AWX, never imported from the repository"
    for kind, assets in doc.items():
        assert assets, kind
        for asset in assets:
            key = asset["natural_key"]
            assert key["type"] == KIND_TYPE[kind]
            assert set(key) - {"type"} == NATURAL_KEY_FIELDS[key["type"]], key
            assert asset["name"] == key["name"]
            # organization of a job template or inventory source comes from its project/inventory.
            for field in set(key) - {"type"}:
                assert asset.get(field, key[field]) == key[field], (kind, field)
    names = [asset["natural_key"] for assets in doc.values() for asset in assets]
    assert len({_freeze(k) for k in names}) == len(names), "duplicate natural keys"


def _foreign_keys(value: t.Any):
    """Every natural-key reference (a dict with a `type`) inside an asset, except its own."""
    if isinstance(value, dict):
        if "type" in value and value.get("type") in NATURAL_KEY_FIELDS:
            yield value
            return
        for key, item in value.items():
            if key != "natural_key":
                yield from _foreign_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _foreign_keys(item)


def test_every_reference_resolves(doc):
    index = _index(doc)
    nodes = {_freeze(n["natural_key"]) for wf in doc["workflow_job_templates"] for n in wf["related"]["workflow_nodes"]}
    ctypes = {ct["name"] for ct in doc["credential_types"]}
    for assets in doc.values():
        for asset in assets:
            for ref in _foreign_keys(asset):
                if ref["type"] == "credential":
                    # Created in AWX by name (docs/awx.md), of a type from this document or AWX's Machine type.
                    ctype = ref["credential_type"]
                    assert ctype["name"] in ctypes or (ctype["name"], ctype["kind"]) == ("Machine", "ssh"), ref
                    assert ref["organization"] == doc["organizations"][0]["natural_key"]
                elif ref["type"] == "workflow_job_template_node":
                    assert _freeze(ref) in nodes, ref
                elif ref["type"] == "credential_type":
                    continue
                else:
                    assert _freeze(ref) in index, ref


@pytest.mark.parametrize("playbook", sorted(p.stem for p in PLAYBOOKS.glob("*.yml")))
def test_every_playbook_has_a_job_template(doc, playbook):
    jt = _templates_by_playbook(doc).get(playbook)
    assert jt is not None, f"no job template runs playbooks/{playbook}.yml"
    assert (REPO / jt["playbook"]).is_file()
    assert jt["project"] == doc["projects"][0]["natural_key"]


def _template_ids(doc):
    return sorted(_templates_by_playbook(doc))


def _require_playbook(playbook: str) -> None:
    if not (PLAYBOOKS / f"{playbook}.yml").is_file():
        if playbook in PENDING_PLAYBOOKS:
            pytest.skip(f"playbooks/{playbook}.yml is not in the collection yet")
        pytest.fail(f"playbooks/{playbook}.yml does not exist")


@pytest.mark.parametrize("playbook", _template_ids(json.loads((AWX / "trdrhub.json").read_text(encoding="utf-8"))))
def test_job_template_playbook_and_survey(doc, playbook):
    jt = _templates_by_playbook(doc)[playbook]
    assert jt["playbook"] == f"playbooks/{playbook}.yml"
    assert jt["job_type"] == "run" and jt["ask_job_type_on_launch"] is True, "check mode is chosen at launch"
    assert jt["ask_variables_on_launch"] is True
    _require_playbook(playbook)
    reads = playbook_reads(playbook)
    choices_by_option = playbook_option_choices(playbook)

    survey = jt["related"]["survey_spec"]
    assert jt["survey_enabled"] is True and set(survey) == {"name", "description", "spec"}
    variables = [q["variable"] for q in survey["spec"]]
    assert len(variables) == len(set(variables)), variables
    for q in survey["spec"]:
        assert {"question_name", "variable", "type", "required"} <= set(q), q
        assert q["type"] in SURVEY_TYPES, q
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", q["variable"]), q
        assert q["variable"] in reads, f"playbooks/{playbook}.yml never reads {q['variable']}"
        assert isinstance(q["required"], bool)
        if "min" in q and "max" in q:
            assert q["min"] <= q["max"], q
        if q["type"] in ("multiplechoice", "multiselect"):
            assert isinstance(q["choices"], list) and q["choices"], q
            assert all(isinstance(c, str) for c in q["choices"]), q
            if q.get("default") not in (None, ""):
                assert set(str(q["default"]).split("\n")) <= set(q["choices"]), q
            option = choices_by_option.get(q["variable"])
            if option is not None:
                assert set(q["choices"]) <= set(option), (q["variable"], q["choices"], option)
        if q["type"] in ("integer", "float") and q.get("default") not in (None, ""):
            assert isinstance(q["default"], (int, float)), q
            assert q.get("min", q["default"]) <= q["default"] <= q.get("max", q["default"]), q
        if q["type"] == "password":
            assert q.get("default") in (None, ""), "a password question never carries a default"
        if q["variable"].endswith("_priority"):
            assert q["type"] == "multiplechoice" and q["choices"] == ["P1", "P2", "P3", "P4"], q
    if playbook != "approve":
        assert any(v.endswith("incident_id") for v in variables), "every run names its incident"
    if "contain_db_confirm" in reads and playbook == "contain_db":
        assert "contain_db_confirm" in variables


def test_confirm_and_priority_are_asked_where_the_playbook_has_them(doc):
    jts = _templates_by_playbook(doc)
    spec = {q["variable"]: q for q in jts["contain_db"]["related"]["survey_spec"]["spec"]}
    assert spec["contain_db_confirm"]["default"] == "false"
    assert spec["contain_db_priority"]["choices"] == ["P1", "P2", "P3", "P4"]
    # AWX jobs have no terminal: the interactive prompt is never offered.
    assert "prompt" not in spec["contain_db_approval_mode"]["choices"]
    approve = {q["variable"]: q for q in jts["approve"]["related"]["survey_spec"]["spec"]}
    assert approve["request"]["required"] and approve["decision"]["choices"] == ["approve", "deny"]
    assert "approver" not in approve, "the voter is the AWX user who launches the job"


def test_credential_types_inputs_injectors_and_secrets(doc):
    plugin_text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "plugins").rglob("*.py"))
    role_text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "roles").rglob("*.yml"))
    inventory_text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "inventories").rglob("*.yml"))
    for ctype in doc["credential_types"]:
        assert ctype["kind"] == "cloud"
        fields = ctype["inputs"]["fields"]
        ids = [f["id"] for f in fields]
        assert len(ids) == len(set(ids)), ctype["name"]
        assert set(ctype["inputs"].get("required", [])) <= set(ids), ctype["name"]
        for field in fields:
            assert field["type"] in CREDENTIAL_INPUT_TYPES and field.get("label"), field
            if SECRET_INPUT.search(field["id"]) and field["id"] != "page_id":
                assert field.get("secret") is True, f"{ctype['name']}: input {field['id']} must be secret"
        files = {name.split(".", 1)[1] for name in ctype["injectors"].get("file", {})}
        for section, entries in ctype["injectors"].items():
            assert section in ("env", "extra_vars", "file"), section
            for name, template in entries.items():
                for ref in TEMPLATE_REF.findall(template):
                    if ref.startswith(("tower.filename.", "awx.filename.")):
                        assert ref.rsplit(".", 1)[1] in files, (ctype["name"], ref)
                    else:
                        assert ref in ids, f"{ctype['name']}: injector {name} uses undeclared input {ref}"
                if section == "env":
                    assert re.search(rf"\b{re.escape(name)}\b", plugin_text), f"nothing reads environment variable {name}"
                elif section == "extra_vars":
                    assert re.search(rf"\b{re.escape(name)}\b", role_text + inventory_text), f"nothing reads {name}"
        # Every secret input reaches the job only through an injector.
        injected = {ref for entries in ctype["injectors"].values() for tpl in entries.values()
                    for ref in TEMPLATE_REF.findall(tpl)}
        for field in fields:
            if field.get("secret"):
                assert field["id"] in injected, (ctype["name"], field["id"])


def test_job_templates_attach_existing_credential_types(doc, jt_defs):
    ctypes = {ct["name"] for ct in doc["credential_types"]}
    for jt in doc["job_templates"]:
        attached = jt["related"]["credentials"]
        kinds = [c["credential_type"]["name"] for c in attached]
        assert len(kinds) == len(set(kinds)), f"{jt['name']}: AWX allows one credential per type"
        assert "TRDR Hub incident ledger" in kinds, f"{jt['name']}: the ledger would be lost with the job's container"
        assert set(kinds) - {"Machine"} <= ctypes
    communicate = _templates_by_playbook(doc)["communicate"]
    assert {"TRDR Hub Slack", "TRDR Hub PagerDuty", "TRDR Hub Statuspage"} <= {
        c["credential_type"]["name"] for c in communicate["related"]["credentials"]}


SECRET_PATTERNS = [
    re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s{}$]+@"),  # credentials in a URL
    re.compile(r"\b(?:sk|rk|xox[bpas])[-_][A-Za-z0-9]{16,}"),
    re.compile(r"(?i)\b(?:password|passwd|api_key|routing_key|token|secret|dsn)\b['\"]?\s*[:=]\s*['\"]?(?![{$<\"'`]|\s*$|(?:true|false|null)\b)[^\s'\"`]{6,}"),
    re.compile(r"(?i)client-key-data:\s*[A-Za-z0-9+/=]{20,}"),
]


def _owned_files():
    yield REPO / "execution-environment.yml"
    yield REPO / "bindep.txt"
    for folder in ("extensions/awx", "extensions/rundeck"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path
    for doc_name in ("awx.md", "rundeck.md", "execution_environment.md"):
        if (REPO / "docs" / doc_name).is_file():
            yield REPO / "docs" / doc_name


def test_no_secret_values_in_the_files(doc):
    checked = 0
    for path in _owned_files():
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in SECRET_PATTERNS:
            match = pattern.search(text)
            assert match is None, f"{path.relative_to(REPO)}: secret-looking value {match.group(0)!r}"
        checked += 1
    assert checked >= 5
    for jt in doc["job_templates"]:
        for q in jt["related"]["survey_spec"]["spec"]:
            assert q["type"] != "password" or not q.get("default")
    for ctype in doc["credential_types"]:
        for field in ctype["inputs"]["fields"]:
            if field.get("secret"):
                assert "default" not in field, (ctype["name"], field["id"])


def test_secret_patterns_catch_secrets():
    # The scanner itself: values of the kinds a credential would hold are found.
    samples = [
        "https://hooks.slack.com/services/T0000EXAMPLE/B000/xyz",
        "dsn: postgresql://ledger:hunter22@db/ledger",
        "password: Sup3rSecretValue",
        "routing_key = 0123456789abcdef0123456789abcdef",
    ]
    for sample in samples:
        assert any(p.search(sample) for p in SECRET_PATTERNS), sample
    harmless = ["password: \"{{ password }}\"", "TRDRHUB_LEDGER_DSN: \"{{ dsn }}\"", "secret: true",
                "(secrets are `secret: true`: AWX encrypts them)"]
    for sample in harmless:
        assert not any(p.search(sample) for p in SECRET_PATTERNS), sample


# --- workflows --------------------------------------------------------------------------------
def _graph(wf):
    nodes = {n["identifier"]: n for n in wf["related"]["workflow_nodes"]}
    edges = [(n["identifier"], kind, child["identifier"])
             for n in nodes.values() for kind in ("success_nodes", "failure_nodes", "always_nodes")
             for child in n["related"].get(kind, [])]
    return nodes, edges


def _response_seconds(priority: str) -> int:
    from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import DEFAULT_POLICY, add_minutes

    entry = DEFAULT_POLICY[priority]
    # The longest wall-clock span of the response target over a week of start times.
    start = datetime.datetime(2025, 1, 6, tzinfo=datetime.timezone.utc)  # a Monday
    spans = [add_minutes(start + datetime.timedelta(hours=h), entry["response_minutes"], entry["business_days_only"])
             - (start + datetime.timedelta(hours=h)) for h in range(0, 7 * 24)]
    return int(max(spans).total_seconds())


def test_one_workflow_per_priority_with_ascending_timeouts(doc):
    by_priority = {}
    for wf in doc["workflow_job_templates"]:
        found = re.search(r"\b(P[1-4])\b", wf["name"])
        assert found, wf["name"]
        by_priority[found.group(1)] = wf
    assert sorted(by_priority) == ["P1", "P2", "P3", "P4"]
    timeouts = []
    for priority in ("P1", "P2", "P3", "P4"):
        nodes = _graph(by_priority[priority])[0]
        approvals = {n["related"]["create_approval_template"]["timeout"] for n in nodes.values()
                     if "create_approval_template" in n["related"]}
        assert len(approvals) == 1, approvals
        timeout = approvals.pop()
        assert timeout == _response_seconds(priority), (priority, timeout)
        timeouts.append(timeout)
    assert timeouts == sorted(timeouts) and len(set(timeouts)) == 4


@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_workflow_graph(doc, jt_defs, priority):
    wf = next(w for w in doc["workflow_job_templates"] if re.search(rf"\b{priority}\b", w["name"]))
    spec = wf["related"]["survey_spec"]["spec"]
    assert wf["survey_enabled"] and spec[0]["variable"] == "trdrhub_incident_id" and spec[0]["required"] is True
    assert all(q["type"] in SURVEY_TYPES for q in spec)
    nodes, edges = _graph(wf)
    jts = {_freeze(jt["natural_key"]): jt for jt in doc["job_templates"]}
    destructive = _destructive(jt_defs)
    playbook_of = {}
    for ident, node in nodes.items():
        assert node["natural_key"]["identifier"] == ident
        assert node["natural_key"]["workflow_job_template"] == wf["natural_key"]
        if "create_approval_template" in node["related"]:
            assert "unified_job_template" not in node, "an approval node runs no template"
            approval = node["related"]["create_approval_template"]
            assert approval["name"] and approval["timeout"] > 0
        else:
            jt = jts[_freeze(node["unified_job_template"])]
            playbook_of[ident] = Path(jt["playbook"]).stem
            if node["extra_data"]:
                assert jt["ask_variables_on_launch"], ident
                if (PLAYBOOKS / jt["playbook"]).is_file() or (REPO / jt["playbook"]).is_file():
                    reads = playbook_reads(playbook_of[ident])
                    assert set(node["extra_data"]) <= reads, (ident, set(node["extra_data"]) - reads)

    parents: dict[str, list[tuple[str, str]]] = {ident: [] for ident in nodes}
    for parent, kind, child in edges:
        assert child in nodes, child
        parents[child].append((parent, kind))

    # Every destructive step runs only after an approval node approved it.
    gated = [ident for ident, pb in playbook_of.items() if pb in destructive]
    assert {"contain_db", "contain_app", "rollback"} <= {playbook_of[i] for i in gated}
    for ident in gated:
        assert parents[ident], ident
        for parent, kind in parents[ident]:
            assert "create_approval_template" in nodes[parent]["related"], (ident, parent)
            assert kind == "success_nodes", (ident, parent, kind)

    # Every answer of the workflow's survey is read by a playbook of the workflow.
    present = {pb for pb in playbook_of.values() if (PLAYBOOKS / f"{pb}.yml").is_file()}
    for q in spec:
        assert any(q["variable"] in playbook_reads(pb) for pb in present), q["variable"]

    # The approval feeds the collection's gate: preapproved, and priority of this workflow.
    contain_db = next(i for i, pb in playbook_of.items() if pb == "contain_db")
    assert nodes[contain_db]["extra_data"] == {"contain_db_approval_mode": "preapproved", "contain_db_priority": priority}

    # One root (triage), acyclic, everything reachable from it.
    roots = [ident for ident, ps in parents.items() if not ps]
    assert [playbook_of.get(r) for r in roots] == ["triage"]
    indegree = {ident: len(ps) for ident, ps in parents.items()}
    children: dict[str, list[str]] = {ident: [] for ident in nodes}
    for parent, _kind, child in edges:
        children[parent].append(child)
    order, ready = [], deque(roots)
    while ready:
        ident = ready.popleft()
        order.append(ident)
        for child in children[ident]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    assert len(order) == len(nodes), "the workflow graph has a cycle or an unreachable node"

    # Phase order: triage -> investigate -> ... -> verify -> communicate -> pir.
    position = {playbook_of[i]: order.index(i) for i in playbook_of}
    assert position["triage"] < position["investigate"] < min(position[playbook_of[i]] for i in gated)
    assert max(position[playbook_of[i]] for i in gated) < position["communicate"] < position["pir"]


def test_preapproved_gate_variables_match_the_approval_module():
    from ansible_collections.trdrhub.incident.plugins.modules import approval

    docs = yaml.safe_load(approval.DOCUMENTATION)
    assert "preapproved" in docs["options"]["mode"]["choices"]
    assert "awx_workflow_job_id" in (REPO / "docs" / "approvals.md").read_text(encoding="utf-8")
    contain_db_spec = yaml.safe_load((REPO / "roles/contain_db/meta/argument_specs.yml").read_text(encoding="utf-8"))
    options = contain_db_spec["argument_specs"]["main"]["options"]
    assert "preapproved" in options["contain_db_approval_mode"]["choices"]
