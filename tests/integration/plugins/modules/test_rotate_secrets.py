"""rotate_secrets through real ansible-playbook against the harness PostgreSQL.

Each test rotates the password of its own throwaway role (never trdrhub_app, which other
tests log in as), in its own environment name, so tests are independent of each other.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from _itest_rotate import CRASH_ENV, DB, RotationRole, create_log_table, sha
from _itest_snapshot import Snapshot

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def log_table(pg_server, trdrhub_db):
    return create_log_table(pg_server)


class Target(RotationRole):
    """A login role with a known password, its env-file store, and helpers to look at both."""

    def __init__(self, pg, tmp_path: Path) -> None:
        super().__init__(pg, "itest_rot_", "itest-")
        self.path = tmp_path / "api.env"
        self.path.write_text(f"# TRDR Hub API\nAPP_ENV=test\nDATABASE_PASSWORD={self.old}\nREDIS_URL=redis://r:6379/0\n")
        self.path.chmod(0o640)
        self.original = self.path.read_bytes()

    def stored(self) -> str:
        for line in self.path.read_text().splitlines():
            if line.startswith("DATABASE_PASSWORD="):
                return line.split("=", 1)[1]
        raise AssertionError(f"no DATABASE_PASSWORD line in {self.path}")


@pytest.fixture
def target(pg_server, trdrhub_db, log_table, tmp_path):
    tgt = Target(pg_server, tmp_path)
    yield tgt
    tgt.drop()


def args(login, target, **extra):
    out = dict(login["super_tcp"], role=target.role, path=str(target.path), key="DATABASE_PASSWORD",
               environment=target.environment)
    out.update(extra)
    return out


def pending_of(target) -> dict:
    return json.loads(Path(str(target.path) + ".pending").read_text())


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def test_rotation_completes_and_never_shows_the_secret(ansible, login, target, pg_server):
    admin = pg_server.connect()
    admin.cursor().execute("ALTER SYSTEM SET log_statement = 'all'")
    admin.cursor().execute("SELECT pg_reload_conf()")
    try:
        run = ansible.run("rotate_secrets", args(login, target), verbosity=3,
                          extra_env={"TRDRHUB_INCIDENT_ID": "INC-ROTATE-1"})
    finally:
        admin.cursor().execute("ALTER SYSTEM RESET log_statement")
        admin.cursor().execute("SELECT pg_reload_conf()")
        admin.close()
    assert not run.failed, run.output
    assert run["status"] == "completed" and run["changed"]
    new = target.stored()
    assert new != target.old and len(new) == 32 and new.isalnum()
    assert target.can_login(new) and not target.can_login(target.old)
    assert stat.S_IMODE(os.stat(target.path).st_mode) == 0o600
    assert not Path(str(target.path) + ".pending").exists()
    # Only the password line changed.
    assert target.path.read_text() == target.original.decode().replace(target.old, new)
    assert run["old_fingerprint"] == "sha256:" + sha(target.old)[:12]
    assert run["new_fingerprint"] == "sha256:" + sha(new)[:12]
    assert [s["step"] for s in run["steps"]] == ["pending", "alter_role", "store", "restart", "verify"]
    assert run["log"] == {"table": "secret_rotation_logs", "recorded": True}
    rows = target.log_rows()
    assert len(rows) == 1
    assert rows[0]["status"] == "completed" and rows[0]["rotation_method"] == "local"
    assert rows[0]["old_secret_fingerprint"] == sha(target.old)
    assert rows[0]["new_secret_fingerprint"] == sha(new)
    assert rows[0]["completed_at"] is not None
    # Nowhere: terminal output at -vvv, result, ledger, server log (log_statement=all), log table.
    ledger = (ansible.workdir / "incidents" / "INC-ROTATE-1" / "ledger.jsonl").read_text()
    assert "rotate_secrets" in ledger
    server_log = pg_server.log_path.read_text(errors="replace")
    assert "ALTER ROLE" in server_log and "SCRAM-SHA-256$4096:" in server_log
    assert_no_secret(run.output + ledger + server_log + json.dumps(rows, default=str), new, target.old)


def test_verification_failure_rolls_everything_back(ansible, login, target):
    run = ansible.run("rotate_secrets", args(login, target, health_url="http://127.0.0.1:9/health/ready", health_timeout=2))
    assert run.failed and run["status"] == "rolled_back" and run["failed_step"] == "verify"
    assert "rolled back" in run["msg"] and "health check failed" in run["msg"]
    assert target.path.read_bytes() == target.original
    assert target.can_login(target.old)
    assert not Path(str(target.path) + ".pending").exists()
    steps = {s["step"]: s["status"] for s in run["steps"]}
    assert steps["verify"] == "failed" and steps["rollback_role"] == steps["rollback_verify"] == "ok"
    rows = target.log_rows()
    assert [r["status"] for r in rows] == ["rolled_back"]
    assert "health check failed" in rows[0]["error_message"]
    assert_no_secret(run.output, target.old)


def test_failed_restart_command_rolls_back(ansible, login, target):
    run = ansible.run("rotate_secrets", args(login, target, restart_command=["false"]))
    assert run.failed and run["status"] == "rolled_back" and run["failed_step"] == "restart"
    assert "restart_command false exited with 1" in run["msg"]
    assert any("could not be restarted after the rollback either" in w for w in run.get("warnings", []))
    assert target.path.read_bytes() == target.original and target.can_login(target.old)


def test_crash_after_alter_role_is_recovered_by_the_next_run(ansible, login, target):
    crashed = ansible.run("rotate_secrets", args(login, target), extra_env={CRASH_ENV: "alter_role"})
    assert crashed.failed
    pending = pending_of(target)
    assert stat.S_IMODE(os.stat(str(target.path) + ".pending").st_mode) == 0o600
    assert pending["old"] == target.old
    # The database already has the new password, the store still the old one: both recoverable.
    assert target.stored() == target.old
    assert target.can_login(pending["new"]) and not target.can_login(target.old)
    assert_no_secret(crashed.output, pending["new"], target.old)

    run = ansible.run("rotate_secrets", args(login, target))
    assert not run.failed, run.output
    assert run["status"] == "completed"
    assert run["recovery"] == {"found": True, "database_accepts": "new", "action": "completed"}
    assert run["rotation_id"] == pending["rotation_id"]
    assert target.stored() == pending["new"] and target.can_login(pending["new"])
    assert not Path(str(target.path) + ".pending").exists()
    assert [r["status"] for r in target.log_rows()] == ["completed"]
    assert_no_secret(run.output, pending["new"], target.old)


def test_sigkill_of_ansible_playbook_after_alter_role_is_finished_by_the_next_run(ansible, login, target, tmp_path):
    """The whole ansible-playbook process group killed between ALTER ROLE and the store update."""
    playbook = tmp_path / "rotate.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Rotate", "trdrhub.incident.rotate_secrets": args(login, target)}]}]))
    hosts = tmp_path / "hosts.ini"
    hosts.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    proc = subprocess.Popen(ansible.playbook_argv(playbook, "-i", hosts), cwd=str(REPO),
                            env=ansible.env({"TRDRHUB_ROTATE_TEST_PAUSE_AFTER": "alter_role"}), start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pending_path = Path(str(target.path) + ".pending")
    try:
        deadline = time.monotonic() + 60
        while not (pending_path.exists() and target.can_login(pending_of(target)["new"])):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the rotation never reached ALTER ROLE"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    pending = pending_of(target)
    # Out of step now: the database takes only the new password, the store still holds the old one.
    assert target.stored() == target.old and not target.can_login(target.old)

    run = ansible.run("rotate_secrets", args(login, target), via_playbook=True)
    assert not run.failed, run.output
    assert run["recovery"] == {"found": True, "database_accepts": "new", "action": "completed"}
    assert target.stored() == pending["new"] and target.can_login(pending["new"])
    assert not pending_path.exists()
    assert_no_secret(run.output, pending["new"], target.old)


def test_crash_before_alter_role_is_undone_then_rotated_anew(ansible, login, target):
    crashed = ansible.run("rotate_secrets", args(login, target), extra_env={CRASH_ENV: "pending"})
    assert crashed.failed
    abandoned = pending_of(target)["new"]
    assert target.can_login(target.old) and not target.can_login(abandoned)

    run = ansible.run("rotate_secrets", args(login, target))
    assert not run.failed, run.output
    assert run["recovery"] == {"found": True, "database_accepts": "old", "action": "rolled_back"}
    new = target.stored()
    assert new not in (target.old, abandoned) and target.can_login(new)


def test_min_age_skips_and_force_rotates(ansible, login, target):
    first = ansible.run("rotate_secrets", args(login, target))
    assert first["status"] == "completed"
    after_first = target.stored()
    skipped = ansible.run("rotate_secrets", args(login, target, min_age="30d"))
    assert not skipped.failed and not skipped["changed"] and skipped["status"] == "skipped"
    assert skipped["last_rotated_at"] is not None
    assert target.stored() == after_first and target.can_login(after_first)
    forced = ansible.run("rotate_secrets", args(login, target, min_age="30d", force=True))
    assert forced["status"] == "completed" and forced["changed"]
    assert target.stored() != after_first and target.can_login(target.stored())
    assert [r["status"] for r in target.log_rows()] == ["completed", "completed"]


def test_check_mode_changes_nothing(ansible, login, target):
    run = ansible.run("rotate_secrets", args(login, target), check=True)
    assert not run.failed, run.output
    assert run["status"] == "planned" and not run["changed"]
    assert run["old_fingerprint"] == "sha256:" + sha(target.old)[:12] and run["new_fingerprint"] is None
    assert run["plan"]["steps"] == ["generate", "pending", "alter_role", "store", "restart", "verify", "log"]
    assert run["plan"]["targets"]["role"] == target.role
    assert target.path.read_bytes() == target.original and target.can_login(target.old)
    assert not Path(str(target.path) + ".pending").exists()
    assert target.log_rows() == []
    assert not any(q.startswith("ALTER") for q in run["queries"])


def test_dsn_value_in_database_url(ansible, login, target, pg_server):
    url = f"postgresql://{target.role}:{target.old}@{pg_server.host}:{pg_server.port}/{DB}?sslmode=disable"
    target.path.write_text(f'export DATABASE_URL="{url}"\n')
    run = ansible.run("rotate_secrets", args(login, target, key="DATABASE_URL", value_format="dsn",
                                             alphabet=["letters", "digits", "symbols"], length=40))
    assert not run.failed, run.output
    line = target.path.read_text()
    assert line.startswith('export DATABASE_URL="postgresql://') and line.endswith('/trdrhub?sslmode=disable"\n')
    stored_url = line.split('"')[1]
    conn = psycopg2.connect(stored_url)   # the application's own URL works with the new password
    conn.close()
    assert not target.can_login(target.old)


@pytest.mark.parametrize(("extra", "message"), [
    ({"length": 8}, "length must be between 16 and 1024, got 8"),
    ({"alphabet": ["urlsafe", "digits"]}, "alphabet urlsafe is a complete alphabet"),
    ({"min_age": "a month"}, "min_age 'a month' is not a duration"),
    ({"key": "NO_SUCH_KEY"}, "has no line NO_SUCH_KEY=..."),
    ({"role": "itest_no_such_role"}, "Role itest_no_such_role does not exist"),
    ({"path": None, "store": "file"}, "path is required with store=file"),
])
def test_bad_input_is_one_clear_message(ansible, login, target, extra, message):
    params = {k: v for k, v in args(login, target, **extra).items() if v is not None}
    run = ansible.run("rotate_secrets", params)
    assert run.failed
    assert message in run["msg"]
    assert "Traceback" not in run.output
    assert target.path.read_bytes() == target.original and target.can_login(target.old)


def test_playbook_records_the_rotation_in_the_ledger(ansible, login, target, tmp_path):
    extra = {f"rotate_secrets_{k}": v for k, v in args(login, target).items() if k not in ("role", "path", "key", "environment")}
    extra.update(rotate_secrets_role=target.role, rotate_secrets_path=str(target.path), rotate_secrets_environment=target.environment,
                 rotate_secrets_min_age="0", trdrhub_incident_id="INC-ROTATE-PB", rotate_secrets_hosts="localhost",
                 rotate_secrets_confirm=True)   # the approval gate: see playbooks/test_rotate_secrets.py
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={ansible.bindir / 'python'}\n")
    # rotate_secrets.yml acts on an existing incident (an unknown id is refused): give it a ledger first.
    opened = ansible.run("ledger_record", {"incident_id": "INC-ROTATE-PB", "event": "note", "msg": "opened for the test"})
    assert not opened.failed, opened.output
    snapshot = Snapshot(tmp_path, ansible.workdir / "incidents")
    look = ansible.run_playbook(REPO / "playbooks" / "rotate_secrets.yml", "-i", inventory, "-e", f"@{vars_file}",
                                "-e", "rotate_secrets_confirm=true", "--check")
    assert look.rc == 0, look.output
    assert snapshot.new_or_changed() == [] and target.can_login(target.old) and target.log_rows() == []

    run = ansible.run_playbook(REPO / "playbooks" / "rotate_secrets.yml", "-i", inventory, "-e", f"@{vars_file}")
    assert run.rc == 0, run.output
    new = target.stored()
    assert target.can_login(new) and "completed" in run.output
    ledger = [json.loads(line) for line in (ansible.workdir / "incidents" / "INC-ROTATE-PB" / "ledger.jsonl").read_text().splitlines()]
    record = [e for e in ledger if e.get("module") == "trdrhub.incident.ledger_record"]
    assert record and record[-1]["data"]["status"] == "completed"
    assert record[-1]["data"]["new_fingerprint"] == "sha256:" + sha(new)[:12]
    assert_no_secret(run.output + json.dumps(ledger), new, target.old)

    # Rotated a moment ago: with a minimum age the next run skips, and says why without -v.
    skip = ansible.run_playbook(REPO / "playbooks" / "rotate_secrets.yml", "-i", inventory, "-e", f"@{vars_file}",
                                "-e", "rotate_secrets_min_age=30d", extra_env={"ANSIBLE_STDOUT_CALLBACK": None})
    assert skip.rc == 0, skip.output
    said = " ".join(skip.output.split())
    assert re.search(r"skipped \(old sha256:\w+, new none\); skipped because last rotated [\d.]+ days ago, min_age is 30 days",
                     said), skip.output
    assert target.stored() == new


def run_cli(ansible, *argv):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "rotate_secrets.py"), *map(str, argv)],
                          capture_output=True, text=True, timeout=120, check=False, env=ansible.env())
    return proc.returncode, proc.stdout + proc.stderr


def test_cli_dry_run_then_local_rotation(ansible, login, target, tmp_path):
    config = tmp_path / "rotate.json"
    config.write_text(json.dumps({
        "connection": login["super_tcp"], "environment": target.environment, "min_age": "0",
        "secrets": {"db_password": {"role": target.role, "local": {"path": str(target.path), "key": "DATABASE_PASSWORD"}}},
    }))
    rc, out = run_cli(ansible, "--backend=local", "--dry-run", "--output-json", "--config", config)
    assert rc == 0, out
    answer = json.loads(out)
    assert answer["status"] == "planned" and answer["dry_run"] is True and answer["backend"] == "local"
    assert answer["secrets"]["db_password"]["old_fingerprint"] == "sha256:" + sha(target.old)[:12]
    assert target.path.read_bytes() == target.original

    rc, out = run_cli(ansible, "--backend=local", "--output-json", "--config", config)
    assert rc == 0, out
    answer = json.loads(out)
    assert set(answer) >= {"rotation_id", "status", "backend", "started_at", "completed_at", "duration_seconds",
                           "secrets", "restart_result", "dry_run"}
    assert answer["status"] == "completed" and answer["dry_run"] is False
    new = target.stored()
    assert answer["secrets"]["db_password"]["new_fingerprint"] == "sha256:" + sha(new)[:12]
    assert target.can_login(new)
    assert_no_secret(out, new, target.old)


def test_cli_vault_backend_is_refused(ansible):
    rc, out = run_cli(ansible, "--backend=vault", "--output-json")
    assert rc == 2
    answer = json.loads(out)
    assert answer["status"] == "failed" and "not supported by this collection" in answer["error"]
