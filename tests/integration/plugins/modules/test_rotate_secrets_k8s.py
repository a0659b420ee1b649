"""rotate_secrets with store=k8s_secret and restart_deployments, through real ansible-playbook.

The Secret and the Deployment live in the Kubernetes API double (``k8s_api``), the role in the
harness PostgreSQL. Each test rotates the password of its own throwaway role, in its own
environment name, against a fresh double.
"""
from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import quote, quote_plus

import pytest
from _itest_k8s import CLEAN_ENV
from _itest_rotate import CRASH_ENV, RotationRole, create_log_table, sha

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NS = "trdrhub-system"
SECRET = "trdrhub-db"
PENDING = SECRET + "-rotation-pending"
KEY = "DATABASE_PASSWORD"
API = "trdrhub-api"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ROTATED_AT = "trdrhub.incident/rotated-at"
REVISION = "deployment.kubernetes.io/revision"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(*secrets: str) -> list:
    """Every way a secret could show up: as is, base64, percent-encoded."""
    out = set()
    for secret in secrets:
        out |= {secret, b64(secret), quote(secret, safe=""), quote_plus(secret)}
    return sorted(out)


def assert_absent(text: str, *secrets: str) -> None:
    for form in forms(*secrets):
        assert form not in text


@pytest.fixture(scope="module")
def log_table(pg_server, trdrhub_db):
    return create_log_table(pg_server)


class Target(RotationRole):
    """A login role with a known password, held in a Secret of the double; a Deployment that reads it."""

    def __init__(self, pg, api, tmp_path) -> None:
        super().__init__(pg, "itest_rotk_", "itest-k8s-")
        self.api = api
        self.state = api.state
        self.kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        self.state.add_secret(SECRET, {KEY: self.old, "REDIS_URL": "redis://r:6379/0"}, NS,
                              labels={"app.kubernetes.io/part-of": "trdrhub"}, annotations={"owner": "sre"})
        self.state.add_deployment(API, NS, replicas=2)

    def secret(self, name: str = SECRET):
        return self.state.get("secrets", NS, name)

    def stored(self, key: str = KEY) -> str:
        return base64.b64decode(self.secret()["data"][key], validate=True).decode()

    def pending(self) -> dict:
        obj = self.secret(PENDING)
        assert obj is not None, "no pending Secret"
        return json.loads(base64.b64decode(obj["data"]["pending.json"], validate=True))

    def deployment(self) -> dict:
        return self.state.get("deployments", NS, API)

    def restarted_at(self):
        return (self.deployment()["spec"]["template"]["metadata"].get("annotations") or {}).get(RESTARTED_AT)

    def pod_names(self) -> set:
        return {p["metadata"]["name"] for p in self.state.list("pods", NS, f"app={API}")[0]}


@pytest.fixture
def target(pg_server, trdrhub_db, log_table, k8s_api, tmp_path):
    tgt = Target(pg_server, k8s_api, tmp_path)
    settle(tgt)
    yield tgt
    tgt.drop()


def rollout_complete(dep: dict) -> bool:
    status, replicas = dep.get("status") or {}, dep["spec"]["replicas"]
    return (status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == status.get("availableReplicas", 0) == status.get("replicas", 0) == replicas)


def settle(target, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep = target.deployment()
        if rollout_complete(dep):
            return dep
        time.sleep(0.05)
    raise AssertionError(f"{API} did not settle: {target.deployment()['status']}")


def run(ansible, login, target, *, check=False, verbosity=0, extra_env=None, **extra):
    params = dict(login["super_tcp"], role=target.role, environment=target.environment, store="k8s_secret",
                  k8s_namespace=NS, k8s_secret=SECRET, key=KEY, k8s_auth={"kubeconfig": str(target.kubeconfig)},
                  restart_deployments=[API], restart_timeout=30)
    params.update(extra)
    return ansible.run("rotate_secrets", params, check=check, verbosity=verbosity, timeout=180,
                       extra_env={**CLEAN_ENV, **(extra_env or {})})


def secret_writes(target) -> list:
    return [(method, path, body) for method, path, body in target.api.request_bodies if "/secrets" in path]


def test_rotation_writes_the_secret_restarts_and_never_shows_the_password(ansible, login, target):
    pods = target.pod_names()
    revision = int(target.deployment()["metadata"]["annotations"][REVISION])
    res = run(ansible, login, target, verbosity=3)

    assert not res.failed, res.output
    assert res["status"] == "completed" and res["changed"]
    new = target.stored()
    assert new != target.old and len(new) == 32 and new.isalnum()
    assert target.can_login(new) and not target.can_login(target.old)
    # Only the key changed; labels, annotations and the other key are kept, rotated-at is set.
    secret = target.secret()
    assert target.stored("REDIS_URL") == "redis://r:6379/0" and set(secret["data"]) == {KEY, "REDIS_URL"}
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/part-of": "trdrhub"}
    assert secret["metadata"]["annotations"]["owner"] == "sre" and ROTATED_AT in secret["metadata"]["annotations"]
    assert secret["type"] == "Opaque"
    # The Deployment was restarted (rollout restart) and its rollout completed before the module returned.
    dep = target.deployment()
    assert target.restarted_at() is not None
    assert int(dep["metadata"]["annotations"][REVISION]) == revision + 1
    assert rollout_complete(dep) and target.pod_names().isdisjoint(pods)
    assert res["services_restarted"] == [API]
    # The pending Secret existed during the rotation and is gone now.
    assert target.secret(PENDING) is None
    assert ("POST", f"/api/v1/namespaces/{NS}/secrets") in [(m, p) for m, p, _b in secret_writes(target)]
    assert f"DELETE /api/v1/namespaces/{NS}/secrets/{PENDING}" in res["requests"]
    assert [s["step"] for s in res["steps"]] == ["pending", "alter_role", "store", "restart", "verify"]
    assert res["store"] == {"type": "k8s_secret", "location": f"{NS}/{SECRET}", "key": KEY, "value_format": "password",
                            "pending": f"{NS}/{PENDING}"}
    assert res["old_fingerprint"] == "sha256:" + sha(target.old)[:12] and res["new_fingerprint"] == "sha256:" + sha(new)[:12]
    rows = target.log_rows()
    assert [(r["status"], r["rotation_method"]) for r in rows] == [("completed", "k8s")]
    assert rows[0]["new_secret_fingerprint"] == sha(new) and rows[0]["services_restarted"] == [API]

    # Nowhere but in the Secrets' data: not at -vvv, not in any request body to the API (Deployment patches),
    # not in a Secret's metadata (annotations, labels, name), not in the Deployment.
    assert_absent(res.output, new, target.old)
    for method, path, body in target.api.request_bodies:
        if "/secrets" in path:
            assert_absent(json.dumps(json.loads(body).get("metadata")) + path, new, target.old)
        else:
            assert_absent(method + path + body, new, target.old)
    assert_absent(json.dumps(target.secret()["metadata"]) + json.dumps(target.deployment()), new, target.old)
    assert not any("/events" in path for _m, path, _u in target.api.requests)


def test_verification_failure_rolls_the_secret_and_the_role_back(ansible, login, target):
    revision = int(target.deployment()["metadata"]["annotations"][REVISION])
    res = run(ansible, login, target, health_url="http://127.0.0.1:9/health/ready", health_timeout=2)

    assert res.failed and res["status"] == "rolled_back" and res["failed_step"] == "verify"
    assert "rolled back" in res["msg"] and "health check failed" in res["msg"]
    assert target.stored() == target.old and target.stored("REDIS_URL") == "redis://r:6379/0"
    assert target.can_login(target.old)
    assert target.secret(PENDING) is None
    steps = {s["step"]: s["status"] for s in res["steps"]}
    assert steps["verify"] == "failed"
    assert steps["rollback_role"] == steps["rollback_store"] == steps["rollback_restart"] == steps["rollback_verify"] == "ok"
    # Restarted onto the new password, then once more onto the old one: two rollouts, both complete.
    dep = settle(target)
    assert int(dep["metadata"]["annotations"][REVISION]) == revision + 2
    assert [r["status"] for r in target.log_rows()] == ["rolled_back"]
    assert_absent(res.output, target.old)


def test_crash_between_alter_role_and_the_store_is_completed_by_the_next_run(ansible, login, target):
    crashed = run(ansible, login, target, extra_env={CRASH_ENV: "alter_role"})
    assert crashed.failed
    pending = target.pending()
    assert pending["old"] == target.old and pending["new"] != target.old
    # The role already has the new password, the Secret still the old one, nothing restarted yet.
    assert target.stored() == target.old and target.restarted_at() is None
    assert target.can_login(pending["new"]) and not target.can_login(target.old)
    assert target.secret(PENDING)["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "trdrhub.incident"}
    assert_absent(crashed.output, pending["new"], target.old)

    res = run(ansible, login, target)
    assert not res.failed, res.output
    assert res["status"] == "completed"
    assert res["recovery"] == {"found": True, "database_accepts": "new", "action": "completed"}
    assert res["rotation_id"] == pending["rotation_id"]
    assert target.stored() == pending["new"] and target.can_login(pending["new"])
    assert target.restarted_at() is not None and rollout_complete(target.deployment())
    assert target.secret(PENDING) is None
    assert [r["status"] for r in target.log_rows()] == ["completed"]
    assert_absent(res.output, pending["new"], target.old)


def test_check_mode_writes_nothing(ansible, login, target):
    secret_rv = target.secret()["metadata"]["resourceVersion"]
    dep_rv = target.deployment()["metadata"]["resourceVersion"]
    target.api.requests.clear()
    res = run(ansible, login, target, check=True)

    assert not res.failed, res.output
    assert res["status"] == "planned" and not res["changed"]
    assert res["plan"]["targets"]["restart"] == [f"deployment/{API} ({NS})"]
    assert res["plan"]["targets"]["store"]["location"] == f"{NS}/{SECRET}"
    assert target.secret()["metadata"]["resourceVersion"] == secret_rv
    assert target.deployment()["metadata"]["resourceVersion"] == dep_rv
    assert {method for method, _path, _user in target.api.requests} == {"GET"}
    assert target.secret(PENDING) is None and target.stored() == target.old and target.can_login(target.old)
    assert target.log_rows() == []


def test_a_concurrent_change_of_another_key_is_kept(ansible, login, target):
    """Someone adds a key between our read and our PUT: the 409 is retried on a fresh read, their key is kept."""
    state, original, seen = target.state, target.api.routes[("PUT", "object")], []

    def interfering(call):
        if call.res.plural == "secrets" and call.name == SECRET:
            seen.append(call.body["metadata"]["resourceVersion"])
            if len(seen) == 1:
                obj = state.get("secrets", NS, SECRET)
                obj["data"]["FEATURE_FLAGS"] = b64("beta")
                state.update("secrets", NS, SECRET, {**obj, "metadata": {**obj["metadata"], "resourceVersion": None}})
        return original(call)

    target.api.routes[("PUT", "object")] = interfering
    res = run(ansible, login, target)

    assert not res.failed, res.output
    assert res["status"] == "completed" and len(seen) == 2 and seen[0] != seen[1]
    assert target.stored("FEATURE_FLAGS") == "beta" and target.stored("REDIS_URL") == "redis://r:6379/0"
    new = target.stored()
    assert new != target.old and target.can_login(new)


def test_a_concurrent_change_of_the_key_is_not_overwritten_and_rolled_back(ansible, login, target):
    state, original = target.state, target.api.routes[("PUT", "object")]
    seen = []

    def interfering(call):
        if call.res.plural == "secrets" and call.name == SECRET and not seen:
            seen.append(call.name)
            obj = state.get("secrets", NS, SECRET)
            obj["data"][KEY] = b64("set-by-someone-else")
            state.update("secrets", NS, SECRET, {**obj, "metadata": {**obj["metadata"], "resourceVersion": None}})
        return original(call)

    target.api.routes[("PUT", "object")] = interfering
    res = run(ansible, login, target)

    assert res.failed and res["status"] == "rolled_back" and res["failed_step"] == "store"
    assert res["msg"] == (f"Rotation failed at store and was rolled back to the old secret: The Secret {NS}/{SECRET} key {KEY} "
                          "was changed by someone else while it was being written (409 Conflict); it was not overwritten")
    # The rollback puts the old password back where the role has it again.
    assert target.stored() == target.old and target.can_login(target.old)
    assert target.secret(PENDING) is None and target.restarted_at() is None


def test_unknown_secret_is_one_clear_message(ansible, login, target):
    res = run(ansible, login, target, k8s_secret="trdrhub-dbb")
    assert res.failed and res["status"] == "failed"
    assert res["msg"] == (f"Not found: the Kubernetes API at {target.api.url} answered GET /api/v1/namespaces/{NS}/secrets/"
                          'trdrhub-dbb with 404 Not Found: secrets "trdrhub-dbb" not found')
    assert "Traceback" not in res.output and target.can_login(target.old)


def test_forbidden_and_read_only_tokens_are_one_clear_message(ansible, login, target, tmp_path):
    secret_rv = target.secret()["metadata"]["resourceVersion"]
    nobody = target.api.write_kubeconfig(tmp_path / "nobody", token=target.api.forbidden_token, namespace=NS)
    res = run(ansible, login, target, k8s_auth={"kubeconfig": str(nobody)})
    assert res.failed and res["status"] == "failed"
    assert res["msg"] == (f"Permission denied: the Kubernetes API at {target.api.url} answered GET /api/v1/namespaces/{NS}/secrets/"
                          f'{PENDING} with 403 Forbidden: secrets "{PENDING}" is forbidden: User '
                          f'"system:serviceaccount:{NS}:nobody" cannot get resource "secrets" in API group "" in the namespace '
                          f'"{NS}" - grant the account RBAC permission for this request')
    assert "Traceback" not in res.output and target.api.forbidden_token not in res.output

    viewer = "itest-viewer-" + uuid.uuid4().hex
    target.api.read_only_tokens[viewer] = f"system:serviceaccount:{NS}:viewer"
    readonly = target.api.write_kubeconfig(tmp_path / "viewer", token=viewer, namespace=NS)
    res = run(ansible, login, target, k8s_auth={"kubeconfig": str(readonly)})
    assert res.failed and res["status"] == "failed" and res["failed_step"] == "pending"
    assert res["msg"].startswith("Rotation failed before anything changed: Permission denied: ")
    assert (f'secrets is forbidden: User "system:serviceaccount:{NS}:viewer" cannot create resource "secrets" in API group "" '
            f'in the namespace "{NS}"') in res["msg"]
    assert "Traceback" not in res.output and viewer not in res.output
    assert target.secret()["metadata"]["resourceVersion"] == secret_rv and target.secret(PENDING) is None
    assert target.can_login(target.old) and target.restarted_at() is None
