"""respond_p1.yml end to end against the harness services, and the services, fixtures and Response driver the
other response-procedure tests (test_respond.py, test_respond_p2.py, test_respond_p1_output.py) share.

A P1 database incident: a firing P1 alert in Alertmanager, runaway sessions in PostgreSQL, a Redis queue,
a TRDR Hub health server and the Slack, PagerDuty, Statuspage and SMTP contract servers. respond_p1.yml runs
from the alert to the post-incident review; its contain_db approval gate (store mode) is answered by a second
process (playbooks/approve.yml) while it polls. Check mode of respond_p1.yml changes nothing.
"""
from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
import redis
import requests
from _itest_ansible import REPO_ROOT
from _itest_approval import vote, wait_for_request
from _itest_http import StubServer, TrdrHubHealth, expire_all, live_silences
from _itest_ledger import check_chain, read_file_ledger
from _itest_snapshot import Snapshot, changed_tasks
from trdrhub_harness.workload import INCIDENT, MUST_SURVIVE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

UTC = datetime.timezone.utc
P1 = REPO_ROOT / "playbooks" / "respond_p1.yml"
P2 = REPO_ROOT / "playbooks" / "respond_p2.yml"
P4 = REPO_ROOT / "playbooks" / "respond_p4.yml"
DISPATCH = REPO_ROOT / "playbooks" / "respond.yml"


def flat(text):
    return " ".join(text.split())


@pytest.fixture(scope="module")
def health():
    with StubServer(TrdrHubHealth().routes()) as server:
        yield server


@pytest.fixture
def alert(alertmanager_server):
    """fire(alertname, severity) posts a firing alert labelled with this test's own run label."""
    url = alertmanager_server.url
    label = "itest-" + uuid.uuid4().hex[:10]

    def fire(name, severity):
        started = datetime.datetime.now(UTC) - datetime.timedelta(minutes=1)
        body = [{"labels": {"alertname": name, "severity": severity, "component": "queue", "service": "lcpilot",
                            "itest_run": label},
                 "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"},
                 "startsAt": started.isoformat(), "endsAt": (started + datetime.timedelta(hours=2)).isoformat()}]
        requests.post(url + "/api/v2/alerts", json=body, timeout=10).raise_for_status()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = requests.get(url + "/api/v2/alerts", params={"filter": f'itest_run="{label}"'}, timeout=10).json()
            if found and found[0]["status"]["state"] == "active":
                return label
            time.sleep(0.2)
        raise AssertionError("Alertmanager never showed the alert as active")

    yield fire
    expire_all(url, label)


@pytest.fixture
def queue(redis_server):
    """A Redis queue of this test holding three jobs (below the verification threshold of five)."""
    name = "itest:respond:" + uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(redis_server.url)
    client.rpush(name, "job-1", "job-2", "job-3")
    yield name
    client.delete(name)
    client.close()


@pytest.fixture
def runaway(incident, app):
    """Runaway sessions of this test's application (they match the containment) and one that must survive."""
    inc = incident()
    inc.long_running(3, seconds=240, application_name=app + "-api")
    inc.idle_in_transaction(2, application_name=app + "-worker")
    inc.short_queries(1, application_name=app + "-api-short")
    inc.wait_ready()
    inc.wait_older_than(1.5, timeout=30)
    return inc


class Response:
    """One incident: the environment of the sandbox inventory, its extra variables, its ledger and approvals."""

    def __init__(self, ansible, tmp_path, pg_server, trdrhub_db, alertmanager_server, redis_server, health):
        self.ansible = ansible
        self.incident = "INC-RESP-" + uuid.uuid4().hex[:6]
        self.root = tmp_path / "incidents"
        self.env = {"TRDRHUB_LEDGER_DIR": str(self.root), "AWX_USER_NAME": "alice",
                    "TRDRHUB_PG_HOST": pg_server.host, "TRDRHUB_PG_PORT": str(pg_server.port),
                    "TRDRHUB_PG_OPS_PASSWORD": trdrhub_db["ops"]["password"],
                    "TRDRHUB_PG_APP_PASSWORD": trdrhub_db["app"]["password"],
                    "TRDRHUB_ALERTMANAGER_URL": alertmanager_server.url, "TRDRHUB_REDIS_URL": redis_server.url,
                    "TRDRHUB_BASE_URL": health.url()}
        self.proc = None

    @property
    def dir(self):
        return self.root / self.incident

    def argv(self, playbook, label, app, queue, **extra):
        variables = {
            "trdrhub_incident_id": self.incident,
            "triage_alert_filter": [f'itest_run="{label}"'],
            "triage_silence_labels": ["alertname", "component", "service", "itest_run"],
            "trdrhub_redis_queues": [queue], "verify_queue_below": 5, "verify_queue_timeout": 20,
            "verify_probes": [{"name": "readiness API", "path": "/health/ready",
                               "json_checks": [{"path": "overall_healthy", "equals": True}]}],
            "contain_db_applications": [app + "*"], "contain_db_min_duration": 1,
            "contain_db_approval_mode": "store", "contain_db_approval_poll_interval": 0.3,
            "contain_db_approval_timeout": 240, "trdrhub_approval_policy": {},
            "respond_contain": ["db"],
            **extra,
        }
        return [playbook, "-i", "inventories/sandbox", "-e", json.dumps(variables)]

    def start(self, *argv):
        self.proc = self.ansible.start_playbook(*argv, extra_env=self.env)

    def run(self, *argv):
        return self.ansible.run_playbook(*argv, extra_env=self.env, timeout=400)

    def finish(self, timeout=400):
        output = self.proc.communicate(timeout=timeout)[0]
        return self.proc.returncode, output

    def request_id(self, timeout=240):
        return wait_for_request(self.dir / "approvals", self.proc, timeout, what="the contain_db gate")

    def vote(self, rid, decision, user):
        return vote(self.ansible, "inventories/sandbox", self.env, rid, decision, user)

    def ledger(self):
        path = self.dir / "ledger.jsonl"
        return read_file_ledger(path) if path.exists() else []

    def events(self, event):
        return [e for e in self.ledger() if e["event"] == event]

    def record(self):
        return self.events("incident")[-1]["data"]["record"]


@pytest.fixture
def response(ansible, tmp_path, pg_server, trdrhub_db, alertmanager_server, redis_server, health):
    made = []

    def make():
        made.append(Response(ansible, tmp_path, pg_server, trdrhub_db, alertmanager_server, redis_server, health))
        return made[-1]

    yield make
    for resp in made:
        if resp.proc is not None and resp.proc.poll() is None:
            resp.proc.kill()
            resp.proc.communicate()


@pytest.fixture
def channels(slack_server, pagerduty_server, statuspage_server, smtp_server):
    page = statuspage_server.add_page({"API": "operational", "Reports": "operational"})
    routing_key, webhook = pagerduty_server.add_routing_key(), slack_server.add_webhook()
    variables = {
        "communicate_slack_webhook_url": webhook,
        "communicate_pagerduty_routing_key": routing_key, "communicate_pagerduty_api_url": pagerduty_server.url,
        "communicate_statuspage_page_id": page.id, "communicate_statuspage_api_key": statuspage_server.api_key,
        "communicate_statuspage_api_url": statuspage_server.url,
        "communicate_statuspage_components": {page.component_id("API"): "major_outage"},
        "communicate_email_host": smtp_server.host, "communicate_email_port": smtp_server.port,
        "communicate_email_ca_path": smtp_server.ca_path, "communicate_email_username": smtp_server.username,
        "communicate_email_password": smtp_server.password,
        "communicate_email_to": [f"ops-{uuid.uuid4().hex[:8]}@customer.example"],
    }
    return {"vars": variables, "slack": slack_server, "webhook": webhook, "pagerduty": pagerduty_server,
            "routing_key": routing_key}


def test_p1_database_incident_from_alert_to_review(response, alert, queue, runaway, app, channels):
    resp = response()
    label = alert("AllWorkersDown", "P1")
    victims = runaway.pids(kind=INCIDENT)
    survivors = runaway.pids(kind=MUST_SURVIVE)
    resp.start(*resp.argv(P1, label, app, queue, **channels["vars"]))

    rid = resp.request_id()
    request = json.loads((resp.dir / "approvals" / f"{rid}.json").read_text())
    assert sorted(request["evidence"]["pids"]) == sorted(victims)
    time.sleep(1)
    assert runaway.alive(victims) == set(victims), "sessions were terminated before the approval"
    vote = resp.vote(rid, "approve", "bob")
    assert vote.rc == 0, vote.output

    rc, output = resp.finish()
    assert rc == 0, output
    assert runaway.alive(victims) == set() and runaway.alive(survivors) == set(survivors)
    text = flat(output)
    assert f"[{resp.incident}] P1 Critical procedure (set by the playbook; assessed P1): respond by" in text
    assert "Phases: triage -> investigate -> contain -> recover -> verify -> communicate -> review" in text
    assert "P1 phase 3/7 contain -" in text and "of the 15 min response target" in text
    assert "Verification (runbook 4.2): PASSED" in text

    entries = resp.ledger()
    check_chain(entries, resp.incident)
    record = resp.record()
    assert record["priority"] == "P1" and record["status"] == "monitoring"
    # triage's silences are an automatic acknowledgement; no person has acknowledged yet
    assert record["acknowledged"] is False and record["auto_acknowledged_at"] is not None
    approvals = [(e["data"]["approval"], e["actor"]) for e in entries if e["event"] == "approval"]
    assert approvals == [("request", "awx:alice"), ("vote", "awx:bob"), ("outcome", "awx:alice")]
    gate = [e for e in entries if e["event"] == "decision" and e["phase"] == "contain"][-1]["data"]
    assert gate["confirmed"] is True and gate["confirmed_by"] == f"approval {rid} (store)"
    [verification] = [e for e in entries if e["event"] == "verification" and e["phase"] == "verify"]
    checks = {c["name"]: c["status"] for c in verification["data"]["checks"]}
    assert verification["data"]["verdict"] == "passed"
    assert checks == {"health": "passed", "probe readiness API": "passed", "database": "passed", "queue": "passed",
                      "audit chain": "skipped"}
    sent = {e["data"]["channel"] for e in entries if e["event"] == "communication"}
    assert sent == {"email", "pagerduty", "slack", "statuspage"}
    assert channels["slack"].messages(channels["webhook"]) and channels["pagerduty"].events_for(channels["routing_key"])
    assert (resp.dir / "pir" / "pir.md").is_file() and (resp.dir / "pir" / "timeline.svg").is_file()
    assert f"review (PIR): {resp.dir}/pir/pir.md" in text
    assert f"approvals: contain db: {rid} approved by awx:bob" in text
    # rendered before the incident is resolved: a draft, and the response still waits for a person
    pir = (resp.dir / "pir" / "pir.md").read_text()
    assert pir.splitlines()[0].startswith("**DRAFT - not final until the incident is resolved. Missing: resolution "
                                          "(the incident is monitoring, not resolved); acknowledgement by a person")
    assert "| Acknowledged | not by a person |" in pir and "| Auto-acknowledged | 20" in pir

    # A re-run finds nothing to contain: it records no containment, no status change, no approval.
    requests_before = sorted(resp.dir.joinpath("approvals").glob("*.json"))
    rerun = resp.run(*resp.argv(P1, label, app, queue, **channels["vars"]))
    assert rerun.rc == 0, rerun.output
    again = resp.ledger()
    check_chain(again, resp.incident)
    assert again[:len(entries)] == entries
    new = again[len(entries):]
    assert [e for e in new if e["event"] == "incident"] == [] and resp.record() == record
    approvals = [(e["seq"], e["event"], e["task"], e["module"], e["data"].get("approval")) for e in new
                 if e["event"] == "approval"]
    assert approvals == []
    assert sorted(resp.dir.joinpath("approvals").glob("*.json")) == requests_before
    assert not [e for e in new if e["task"] == "Contain | Record that the cause is contained"
                and e["data"].get("status") != "skipped"]
    contain_notes = [e["data"].get("message") for e in new if e["phase"] == "contain" and e["event"] != "task"
                     and e["event"] not in ("playbook_start", "playbook_end")]
    assert len(contain_notes) == 1 and "nothing" in contain_notes[0].lower(), contain_notes
    assert "contain db: NOTHING TO DO" in flat(rerun.output)

    # And a look in check mode at the contained incident writes nothing.
    snapshot = Snapshot(resp.root.parent, resp.ansible.workdir / "incidents")
    look = resp.run(*resp.argv(P1, label, app, queue, **channels["vars"]), "--check")
    assert look.rc == 0, look.output
    assert snapshot.new_or_changed() == [] and resp.ledger() == again


def test_check_mode_of_p1_changes_nothing(response, alert, queue, runaway, app, alertmanager_server):
    resp = response()
    label = alert("AllWorkersDown", "P1")
    victims = runaway.pids(kind=INCIDENT)
    snapshot = Snapshot(resp.root.parent, resp.ansible.workdir / "incidents")
    run = resp.run(*resp.argv(P1, label, app, queue), "--check")
    assert run.rc == 0, run.output
    text = flat(run.output)
    assert "CHECK MODE: nothing was changed" in text
    assert f"{len(victims)} session(s) would be signalled after approval" in text
    assert "INCIDENT LEDGER: check mode - nothing recorded" in text
    assert runaway.alive(victims) == set(victims)
    assert live_silences(alertmanager_server.url, label) == []
    assert snapshot.new_or_changed() == []
    # Only what a real run would change: open and acknowledge the new incident, silence its alert.
    assert [t.split(" : ", 1)[1].split("]")[0] for t in changed_tasks(run.output)] == [
        "Record | Open or update the incident record",
        "Record | Acknowledge the firing alerts with silences tagged with the incident id",
        "Record | Record the acknowledgement and the silences in the incident record"]
