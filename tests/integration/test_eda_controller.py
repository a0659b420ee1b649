"""The EDA controller rulebook through the real ansible-rulebook (from .venv-eda) and a controller API.

``extensions/eda/rulebooks/trdrhub_alerts_controller.yml`` launches the AWX job templates of
``extensions/awx/trdrhub.json``. Here ansible-rulebook runs it with ``--controller-url`` pointing at
an in-process stand-in for the AWX API that serves exactly the objects of that import document
(``/api/v2/config/``, ``unified_job_templates`` by name and organization, ``launch``, the job
status polls) and records every launch. Authenticated Alertmanager webhooks go to the
collection's event source; the launches are what AWX would run.
"""
from __future__ import annotations

import json
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from _itest_ansible import REPO_ROOT
from test_eda_alertmanager import EDA_VENV, Rulebook, validate, wait_until, webhook_payload

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CONTROLLER_RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "trdrhub_alerts_controller.yml"
LOCAL_RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "trdrhub_alerts.yml"
AWX_DOC = REPO_ROOT / "extensions" / "awx" / "trdrhub.json"
TOKEN = "controller-itest-" + uuid.uuid4().hex


class FakeController:
    """The AWX API endpoints ansible-rulebook's run_job_template uses, over the import document's objects."""

    def __init__(self) -> None:
        doc = json.loads(AWX_DOC.read_text(encoding="utf-8"))
        org = doc["organizations"][0]["name"]
        self.templates: list[dict] = []
        for kind, key in (("job_template", "job_templates"), ("workflow_job_template", "workflow_job_templates")):
            for obj in doc[key]:
                tid = len(self.templates) + 1
                self.templates.append({
                    "id": tid, "type": kind, "name": obj["name"],
                    "summary_fields": {"organization": {"name": org}},
                    "related": {"launch": f"/api/v2/{key}/{tid}/launch/"},
                    "ask_limit_on_launch": obj.get("ask_limit_on_launch", False),
                    "ask_labels_on_launch": False,
                    "ask_inventory_on_launch": obj.get("ask_inventory_on_launch", False),
                    "ask_variables_on_launch": obj.get("ask_variables_on_launch", False),
                    "survey": [q["variable"] for q in obj["related"].get("survey_spec", {}).get("spec", [])],
                })
        self.launches: list[dict] = []
        self.unauthorized = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                    return True
                with fake.lock:
                    fake.unauthorized += 1
                self._send(401, {"detail": "Authentication credentials were not provided."})
                return False

            def do_GET(self):
                if not self._authorized():
                    return
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/api/v2/config/":
                    return self._send(200, {"version": "24.6.1"})
                if url.path == "/api/v2/unified_job_templates/":
                    found = [t for t in fake.templates if t["name"] == query.get("name")]
                    return self._send(200, {"count": len(found), "next": None, "results": found})
                if url.path in ("/api/v2/jobs/", "/api/v2/workflow_jobs/"):
                    ids = [i for i in query.get("id__in", "").split(",") if i]
                    return self._send(200, {"count": len(ids), "next": None,
                                            "results": [{"id": int(i), "status": "successful", "artifacts": {}} for i in ids]})
                return self._send(404, {"detail": "Not found."})

            def do_POST(self):
                if not self._authorized():
                    return
                path = urllib.parse.urlsplit(self.path).path
                template = next((t for t in fake.templates if t["related"]["launch"] == path), None)
                if template is None:
                    return self._send(404, {"detail": "Not found."})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                extra_vars = body.get("extra_vars") or {}
                if isinstance(extra_vars, str):
                    extra_vars = yaml.safe_load(extra_vars) or {}
                # AWX ignores variables it is not asked for (no prompt on launch, not a survey answer).
                refused = [] if template["ask_variables_on_launch"] else sorted(set(extra_vars) - set(template["survey"]))
                with fake.lock:
                    job_id = 1000 + len(fake.launches)
                    fake.launches.append({"name": template["name"], "type": template["type"], "extra_vars": extra_vars,
                                          "refused": refused, "body": body})
                kind = "workflow_jobs" if template["type"] == "workflow_job_template" else "jobs"
                return self._send(201, {"id": job_id, "job": job_id, "url": f"/api/v2/{kind}/{job_id}/"})

        return Handler

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def launched(self, name: str) -> list[dict]:
        with self.lock:
            return [launch for launch in self.launches if launch["name"] == name]


class ControllerRulebook(Rulebook):
    """The controller rulebook, launching against ``controller``."""

    def __init__(self, tmp: Path, controller: FakeController) -> None:
        super().__init__(tmp, CONTROLLER_RULEBOOK, {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
        self.argv += ["--controller-url", controller.url, "--controller-token", TOKEN]


def firing(name: str, fingerprint: str, severity: str) -> dict:
    return {"status": "firing", "fingerprint": fingerprint, "startsAt": "2025-01-15T14:30:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.invalid/graph",
            "labels": {"alertname": name, "severity": severity, "component": "queue", "service": "lcpilot"},
            "annotations": {"runbook_url": "https://runbooks.trdrhub.example/queue"}}


def _rules(path: Path) -> list[dict]:
    [ruleset] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return ruleset["rules"]


def test_controller_rulebook_passes_validation_and_keeps_the_local_rules():
    ok = validate(CONTROLLER_RULEBOOK)
    assert ok.returncode == 0, ok.stderr
    [names] = json.loads(ok.stdout)
    assert len(names) == 3
    # Same source, same conditions and throttles as the rulebook that runs playbooks: only the actions differ.
    local, controller = yaml.safe_load(LOCAL_RULEBOOK.read_text()), yaml.safe_load(CONTROLLER_RULEBOOK.read_text())
    assert local[0]["sources"] == controller[0]["sources"]
    assert [(r["condition"], r["throttle"]) for r in _rules(LOCAL_RULEBOOK)] == \
           [(r["condition"], r["throttle"]) for r in _rules(CONTROLLER_RULEBOOK)]


def test_every_template_the_controller_rulebook_launches_is_in_the_awx_import():
    doc = json.loads(AWX_DOC.read_text(encoding="utf-8"))
    org = doc["organizations"][0]["name"]
    kinds = {"run_job_template": {jt["name"]: jt for jt in doc["job_templates"]},
             "run_workflow_template": {wf["name"]: wf for wf in doc["workflow_job_templates"]}}
    launched = set()
    for rule in _rules(CONTROLLER_RULEBOOK):
        actions = rule.get("actions") or [rule["action"]]
        for action in actions:
            [(kind, args)] = action.items()
            assert kind in kinds, f"{rule['name']}: {kind} does not run on the controller"
            template = kinds[kind].get(args["name"])
            assert template is not None, f"{rule['name']}: no {kind} named {args['name']!r} in extensions/awx"
            assert "TRDR Hub SRE" in args["organization"] and org == "TRDR Hub SRE"
            extra_vars = set(args.get("job_args", {}).get("extra_vars", {}))
            survey = {q["variable"] for q in template["related"].get("survey_spec", {}).get("spec", [])}
            assert template.get("ask_variables_on_launch") or extra_vars <= survey, (args["name"], extra_vars - survey)
            launched.add(args["name"])
    assert launched == {"trdrhub.incident triage", "trdrhub.incident contain_db", "trdrhub.incident verify"}


def test_alerts_launch_the_awx_templates(tmp_path):
    if not (EDA_VENV / "bin" / "ansible-rulebook").exists():
        pytest.skip(f"no ansible-rulebook in {EDA_VENV}")
    p1, p3, resolved = (uuid.uuid4().hex[:16] for _unused in range(3))
    with FakeController() as controller, ControllerRulebook(tmp_path, controller) as eda:
        # Unauthenticated webhooks launch nothing.
        assert eda.post(webhook_payload(firing("QueueLagCritical", p1, "P1"), status="firing")).status_code == 401

        # A P1 queue alert: triage, then the gated containment job - twice sent, launched once (throttle).
        for _repeat in range(2):
            assert eda.post(webhook_payload(firing("QueueLagCritical", p1, "P1"), status="firing"), eda.token).status_code == 202
        wait_until("the containment launch", lambda: controller.launched("trdrhub.incident contain_db"), timeout=120, proc=eda.proc)
        [contain] = controller.launched("trdrhub.incident contain_db")
        assert contain["extra_vars"] == {"trdrhub_incident_id": f"INC-AM-{p1}", "contain_db_incident_id": f"INC-AM-{p1}",
                                         "contain_db_priority": "P1", "contain_db_approval_mode": "store",
                                         "contain_db_confirm": "false"}
        assert contain["refused"] == []

        # A P3 alert is triaged only; a resolved one launches the verification.
        assert eda.post(webhook_payload(firing("ReportQueueStuck", p3, "P3"), status="firing"), eda.token).status_code == 202
        gone = {**firing("ReportQueueStuck", resolved, "P2"), "status": "resolved", "endsAt": "2025-01-15T15:00:00Z"}
        assert eda.post(webhook_payload(gone, status="resolved"), eda.token).status_code == 202
        wait_until("the verification launch", lambda: controller.launched("trdrhub.incident verify"), timeout=120, proc=eda.proc)
        wait_until("the P3 triage", lambda: [t for t in controller.launched("trdrhub.incident triage")
                                             if t["extra_vars"]["trdrhub_incident_id"] == f"INC-AM-{p3}"], timeout=60, proc=eda.proc)

        triages = {t["extra_vars"]["trdrhub_incident_id"]: t for t in controller.launched("trdrhub.incident triage")}
        assert sorted(triages) == sorted([f"INC-AM-{p1}", f"INC-AM-{p3}"])
        first = triages[f"INC-AM-{p1}"]["extra_vars"]
        assert first["trdrhub_triage_acknowledge"] == "false", "a machine must not silence the page"
        assert first["triage_alert_filter"] == ['alertname="QueueLagCritical"', 'service="lcpilot"']
        assert first["triage_detected_at"] == "2025-01-15T14:30:00Z"
        [verify] = controller.launched("trdrhub.incident verify")
        assert verify["extra_vars"] == {"trdrhub_incident_id": f"INC-AM-{resolved}", "verify_fail": False}
        assert len(controller.launched("trdrhub.incident contain_db")) == 1
        assert all(launch["refused"] == [] for launch in controller.launches)
        assert controller.unauthorized == 0, "ansible-rulebook authenticates with the activation's token"
        assert eda.token not in eda.output() and TOKEN not in eda.output()
