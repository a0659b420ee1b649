"""Fixtures for the integration tests: real PostgreSQL (harness), real ansible-playbook.

They serve every test under tests/integration: the cross-cutting files here and the mirrors of the
code in plugins/modules/, plugins/callback/ and playbooks/ (docs/architecture.md, "Where a test goes").

Every test gets its own application_name prefix (``app``) and filters on it, so tests
never see each other's sessions and can run in any order; every session a test spawns
is terminated by a finalizer, also when the test fails.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_HARNESS = _HERE.parent / "harness"
for _path in (str(_HARNESS), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _itest_ansible import AnsibleRunner
from _itest_sessions import Monitor, SessionFactory
from trdrhub_harness import workload

HARNESS_PLUGIN = "trdrhub_harness.pytest_plugin"

DB = "trdrhub"
OTHER_DB = "itest_other"
NOSIGNAL_ROLE = "itest_nosignal"
# The same in every xdist worker: each worker's session fixture (re)sets it on the shared server.
NOSIGNAL_PASSWORD = "itest-nosignal-" + uuid.uuid5(uuid.NAMESPACE_URL, "trdrhub-itest-nosignal").hex


def pytest_configure(config):
    # The harness's session fixtures (pg_server, ...) and its markers (integration, smoke). Registered
    # here rather than through ``pytest_plugins``, which pytest only allows in the rootdir's conftest:
    # this way both ``pytest tests/integration`` and ``pytest tests`` work, with or without ``-p`` for it.
    if not config.pluginmanager.has_plugin(HARNESS_PLUGIN):
        config.pluginmanager.import_plugin(HARNESS_PLUGIN)


@pytest.fixture(scope="session")
def trdrhub_db(pg_server):
    """The trdrhub database and roles (workload), plus what only these tests need.

    ``itest_other`` is a second database for the ``databases`` filter; ``itest_nosignal``
    can read every session (pg_read_all_stats) but lacks pg_signal_backend.
    """
    creds = workload.create_trdrhub_db(pg_server, dbname=DB)
    admin = pg_server.connect()
    try:
        cur = admin.cursor()
        cur.execute("SELECT pg_advisory_lock(%s)", (workload.CREATE_LOCK,))   # one xdist worker at a time; released on close
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (OTHER_DB,))
        if not cur.fetchone():
            cur.execute(f"CREATE DATABASE {OTHER_DB}")
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (NOSIGNAL_ROLE,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(f"{verb} ROLE {NOSIGNAL_ROLE} LOGIN NOSUPERUSER PASSWORD %s", (NOSIGNAL_PASSWORD,))
        cur.execute(f"GRANT pg_read_all_stats TO {NOSIGNAL_ROLE}")
        cur.execute(f"GRANT CONNECT ON DATABASE {OTHER_DB} TO {creds['app']['user']}")
    finally:
        admin.close()
    return creds


@pytest.fixture(scope="session")
def passwords(pg_server, trdrhub_db):
    return {
        pg_server.superuser: pg_server.password,
        trdrhub_db["app"]["user"]: trdrhub_db["app"]["password"],
        trdrhub_db["ops"]["user"]: trdrhub_db["ops"]["password"],
        NOSIGNAL_ROLE: NOSIGNAL_PASSWORD,
    }


@pytest.fixture(scope="session")
def login(pg_server, trdrhub_db):
    """Connection options for the modules, by who logs in and how."""
    tcp = {"login_host": pg_server.host, "login_port": pg_server.port, "login_db": DB}
    return {
        "super_tcp": {**tcp, "login_user": pg_server.superuser, "login_password": pg_server.password},
        "super_socket": {"login_unix_socket": pg_server.socket_dir, "login_port": pg_server.port,
                         "login_user": pg_server.superuser, "login_db": DB},
        "ops": {**tcp, "login_user": trdrhub_db["ops"]["user"], "login_password": trdrhub_db["ops"]["password"]},
        "nosignal": {**tcp, "login_user": NOSIGNAL_ROLE, "login_password": NOSIGNAL_PASSWORD},
    }


@pytest.fixture(scope="session")
def monitor(pg_server, trdrhub_db):
    mon = Monitor(pg_server)
    yield mon
    mon.close()


@pytest.fixture(scope="session")
def ansible(tmp_path_factory):
    return AnsibleRunner(tmp_path_factory.mktemp("ansible"))


@pytest.fixture
def app(request):
    """An application_name prefix no other test uses; filter on ``app + '*'``."""
    name = request.node.name.replace("test_", "", 1)
    name = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:30]
    return f"itest-{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def sessions(pg_server, monitor, passwords):
    factory = SessionFactory(pg_server, monitor, passwords, DB, workload.APP_ROLE)
    yield factory
    factory.close()


@pytest.fixture
def lock_table(pg_server, trdrhub_db, sessions):
    """A fresh table for lock blocker/waiter pairs; dropped after the sessions are reaped."""
    name = "itest_lock_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=DB)
    try:
        conn.cursor().execute(f"CREATE TABLE {name} (id int); GRANT ALL ON {name} TO {trdrhub_db['app']['user']}")
        yield name
        sessions.close()
        conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        conn.close()


@pytest.fixture
def incident(pg_server, trdrhub_db, monitor):
    """The harness workload's realistic incident; reaped and gone from pg_stat_activity afterwards."""
    made = []

    def make(**kw):
        inc = workload.Incident(pg_server, dbname=DB, app_password=trdrhub_db["app"]["password"], **kw)
        made.append(inc)
        return inc

    yield make
    for inc in made:
        pids = inc.pids()
        try:
            inc.close()
        finally:
            if monitor.wait_gone(pids, timeout=5):
                monitor.terminate(pids)
                monitor.wait_gone(pids, timeout=10)
