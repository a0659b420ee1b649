# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Every secret the roles read reaches an AWX job through a credential, and the inventories hold none.

An AWX inventory source cannot decrypt a vault-encrypted vars file, and an unencrypted one would
import its placeholders as values: so the production inventory carries no secret at all, and each
secret variable of the roles (their argument specs and defaults) is covered by a credential type of
extensions/awx — injected under its own name, through the role default that reads an injected
variable, or through the environment variable the role falls back to (libpq's PGPASSWORD, the
ledger's TRDRHUB_LEDGER_DSN, a kubeconfig).
"""

from __future__ import annotations

import functools
import re
import typing as t
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
AWX = REPO / "extensions" / "awx" / "definitions"
ROLES = REPO / "roles"
PRODUCTION = REPO / "inventories" / "production"

# Option names that hold a secret.
SECRET_NAME = re.compile(r"_(password|api_key|bearer_token|token|dsn|webhook_url|routing_key|secret_key|passphrase)$")
# Dict options whose entries hold secrets (their descriptions name the secret field).
SECRET_FIELD = re.compile(r"(api_key|routing_key|password|token)\b")
TEMPLATE_REF = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)")
# A role default that reads another variable: `x: "{{ other | default(...) }}"`.
DEFAULT_CHAIN = re.compile(r"^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*default\(")

# Environment fallbacks: the variable left unset, the code it feeds reads this environment variable.
# Each entry names the file that documents (or implements) the fallback, checked below.
ENV_FALLBACKS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"_ledger_dsn$"), "TRDRHUB_LEDGER_DSN", "plugins/doc_fragments/ledger.py"),
    (re.compile(r"_login_password$"), "PGPASSWORD", "plugins/doc_fragments/postgres.py"),
    # A connection string is an alternative to the separate settings, which libpq takes from PG*.
    (re.compile(r"(?<!_ledger)_dsn$"), "PGHOST", "plugins/doc_fragments/postgres.py"),
    (re.compile(r"_k8s_api_key$|_k8s_auth$"), "K8S_AUTH_KUBECONFIG", "plugins/doc_fragments/k8s.py"),
]

# Secrets AWX cannot inject as the role reads them, each with the reason and the way that works.
NOT_INJECTABLE = {
    # AWX injects strings only; these are dicts of contacts whose entries carry PagerDuty routing keys.
    "escalate_contacts": "per-contact routing keys inside a dict: give trdrhub_escalation_contacts as a job "
                         "template extra variable or from a vault-encrypted vars file (docs/awx.md)",
    "escalate_external_contacts": "as escalate_contacts",
}


def _load(path: Path) -> t.Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def credential_types() -> list[dict[str, t.Any]]:
    return _load(AWX / "credential_types.yml")["credential_types"]


def injected(section: str) -> dict[str, str]:
    """Injected name -> credential type name, for extra_vars or env."""
    return {name: ctype["name"] for ctype in credential_types() for name in ctype["injectors"].get(section, {})}


@functools.lru_cache(maxsize=1)
def role_options() -> dict[str, tuple[str, dict[str, t.Any]]]:
    """Every option of every role's argument specs: name -> (role, spec)."""
    options = {}
    for spec_file in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        role = spec_file.parts[-3]
        for entry in ((_load(spec_file) or {}).get("argument_specs") or {}).values():
            for name, spec in (entry.get("options") or {}).items():
                options[name] = (role, spec or {})
    return options


@functools.lru_cache(maxsize=1)
def role_defaults() -> dict[str, t.Any]:
    values: dict[str, t.Any] = {}
    for path in sorted(ROLES.glob("*/defaults/main.yml")):
        values.update(_load(path) or {})
    return values


def _description(spec: dict[str, t.Any]) -> str:
    desc = spec.get("description") or ""
    return " ".join(desc) if isinstance(desc, list) else str(desc)


def secret_variables() -> dict[str, str]:
    """Secret variables the roles read: name -> role."""
    found = {}
    for name, (role, spec) in role_options().items():
        if SECRET_NAME.search(name):
            found[name] = role
        elif spec.get("type") == "dict" and (SECRET_FIELD.search(_description(spec)) or name in NOT_INJECTABLE):
            found[name] = role
    for name in role_defaults():
        if SECRET_NAME.search(name):
            found.setdefault(name, "?")
    return found


def coverage(name: str) -> list[str]:
    """How AWX supplies ``name``: the routes found, each naming the credential type."""
    routes = []
    extra_vars, env = injected("extra_vars"), injected("env")
    if name in extra_vars:
        routes.append(f"extra var {name} ({extra_vars[name]})")
    default = role_defaults().get(name)
    if isinstance(default, str):
        chained = DEFAULT_CHAIN.match(default)
        if chained and chained.group(1) in extra_vars:
            routes.append(f"default from {chained.group(1)} ({extra_vars[chained.group(1)]})")
    for pattern, env_name, documented_in in ENV_FALLBACKS:
        if pattern.search(name) and env_name in env:
            routes.append(f"environment {env_name} ({env[env_name]}, {documented_in})")
            break
    return routes


SECRETS = secret_variables()


def test_the_roles_secret_variables_are_found():
    # The scan itself: the kinds of secret the roles take are all in the list.
    for expected in ("contain_db_login_password", "investigate_redis_password", "communicate_slack_webhook_url",
                     "communicate_pagerduty_routing_key", "communicate_statuspage_api_key", "triage_alertmanager_password",
                     "verify_http_bearer_token", "escalate_email_password", "pir_ledger_dsn", "rotate_secrets_k8s_auth",
                     "escalate_contacts"):
        assert expected in SECRETS, expected
    assert "contain_db_login_user" not in SECRETS and "rotate_secrets_role" not in SECRETS


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_secret_variable_is_covered_by_a_credential_type(name):
    routes = coverage(name)
    if name in NOT_INJECTABLE:
        assert not routes, f"{name} is covered now ({routes}): drop it from NOT_INJECTABLE and from docs/awx.md's limitation"
        return
    assert routes, (f"no AWX credential type supplies {name} (role {SECRETS[name]}): inject it, or the variable its "
                    "default reads, in extensions/awx/definitions/credential_types.yml")


def test_env_fallbacks_are_real():
    env = injected("env")
    plugin_text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "plugins").rglob("*.py"))
    for _pattern, env_name, documented_in in ENV_FALLBACKS:
        assert env_name in env, f"no credential type injects {env_name}"
        assert env_name in (REPO / documented_in).read_text(encoding="utf-8"), (env_name, documented_in)
        if env_name.startswith(("TRDRHUB_", "K8S_AUTH_")):
            assert re.search(rf"['\"]{env_name}['\"]", plugin_text), f"no plugin code reads {env_name}"
    # The roles say so too: a ledger DSN left null means the environment's.
    for name, (_role, spec) in role_options().items():
        if name.endswith("_ledger_dsn"):
            assert "TRDRHUB_LEDGER_DSN" in _description(spec), name


def test_every_injected_variable_is_read_by_a_role():
    options, defaults = role_options(), role_defaults()
    for name, ctype in injected("extra_vars").items():
        read_by_default = any(isinstance(v, str) and re.search(rf"\b{name}\b", v) for v in defaults.values())
        assert name in options or read_by_default, f"{ctype} injects {name}, which no role reads"


def test_secret_inputs_are_secret_and_required_where_the_type_is_useless_without():
    for ctype in credential_types():
        fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
        for section in ("extra_vars", "env"):
            for name, template in ctype["injectors"].get(section, {}).items():
                for ref in TEMPLATE_REF.findall(template):
                    if SECRET_NAME.search(name) or name in ("PGPASSWORD", "TRDRHUB_LEDGER_DSN"):
                        assert fields[ref].get("secret") is True, (ctype["name"], name, ref)


# --- the production inventory ---------------------------------------------------------------------
def _inventory_files() -> list[Path]:
    return sorted(p for p in PRODUCTION.rglob("*") if p.is_file())


def test_production_inventory_holds_no_secret_and_nothing_encrypted():
    files = _inventory_files()
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        assert not text.startswith("$ANSIBLE_VAULT"), f"{rel}: an AWX inventory sync cannot decrypt it"
        assert "!vault" not in text, f"{rel}: an AWX inventory sync cannot decrypt inline vault values"
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert not re.search(r"(?i)change.?me|placeholder|<password>|xxxx", code), f"{rel}: AWX imports placeholders as values"
        data = _load(path) if path.suffix in (".yml", ".yaml") else None
        injected_vars = set(injected("extra_vars"))
        for name, value in _walk(data):
            if SECRET_NAME.search(name) or name in SECRETS:
                # Unset, or a reference to a variable an AWX credential injects: never a value.
                ref = re.fullmatch(r"\{\{\s*([A-Za-z_]\w*)\s*(?:\|[^{}]*)?\}\}", value.strip()) if isinstance(value, str) else None
                assert value in (None, "") or (ref is not None and ref.group(1) in injected_vars), (
                    f"{rel}: {name} is set in the inventory ({value!r}); leave it unset or refer to a variable that a "
                    "credential type of extensions/awx injects")
    assert not (PRODUCTION / "group_vars" / "db_controllers" / "vault.yml").exists()


def _walk(data: t.Any) -> t.Iterator[tuple[str, t.Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(data, list):
        for item in data:
            yield from _walk(item)


def test_variables_the_production_inventory_refers_to_are_defined_or_injected():
    defined: set[str] = set()
    referenced: set[str] = set()
    for path in _inventory_files():
        if path.suffix not in (".yml", ".yaml"):
            continue
        for name, value in _walk(_load(path)):
            defined.add(name)
            if isinstance(value, str):
                referenced.update(TEMPLATE_REF.findall(value))
    available = defined | set(injected("extra_vars")) | set(role_defaults())
    for name in referenced:
        assert name in available, f"the production inventory refers to {name}, which nothing defines or injects"
        assert not name.startswith("vault_"), f"{name}: no vaulted file is part of the inventory"


# --- job templates attach what their roles need ------------------------------------------------------
def test_job_templates_attach_the_credentials_of_the_secrets_they_need():
    jt_defs = _load(AWX / "job_templates.yml")
    credential_type_of = {key: cred["credential_type"] for key, cred in jt_defs["credentials"].items()}
    optional = {cred["credential_type"] for cred in jt_defs.get("optional_credentials", {}).values()}
    by_playbook = {tpl["playbook"]: {credential_type_of[c] for c in tpl.get("credentials", [])} for tpl in jt_defs["templates"]}
    # The production inventory names a Redis user for investigation; the PostgreSQL roles take PGPASSWORD.
    for playbook in ("investigate", "respond", "respond_p1", "respond_p2", "respond_p3", "respond_p4"):
        assert {"TRDR Hub Redis", "TRDR Hub PostgreSQL"} <= by_playbook[playbook], playbook
    for playbook in ("contain_db", "contain_security", "verify_audit", "recover_db", "rotate_secrets", "verify"):
        assert "TRDR Hub PostgreSQL" in by_playbook[playbook], playbook
    for playbook in ("communicate", "respond_p1"):
        assert {"TRDR Hub Slack", "TRDR Hub PagerDuty", "TRDR Hub Statuspage"} <= by_playbook[playbook], playbook
    # Services that need a login only in some setups are added at launch (or attached once).
    assert optional == {"TRDR Hub Alertmanager", "TRDR Hub API token", "TRDR Hub SMTP", "TRDR Hub ticketing", "TRDR Hub PgBouncer"}
    names = {ctype["name"] for ctype in credential_types()}
    assert optional <= names and set(credential_type_of.values()) - {"Machine"} <= names
    doc = (REPO / "extensions" / "awx" / "trdrhub.json").read_text(encoding="utf-8")
    assert doc.count('"ask_credential_on_launch": true') == len(jt_defs["templates"])


def test_awx_guide_names_every_credential_type_and_the_uncovered_secrets():
    guide = (REPO / "docs" / "awx.md").read_text(encoding="utf-8")
    for ctype in credential_types():
        assert ctype["name"] in guide, ctype["name"]
    for name in NOT_INJECTABLE:
        assert name in guide, name
    assert "vault_trdrhub_ops_password" not in guide
