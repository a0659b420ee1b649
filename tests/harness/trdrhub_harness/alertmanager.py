"""A throwaway Prometheus Alertmanager (API v2), clustering disabled."""
from __future__ import annotations

import urllib.request

from ._common import ServiceProcess, find_binary, free_port

_CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
"""


class AlertmanagerServer(ServiceProcess):
    name = "alertmanager"

    def __init__(self) -> None:
        super().__init__()
        self.binary = find_binary(["prometheus-alertmanager", "alertmanager"], "TRDRHUB_ALERTMANAGER")
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> "AlertmanagerServer":
        config = self.workdir / "alertmanager.yml"
        config.write_text(_CONFIG)
        (self.workdir / "data").mkdir()
        self.port = free_port()
        self._spawn([
            self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}", "--cluster.listen-address=",
            "--log.level=warn",
        ])
        self._wait_ready(self._probe)
        return self

    def _probe(self) -> bool:
        with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:  # noqa: S310 - loopback only
            return resp.status == 200

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict:
        return {"TRDRHUB_ALERTMANAGER_URL": self.url}
