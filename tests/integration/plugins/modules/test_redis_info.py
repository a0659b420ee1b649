"""redis_info through real ansible-playbook against real harness Redis servers.

One primary with a real replica, a password and ACL users; one TLS-only server that
demands client certificates. Every scenario without timing of its own runs in one
batch playbook (``_itest_batch``) to keep the suite short on a shared machine.
"""
from __future__ import annotations

import time
import uuid

import pytest
from _itest_batch import run_batch
from trdrhub_harness import free_port
from trdrhub_harness.redis import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PASSWORD = "itest-redis-" + uuid.uuid4().hex
MON_PASSWORD = "itest-mon-" + uuid.uuid4().hex
NOINFO_PASSWORD = "itest-noinfo-" + uuid.uuid4().hex
# Exactly the least-privilege user redis_info's documentation recommends.
MON_RULES = (f"on >{MON_PASSWORD} resetkeys %R~* resetchannels -@all +ping +info +type +llen +xlen +zcard +scard "
             "+xinfo|groups")
NOINFO_RULES = f"on >{NOINFO_PASSWORD} ~* -@all +ping +type +llen"
SECRETS = (PASSWORD, MON_PASSWORD, NOINFO_PASSWORD)
QUEUES = ["itest:jobs", {"key": "itest:events", "type": "stream"}, "itest:delayed", {"key": "itest:workers", "type": "set"},
          "itest:absent"]


def _wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def primary():
    with RedisServer(password=PASSWORD, users={"mon": MON_RULES, "noinfo": NOINFO_RULES}) as server:
        server.start()
        conn = server.client()
        conn.rpush("itest:jobs", *range(5))
        for i in range(3):
            conn.xadd("itest:events", {"n": i})
        conn.xgroup_create("itest:events", "workers", id="0")
        conn.xreadgroup("workers", "w1", {"itest:events": ">"}, count=1)   # 1 pending, 2 not yet delivered
        conn.zadd("itest:delayed", {"a": 1, "b": 2})
        conn.sadd("itest:workers", "w1")
        yield server


@pytest.fixture(scope="module")
def replica(primary):
    with RedisServer(password=PASSWORD, replica_of=primary) as server:
        server.start()
        server.wait_replicating()
        conn, admin = server.client(), primary.client()
        _wait(lambda: conn.llen("itest:jobs") == 5 and conn.exists("itest:workers"), what="the replica to copy the keys")

        def online():
            info = admin.info("replication")
            return info.get("slave0", {}).get("state") == "online" and info["slave0"].get("port") == server.port

        _wait(online, what="the primary to list the replica online")
        # Keys copied by the initial full sync do not move the offsets; a write after it does.
        primary.client(db=1).set("itest:marker", 1)
        _wait(lambda: server.client(db=1).exists("itest:marker"), what="the replica to apply a streamed write")
        yield server


@pytest.fixture(scope="module")
def tls_server():
    with RedisServer(tls=True, tls_auth_clients="yes") as server:
        yield server.start()


@pytest.fixture(scope="module")
def runs(ansible, primary, replica, tls_server):
    """Every scenario of this file, in one ansible-playbook run."""
    auth = {"host": primary.host, "port": primary.port, "password": PASSWORD}
    tls = {"host": tls_server.host, "port": tls_server.port, "tls": True, "ca_path": tls_server.ca_path,
           "client_cert": tls_server.client_cert, "client_key": tls_server.client_key}
    dead_port = free_port()
    tasks = {
        "primary": ("redis_info", {**auth, "queues": QUEUES}),
        "primary_check": ("redis_info", {**auth, "queues": QUEUES}, {"check_mode": True}),
        "module_defaults": ("redis_info", {"queues": ["itest:jobs"]}, {"module_defaults": {"group/trdrhub.incident.redis": auth}}),
        "replica": ("redis_info", {"host": replica.host, "port": replica.port, "password": PASSWORD, "queues": ["itest:jobs"]}),
        "url": ("redis_info", {"url": f"redis://:{PASSWORD}@{primary.host}:{primary.port}/0", "queues": ["itest:jobs"]}),
        "wrong_password": ("redis_info", {**auth, "password": "wrong-" + PASSWORD[::-1]}),
        "no_password": ("redis_info", {"host": primary.host, "port": primary.port}),
        "acl_mon": ("redis_info", {"host": primary.host, "port": primary.port, "username": "mon", "password": MON_PASSWORD,
                                   "queues": QUEUES}),
        "acl_noinfo": ("redis_info", {"host": primary.host, "port": primary.port, "username": "noinfo",
                                      "password": NOINFO_PASSWORD}),
        "acl_wrong_user_password": ("redis_info", {"host": primary.host, "port": primary.port, "username": "mon",
                                                   "password": NOINFO_PASSWORD}),
        "unreachable": ("redis_info", {"host": "127.0.0.1", "port": dead_port, "password": PASSWORD}),
        "tls": ("redis_info", tls),
        "tls_url": ("redis_info", {"url": f"rediss://{tls_server.host}:{tls_server.port}/0", "ca_path": tls_server.ca_path,
                                   "client_cert": tls_server.client_cert, "client_key": tls_server.client_key}),
        "tls_unknown_ca": ("redis_info", {**tls, "ca_path": None}),
        "tls_no_client_cert": ("redis_info", {**tls, "client_cert": None, "client_key": None}),
        "plain_to_tls": ("redis_info", {"host": tls_server.host, "port": tls_server.port}),
    }
    return run_batch(ansible, tasks) | {"_dead_port": dead_port}


def test_no_secret_reaches_the_output(runs):
    output = runs["primary"].output   # terminal output and every registered result of the batch
    for secret in SECRETS:
        assert secret not in output


def test_primary_with_a_real_replica(runs, primary, replica):
    res = runs["primary"]
    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["ping"]["ok"] is True and len(res["ping"]["samples_ms"]) == 3
    assert res["ping"]["latency_ms"] == sorted(res["ping"]["samples_ms"])[1]
    assert res["role"] == "master" and res["server"]["redis_version"].startswith(("6.", "7.", "8."))
    repl = res["replication"]
    assert repl["connected_replicas"] == 1
    [entry] = repl["replicas"]
    assert (entry["ip"], entry["port"], entry["state"]) == ("127.0.0.1", replica.port, "online")
    assert entry["lag_bytes"] == repl["master_repl_offset"] - entry["offset"] >= 0
    assert res["keyspace"]["db0"]["keys"] == 4
    assert res["memory"]["maxmemory"] == 0 and res["memory"]["usage_ratio"] is None and res["memory"]["used_memory"] > 0
    assert res["clients"]["connected_clients"] >= 2 and res["clients"]["maxclients"] > 0
    queues = res["queues"]
    assert queues["itest:jobs"] == {"key": "itest:jobs", "type": "list", "exists": True, "length": 5}
    assert queues["itest:delayed"]["length"] == 2 and queues["itest:delayed"]["type"] == "zset"
    assert queues["itest:workers"]["length"] == 1
    assert queues["itest:absent"] == {"key": "itest:absent", "type": "none", "exists": False, "length": 0}
    events = queues["itest:events"]
    assert events["length"] == 3
    [group] = events["groups"]
    assert (group["name"], group["consumers"], group["pending"], group["lag"], group["backlog"]) == ("workers", 1, 1, 2, 3)
    assert res["queries"][:2] == ["PING", "INFO"] and "XINFO GROUPS itest:events" in res["queries"]


def test_check_mode_is_identical(runs):
    normal, checked = runs["primary"], runs["primary_check"]
    assert not checked.failed, checked.output
    for key in ("role", "queues", "keyspace", "target", "queries", "server"):
        if key == "server":
            assert normal[key]["redis_version"] == checked[key]["redis_version"]
        else:
            assert normal[key] == checked[key], key


def test_replica_reports_its_link(runs, primary):
    res = runs["replica"]
    assert not res.failed, res.output
    repl = res["replication"]
    assert res["role"] == repl["role"] == "replica"
    assert (repl["master_host"], repl["master_port"], repl["master_link_status"]) == ("127.0.0.1", primary.port, "up")
    assert repl["master_last_io_seconds_ago"] >= 0 and repl["master_link_down_since_seconds"] is None
    assert repl["replica_offset"] > 0 and repl["lag_bytes"] == repl["master_repl_offset"] - repl["replica_offset"] >= 0
    assert repl["replica_read_only"] is True and repl["master_sync_in_progress"] is False
    assert res["queues"]["itest:jobs"]["length"] == 5


def test_connection_from_module_defaults(runs, primary):
    res = runs["module_defaults"]
    assert not res.failed, res.output
    assert res["target"]["port"] == primary.port and res["queues"]["itest:jobs"]["length"] == 5


def test_url_with_password(runs):
    res = runs["url"]
    assert not res.failed, res.output
    assert res["target"]["username"] is None and res["queues"]["itest:jobs"]["length"] == 5


@pytest.mark.parametrize("run, message", [
    ("wrong_password", "Cannot log in to Redis at 127.0.0.1:{port} (db 0, user default): invalid username-password pair or "
                       "user is disabled"),
    ("no_password", "Cannot log in to Redis at 127.0.0.1:{port} (db 0, user default): the server requires authentication: "
                    "set password (and username for an ACL user)"),
    ("acl_wrong_user_password", "Cannot log in to Redis at 127.0.0.1:{port} (db 0, user mon): invalid username-password "
                                "pair or user is disabled"),
    ("acl_noinfo", "Redis at 127.0.0.1:{port} (db 0, user noinfo) refused INFO: this user has no permissions to run the "
                   "'info' command (grant it with: ACL SETUSER noinfo +info)"),
])
def test_auth_failures_are_one_clear_message(runs, primary, run, message):
    res = runs[run]
    assert res.failed
    assert res["msg"] == message.format(port=primary.port)
    assert "Traceback" not in res.output


def test_least_privilege_acl_user_is_enough(runs):
    res = runs["acl_mon"]
    assert not res.failed, res.output
    assert res["target"]["username"] == "mon"
    assert res["queues"]["itest:events"]["groups"][0]["backlog"] == 3
    assert res["queues"]["itest:jobs"]["length"] == 5
    assert not res.get("warnings")


def test_unreachable_port(runs):
    res = runs["unreachable"]
    assert res.failed
    assert res["msg"] == f"Cannot connect to Redis at 127.0.0.1:{runs['_dead_port']} (db 0, user default): Connection refused"


def test_tls_with_client_certificate(runs, tls_server):
    for name in ("tls", "tls_url"):
        res = runs[name]
        assert not res.failed, res.output
        assert res["target"]["tls"] is True and res["ping"]["ok"] is True


@pytest.mark.parametrize("run, reason", [
    ("tls_unknown_ca", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
    ("tls_no_client_cert", ""),
])
def test_tls_failures(runs, tls_server, run, reason):
    res = runs[run]
    assert res.failed
    assert res["msg"].startswith(f"Cannot connect to Redis at 127.0.0.1:{tls_server.port} (db 0, user default, TLS): {reason}")
    assert res["msg"].endswith("check that the port speaks TLS and that ca_path, validate_certs and the client certificate "
                               "match it")
    assert "\n" not in res["msg"]


def test_plain_text_to_a_tls_port(runs, tls_server):
    res = runs["plain_to_tls"]
    assert res.failed
    assert res["msg"].startswith(f"Cannot connect to Redis at 127.0.0.1:{tls_server.port} (db 0, user default): ")
    assert res["msg"].endswith("if the server only accepts TLS connections, set tls: true or use a rediss:// url")
