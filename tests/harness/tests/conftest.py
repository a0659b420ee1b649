"""The harness's own tests: the service harness and the Kubernetes API double, not the collection.

They need the harness's pytest plugin (pg_server, k8s_api, ... and the integration/smoke markers) and
none of tests/integration's fixtures. ``make integration`` collects them beside tests/integration.
"""
from __future__ import annotations

import sys
from pathlib import Path

_HARNESS = Path(__file__).resolve().parents[1]
if str(_HARNESS) not in sys.path:
    sys.path.insert(0, str(_HARNESS))

HARNESS_PLUGIN = "trdrhub_harness.pytest_plugin"


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(HARNESS_PLUGIN):
        config.pluginmanager.import_plugin(HARNESS_PLUGIN)
