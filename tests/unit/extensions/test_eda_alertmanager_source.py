# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The trdrhub.incident.alertmanager event source, served in-process by its own ``main()``.

Requests go over real HTTP(S) to the listening source; what lands on the queue is what
ansible-rulebook would see. No ansible-rulebook is needed, only aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import logging
import socket
import ssl
import sys
import time
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp", reason="the EDA event source needs aiohttp (installed with ansible-rulebook)")

_PLUGIN = Path(__file__).resolve().parents[3] / "extensions" / "eda" / "plugins" / "event_source" / "alertmanager.py"
_SPEC = importlib.util.spec_from_file_location("trdrhub_eda_alertmanager", _PLUGIN)
source = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = source
_SPEC.loader.exec_module(source)

TOKEN = "eda-unit-" + "5f0c2a9b7e1d4c38"
SECRET = "hmac-unit-" + "a17c44e09b2f"


def payload(*alerts, status="firing"):
    """A webhook_config v4 payload, as Alertmanager sends it."""
    return {
        "version": "4", "groupKey": '{}:{alertname="QueueLagCritical"}', "truncatedAlerts": 0, "status": status,
        "receiver": "eda", "groupLabels": {"alertname": "QueueLagCritical"},
        "commonLabels": {"service": "lcpilot"}, "commonAnnotations": {}, "externalURL": "http://am.example:9093",
        "alerts": list(alerts),
    }


def alert(name="QueueLagCritical", severity="P1", status="firing", fingerprint="c0ffee00c0ffee00", **labels):
    return {
        "status": status, "startsAt": "2025-01-15T14:30:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph", "fingerprint": fingerprint,
        "labels": {"alertname": name, "severity": severity, "component": "queue", "service": "lcpilot",
                   "instance": "worker-1.trdrhub:9100", **labels},
        "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Source:
    """``main(queue, args)`` running as a task; ``post`` sends a request; ``events`` drains the queue."""

    def __init__(self, args: dict) -> None:
        self.port = free_port()
        self.args = {"host": "127.0.0.1", "port": self.port, **args}
        self.queue: asyncio.Queue = asyncio.Queue()
        scheme = "https" if args.get("certfile") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ssl = None

    async def __aenter__(self):
        self.task = asyncio.ensure_future(source.main(self.queue, self.args))
        for _attempt in range(200):
            if self.task.done():
                self.task.result()   # start-up failed: raise it
            with contextlib.suppress(OSError):
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            await asyncio.sleep(0.02)
        raise AssertionError("the source never listened")

    async def __aexit__(self, *exc):
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def post(self, body, headers=None, path="/alerts", content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with aiohttp.ClientSession() as session, session.post(
                self.url + path, data=data, headers=hdrs, ssl=self.ssl) as resp:
            return resp.status, dict(resp.headers), await resp.text()

    def events(self) -> list:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


def run(coro):
    return asyncio.run(coro)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def sign(body: bytes, secret=SECRET, algo="sha256", stamp=None, fmt="hex"):
    message = (f"{stamp}.".encode() + body) if stamp is not None else body
    digest = hmac.new(secret.encode(), message, algo).digest()
    return digest.hex() if fmt == "hex" else base64.b64encode(digest).decode()


# -- bearer token ---------------------------------------------------------------------------
def test_valid_bearer_queues_one_normalised_event_per_alert():
    async def scenario():
        async with Source({"token": TOKEN, "data_host_path": "labels.instance"}) as src:
            body = payload(alert(), alert("AllWorkersDown", severity="p2", fingerprint="", component="queue"),
                           alert("ReportSlow", severity="warning", status="resolved", fingerprint="ab12"))
            status = (await src.post(body, bearer()))[0]
            return status, src.events()

    status, events = run(scenario())
    assert status == 202
    assert [e["alertname"] for e in events] == ["QueueLagCritical", "AllWorkersDown", "ReportSlow"]
    assert [e["severity"] for e in events] == ["P1", "P2", None]
    assert [e["status"] for e in events] == ["firing", "firing", "resolved"]
    assert events[0]["fingerprint"] == "c0ffee00c0ffee00"
    computed = events[1]["fingerprint"]
    assert len(computed) == 16 and int(computed, 16) >= 0   # derived from the labels when none is sent
    assert events[0]["alert"]["labels"]["severity"] == "P1"
    meta = events[0]["meta"]
    assert meta["hosts"] == ["worker-1.trdrhub"]
    assert (meta["receiver"], meta["endpoint"], meta["common_labels"]) == ("eda", "/alerts", {"service": "lcpilot"})
    assert all("authorization" not in {k.lower() for k in e["meta"]["headers"]} for e in events)
    assert TOKEN not in json.dumps(events)


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}],
                         ids=["missing", "wrong", "other-scheme", "empty"])
def test_missing_or_wrong_token_is_401_and_queues_nothing(headers, caplog):
    async def scenario():
        async with Source({"token": TOKEN}) as src:
            result = await src.post(payload(alert()), headers)
            return result, src.events()

    with caplog.at_level(logging.INFO):
        (status, resp_headers, _text), events = run(scenario())
    assert status == 401 and events == []
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in caplog.text and "Bearer wrong" not in caplog.text


def test_token_from_env_and_file_and_rotation_list(monkeypatch, tmp_path):
    monkeypatch.setenv("TRDRHUB_EDA_UNIT_TOKEN", TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text("from-file-token\n")

    async def scenario():
        results = []
        for args, good in (({"token_env": "TRDRHUB_EDA_UNIT_TOKEN"}, TOKEN),
                           ({"token": "", "token_file": str(token_file)}, "from-file-token"),
                           ({"token": ["old-token", "new-token"]}, "old-token")):
            async with Source(args) as src:
                results.append(((await src.post(payload(alert()), bearer(good)))[0],
                                (await src.post(payload(alert()), bearer(good + "x")))[0], len(src.events())))
        return results

    assert run(scenario()) == [(202, 401, 1)] * 3


# -- HMAC ---------------------------------------------------------------------------------
def test_hmac_valid_and_invalid_signatures():
    body = json.dumps(payload(alert())).encode()

    async def scenario():
        async with Source({"hmac_secret": SECRET}) as src:
            return [
                (await src.post(body, {"X-Hub-Signature-256": "sha256=" + sign(body)}))[0],
                (await src.post(body, {"X-Hub-Signature-256": sign(body)}))[0],               # bare digest
                (await src.post(body, {"X-Hub-Signature-256": "sha256=" + sign(body, "other")}))[0],
                (await src.post(body + b" ", {"X-Hub-Signature-256": "sha256=" + sign(body)}))[0],  # body changed
                (await src.post(body, {"X-Hub-Signature-256": "sha256=nothex"}))[0],
                (await src.post(body, {}))[0],
            ], src.events()

    statuses, events = run(scenario())
    assert statuses == [202, 202, 401, 401, 401, 401]
    assert len(events) == 2


def test_hmac_configurable_header_algorithm_and_base64():
    body = json.dumps(payload(alert())).encode()

    async def scenario():
        async with Source({"hmac_secret": SECRET, "hmac_header": "X-Signature", "hmac_algo": "sha512",
                           "hmac_format": "base64"}) as src:
            ok = await src.post(body, {"X-Signature": sign(body, algo="sha512", fmt="base64")})
            sha256 = await src.post(body, {"X-Signature": sign(body, fmt="base64")})
            return ok[0], sha256[0], src.events()

    ok, wrong_algo, events = run(scenario())
    assert (ok, wrong_algo, len(events)) == (202, 401, 1)
    assert "X-Signature" not in events[0]["meta"]["headers"]


def test_hmac_timestamp_replay_and_skew():
    body = json.dumps(payload(alert())).encode()
    args = {"hmac_secret": SECRET, "hmac_timestamp_header": "X-Signature-Timestamp", "hmac_max_skew": 60}

    def headers(stamp, signed_stamp=None):
        signed = stamp if signed_stamp is None else signed_stamp
        return {"X-Hub-Signature-256": "sha256=" + sign(body, stamp=signed), "X-Signature-Timestamp": stamp}

    async def scenario():
        now = str(int(time.time()))
        async with Source(args) as src:
            return [
                (await src.post(body, headers(now)))[0],                           # fresh
                (await src.post(body, headers(now)))[0],                           # the same request again
                (await src.post(body, headers(str(int(time.time()) - 600))))[0],   # old, correctly signed
                (await src.post(body, headers(str(int(time.time()) + 1), now)))[0],  # time changed after signing
                (await src.post(body, {"X-Hub-Signature-256": "sha256=" + sign(body)}))[0],  # no timestamp
            ], src.events()

    statuses, events = run(scenario())
    assert statuses == [202, 401, 401, 401, 401]
    assert len(events) == 1


def test_bearer_and_hmac_both_required_when_both_configured():
    body = json.dumps(payload(alert())).encode()
    signature = {"X-Hub-Signature-256": "sha256=" + sign(body)}

    async def scenario():
        async with Source({"token": TOKEN, "hmac_secret": SECRET}) as src:
            return [(await src.post(body, bearer()))[0], (await src.post(body, signature))[0],
                    (await src.post(body, {**bearer(), **signature}))[0]], len(src.events())

    assert run(scenario()) == ([401, 401, 202], 1)


# -- bad requests -------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b'{"alerts": [', "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"status": "firing"}', "application/json", 400),
    (b'{"alerts": ["text"]}', "application/json", 400),
    (b'{"alerts": []}', "text/plain", 415),
], ids=["truncated", "not-utf8", "not-object", "no-alerts", "alert-not-object", "content-type"])
def test_malformed_or_wrong_content_is_refused(body, content_type, status):
    async def scenario():
        async with Source({"token": TOKEN}) as src:
            return (await src.post(body, bearer(), content_type=content_type))[0], src.events()

    assert run(scenario()) == (status, [])


def test_oversized_body_is_413_and_queues_nothing():
    big = payload(*[alert(fingerprint=f"{i:016x}", filler="x" * 1000) for i in range(20)])

    async def scenario():
        async with Source({"token": TOKEN, "max_body_size": 4096}) as src:
            small = await src.post(payload(alert()), bearer())
            large = await src.post(big, bearer())
            return small[0], large[0], len(src.events())

    assert run(scenario()) == (202, 413, 1)


def test_wrong_path_and_method():
    async def scenario():
        async with Source({"token": TOKEN, "path": "hooks/am"}) as src:
            other = await src.post(payload(alert()), bearer(), path="/alerts")
            right = await src.post(payload(alert()), bearer(), path="/hooks/am")
            async with aiohttp.ClientSession() as session, session.get(src.url + "/healthz") as resp:
                health = resp.status, await resp.text()
            return other[0], right[0], health, len(src.events())

    assert run(scenario()) == (404, 202, (200, "up"), 1)


def test_original_payload_event_when_asked_and_severity_map():
    async def scenario():
        async with Source({"token": TOKEN, "skip_original_data": False, "severity_map": {"critical": "p1"}}) as src:
            await src.post(payload(alert(severity="critical")), bearer())
            return src.events()

    first, second = run(scenario())
    assert first["payload"]["groupKey"] and "alert" not in first
    assert second["severity"] == "P1"
    assert "hosts" not in second["meta"]   # a present key, even empty, limits ansible-rulebook's actions


# -- start-up -----------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    ({}, "no authentication configured"),
    ({"token": ""}, "no authentication configured"),
    ({"token_env": "TRDRHUB_EDA_UNIT_UNSET"}, "no authentication configured.*TRDRHUB_EDA_UNIT_UNSET is not set"),
    ({"token_file": "/nonexistent/token"}, "cannot read /nonexistent/token"),
    ({"hmac_secret": SECRET, "hmac_algo": "nosuchdigest"}, "unknown digest"),
    ({"token": TOKEN, "keyfile": "/x.key"}, "keyfile needs certfile"),
    ({"token": TOKEN, "severity_map": {"critical": "urgent"}}, "severity_map"),
    ({"token": TOKEN, "max_body_size": "1MB"}, "max_body_size: '1MB' is not a whole number"),
], ids=["nothing", "empty-token", "unset-env", "missing-file", "bad-algo", "key-without-cert", "bad-map", "bad-size"])
def test_refuses_to_start_without_safe_configuration(args, message, monkeypatch):
    monkeypatch.delenv("TRDRHUB_EDA_UNIT_UNSET", raising=False)
    port = free_port()

    async def scenario():
        await asyncio.wait_for(source.main(asyncio.Queue(), {"port": port, **args}), 10)

    with pytest.raises(source.ConfigError, match=message):
        run(scenario())
    with socket.socket() as sock:   # nothing was left listening
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_insecure_flag_accepts_anyone_and_warns(caplog):
    async def scenario():
        async with Source({"insecure_no_auth": True}) as src:
            return (await src.post(payload(alert()), {}))[0], len(src.events())

    with caplog.at_level(logging.WARNING):
        assert run(scenario()) == (202, 1)
    assert "insecure_no_auth is set" in caplog.text


def test_tls_serves_https(tmp_path):
    harness = str(Path(__file__).resolve().parents[2] / "harness")
    if harness not in sys.path:
        sys.path.insert(0, harness)
    certs = pytest.importorskip("trdrhub_harness.certs", reason="the harness certificates need the cryptography package")
    authority = certs.TestCA()
    server = authority.issue().write(tmp_path, "server")
    authority.ca.write(tmp_path, "ca")

    async def scenario():
        async with Source({"token": TOKEN, "certfile": str(server.cert_path), "keyfile": str(server.key_path)}) as src:
            src.ssl = ssl.create_default_context(cafile=str(authority.ca.cert_path))
            ok = await src.post(payload(alert()), bearer())
            return ok[0], len(src.events())

    assert run(scenario()) == (202, 1)


def test_fingerprint_from_labels_is_stable():
    labels = {"alertname": "AllWorkersDown", "severity": "P1"}
    same = source._fingerprint(dict(reversed(list(labels.items()))))
    assert source._fingerprint(labels) == same
    assert source._fingerprint({**labels, "severity": "P2"}) != same
    assert same == hashlib.sha256(json.dumps(labels, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def test_documentation_parses_and_its_defaults_are_the_behaviour():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(source.DOCUMENTATION)
    assert yaml.safe_load(source.EXAMPLES)
    settings = source.Settings.from_args({"insecure_no_auth": True})
    defaults = {name: opt["default"] for name, opt in doc["options"].items() if "default" in opt}
    # insecure_no_auth is given here; every other documented default is what an empty argument gives.
    defaults.pop("insecure_no_auth")
    assert defaults == {name: getattr(settings, name) for name in defaults}
    secrets = {"token", "token_env", "token_file", "hmac_secret", "hmac_secret_env", "hmac_secret_file"}
    assert set(doc["options"]) - secrets - {"insecure_no_auth"} <= set(vars(settings))
