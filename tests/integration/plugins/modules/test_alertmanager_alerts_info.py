"""alertmanager_alerts_info against the harness Alertmanager (API v2), and against servers that are not one."""
from __future__ import annotations

import uuid

import pytest
from _itest_http import StubServer, json_answer, post_alerts, run_label
from trdrhub_harness import AlertmanagerServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "itest-am-" + uuid.uuid4().hex
ALERTS = [("QueueLagCritical", "P1"), ("AllWorkersDown", "P1"), ("BulkBacklog", "P2"), ("ReportsSlow", "P3"),
          ("DeadMansSwitch", None)]


@pytest.fixture(scope="module")
def fired(alertmanager_server):
    """This module's alerts, posted once into the shared Alertmanager."""
    run = run_label()
    post_alerts(alertmanager_server.url, run, ALERTS)
    return run


@pytest.fixture(scope="module")
def auth_alertmanager():
    """A second Alertmanager that requires basic auth (--web.config.file with a bcrypt hash)."""
    with AlertmanagerServer(basic_auth={"oncall": SECRET}) as server:
        yield server.start()


def test_counts_and_firing_p1(ansible, alertmanager_server, fired):
    res = ansible.run("alertmanager_alerts_info", {"url": alertmanager_server.url, "filter": [f'itest_run="{fired}"']},
                      check=True)

    assert not res.failed, res.output
    assert res["changed"] is False
    assert res["count"] == 5
    assert res["counts_by_severity"] == {"P1": 2, "P2": 1, "P3": 1, "none": 1}
    assert res["counts_by_state"] == {"active": 5, "suppressed": 0, "unprocessed": 0}
    assert res["firing_p1"] == ["AllWorkersDown", "QueueLagCritical"]
    first = res["alerts"][0]
    assert first["labels"]["severity"] == "P1"
    assert first["annotations"]["runbook_url"].startswith("https://runbooks.trdrhub.example/")
    assert first["receivers"] == ["blackhole"]
    assert first["generatorURL"] == "http://prometheus.itest/graph"
    assert len(first["fingerprint"]) == 16 and first["startsAt"] and first["endsAt"] and first["updatedAt"]
    assert first["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    # A filter narrows the query: the firing alerts are read once more to count those left out.
    assert res["requests"] == ["GET /api/v2/alerts", "GET /api/v2/alerts"]


def test_matcher_filters_and_state_filters(ansible, alertmanager_server, fired):
    res = ansible.run("alertmanager_alerts_info", {
        "url": alertmanager_server.url + "/",
        "filter": [f'itest_run="{fired}"', 'alertname=~"Queue.*|Bulk.*"', "severity!=P2"],
        "active": True, "silenced": False, "inhibited": False, "receiver": "black.*"})

    assert not res.failed, res.output
    assert [a["labels"]["alertname"] for a in res["alerts"]] == ["QueueLagCritical"]
    assert res["counts_by_severity"]["P1"] == 1 and res["firing_p1"] == ["QueueLagCritical"]
    # The other firing P1 of the run is outside the query: said, not hidden.
    assert "AllWorkersDown" in res["outside_query"]["firing_p1"]
    assert "firing P1 alert(s) are outside the query" in res.output and "AllWorkersDown" in res.output


def test_bad_matcher_is_one_message_and_nothing_is_sent(ansible, alertmanager_server):
    res = ansible.run("alertmanager_alerts_info", {"url": alertmanager_server.url,
                                                   "filter": ['severity="P1"', 'alertname=~"Queue']})

    assert res.failed
    assert res["msg"] == ("invalid matcher 'alertname=~\"Queue': quote the value on both sides, like name=\"value\"")
    assert res["requests"] == []
    assert "Traceback" not in res.output


def test_unreachable(ansible):
    port = free_port()
    res = ansible.run("alertmanager_alerts_info", {"url": f"http://127.0.0.1:{port}", "retries": 1, "retry_delay": 0.1})

    assert res.failed
    assert res["msg"] == (f"Cannot reach Alertmanager API v2 at http://127.0.0.1:{port}: GET /api/v2/alerts failed: "
                          "Connection refused (after 2 attempts)")
    assert "Traceback" not in res.output


def test_wrong_and_right_basic_auth(ansible, auth_alertmanager):
    wrong = ansible.run("alertmanager_alerts_info", {"url": auth_alertmanager.url, "url_username": "oncall",
                                                     "url_password": "not-" + SECRET}, verbosity=3)
    missing = ansible.run("alertmanager_alerts_info", {"url": auth_alertmanager.url})
    right = ansible.run("alertmanager_alerts_info", {"url": auth_alertmanager.url, "url_username": "oncall",
                                                     "url_password": SECRET}, verbosity=3)

    for res in (wrong, missing):
        assert res.failed
        assert res["msg"] == (f"Alertmanager API v2 at {auth_alertmanager.url} refused GET /api/v2/alerts with "
                              "401 Unauthorized: Unauthorized - check url_username/url_password or bearer_token")
        assert res["status"] == 401
    assert not right.failed, right.output
    assert right["count"] == 0
    for res in (wrong, right):
        assert SECRET not in res.output, "a password reached the output"
        assert "Traceback" not in res.output


def _gone(method, path):
    return json_answer(410, {"status": "error", "error": "API v1 and v2 were removed from this test server"})


def test_server_without_api_v2(ansible):
    with StubServer(routes={"/api/v2/alerts": _gone, "/api/v1/alerts": _gone}) as gone, \
            StubServer(routes={"/api/v1/alerts": json_answer(200, {"status": "success", "data": []})}) as old:
        res_gone = ansible.run("alertmanager_alerts_info", {"url": gone.url()})
        res_old = ansible.run("alertmanager_alerts_info", {"url": old.url()})

    assert res_gone.failed and res_old.failed
    assert res_gone["msg"] == (f"{gone.url()} is not an Alertmanager API v2: GET /api/v2/alerts answered 410 Gone: "
                               "API v1 and v2 were removed from this test server")
    assert res_old["msg"] == (f"{old.url()} is not an Alertmanager API v2: GET /api/v2/alerts answered 404 Not Found: "
                              "404 page not found")
    assert "Traceback" not in res_gone.output + res_old.output


def test_malformed_json(ansible):
    broken = (200, {"Content-Type": "application/json"}, b'[{"labels": {"alertname": "QueueLagCritical"}, ')
    with StubServer(routes={"/api/v2/alerts": broken}) as stub:
        res = ansible.run("alertmanager_alerts_info", {"url": stub.url()})

    assert res.failed
    assert res["msg"].startswith(f"Alertmanager API v2 at {stub.url()}: GET /api/v2/alerts answered malformed JSON (")
    assert "Traceback" not in res.output
