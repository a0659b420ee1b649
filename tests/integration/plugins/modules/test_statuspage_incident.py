"""statuspage_incident through ansible-playbook against the Statuspage contract server.

Lifecycle: check mode -> create -> idempotent re-run -> status and body -> components -> resolve -> re-run;
then the failures an operator meets: wrong key, unknown page, unknown component, rate limits, 5xx.
"""
from __future__ import annotations

import time
import uuid

import pytest
import requests
from _itest_batch import run_batch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def page(statuspage_server):
    return statuspage_server.add_page({"API": "operational", "Notifications": "operational", "Reports": "operational"})


def inc_id():
    return f"INC-ITEST-{uuid.uuid4().hex[:6].upper()}"


def base(server, page, key=None, **kw):
    args = {"api_url": server.url, "page_id": page.id, "api_key": key or server.api_key, "retry_delay": 0.2}
    args.update(kw)
    return args


def single_line(msg):
    return "\n" not in msg and "Traceback" not in msg


def test_lifecycle(ansible, statuspage_server, page):
    sp, iid = statuspage_server, inc_id()
    api = page.component_id("API")
    args = base(sp, page, incident_id=iid, name="Delayed document processing", impact_override="minor",
                body="We are investigating delays.", components={api: "degraded_performance"})

    # check mode: the plan, nothing written
    check = ansible.run("statuspage_incident", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check["changed"] is True and check["action"] == "created"
    assert check["incident"]["id"] is None
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["name"] == f"Delayed document processing [{iid}]"
    assert check["diff"]["after"]["components"] == {api: "degraded_performance"}
    assert sp.incidents(page.id) == [] and sp.writes(page.id) == []
    assert sp.components(page.id)["API"] == "operational"

    # apply: 201
    created = ansible.run("statuspage_incident", args, diff=True)
    assert not created.failed, created.output
    assert created["changed"] is True and created["action"] == "created"
    stored = sp.incidents(page.id)
    assert len(stored) == 1
    inc = created["incident"]
    assert inc["id"] == stored[0]["id"] and inc["shortlink"].startswith("https://stspg.io/")
    assert inc["name"] == f"Delayed document processing [{iid}]" and stored[0]["name"] == inc["name"]
    assert inc["status"] == "investigating" and inc["impact"] == "minor" and inc["resolved_at"] is None
    assert [u["body"] for u in stored[0]["incident_updates"]] == ["We are investigating delays."]
    assert sp.components(page.id)["API"] == "degraded_performance"
    assert [(m, s) for m, _p, s in sp.writes(page.id)] == [("POST", 201)]
    assert created["requests"] == [f"GET /v1/pages/{page.id}/incidents/unresolved", f"POST /v1/pages/{page.id}/incidents"]

    # re-run: unchanged, no write
    again = ansible.run("statuspage_incident", args, diff=True)
    assert not again.failed, again.output
    assert again["changed"] is False and again["action"] == "none" and again["incident"]["id"] == inc["id"]
    assert again["diff"]["before"] == again["diff"]["after"]
    assert len(sp.writes(page.id)) == 1

    # update status + body (without the name: found by the tag); check mode first
    upd_args = base(sp, page, incident_id=iid, status="identified", body="A stuck consumer; restarting workers.")
    upd_check = ansible.run("statuspage_incident", upd_args, check=True, diff=True)
    assert upd_check["action"] == "updated" and upd_check["changed"] is True
    assert upd_check["diff"]["before"]["status"] == "investigating" and upd_check["diff"]["after"]["status"] == "identified"
    assert upd_check["diff"]["after"]["body"] == "A stuck consumer; restarting workers."
    assert len(sp.writes(page.id)) == 1
    updated = ansible.run("statuspage_incident", upd_args)
    assert not updated.failed, updated.output
    assert updated["action"] == "updated" and updated["incident"]["status"] == "identified"
    stored = sp.incidents(page.id)[0]
    assert [u["body"] for u in stored["incident_updates"]] == ["A stuck consumer; restarting workers.",
                                                               "We are investigating delays."]
    assert stored["incident_updates"][0]["status"] == "identified"
    # the same body again (other whitespace) is not a new update
    same = ansible.run("statuspage_incident", dict(upd_args, body="  A stuck consumer; restarting workers.\n"))
    assert same["changed"] is False and same["action"] == "none"
    assert len(sp.incidents(page.id)[0]["incident_updates"]) == 2

    # components: another component joins, the first recovers
    notif = page.component_id("Notifications")
    comps = ansible.run("statuspage_incident", base(sp, page, incident_id=iid, status="monitoring",
                                                    components={api: "operational", notif: "partial_outage"}), diff=True)
    assert not comps.failed, comps.output
    assert comps["action"] == "updated"
    assert comps["diff"]["before"]["components"] == {api: "degraded_performance"}
    assert comps["diff"]["after"]["components"] == {api: "operational", notif: "partial_outage"}
    assert sp.components(page.id) == {"API": "operational", "Notifications": "partial_outage", "Reports": "operational"}
    assert {c["id"] for c in comps["incident"]["components"]} == {api, notif}

    # resolve
    res_args = base(sp, page, incident_id=iid, state="resolved", body="Resolved: processing is normal.",
                    components={notif: "operational"})
    res_check = ansible.run("statuspage_incident", res_args, check=True)
    assert res_check["action"] == "resolved" and sp.incidents(page.id)[0]["status"] == "monitoring"
    resolved = ansible.run("statuspage_incident", res_args, diff=True)
    assert not resolved.failed, resolved.output
    assert resolved["changed"] is True and resolved["action"] == "resolved"
    assert resolved["incident"]["status"] == "resolved" and resolved["incident"]["resolved_at"]
    assert resolved["diff"]["after"]["status"] == "resolved"
    stored = sp.incidents(page.id)
    assert len(stored) == 1 and stored[0]["status"] == "resolved" and stored[0]["resolved_at"]
    assert sp.components(page.id)["Notifications"] == "operational"
    writes = len(sp.writes(page.id))

    # re-run after resolve: unchanged, nothing reopened
    after = ansible.run("statuspage_incident", res_args)
    assert after["changed"] is False and after["action"] == "none" and after["incident"] is None
    assert len(sp.writes(page.id)) == writes and len(sp.incidents(page.id)) == 1


def test_errors(ansible, statuspage_server, page):
    sp, iid = statuspage_server, inc_id()
    wrong_key = "sp-wrong-" + uuid.uuid4().hex
    good = base(sp, page, incident_id=iid, name="Outage")
    results = run_batch(ansible, {
        "wrong key": ("statuspage_incident", dict(good, api_key=wrong_key)),
        "unknown page": ("statuspage_incident", dict(good, page_id="nosuchpage01")),
        "unknown component": ("statuspage_incident", dict(good, components={"nosuchcomp01": "major_outage"})),
        "unknown component, check mode": ("statuspage_incident", dict(good, components={"nosuchcomp01": "major_outage"}),
                                          {"check_mode": True}),
        "bad component status": ("statuspage_incident", dict(good, components={page.component_id("API"): "down"})),
        "no name to create": ("statuspage_incident", base(sp, page, incident_id=iid, status="identified")),
        "unreachable": ("statuspage_incident", dict(good, api_url="http://127.0.0.1:9/v1", retries=0)),
    })
    auth = results["wrong key"]
    assert auth.failed and single_line(auth["msg"])
    assert "401" in auth["msg"] and "Could not authenticate" in auth["msg"] and "api_key" in auth["msg"]
    assert wrong_key not in auth.output

    nf = results["unknown page"]
    assert nf.failed and single_line(nf["msg"]) and "404" in nf["msg"] and "nosuchpage01" in nf["msg"]
    assert "page_id" in nf["msg"]

    bad = results["unknown component"]
    assert bad.failed and single_line(bad["msg"]) and "422" in bad["msg"]
    assert "Components not found on this page: nosuchcomp01" in bad["msg"]
    check = results["unknown component, check mode"]
    assert check.failed and "nosuchcomp01" in check["msg"]

    assert "'down'" in results["bad component status"]["msg"] and "major_outage" in results["bad component status"]["msg"]
    assert "name is required" in results["no name to create"]["msg"]
    unreach = results["unreachable"]
    assert unreach.failed and single_line(unreach["msg"]) and "Cannot reach Statuspage API" in unreach["msg"]

    for run in results.values():
        assert sp.api_key not in run.output
    assert sp.incidents(page.id) == []


def test_api_key_from_environment(ansible, statuspage_server, page):
    sp = statuspage_server
    args = base(sp, page, incident_id=inc_id(), name="From env")
    del args["api_key"]
    run = ansible.run("statuspage_incident", args, extra_env={"STATUSPAGE_API_KEY": sp.api_key})
    assert not run.failed, run.output
    assert run["action"] == "created" and sp.api_key not in run.output
    missing = ansible.run("statuspage_incident", args, extra_env={"STATUSPAGE_API_KEY": None})
    assert missing.failed and "api_key" in missing["msg"]


def test_rate_limit_429_retry_after_then_success(ansible, statuspage_server, page):
    sp = statuspage_server
    # A key allowed one request per 2 s window: the POST after the list is over the limit.
    key = sp.add_key(rate_limit=1, window=2, over_limit="429")
    started = time.monotonic()
    run = ansible.run("statuspage_incident", base(sp, page, key=key, incident_id=inc_id(), name="Slow", retry_delay=0))
    assert not run.failed, run.output
    assert run["action"] == "created" and len(sp.incidents(page.id)) == 1
    answered = [s for m, p, s, _k in sp.requests if p.startswith(f"/v1/pages/{page.id}/")]
    assert 429 in answered and answered[-1] == 201
    assert time.monotonic() - started >= 1   # it waited as Retry-After asked, not retry_delay=0


def test_rate_limit_420_then_success(ansible, statuspage_server, page):
    sp = statuspage_server
    sp.throttle_next(2, status=420)
    run = ansible.run("statuspage_incident", base(sp, page, incident_id=inc_id(), name="Calm"))
    assert not run.failed, run.output
    assert run["action"] == "created"
    answered = [s for m, p, s, _k in sp.requests if p.startswith(f"/v1/pages/{page.id}/")]
    assert answered == [420, 420, 200, 201]


def test_rate_limit_window_alternates_420_and_429(statuspage_server, page):
    """The contract server itself: over the limit it answers 429 (with Retry-After) and 420 in turn."""
    sp = statuspage_server
    key = sp.add_key(rate_limit=1, window=30)
    url = f"{sp.url}/pages/{page.id}/incidents/unresolved"
    answers = [requests.get(url, headers={"Authorization": f"OAuth {key}"}, timeout=5) for dummy in range(3)]
    assert [a.status_code for a in answers] == [200, 429, 420]
    assert 1 <= int(answers[1].headers["Retry-After"]) <= 30 and "Retry-After" not in answers[2].headers
    assert requests.get(url, timeout=5).json() == {"error": "Could not authenticate"}


def test_5xx_retried_and_write_not_duplicated(ansible, statuspage_server, page):
    sp, iid = statuspage_server, inc_id()
    sp.fail_next(2, status=503)
    run = ansible.run("statuspage_incident", base(sp, page, incident_id=iid, name="Flaky"))
    assert not run.failed, run.output
    assert run["action"] == "created" and len(sp.incidents(page.id)) == 1

    # A PATCH that fails with 500 was not applied: the module reads again, re-plans and sends it again.
    sp.fail_next(1, status=500, method="PATCH")
    marker = len(sp.requests)
    upd = ansible.run("statuspage_incident", base(sp, page, incident_id=iid, status="identified", body="Found it."))
    assert not upd.failed, upd.output
    assert upd["action"] == "updated" and upd["incident"]["status"] == "identified"
    assert [(m, s) for m, p, s, _k in sp.requests[marker:]] == [("GET", 200), ("PATCH", 500), ("GET", 200), ("PATCH", 200)]
    assert [u["body"] for u in sp.incidents(page.id)[0]["incident_updates"]].count("Found it.") == 1

    # A PATCH that was applied but answered 502: re-read, nothing left to do, reported as the update it was.
    sp.fail_next(1, status=502, method="PATCH", after_processing=True)
    marker = len(sp.requests)
    landed = ansible.run("statuspage_incident", base(sp, page, incident_id=iid, status="monitoring", body="Watching."),
                         diff=True)
    assert not landed.failed, landed.output
    assert landed["changed"] is True and landed["action"] == "updated" and landed["incident"]["status"] == "monitoring"
    assert landed["diff"]["before"]["status"] == "identified" and landed["diff"]["after"]["status"] == "monitoring"
    assert [(m, s) for m, p, s, _k in sp.requests[marker:]] == [("GET", 200), ("PATCH", 502), ("GET", 200)]
    assert [u["body"] for u in sp.incidents(page.id)[0]["incident_updates"]].count("Watching.") == 1


def test_retries_exhausted(ansible, statuspage_server, page):
    sp = statuspage_server
    sp.fail_next(3, status=503)
    run = ansible.run("statuspage_incident", base(sp, page, incident_id=inc_id(), name="Down", retries=2))
    assert run.failed and single_line(run["msg"])
    assert "503 Service Unavailable" in run["msg"] and "(after 3 attempts)" in run["msg"]
    assert f"GET /v1/pages/{page.id}/incidents/unresolved" in run["msg"]
    sp.throttle_next(2, status=429, retry_after=120)
    limited = ansible.run("statuspage_incident", base(sp, page, incident_id=inc_id(), name="Down"))
    assert limited.failed and "rate limited" in limited["msg"] and "longer than 60 s" in limited["msg"]
    sp.clear_failures()   # the second forced answer was not needed: the module gave up at once
    assert sp.incidents(page.id) == []
