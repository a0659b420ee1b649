"""app_logs_info through ansible against the Kubernetes API double: pods' logs, the crashed instance, secrets redacted."""
from __future__ import annotations

import pytest
from _itest_k8s import CLEAN_ENV, DoubleTarget
from trdrhub_harness.k8sapi import NAMESPACE
from trdrhub_harness.k8slogs import write_log

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
SECRET = "pg-secret-in-log-41c9"


@pytest.fixture
def target(k8s_api, tmp_path):
    return DoubleTarget(k8s_api, tmp_path)


def run(ansible, args, **kwargs):
    return ansible.run("app_logs_info", args, extra_env=CLEAN_ENV, **kwargs)


def test_logs_of_every_pod_crashed_instance_first_in_check_mode_too(ansible, target, k8s_api):
    target.crashloop("trdrhub-api", replicas=2)
    crashed = next(p for p in k8s_api.state.list("pods", NAMESPACE, "app=trdrhub-api")[0]
                   if p["status"]["containerStatuses"][0]["restartCount"])
    name = crashed["metadata"]["name"]
    write_log(k8s_api.state, name, [f"ERROR line {i} postgresql://app:{SECRET}@db:5432/lcopilot" for i in range(200)],
              previous=True)
    write_log(k8s_api.state, name, ["INFO restarting", "INFO Waiting for application startup."])
    args = {**target.conn, "deployments": ["trdrhub-api"], "tail_lines": 50}
    checked = run(ansible, args, check=True)
    res = run(ansible, args)

    for result in (checked, res):
        assert not result.failed, result.output
        assert result["changed"] is False
    logs = res["logs"]
    assert [(e["pod"], e["container"], e["previous"]) for e in logs[:2]] == [(name, "api", False), (name, "api", True)]
    assert logs[0]["lines"] == ["INFO restarting", "INFO Waiting for application startup."]
    assert logs[1]["line_count"] == 50 and logs[1]["lines"][-1] == "ERROR line 199 postgresql://app:********@db:5432/lcopilot"
    healthy = logs[2]
    assert healthy["pod"] != name and healthy["previous"] is False and healthy["error"] is None
    assert "INFO Application startup complete." in healthy["lines"]
    assert len(logs) == 3
    assert SECRET not in res.output and SECRET not in checked.output
    log_requests = [r for r in res["requests"] if "/log?" in r]
    assert log_requests[0] == (f"GET /api/v1/namespaces/{NAMESPACE}/pods/{name}/log?container=api&tailLines=50"
                               f"&limitBytes=4194304")
    assert [r for r in k8s_api.requests if "/log" in r[1]][-1][1].startswith(f"/api/v1/namespaces/{NAMESPACE}/pods/")
    assert checked["logs"] == logs


def test_a_container_still_starting_is_an_entry_and_a_missing_deployment_fails(ansible, target, k8s_api):
    target.stall("trdrhub-api", replicas=1)
    res = run(ansible, {**target.conn, "deployments": ["trdrhub-api"], "max_pods": 5})
    assert not res.failed, res.output
    waiting = [e for e in res["logs"] if e["error"]]
    assert waiting and all("is waiting to start: ImagePullBackOff" in e["error"] for e in waiting)
    assert any(e["lines"] for e in res["logs"] if not e["error"])

    missing = run(ansible, {**target.conn, "deployments": ["trdrhub-nope"]})
    assert missing.failed
    assert 'deployments.apps "trdrhub-nope" not found' in missing["msg"]
    assert missing["requests"] == [f"GET /apis/apps/v1/namespaces/{NAMESPACE}/deployments/trdrhub-nope"]
