"""pagerduty_event through ansible-playbook against the PagerDuty Events API v2 contract server."""
from __future__ import annotations

import pytest
import requests
from _itest_batch import run_batch
from trdrhub_harness.pagerduty import PagerDutyServer, new_routing_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FAST = {"retry_delay": 0.1}


def _trigger(url, key, incident, **extra):
    return {"api_url": url, "routing_key": key, "incident_id": incident, "summary": "QueueLagCritical: lag 742 s",
            "source": "trdrhub-worker.trdrhub-system", "severity": "critical", **FAST, **extra}


# -- the contract server itself enforces the documented API --------------------------------------------

def test_server_enforces_the_events_api(pagerduty_server):
    key = pagerduty_server.add_routing_key()
    url = pagerduty_server.url + "/v2/enqueue"
    good = {"routing_key": key, "event_action": "trigger", "dedup_key": "INC-C-1",
            "payload": {"summary": "s", "source": "api", "severity": "critical"}}

    bad_enum = requests.post(url, json=dict(good, payload=dict(good["payload"], severity="P1")), timeout=5)
    assert bad_enum.status_code == 400
    assert bad_enum.json()["status"] == "invalid event" and bad_enum.json()["message"] == "Event object is invalid"
    assert any("severity" in e for e in bad_enum.json()["errors"])
    assert requests.post(url, json=dict(good, event_action="snooze"), timeout=5).status_code == 400
    short = requests.post(url, json=dict(good, routing_key="abc"), timeout=5).json()
    assert short["errors"] == ["Length of 'routing_key' is incorrect (should be 32 characters)"]
    assert requests.post(url, json=dict(good, routing_key=new_routing_key()), timeout=5).json()["errors"] == \
        ["Invalid routing key"]
    assert requests.post(url, json=dict(good, dedup_key="x" * 256), timeout=5).status_code == 400
    assert requests.post(url, json=dict(good, payload=dict(good["payload"], summary="s" * 1025)), timeout=5).status_code == 400
    assert requests.post(url, json={"routing_key": key, "event_action": "resolve"}, timeout=5).json()["errors"] == \
        ["'dedup_key' is missing or blank"]
    assert requests.post(url, data=b"{not json", timeout=5).json()["errors"] == ["Invalid JSON"]
    assert requests.post(pagerduty_server.url + "/v1/enqueue", json=good, timeout=5).status_code == 404

    ok = requests.post(url, json=good, timeout=5)
    assert ok.status_code == 202
    assert ok.json() == {"status": "success", "message": "Event processed", "dedup_key": "INC-C-1"}
    assert pagerduty_server.incident(key, "INC-C-1")["status"] == "triggered"
    requests.post(url, json={"routing_key": key, "event_action": "resolve", "dedup_key": "INC-C-1"}, timeout=5)
    assert pagerduty_server.incident(key, "INC-C-1")["status"] == "resolved"


def test_server_rate_limits_per_routing_key():
    with PagerDutyServer(rate_limit=2, rate_window=60) as server:
        server.start()
        key, other = server.add_routing_key(), server.add_routing_key()
        event = {"event_action": "resolve", "dedup_key": "INC-R"}
        codes = [requests.post(server.url + "/v2/enqueue", json=dict(event, routing_key=key), timeout=5).status_code
                 for dummy in range(3)]
        assert codes == [202, 202, 429]
        assert requests.post(server.url + "/v2/enqueue", json=dict(event, routing_key=other), timeout=5).status_code == 202


# -- the module ---------------------------------------------------------------------------------------------

def test_pagerduty_event_lifecycle_and_failures(ansible, pagerduty_server):
    pd, url = pagerduty_server, pagerduty_server.url
    key, throttled, flaky, busy = (pd.add_routing_key() for dummy in range(4))
    unknown = new_routing_key()
    pd.fail_next(throttled, 429, count=1)
    pd.fail_next(flaky, 500, count=1)
    pd.fail_next(flaky, 502, count=1)
    pd.fail_next(busy, 429, count=5)
    trigger = _trigger(url, key, "INC-PD-1", component="queue", group="lcpilot", event_class="QueueLagCritical",
                       custom_details={"runbook_url": "https://runbooks.example/queue-lag"})
    runs = run_batch(ansible, {
        "check": ("pagerduty_event", trigger, {"check_mode": True}),
        "trigger": ("pagerduty_event", trigger),
        "trigger_again": ("pagerduty_event", trigger),
        "acknowledge": ("pagerduty_event", {"api_url": url, "routing_key": key, "incident_id": "INC-PD-1",
                                            "event_action": "acknowledge", "summary": "ignored"}),
        "unknown_key": ("pagerduty_event", _trigger(url, unknown, "INC-PD-2")),
        "short_key": ("pagerduty_event", _trigger(url, "0123456789abcdef", "INC-PD-2")),
        "bad_severity": ("pagerduty_event", _trigger(url, key, "INC-PD-2", severity="P1")),
        "no_summary": ("pagerduty_event", {"api_url": url, "routing_key": key, "incident_id": "INC-PD-2",
                                           "source": "x", "severity": "info"}),
        "throttled_then_ok": ("pagerduty_event", _trigger(url, throttled, "INC-PD-3")),
        "5xx_then_ok": ("pagerduty_event", _trigger(url, flaky, "INC-PD-4")),
        "throttled_out": ("pagerduty_event", _trigger(url, busy, "INC-PD-5", retries=1)),
        "not_pagerduty": ("pagerduty_event", _trigger(url + "/nothing", key, "INC-PD-6", retries=0)),
    })

    check = runs["check"]
    assert not check.failed and check["changed"] is True and check["status"] == "not_sent" and check["attempts"] == 0
    assert check["event"]["routing_key"] == "********" and check["event"]["dedup_key"] == "INC-PD-1"
    assert check["event"]["payload"]["class"] == "QueueLagCritical"
    assert check["event"]["payload"]["custom_details"]["incident_id"] == "INC-PD-1"

    first = runs["trigger"]
    assert not first.failed, first.output
    assert first["changed"] is True and first["status"] == "success" and first["message"] == "Event processed"
    assert first["dedup_key"] == "INC-PD-1" and first["attempts"] == 1 and first["requests"] == ["POST /v2/enqueue"]
    assert runs["trigger_again"]["changed"] is True
    ack = runs["acknowledge"]
    assert not ack.failed and ack["event"] == {"routing_key": "********", "event_action": "acknowledge", "dedup_key": "INC-PD-1"}
    assert any("only apply to event_action=trigger" in w for w in ack.get("warnings", []))
    incident = pd.incident(key, "INC-PD-1")
    # check mode sent nothing: two triggers (one incident, two alerts), then the acknowledge
    assert incident["status"] == "acknowledged" and incident["alerts"] == 2
    assert incident["history"] == ["trigger", "trigger", "acknowledge"]
    assert incident["payload"]["component"] == "queue" and incident["payload"]["severity"] == "critical"
    assert len(pd.events_for(key)) == 3

    unknown_run = runs["unknown_key"]
    assert unknown_run.failed and unknown_run["msg"] == (
        "PagerDuty rejected the trigger event for dedup_key 'INC-PD-2' with 400 Bad Request: Event object is invalid: "
        "Invalid routing key")
    assert unknown_run["errors"] == ["Invalid routing key"]
    assert "Length of 'routing_key' is incorrect" in runs["short_key"]["msg"]
    assert runs["short_key"]["attempts"] == 1

    bad = runs["bad_severity"]
    assert bad.failed and "severity" in bad["msg"] and "critical, error, warning, info" in bad["msg"]
    assert not bad.get("requests")
    assert runs["no_summary"].failed and "summary" in runs["no_summary"]["msg"]

    throttled_run = runs["throttled_then_ok"]
    assert not throttled_run.failed, throttled_run.output
    assert throttled_run["attempts"] == 2 and throttled_run["requests"] == ["POST /v2/enqueue"] * 2
    assert pd.incident(throttled, "INC-PD-3")["status"] == "triggered"
    flaky_run = runs["5xx_then_ok"]
    assert not flaky_run.failed and flaky_run["attempts"] == 3
    assert pd.incident(flaky, "INC-PD-4")["alerts"] == 1
    out = runs["throttled_out"]
    assert out.failed and out["status"] == 429 and out["attempts"] == 2
    assert "throttled" in out["msg"] and "(after 2 attempts)" in out["msg"]
    assert pd.incident(busy, "INC-PD-5") is None
    assert runs["not_pagerduty"].failed and "is not the PagerDuty Events API v2" in runs["not_pagerduty"]["msg"]

    for secret in (key, throttled, flaky, busy, unknown):
        assert secret not in first.output


def test_routing_key_from_environment(ansible, pagerduty_server):
    key = pagerduty_server.add_routing_key()
    args = {"api_url": pagerduty_server.url, "incident_id": "INC-PD-ENV", "event_action": "resolve"}
    run = ansible.run("pagerduty_event", args, extra_env={"PAGERDUTY_ROUTING_KEY": key})
    assert not run.failed, run.output
    assert run["status"] == "success" and key not in run.output
    missing = ansible.run("pagerduty_event", args, extra_env={"PAGERDUTY_ROUTING_KEY": None})
    assert missing.failed and "routing_key" in missing["msg"]
