"""http_health_info against local HTTP(S) servers serving TRDR Hub's health routes, with certificates made here."""
from __future__ import annotations

import pytest
from _itest_http import KeyFunctionalityContract, StubServer, TrdrHubHealth
from trdrhub_harness import free_port
from trdrhub_harness.certs import TestCA

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ENDPOINTS = ["/healthz", "/health/live", "/health/ready", "/health/db-schema"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and four server certificates: valid, expiring in 3 days, for the wrong host, expired."""
    directory = tmp_path_factory.mktemp("pki")
    ca = TestCA()
    ca.ca.write(directory, "ca")
    return {
        "ca": str(ca.ca.cert_path),
        "valid": ca.issue(valid_days=90).write(directory, "valid"),
        "near": ca.issue(valid_days=3).write(directory, "near"),
        "wronghost": ca.issue(common_name="other.example", sans=["other.example"]).write(directory, "wronghost"),
        "expired": ca.issue(valid_days=-1).write(directory, "expired"),
    }


def _https(app, cert):
    return StubServer(routes=app.routes(), cert_file=str(cert.cert_path), key_file=str(cert.key_path))


def _strip_timing(result):
    return {key: ([{k: v for k, v in e.items() if k not in ("latency_ms", "json")} for e in value]
                  if key == "endpoints" else value)
            for key, value in result.items() if key not in ("invocation",)}


def test_valid_certificate_all_healthy_and_check_mode_identical(ansible, pki):
    app = TrdrHubHealth()
    with _https(app, pki["valid"]) as server:
        args = {"base_url": server.url("localhost"), "ca_path": pki["ca"]}
        res = ansible.run("http_health_info", args)
        checked = ansible.run("http_health_info", args, check=True)

    assert not res.failed, res.output
    assert res["healthy"] is True and res["changed"] is False
    assert [e["path"] for e in res["endpoints"]] == ENDPOINTS
    assert all(e["ok"] and e["status"] == 200 and e["error"] is None for e in res["endpoints"])
    assert res["endpoints"][2]["json"]["checks"]["database"]["status"] == "ok"
    assert res["endpoints"][0]["url"] == f"{server.url('localhost')}/healthz"
    tls = res["tls"]
    assert tls["hostname"] == "localhost" and tls["hostname_match"] is True
    assert tls["verify_error"] is None and tls["error"] is None
    assert tls["expired"] is False and tls["expiring_soon"] is False
    assert 89 < tls["days_to_expiry"] <= 90
    assert tls["subject"] == "CN=localhost,O=trdrhub test" and tls["issuer"] == "CN=trdrhub test CA,O=trdrhub test"
    assert tls["sans"] == ["localhost", "127.0.0.1"]
    assert res["requests"] == [f"GET {p}" for p in ENDPOINTS]
    assert _strip_timing(checked.result) == _strip_timing(res.result)


def test_near_expiry_warns(ansible, pki):
    with _https(TrdrHubHealth(), pki["near"]) as server:
        res = ansible.run("http_health_info", {"base_url": server.url(), "ca_path": pki["ca"], "tls_min_days": 14})

    assert not res.failed, res.output
    assert res["healthy"] is True
    assert res["tls"]["expiring_soon"] is True and 2 < res["tls"]["days_to_expiry"] <= 3
    assert res["tls"]["hostname"] == "127.0.0.1" and res["tls"]["hostname_match"] is True
    assert "expires in" in res.output and "sooner than tls_min_days=14" in res.output


def test_wrong_hostname(ansible, pki):
    with _https(TrdrHubHealth(), pki["wronghost"]) as server:
        strict = ansible.run("http_health_info", {"base_url": server.url("localhost"), "ca_path": pki["ca"],
                                                  "fail_on_unhealthy": True, "retries": 0})
        lax = ansible.run("http_health_info", {"base_url": server.url("localhost"), "ca_path": pki["ca"],
                                               "validate_certs": False})

    assert strict.failed
    assert strict["msg"].startswith(f"{server.url('localhost')} is unhealthy - /healthz: TLS handshake with "
                                    f"{server.url('localhost')} failed for GET /healthz: certificate verify failed: "
                                    "Hostname mismatch")
    assert strict["tls"]["hostname_match"] is False
    assert strict["tls"]["verify_error"].startswith("Hostname mismatch")
    assert all(not e["ok"] for e in strict["endpoints"])
    # without verification the probes pass, the certificate problem is still reported and warned about
    assert not lax.failed, lax.output
    assert lax["healthy"] is True and lax["tls"]["hostname_match"] is False
    assert "does not verify (Hostname mismatch" in lax.output
    assert "Traceback" not in strict.output + lax.output


def test_expired_certificate(ansible, pki):
    with _https(TrdrHubHealth(), pki["expired"]) as server:
        strict = ansible.run("http_health_info", {"base_url": server.url(), "ca_path": pki["ca"], "retries": 0})
        lax = ansible.run("http_health_info", {"base_url": server.url(), "validate_certs": False,
                                               "fail_on_unhealthy": True})

    assert not strict.failed
    assert strict["healthy"] is False
    assert strict["tls"]["expired"] is True and strict["tls"]["days_to_expiry"] < 0
    assert strict["tls"]["verify_error"] == "certificate has expired"
    assert "certificate verify failed: certificate has expired" in strict["endpoints"][0]["error"]
    assert lax.failed
    assert lax["msg"] == f"{server.url()} is unhealthy - TLS certificate expired on {lax['tls']['not_after']}"
    assert all(e["ok"] for e in lax["endpoints"])


def test_untrusted_ca_names_the_verification_error(ansible, pki):
    with _https(TrdrHubHealth(), pki["valid"]) as server:
        res = ansible.run("http_health_info", {"base_url": server.url(), "retries": 0,
                                               "endpoints": [{"path": "/healthz"}]})

    assert res["healthy"] is False
    assert res["tls"]["verify_error"] == "unable to get local issuer certificate"
    assert "set ca_path to the CA that signed the server certificate" in res["endpoints"][0]["error"]


def test_database_down_and_schema_drift(ansible):
    app = TrdrHubHealth()
    app.database = "error"
    app.schema = "drift"
    with StubServer(routes=app.routes()) as server:
        res = ansible.run("http_health_info", {"base_url": server.url(), "retries": 0})
        failed = ansible.run("http_health_info", {"base_url": server.url(), "retries": 0, "fail_on_unhealthy": True})

    assert not res.failed, res.output
    assert res["healthy"] is False and "tls" not in res.result
    ready, schema = res["endpoints"][2], res["endpoints"][3]
    assert ready["status"] == 503 and ready["ok"] is False
    assert ready["failed_checks"] == ["HTTP status 503, expected 200", "checks.database.status is 'error', expected 'ok'"]
    assert ready["json"]["checks"]["database"]["message"] == "database down"
    assert schema["failed_checks"] == ["status is 'drift', expected anything but 'drift'"]
    assert res["endpoints"][0]["ok"] and res["endpoints"][1]["ok"]
    assert failed.failed
    assert failed["msg"] == (f"{server.url()} is unhealthy - /health/ready: HTTP status 503, expected 200; "
                             "checks.database.status is 'error', expected 'ok' | /health/db-schema: status is "
                             "'drift', expected anything but 'drift'")


def test_s3_down_with_custom_checks(ansible):
    app = TrdrHubHealth()
    app.s3 = "error"
    with StubServer(routes=app.routes()) as server:
        res = ansible.run("http_health_info", {"base_url": server.url(), "retries": 0, "endpoints": [
            {"path": "/health/ready", "expect_status": [200, 503],
             "json_checks": [{"path": "checks.database.status", "equals": "ok"},
                             {"path": "checks.s3.status", "in": ["ok", "degraded"]}]}]})

    ready = res["endpoints"][0]
    assert ready["status"] == 503 and ready["failed_checks"] == ["checks.s3.status is 'error', expected one of ['ok', 'degraded']"]


def test_malformed_json(ansible):
    app = TrdrHubHealth()
    app.malformed.add("/health/live")
    with StubServer(routes=app.routes()) as server:
        res = ansible.run("http_health_info", {"base_url": server.url()})

    live = res["endpoints"][1]
    assert res["healthy"] is False and live["ok"] is False and live["status"] == 200
    assert live["error"].startswith("GET /health/live answered malformed JSON (")
    assert res["endpoints"][0]["ok"] and res["endpoints"][2]["ok"]


def test_unreachable(ansible):
    port = free_port()
    res = ansible.run("http_health_info", {"base_url": f"https://127.0.0.1:{port}", "retries": 1, "retry_delay": 0.1,
                                           "fail_on_unhealthy": True})

    assert res.failed
    assert res["msg"] == (f"https://127.0.0.1:{port} is unhealthy - /healthz: Cannot reach https://127.0.0.1:{port}: "
                          "GET /healthz failed: Connection refused (after 2 attempts) | 3 more endpoint(s) not requested")
    assert res["tls"]["error"].startswith(f"no TLS handshake with 127.0.0.1:{port}: Connection refused")
    assert res["endpoints"][1]["error"].startswith("not requested, the server was unreachable")
    assert "Traceback" not in res.output


def test_post_with_a_json_body_and_checks_on_the_answer(ansible):
    with KeyFunctionalityContract() as api:
        endpoint = {"path": "/api/v1/test", "method": "POST", "json_body": {"test": True},
                    "json_checks": [{"path": "status", "equals": "ok"}, {"path": "checks.queue", "equals": "ok"}]}
        res = ansible.run("http_health_info", {"base_url": api.url, "endpoints": [endpoint]})
        wrong = ansible.run("http_health_info", {"base_url": api.url, "fail_on_unhealthy": True,
                                                 "endpoints": [dict(endpoint, json_body={"test": "yes"})]})
        checked = ansible.run("http_health_info", {"base_url": api.url, "endpoints": [endpoint]}, check=True)
        accepted = list(api.accepted)
    assert not res.failed, res.output
    assert res["healthy"] is True and res["requests"] == ["POST /api/v1/test"]
    (probe,) = res["endpoints"]
    assert probe["ok"] and probe["status"] == 200 and probe["json"]["test"] is True
    assert wrong.failed and wrong["healthy"] is False
    assert wrong["endpoints"][0]["failed_checks"][0] == "HTTP status 400, expected 200"
    # Check mode sends no POST: the contract saw the one accepted body only.
    assert accepted == [{"test": True}]
    assert checked["requests"] == [] and checked["endpoints"][0]["skipped"] is True
    assert checked["endpoints"][0]["error"] == "not requested in check mode (a POST may change something)"


def test_a_json_body_needs_post(ansible):
    res = ansible.run("http_health_info", {"base_url": "http://127.0.0.1:9",
                                           "endpoints": [{"path": "/api/v1/test", "json_body": {"test": True}}]})
    assert res.failed
    assert res["msg"] == "endpoints /api/v1/test: json_body is only sent with method POST, got method GET"
