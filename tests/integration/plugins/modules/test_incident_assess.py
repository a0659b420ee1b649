"""incident_assess and the priority filters through real ansible-playbook, fed real Alertmanager alerts.

The alerts come from the harness Alertmanager's API v2 exactly as it returns them:
a P3 alert firing and a P1 alert silenced (``status.state: suppressed``). All scenarios
share one playbook run.
"""
from __future__ import annotations

import datetime
import json
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from _itest_batch import run_batch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RUN_ID = uuid.uuid4().hex[:12]
FRIDAY = "2025-01-17T14:00:00Z"
READY_DOWN = {"healthy": False, "endpoints": [
    {"url": "https://api.trdrhub.example/healthz", "ok": True, "status": 200},
    {"url": "https://api.trdrhub.example/health/ready", "ok": False, "status": 503},
]}
ALL_DOWN = {"healthy": False, "endpoints": [
    {"url": "https://api.trdrhub.example/healthz", "ok": False, "status": None, "error": "connection refused"},
    {"url": "https://api.trdrhub.example/health/ready", "ok": False, "status": None, "error": "connection refused"},
]}


def _api(base: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"},
                                     method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text.strip() else None   # POST /api/v2/alerts answers 200 with no body


@pytest.fixture(scope="module")
def alerts(alertmanager_server):
    """This run's alerts as GET /api/v2/alerts returns them, once the silence shows."""
    base = alertmanager_server.url
    now = datetime.datetime.now(datetime.timezone.utc)
    ends = (now + datetime.timedelta(hours=1)).isoformat()
    common = {"service": "lcpilot", "itest_run": RUN_ID}
    _api(base, "/api/v2/alerts", [
        {"labels": {**common, "alertname": "ReportGenerationSlow", "severity": "P3", "component": "reports"},
         "annotations": {"runbook_url": "https://runbooks.trdrhub.example/reports"}, "endsAt": ends},
        {"labels": {**common, "alertname": "AllWorkersDown", "severity": "P1", "component": "queue"},
         "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"}, "endsAt": ends},
    ])
    _api(base, "/api/v2/silences", {
        "matchers": [{"name": "alertname", "value": "AllWorkersDown", "isRegex": False, "isEqual": True},
                     {"name": "itest_run", "value": RUN_ID, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": ends, "createdBy": "itest", "comment": "known: workers redeploying"})
    query = "/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'itest_run="{RUN_ID}"'})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = _api(base, query)
        states = {a["labels"]["alertname"]: a["status"]["state"] for a in found}
        if states == {"ReportGenerationSlow": "active", "AllWorkersDown": "suppressed"}:
            return found
        time.sleep(0.2)
    raise AssertionError(f"Alertmanager never showed the expected states: {states}")


@pytest.fixture(scope="module")
def runs(ansible, alerts):
    [firing] = [a for a in alerts if a["status"]["state"] == "active"]
    foreign = [dict(firing, labels=dict(firing["labels"], severity="critical")),
               dict(firing, labels=dict(firing["labels"], severity="sev1"))]
    tasks = {
        "alerts_only": ("incident_assess", {"alerts": alerts, "detected_at": FRIDAY}),
        "alerts_only_check": ("incident_assess", {"alerts": alerts, "detected_at": FRIDAY}, {"check_mode": True}),
        "ready_down": ("incident_assess", {"alerts": alerts, "health": READY_DOWN, "impact": ["internal"],
                                           "detected_at": FRIDAY}),
        "all_down": ("incident_assess", {"health": ALL_DOWN, "detected_at": FRIDAY}),
        "security": ("incident_assess", {"impact": ["security"], "scope": "none", "detected_at": "2025-01-15T14:30:00Z"}),
        "cosmetic_friday": ("incident_assess", {"impact": ["cosmetic"], "detected_at": FRIDAY}),
        "override": ("incident_assess", {"alerts": alerts, "override": {"priority": "P1", "reason": "CEO escalation"},
                                         "policy": {"P1": {"response_minutes": 10}}, "detected_at": FRIDAY}),
        "foreign_severity": ("incident_assess", {"alerts": foreign}),
        "bad_health": ("incident_assess", {"health": {"endpoints": "down"}}),
        "bad_impact": ("incident_assess", {"impact": ["outage"]}),
        "filters": ("ansible.builtin.set_fact", {
            "assessment": "{{ alerts | trdrhub.incident.incident_priority(health=health, detected_at='" + FRIDAY + "') }}",
            "p2_due": "{{ 'P2' | trdrhub.incident.response_deadline('2025-01-15T14:30:00Z') }}",
            "p4_due": "{{ 'P4' | trdrhub.incident.response_deadline('" + FRIDAY + "') }}",
        }, {"vars": {"alerts": alerts, "health": READY_DOWN}}),
        "filter_error": ("ansible.builtin.set_fact", {"due": "{{ 'P9' | trdrhub.incident.response_deadline }}"}),
    }
    return run_batch(ansible, tasks)


def test_silenced_P1_does_not_count(runs):
    res = runs["alerts_only"]
    assert not res.failed, res.output
    assert (res["priority"], res["label"], res["changed"]) == ("P3", "Medium", False)
    assert res["reasons"] == ["alert ReportGenerationSlow (severity P3, component reports) is firing -> P3"]
    assert res["ignored"] == ["alert AllWorkersDown (severity P1) is suppressed: not counted"]
    assert res["response_deadline"] == "2025-01-17T18:00:00Z"
    assert [(e["level"], e["at"]) for e in res["escalation"]] == [(1, FRIDAY), (2, "2025-01-17T18:00:00Z")]
    assert res["notify"] == ["on_call", "team_channel"]
    assert res["update_cadence"] == {"internal_minutes": 120, "customer_minutes": None}


def test_check_mode_is_identical(runs):
    assert not runs["alerts_only_check"].failed
    assert runs["alerts_only"].result == runs["alerts_only_check"].result


def test_failing_readiness_raises_to_P2(runs):
    res = runs["ready_down"]
    assert (res["priority"], res["response_deadline"]) == ("P2", "2025-01-17T15:00:00Z")
    assert res["reasons"][0] == "critical health endpoint https://api.trdrhub.example/health/ready (HTTP 503) is failing -> P2"
    assert res["notify"] == ["on_call", "team_lead", "status_page"]


def test_everything_unreachable_is_P1(runs):
    res = runs["all_down"]
    assert res["priority"] == "P1"
    assert res["reasons"][0].startswith("all 2 health endpoints unreachable: https://api.trdrhub.example/healthz "
                                        "(unreachable: connection refused)")
    assert res["response_deadline"] == "2025-01-17T14:15:00Z"
    expected = [FRIDAY, "2025-01-17T14:15:00Z", "2025-01-17T14:30:00Z", "2025-01-17T15:00:00Z"]
    assert [e["at"] for e in res["escalation"]] == expected
    assert "customers" in res["notify"] and res["update_cadence"] == {"internal_minutes": 15, "customer_minutes": 30}


def test_security_and_business_day(runs):
    assert runs["security"]["priority"] == "P1"
    assert runs["security"]["response_deadline"] == "2025-01-15T14:45:00Z"
    p4 = runs["cosmetic_friday"]
    assert (p4["priority"], p4["response_deadline"], p4["business_days_only"]) == ("P4", "2025-01-20T14:00:00Z", True)
    assert p4["escalation"] == []


def test_override_with_policy(runs):
    res = runs["override"]
    assert (res["priority"], res["assessed_priority"], res["overridden"]) == ("P1", "P3", True)
    assert res["reasons"][0] == "overridden from P3 to P1: CEO escalation"
    assert res["response_deadline"] == "2025-01-17T14:10:00Z"


def test_foreign_severities_go_through_the_table(runs):
    res = runs["foreign_severity"]
    assert not res.failed, res.output
    assert (res["priority"], res["reasons"][0]) == ("P1", "alert ReportGenerationSlow (severity critical, component reports) "
                                                          "is firing -> P1")
    assert res["findings"] == ["alert ReportGenerationSlow is firing with severity label 'sev1', which "
                               "policy.severity_map does not classify: not counted (map it to a priority or to ignore)"]
    assert res["warnings"] == res["findings"]


def test_bad_input_is_one_clear_message(runs):
    assert runs["bad_health"].failed
    assert runs["bad_health"]["msg"] == ("health.endpoints must be a list (or a dict by name) of endpoint results like "
                                         "those of http_health_info, got 'down'")
    assert runs["bad_impact"].failed
    assert runs["bad_impact"]["msg"] == ("impact 'outage' is not one of customer-facing, data_loss, security, "
                                         "data_integrity, compliance, internal, cosmetic")


def test_filters_in_templates(runs):
    res = runs["filters"]
    assert not res.failed, res.output
    facts = res["ansible_facts"]
    assert facts["assessment"]["priority"] == "P2"
    assert facts["assessment"]["ignored"] == ["alert AllWorkersDown (severity P1) is suppressed: not counted"]
    assert facts["p2_due"] == "2025-01-15T15:30:00Z"
    assert facts["p4_due"] == "2025-01-20T14:00:00Z"
    error = runs["filter_error"]
    assert error.failed
    assert "response_deadline: priority must be one of P1, P2, P3, P4, got 'P9'" in error["msg"]
