"""respond_p2.yml end to end: an application incident (Kubernetes API double) contained after its approval gate
(a second person's vote; the requester's own does not count) and recovered, with the review written.
The services, fixtures and the Response driver are test_respond_p1.py's.
"""
from __future__ import annotations

import json

import pytest
from _itest_k8s import CLEAN_ENV, DoubleTarget
from _itest_ledger import check_chain

from .test_respond_p1 import P2, alert, flat, health, queue, response  # noqa: F401 pylint: disable=unused-import

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_p2_application_incident_contains_the_app_after_approval_and_recovers(response, alert, queue, app, k8s_api, tmp_path):  # noqa: F811
    target = DoubleTarget(k8s_api, tmp_path)
    try:
        target.add_deployment("trdrhub-api", replicas=2)
        pods = target.pod_names("trdrhub-api")
        resp = response()
        resp.env.update(CLEAN_ENV)
        label = alert("NotificationDeliveryDegraded", "P2")
        resp.start(*resp.argv(P2, label, app, queue, respond_contain=["app"], respond_recover=True,
                              respond_app_approval_poll_interval=0.3, app_control_kubeconfig=str(target.kubeconfig),
                              app_control_namespace=target.namespace, app_control_replicas=3,
                              app_control_expected_replicas=2, app_control_timeout=30))
        rid = resp.request_id()
        request = json.loads((resp.dir / "approvals" / f"{rid}.json").read_text())
        assert request["action"] == "contain_app" and request["evidence"]["replicas"] == 3
        assert target.read("trdrhub-api")["spec"]["replicas"] == 2
        own = resp.vote(rid, "approve", "alice")
        assert own.rc != 0 and "two-person rule" in flat(own.output)
        assert resp.vote(rid, "approve", "carol").rc == 0

        rc, output = resp.finish()
        assert rc == 0, output
        assert target.read("trdrhub-api")["spec"]["replicas"] == 3
        assert target.pod_names("trdrhub-api").isdisjoint(pods)
        text = flat(output)
        assert "P2 phase 3/7 contain -" in text and "of the 60 min response target" in text
        assert f"approvals: contain app: {rid} approved by awx:carol" in text
        entries = resp.ledger()
        check_chain(entries, resp.incident)
        assert [e["data"]["approval"] for e in entries if e["event"] == "approval"] == ["request", "vote", "outcome"]
        assert resp.record()["priority"] == "P2" and resp.record()["status"] == "monitoring"
        assert (resp.dir / "pir" / "pir.md").is_file()
    finally:
        target.close()
