"""Bad input: one clean failed result with ``msg``; no traceback; the password never shown."""
from __future__ import annotations

import uuid

import pytest
from trdrhub_harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "itest-Secret-" + uuid.uuid4().hex


def _case(name, args, msg_has, verbosity=0):
    return pytest.param(args, msg_has, verbosity, id=name)


CASES = [
    _case("bad-dsn", lambda pg, login: {"dsn": f"host=127.0.0.1 port={pg.port} password={SECRET} dbname='trdrhub"},
          ["Cannot connect"]),
    _case("bad-dsn-url", lambda pg, login: {"dsn": f"postgresql://postgres:{SECRET}@127.0.0.1:notaport/trdrhub"},
          ["Cannot connect"]),
    _case("unreachable", lambda pg, login: {"login_host": "127.0.0.1", "login_port": free_port(),
                                            "login_user": "postgres", "login_password": SECRET,
                                            "connect_timeout": 3},
          ["Cannot connect", "127.0.0.1"]),
    _case("wrong-password", lambda pg, login: {**login["ops"], "login_password": SECRET},
          ["Cannot connect", "trdrhub_ops", "password authentication failed"], verbosity=3),
    _case("invalid-regex", lambda pg, login: {**login["super_tcp"], "query_pattern": "pg_sleep(("},
          ["query_pattern"]),
    _case("invalid-cidr", lambda pg, login: {**login["super_tcp"], "client_addrs": ["10.0.0.0/33"]},
          ["client_addrs", "10.0.0.0/33"]),
    _case("negative-min-duration", lambda pg, login: {**login["super_tcp"], "min_duration": -1},
          ["min_duration"]),
    _case("max-sessions-zero", lambda pg, login: {**login["super_tcp"], "max_sessions": 0},
          ["max_sessions"]),
    _case("no-filter-at-all", lambda pg, login: {**login["super_tcp"], "applications": None},
          ["refusing to select every client session"]),
    _case("dsn-with-login-host", lambda pg, login: {"dsn": pg.dsn("trdrhub"), "login_host": "127.0.0.1"},
          ["mutually exclusive", "dsn", "login_host"]),
]


@pytest.mark.parametrize("make_args, msg_has, verbosity", CASES)
def test_bad_input_fails_cleanly(ansible, pg_server, login, make_args, msg_has, verbosity):
    args = make_args(pg_server, login)
    args.setdefault("applications", ["itest-bad-input-never-matches"])
    args = {key: value for key, value in args.items() if value is not None}

    res = ansible.run("pg_terminate_sessions", args, verbosity=verbosity)

    assert res.failed, res.output
    assert res["changed"] is False
    msg = res["msg"]
    assert msg and isinstance(msg, str)
    for needle in msg_has:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    assert "Traceback" not in res.output
    for secret in (SECRET, pg_server.password, login["ops"]["login_password"]):
        assert secret not in res.output, f"a password reached the output:\n{res.output}"
    if verbosity:
        assert "<localhost>" in res.output   # -vvv really was on


def test_info_module_bad_password_is_clean(ansible, login):
    res = ansible.run("pg_activity_info", {**login["ops"], "login_password": SECRET}, verbosity=3)

    assert res.failed
    assert "password authentication failed" in res["msg"]
    assert "Traceback" not in res.output
    assert SECRET not in res.output
