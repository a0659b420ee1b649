"""alertmanager_silence against the harness Alertmanager: check mode -> create -> reuse -> update -> expire -> expire."""
from __future__ import annotations

import datetime

import pytest
from _itest_http import expire_all, live_silences, post_alerts, run_label, silences

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

UTC = datetime.timezone.utc


def _at(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def run(alertmanager_server):
    label = run_label()
    post_alerts(alertmanager_server.url, label, [("AllWorkersDown", "P1"), ("QueueLagCritical", "P1")])
    yield label
    expire_all(alertmanager_server.url, label)   # cleanup also when the test failed half-way


def test_silence_lifecycle(ansible, alertmanager_server, run):
    url = alertmanager_server.url
    args = {"url": url, "matchers": ['alertname="AllWorkersDown"', {"name": "itest_run", "value": run}],
            "duration": "1h", "incident_id": "INC-ITEST-1", "comment": "workers restarting"}

    # check mode: reports the plan, creates nothing
    check = ansible.run("alertmanager_silence", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check["changed"] is True and check["action"] == "would_create" and check["silence_id"] is None
    assert silences(url, run) == []
    assert check["diff"]["after"]["comment"] == "[INC-ITEST-1] workers restarting"

    # apply
    created = ansible.run("alertmanager_silence", args)
    assert not created.failed, created.output
    assert created["changed"] is True and created["action"] == "created"
    sid = created["silence_id"]
    silence = created["silence"]
    assert silence["id"] == sid and silence["status"] == {"state": "active"}
    assert silence["createdBy"] == "trdrhub.incident/INC-ITEST-1"
    assert silence["comment"] == "[INC-ITEST-1] workers restarting"
    assert sorted(m["name"] for m in silence["matchers"]) == ["alertname", "itest_run"]
    assert 3590 <= (_at(silence["endsAt"]) - _at(silence["startsAt"])).total_seconds() <= 3610
    assert [s["id"] for s in live_silences(url, run)] == [sid]
    assert created["requests"] == ["GET /api/v2/silences", "POST /api/v2/silences", f"GET /api/v2/silence/{sid}"]

    # the silenced alert is suppressed, the other one still fires
    info = ansible.run("alertmanager_alerts_info", {"url": url, "filter": [f'itest_run="{run}"']})
    by_name = {a["labels"]["alertname"]: a for a in info["alerts"]}
    assert by_name["AllWorkersDown"]["status"]["state"] == "suppressed"
    assert by_name["AllWorkersDown"]["status"]["silencedBy"] == [sid]
    assert info["firing_p1"] == ["QueueLagCritical"]
    assert info["counts_by_state"] == {"active": 1, "suppressed": 1, "unprocessed": 0}
    unsilenced = ansible.run("alertmanager_alerts_info", {"url": url, "filter": [f'itest_run="{run}"'], "silenced": False})
    assert [a["labels"]["alertname"] for a in unsilenced["alerts"]] == ["QueueLagCritical"]

    # idempotent re-run, matchers in another order: reused
    again = ansible.run("alertmanager_silence", dict(args, matchers=list(reversed(args["matchers"]))), diff=True)
    assert not again.failed, again.output
    assert again["changed"] is False and again["action"] == "reused" and again["silence_id"] == sid
    assert again["requests"] == ["GET /api/v2/silences"]

    # longer: updated (check mode first)
    longer_check = ansible.run("alertmanager_silence", dict(args, duration="3h"), check=True)
    assert longer_check["action"] == "would_update" and longer_check["previous_id"] == sid
    assert _at(live_silences(url, run)[0]["endsAt"]) == _at(silence["endsAt"])
    longer = ansible.run("alertmanager_silence", dict(args, duration="3h"), diff=True)
    assert not longer.failed, longer.output
    assert longer["changed"] is True and longer["action"] == "updated" and longer["previous_id"] == sid
    new_id = longer["silence_id"]
    assert _at(longer["silence"]["endsAt"]) - _at(silence["endsAt"]) > datetime.timedelta(hours=1, minutes=59)
    assert longer["diff"]["before"]["endsAt"] != longer["diff"]["after"]["endsAt"]
    assert [s["id"] for s in live_silences(url, run)] == [new_id]

    # expire, then expire again
    gone = ansible.run("alertmanager_silence", {**args, "state": "absent", "duration": None})
    assert not gone.failed, gone.output
    assert gone["changed"] is True and gone["action"] == "expired" and gone["expired_ids"] == [new_id]
    assert gone["silence"]["status"] == {"state": "expired"}
    assert live_silences(url, run) == []
    gone_again = ansible.run("alertmanager_silence", {"url": url, "state": "absent", "silence_id": new_id})
    assert not gone_again.failed, gone_again.output
    assert gone_again["changed"] is False and gone_again["action"] == "none"


@pytest.mark.parametrize("overrides, msg", [
    ({"duration": None, "starts_at": "2099-01-02T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"},
     "the silence would end before it starts: ends_at 2099-01-01T00:00:00.000Z is not after starts_at "
     "2099-01-02T00:00:00.000Z"),
    ({"duration": "two hours"}, "invalid duration 'two hours': use a number with units like 30m, 2h, 1h30m or 1d"),
    ({"matchers": ['alertname=~".*"']},
     "POST /api/v2/silences answered 400 Bad Request: silence invalid: at least one matcher must not match the empty string"),
])
def test_bad_silences_fail_cleanly(ansible, alertmanager_server, run, overrides, msg):
    args = {"url": alertmanager_server.url, "matchers": [f'itest_run="{run}"'], "duration": "1h", **overrides}
    res = ansible.run("alertmanager_silence", {k: v for k, v in args.items() if v is not None})

    assert res.failed
    assert msg in res["msg"]
    assert "Traceback" not in res.output
    assert live_silences(alertmanager_server.url, run) == []
