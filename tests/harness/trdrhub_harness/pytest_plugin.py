"""pytest fixtures for the harness services (load with ``-p trdrhub_harness.pytest_plugin``).

Each service is started once per test session and always stopped, also when tests fail.
When the ``TRDRHUB_PG_PORT`` / ``TRDRHUB_REDIS_URL`` / ``TRDRHUB_ALERTMANAGER_URL`` variables
are already set (``python -m trdrhub_harness run -- pytest ...``) those instances are used.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from .alertmanager import AlertmanagerServer
from .k8sapi import K8sApiServer
from .postgres import PostgresServer
from .redis import RedisServer
from .statuspage import StatuspageServer


def pytest_configure(config):
    # The markers of the tests that use these services: tests/integration and the harness's own tests/harness/tests.
    config.addinivalue_line("markers", "integration: runs real ansible-playbook against the harness PostgreSQL")
    config.addinivalue_line("markers", "smoke: fast end-to-end checks that make check runs in the inner loop")


@pytest.fixture(scope="session")
def pg_server():
    if os.environ.get("TRDRHUB_PG_PORT"):
        yield PostgresServer.attach()
        return
    with PostgresServer() as server:
        yield server.start()


@pytest.fixture(scope="session")
def redis_server():
    if os.environ.get("TRDRHUB_REDIS_URL"):
        yield SimpleNamespace(url=os.environ["TRDRHUB_REDIS_URL"], host=os.environ.get("TRDRHUB_REDIS_HOST"),
                              port=int(os.environ.get("TRDRHUB_REDIS_PORT", "0")))
        return
    with RedisServer() as server:
        yield server.start()


@pytest.fixture(scope="session")
def alertmanager_server():
    if os.environ.get("TRDRHUB_ALERTMANAGER_URL"):
        yield SimpleNamespace(url=os.environ["TRDRHUB_ALERTMANAGER_URL"])
        return
    with AlertmanagerServer() as server:
        yield server.start()


@pytest.fixture
def k8s_api():
    """A fresh Kubernetes API double (TLS, bearer tokens) per test; seed it through ``k8s_api.state``.

    ``k8s_api.token`` is accepted, ``k8s_api.forbidden_token`` authenticates but may do nothing (403).
    """
    forbidden = "itest-k8s-forbidden-" + os.urandom(8).hex()
    with K8sApiServer(tls=True, forbidden_tokens={forbidden: "system:serviceaccount:trdrhub-system:nobody"}) as api:
        yield api


@pytest.fixture(scope="session")
def statuspage_server():
    """The Statuspage REST v1 contract server (in-process); tests add their own page (``add_page``) and key (``add_key``)."""
    with StatuspageServer() as server:
        yield server


@pytest.fixture(scope="session")
def pagerduty_server():
    """The PagerDuty Events API v2 contract server (in-process); tests add their own key (``add_routing_key``)."""
    from .pagerduty import PagerDutyServer

    with PagerDutyServer() as server:
        yield server.start()


@pytest.fixture(scope="session")
def slack_server():
    """The Slack incoming-webhook contract server (in-process); tests add their own webhook (``add_webhook``)."""
    from .slack import SlackServer

    with SlackServer() as server:
        yield server.start()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd): STARTTLS with ``ca_path``, AUTH as ``username``/``password``, ``messages``."""
    from .smtp import SmtpServer

    with SmtpServer(refused={"unknown@customer.example"}) as server:
        yield server.start()


@pytest.fixture(scope="session")
def jira_server():
    """The Jira Cloud REST API v3 contract server (in-process); tests add their own account and project."""
    from .jira import JiraServer

    with JiraServer() as server:
        yield server.start()


@pytest.fixture(scope="session")
def servicenow_server():
    """The ServiceNow Table API contract server (in-process); tests add their own user (``add_user``)."""
    from .servicenow import ServiceNowServer

    with ServiceNowServer() as server:
        yield server.start()
