"""The incident ledger with the file backend, through real ansible-playbook runs.

The callback (enabled in the repository's ansible.cfg) records every task, ledger_record adds
explicit events, and the chain is checked independently and with audit_chain_verify.
"""
from __future__ import annotations

import json
import sys
import uuid

import pytest
from _itest_ledger import check_chain, read_file_ledger, summaries, write_playbook

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SECRET = "itest-Ledger-Secret-" + uuid.uuid4().hex


@pytest.fixture
def hosts(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


@pytest.fixture
def secret_role(pg_server, trdrhub_db):
    """A login role whose password is SECRET, so a module really authenticates with it."""
    name = "itest_ledger_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect()
    try:
        conn.cursor().execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", (SECRET,))
        yield name
        conn.cursor().execute(f"DROP ROLE IF EXISTS {name}")
    finally:
        conn.close()


def test_a_playbook_is_recorded_in_a_file_ledger_without_secrets(ansible, pg_server, secret_role, hosts, tmp_path):
    incident = "INC-FILE-" + uuid.uuid4().hex[:6]
    root = tmp_path / "incidents"
    pg = {"login_host": pg_server.host, "login_port": pg_server.port, "login_user": secret_role,
          "login_password": "{{ lookup('ansible.builtin.env', 'ITEST_SECRET') }}", "login_db": "trdrhub"}
    tasks = [
        {"name": "A command", "ansible.builtin.command": "echo hello", "changed_when": True},
        {"name": "Triage with a password (module no_log option)", "trdrhub.incident.pg_activity_info": pg},
        {"name": "A module failure with the password", "trdrhub.incident.pg_activity_info":
            dict(pg, login_db="no_such_db_for_ledger"), "ignore_errors": True},
        {"name": "A no_log task with the secret", "ansible.builtin.command": "echo {{ itest_token }}", "no_log": True},
        {"name": "A debug that leaks a secret variable", "ansible.builtin.debug": {"msg": "pw={{ itest_password }}"}},
        {"name": "Skipped", "ansible.builtin.debug": {"msg": "never"}, "when": False},
        {"name": "Internal", "ansible.builtin.set_fact": {"itest_fact": 1}},
        {"name": "Decide", "trdrhub.incident.ledger_record": {
            "incident_id": "{{ trdrhub_incident_id }}", "event": "decision", "phase": "contain",
            "msg": "go ahead", "data": {"sessions": 3, "login_password": "{{ itest_password }}"}}},
        {"name": "Fail, ignored", "ansible.builtin.fail": {"msg": "expected"}, "ignore_errors": True},
    ]
    playbook = write_playbook(tmp_path / "pb" / "triage.yml", tasks, vars_={
        "itest_password": "{{ lookup('ansible.builtin.env', 'ITEST_SECRET') }}",
        "itest_token": "{{ lookup('ansible.builtin.env', 'ITEST_SECRET') }}"})

    run = ansible.run_playbook(playbook, "-i", hosts, "-e", f"trdrhub_incident_id={incident}",
                               extra_env={"ITEST_SECRET": SECRET, "TRDRHUB_LEDGER_DIR": str(root)})

    assert run.rc == 0, run.output
    path = root / incident / "ledger.jsonl"
    raw = path.read_bytes()
    assert SECRET.encode() not in raw
    entries = read_file_ledger(path)
    check_chain(entries, incident)
    events = [(e["event"], e["task"]) for e in entries]
    assert events == [
        ("playbook_start", None), ("task", "A command"), ("task", "Triage with a password (module no_log option)"),
        ("task", "A module failure with the password"), ("task", "A no_log task with the secret"),
        ("task", "A debug that leaks a secret variable"), ("task", "Skipped"), ("decision", "Decide"),
        ("task", "Fail, ignored"), ("playbook_end", None)]
    by_task = {e["task"]: e for e in entries}
    assert by_task["Triage with a password (module no_log option)"]["args"]["login_password"] == "<redacted>"
    assert by_task["A no_log task with the secret"]["args"] == "<censored: no_log task>"
    assert by_task["A debug that leaks a secret variable"]["data"]["msg"] == "pw=********"
    assert by_task["A module failure with the password"]["failed"] is True
    assert by_task["Decide"]["data"]["login_password"] == "<redacted>"
    assert by_task["Skipped"]["data"]["status"] == "skipped"
    assert {e["data"]["run"] for e in entries} == {entries[0]["data"]["run"]}
    assert entries[-1]["data"]["entries"] == len(entries)
    assert summaries(run.output)[incident] == (len(entries), str(path), entries[-1]["seq"], entries[-1]["hash"])

    verified = ansible.run("audit_chain_verify", {"source": "ledger_file", "path": str(root / incident)})
    assert verified["is_valid"] is True and verified["total_entries"] == len(entries), verified.result
    assert verified["chains"][incident]["head"] == {"sequence_number": len(entries), "entry_hash": entries[-1]["hash"]}


def test_ledger_record_writes_where_the_callback_writes(ansible, hosts, tmp_path):
    """Without TRDRHUB_LEDGER_DIR the variable trdrhub_incidents_dir names the incidents home, for the callback and
    ledger_record alike; ansible.cfg (found by the current directory) has no say in it."""
    from _itest_ansible import REPO_ROOT

    cfg = tmp_path / "ansible.cfg"
    cfg.write_text((REPO_ROOT / "ansible.cfg").read_text().replace("./.collections", str(ansible.root))
                   + f"\n[callback_trdrhub_ledger]\ndir = {tmp_path / 'from-ini'}\n")
    playbook = write_playbook(tmp_path / "pb.yml", [
        {"name": "Step", "ansible.builtin.debug": {"msg": "x"}},
        {"name": "Note", "trdrhub.incident.ledger_record": {"incident_id": "{{ trdrhub_incident_id }}", "msg": "n"}}])
    run = ansible.run_playbook(playbook, "-i", hosts, "-e", "trdrhub_incident_id=INC-INV",
                               "-e", f"trdrhub_incidents_dir={tmp_path / 'from-inventory'}",
                               extra_env={"ANSIBLE_CONFIG": str(cfg), "TRDRHUB_LEDGER_DIR": None,
                                          "XDG_STATE_HOME": str(tmp_path / "state")})
    assert run.rc == 0, run.output
    entries = read_file_ledger(tmp_path / "from-inventory" / "INC-INV" / "ledger.jsonl")
    check_chain(entries, "INC-INV")
    assert [e["event"] for e in entries] == ["playbook_start", "task", "note", "playbook_end"]
    assert not (tmp_path / "from-ini").exists() and not (tmp_path / "state").exists()


def test_ledger_record_check_mode_writes_nothing(ansible, tmp_path):
    root = tmp_path / "incidents"
    args = {"incident_id": "INC-CHECK", "event": "note", "msg": "looked only", "root": str(root)}

    predicted = ansible.run("ledger_record", args, check=True)
    assert not predicted.failed and predicted["changed"] is False, predicted.output
    assert (predicted["seq"], predicted["prev_hash"]) == (1, None)
    assert not root.exists()

    written = ansible.run("ledger_record", args)
    assert written["changed"] is True and written["ledger"] == str(root / "INC-CHECK" / "ledger.jsonl")
    again = ansible.run("ledger_record", args, check=True)
    assert (again["seq"], again["prev_hash"]) == (2, written["hash"])
    assert len(read_file_ledger(root / "INC-CHECK" / "ledger.jsonl")) == 1


@pytest.mark.parametrize("name, args, needles", [
    ("bad-incident-id", {"incident_id": "../../etc/x"}, ["incident_id '../../etc/x' cannot name a ledger"]),
    ("id-with-space", {"incident_id": "INC 42"}, ["cannot name a ledger"]),
    ("unwritable-dir", {"root": "{tmp}/a-file"}, ["Cannot create the ledger directory {tmp}/a-file/INC-BAD"]),
    ("unreachable-postgres", {"backend": "postgres", "login_host": "127.0.0.1", "login_port": "{port}",
                              "login_user": "postgres", "login_password": SECRET, "connect_timeout": 3},
     ["Cannot open the incident ledger table trdrhub_incident_ledger: Cannot connect to PostgreSQL at 127.0.0.1"]),
    ("bad-table", {"backend": "postgres", "table": "x;drop"}, ["table 'x;drop' is not a valid ledger table name"]),
])
def test_ledger_record_bad_input_is_one_clear_message(ansible, tmp_path, name, args, needles):
    from trdrhub_harness import free_port

    (tmp_path / "a-file").write_text("")
    values = {"tmp": str(tmp_path), "port": str(free_port())}
    args = {key: (value.format(**values) if isinstance(value, str) else value) for key, value in args.items()}
    if "login_port" in args:
        args["login_port"] = int(args["login_port"])
    args = dict({"incident_id": "INC-BAD", "msg": "x", "root": str(tmp_path / "incidents")}, **args)

    res = ansible.run("ledger_record", args)

    assert res.failed and res["changed"] is False
    for needle in needles:
        assert needle.format(**values) in res["msg"], res["msg"]
    assert "Traceback" not in res.output and SECRET not in res.output
    assert not (tmp_path / "incidents").exists()


def _recorded_run(ansible, hosts, tmp_path, incident, extra_env):
    playbook = write_playbook(tmp_path / "pb.yml", [{"name": f"step {i}", "ansible.builtin.debug": {"msg": i}}
                                                    for i in range(3)])
    return ansible.run_playbook(playbook, "-i", hosts, "-e", f"trdrhub_incident_id={incident}", extra_env=extra_env)


def test_the_callback_reports_a_bad_incident_id_and_the_play_goes_on(ansible, hosts, tmp_path):
    run = _recorded_run(ansible, hosts, tmp_path, "../escape", {"TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")})
    assert run.rc == 0, run.output
    assert run.output.count("trdrhub.incident.ledger: NOT recorded") == 3
    assert "incident_id '../escape' cannot name a ledger" in run.output
    assert "3 ledger entries were NOT recorded, the ledger is incomplete" in " ".join(run.output.split())
    assert "Traceback" not in run.output and not (tmp_path / "incidents").exists() and not (tmp_path / "escape").exists()


def test_the_callback_reports_an_unwritable_ledger_and_the_play_goes_on(ansible, hosts, tmp_path):
    (tmp_path / "a-file").write_text("")
    run = _recorded_run(ansible, hosts, tmp_path, "INC-RO", {"TRDRHUB_LEDGER_DIR": str(tmp_path / "a-file")})
    assert run.rc == 0, run.output
    assert "ok=3" in run.output
    assert f"Cannot create the ledger directory {tmp_path}/a-file/INC-RO" in " ".join(run.output.split())
    assert "INCIDENT LEDGER" not in run.output


def test_a_run_without_incident_id_records_nothing_and_says_so(ansible, hosts, tmp_path):
    playbook = write_playbook(tmp_path / "pb.yml", [{"name": "x", "ansible.builtin.debug": {"msg": 1}}])
    run = ansible.run_playbook(playbook, "-i", hosts, extra_env={"TRDRHUB_LEDGER_DIR": str(tmp_path / "incidents")})
    assert run.rc == 0
    assert "1 task result(s) of localhost were NOT recorded: no incident id" in " ".join(run.output.split())
    assert not (tmp_path / "incidents").exists()


def test_contain_db_generates_an_incident_id_records_its_decision_and_verifies_its_ledger(
        ansible, pg_server, trdrhub_db, tmp_path):
    root = tmp_path / "incidents"
    env = {"TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
           "TRDRHUB_PG_OPS_PASSWORD": trdrhub_db["ops"]["password"], "TRDRHUB_LEDGER_DIR": str(root)}
    run = ansible.run_playbook("playbooks/contain_db.yml", "-i", "inventories/sandbox", "-e", "trdrhub_incident_id=",
                               "-e", '{"contain_db_applications": ["itest-ledger-matches-nothing"]}', extra_env=env)
    assert run.rc == 0, run.output
    (incident_dir,) = root.iterdir()
    incident = incident_dir.name
    assert incident.startswith("db-") and f"Incident {incident} (generated for this run" in run.output
    entries = read_file_ledger(incident_dir / "ledger.jsonl")
    check_chain(entries, incident)
    decisions = [e for e in entries if e["event"] == "decision"]
    assert len(decisions) == 1 and decisions[0]["data"]["confirmed"] is False and decisions[0]["data"]["sessions"] == 0
    assert decisions[0]["phase"] == "contain" and decisions[0]["actor"].startswith("local:")
    # The first tasks ran before the id was chosen; they were held and written once it was known.
    assert entries[1]["task"].startswith("Validating arguments") or "observed_at" in entries[1]["data"]
    assert f"[{incident}] VALID - " in " ".join(run.output.split())
    assert "NOT recorded" not in run.output
    assert trdrhub_db["ops"]["password"] not in json.dumps(entries)


def test_check_mode_records_nothing_unless_dry_runs_are_recorded_and_then_never_opens_an_incident(
        ansible, hosts, tmp_path):
    root = tmp_path / "incidents"
    env = {"TRDRHUB_LEDGER_DIR": str(root)}
    assert _recorded_run(ansible, hosts, tmp_path, "INC-DRY", env).rc == 0
    before = read_file_ledger(root / "INC-DRY" / "ledger.jsonl")

    look = ansible.run_playbook(tmp_path / "pb.yml", "-i", hosts, "-e", "trdrhub_incident_id=INC-DRY", "--check",
                                extra_env=env)
    assert look.rc == 0, look.output
    assert "INCIDENT LEDGER: check mode - nothing recorded" in look.output
    assert read_file_ledger(root / "INC-DRY" / "ledger.jsonl") == before

    recorded = dict(env, TRDRHUB_LEDGER_RECORD_CHECK_MODE="true")
    look = ansible.run_playbook(tmp_path / "pb.yml", "-i", hosts, "-e", "trdrhub_incident_id=INC-DRY", "--check",
                                extra_env=recorded)
    assert look.rc == 0, look.output
    after = read_file_ledger(root / "INC-DRY" / "ledger.jsonl")
    check_chain(after, "INC-DRY")
    added = after[len(before):]
    assert [e["event"] for e in added] == ["playbook_start", "task", "task", "task", "playbook_end"]
    assert all(e["data"]["dry_run"] is True for e in added) and added[0]["data"]["check_mode"] is True

    new = ansible.run_playbook(tmp_path / "pb.yml", "-i", hosts, "-e", "trdrhub_incident_id=INC-NEW", "--check",
                               extra_env=recorded)
    assert new.rc == 0, new.output
    assert "INCIDENT LEDGER INC-NEW: check mode - not recorded, the incident has no ledger" in " ".join(new.output.split())
    assert sorted(p.name for p in root.iterdir()) == ["INC-DRY"]
