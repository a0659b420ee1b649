"""Faults injected in the middle of the work: a clear failure, no partial success, nothing lost.

Each test starts the real work, injects the fault while it is under way (a killed PostgreSQL
connection, a full or read-only ledger filesystem, a ledger append caught half-way), checks
the answer, and then shows that a re-run after the fault completes.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import threading
import time
import uuid

import _itest_audit as audit
import pytest
from _itest_ledger import check_chain, read_file_ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MODULE_APPLICATION = "trdrhub.incident"   # the application_name every module connects with


class Background:
    """``ansible.run`` in a thread, so the test can break things while the module works."""

    def __init__(self, ansible, module: str, args: dict, **kw) -> None:
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(ansible, module, args), kwargs=kw, daemon=True)
        self.thread.start()

    def _run(self, ansible, module, args, **kw) -> None:
        try:
            self.result = ansible.run(module, args, **kw)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by join()
            self.error = exc

    def join(self, timeout: float = 120):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the module did not finish after its connection was killed"
        if self.error is not None:
            raise self.error
        return self.result


def module_backend(monitor, condition: str, timeout: float = 30.0) -> int:
    """The pid of the module's own backend once it matches ``condition`` (SQL on pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = monitor.query(f"SELECT pid FROM pg_stat_activity WHERE application_name = %s AND ({condition})",
                             (MODULE_APPLICATION,))
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(f"the module's backend never matched {condition!r}")


def one_sentence(msg: str) -> None:
    assert msg and "Traceback" not in msg and not msg.lower().startswith(("module failed", "module failure")), msg
    assert "psycopg2" not in msg and "OperationalError" not in msg, msg


# --- PostgreSQL connection killed while pg_terminate_sessions waits for its grace period -----------


def test_connection_killed_while_terminate_waits_fails_clearly_and_a_rerun_completes(ansible, sessions, monitor,
                                                                                     login, app):
    stubborn = sessions.stubborn(app + "-stubborn")
    args = {**login["super_socket"], "applications": [app + "*"], "states": ["active"],
            "mode": "cancel_then_terminate", "grace": 20}
    run = Background(ansible, "pg_terminate_sessions", args)
    # The module has cancelled the statement and now polls, idle between polls, for the grace period.
    backend = module_backend(monitor, "state = 'idle' AND pid <> pg_backend_pid()")
    time.sleep(0.3)
    monitor.terminate([backend])

    broken = run.join()
    assert broken.failed, broken.output
    one_sentence(broken["msg"])
    assert broken["msg"].startswith("Lost the connection to PostgreSQL during SELECT"), broken["msg"]
    assert broken.get("changed") is not True or broken.get("sessions"), broken.result
    assert not any(s.get("outcome") == "terminated" for s in broken.get("sessions") or []), broken.result
    monitor.assert_killed(alive=[stubborn])

    rerun = ansible.run("pg_terminate_sessions", {**args, "grace": 1})
    assert not rerun.failed, rerun.output
    assert rerun.outcomes() == {stubborn.pid: "terminated"}, rerun["sessions"]
    monitor.assert_killed(killed=[stubborn])


# --- PostgreSQL connection killed while audit_chain_verify streams the table ------------------------

# Enough rows that the verification streams for a second or more even on a loaded machine (the kill
# lands within a few polls of 20 ms once the stream shows), few enough to generate and verify quickly.
ROWS = 75_000


@pytest.fixture(scope="module")
def big_table(pg_server, trdrhub_db):
    dbname = audit.ensure_audit_db(pg_server)
    name = "itest_fault_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=dbname)
    audit.create_audit_table(conn, name)
    audit.copy_rows(conn, name, audit.audit_rows(ROWS))
    yield dbname, name
    conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def test_connection_killed_while_chain_verify_streams_fails_clearly_and_a_rerun_completes(ansible, monitor, login,
                                                                                          big_table):
    dbname, table = big_table
    args = {**login["super_tcp"], "login_db": dbname, "table": table}
    run = Background(ansible, "audit_chain_verify", args)
    # The stream itself: the named cursor's DECLARE ... FROM the table, or one of its FETCHes. (The
    # table's name also shows in the lookup of the table before the snapshot is taken; a kill then
    # would hit another statement.)
    backend = module_backend(monitor, f"query ILIKE 'DECLARE%%{table}%%' OR query ILIKE 'FETCH%%'")
    monitor.terminate([backend])

    broken = run.join()
    assert broken.failed, broken.output
    one_sentence(broken["msg"])
    assert broken["msg"].startswith("Lost the connection to PostgreSQL during SELECT"), broken["msg"]
    assert broken.get("is_valid") is not True, broken.result

    rerun = ansible.run("audit_chain_verify", args, timeout=180)
    assert not rerun.failed, rerun.output
    assert rerun["is_valid"] is True and rerun["total_entries"] == ROWS, rerun.result


# --- The ledger's filesystem full or read-only during an append -------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs for the incidents home (needs root, as on the CI machine)."""
    mountpoint = tmp_path / "fs"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(directory) -> None:
    """Write a filler file until the filesystem has no space left."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


def record(ansible, root, msg: str):
    return ansible.run("ledger_record", {"incident_id": "INC-FULL", "event": "note", "msg": msg, "root": str(root)})


def test_a_full_ledger_filesystem_fails_loudly_leaves_no_half_entry_and_the_chain_continues(ansible, small_fs):
    root = small_fs / "incidents"
    ledger = root / "INC-FULL" / "ledger.jsonl"
    first = record(ansible, root, "before the disk filled")
    assert not first.failed, first.output

    fill(small_fs)
    big = "x" * 12_000   # more than the slack of the ledger's last page
    full = record(ansible, root, big)
    assert full.failed, full.output
    one_sentence(full["msg"])
    assert full["msg"] == f"Cannot append to the incident ledger {ledger}: No space left on device; nothing was appended."
    entries = read_file_ledger(ledger)   # ends with a newline: no half entry
    check_chain(entries, "INC-FULL")
    assert len(entries) == 1

    (small_fs / "filler").unlink()
    after = record(ansible, root, big)
    assert not after.failed, after.output
    entries = read_file_ledger(ledger)
    check_chain(entries, "INC-FULL")
    assert [e["seq"] for e in entries] == [1, 2] and entries[1]["prev_hash"] == first["hash"]


def test_a_read_only_ledger_filesystem_fails_loudly_and_the_chain_continues_once_writable(ansible, small_fs):
    root = small_fs / "incidents"
    ledger = root / "INC-FULL" / "ledger.jsonl"
    first = record(ansible, root, "before remount")
    assert not first.failed, first.output

    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    try:
        refused = record(ansible, root, "while read-only")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    assert refused.failed, refused.output
    one_sentence(refused["msg"])
    assert "Read-only file system" in refused["msg"], refused["msg"]
    assert len(read_file_ledger(ledger)) == 1

    after = record(ansible, root, "writable again")
    assert not after.failed, after.output
    entries = read_file_ledger(ledger)
    check_chain(entries, "INC-FULL")
    assert [e["seq"] for e in entries] == [1, 2]


# --- A verification concurrent with an append never sees half an entry ------------------------------


def wait_blocked_on(path, run: Background, timeout: float = 60.0) -> None:
    """Until a process waits for the flock of ``path`` (a ``->`` line of /proc/locks), or the run ends first."""
    inode = str(os.stat(path).st_ino)   # /proc/locks names the file major:minor:inode
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.thread.is_alive():
        with open("/proc/locks", encoding="ascii") as locks:
            if any(f[1:3] == ["->", "FLOCK"] and f[6].rsplit(":", 1)[-1] == inode for f in map(str.split, locks)):
                return
        time.sleep(0.05)
    assert not run.thread.is_alive(), f"nothing waited for the lock of {path} within {timeout:.0f}s"


def test_verification_waits_for_an_append_in_progress(ansible, tmp_path):
    directory = tmp_path / "incidents" / "INC-LOCK"
    directory.mkdir(parents=True)
    first, second = audit.ledger_entries("INC-LOCK", 2)
    line = (json.dumps(second, ensure_ascii=False) + "\n").encode()
    audit.write_ledger(directory / "ledger.jsonl", [first])

    lock = os.open(directory / "ledger.lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)   # an appender holds the lock ...
        with open(directory / "ledger.jsonl", "ab") as handle:
            handle.write(line[:40])          # ... and has written half of its entry
            handle.flush()
            run = Background(ansible, "audit_chain_verify", {"source": "ledger_file", "path": str(directory)})
            wait_blocked_on(directory / "ledger.lock", run)
            assert run.thread.is_alive(), "the verification read the ledger while an append held its lock"
            handle.write(line[40:])
    finally:
        os.close(lock)
    verified = run.join()
    assert not verified.failed, verified.output
    assert verified["is_valid"] is True and verified["total_entries"] == 2, verified.result
