"""A throwaway Prometheus Alertmanager (API v2), clustering disabled.

``AlertmanagerServer(basic_auth={"user": "password"})`` also requires HTTP basic
auth, through Alertmanager's own ``--web.config.file`` (bcrypt-hashed passwords).

``AlertmanagerServer(webhooks=[webhook_receiver(url, bearer_token=...)], group_wait="1s")``
routes every alert to those webhook receivers (``webhook_configs``, bearer credentials
through ``http_config.authorization``) instead of the default receiver that notifies nobody.
"""
from __future__ import annotations

import base64
import json
import urllib.request
import warnings
from typing import Dict, List, Optional, Sequence

from ._common import HarnessError, ServiceProcess, find_binary, free_port

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


def webhook_receiver(url: str, bearer_token: Optional[str] = None, send_resolved: bool = True,
                     max_alerts: int = 0) -> dict:
    """One ``webhook_configs`` entry; ``bearer_token`` becomes ``http_config.authorization.credentials``."""
    entry: dict = {"url": url, "send_resolved": send_resolved, "max_alerts": max_alerts}
    if bearer_token is not None:
        entry["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
    return entry


class AlertmanagerServer(ServiceProcess):
    name = "alertmanager"

    def __init__(self, basic_auth: Optional[Dict[str, str]] = None, webhooks: Optional[Sequence[dict]] = None,
                 group_by: Sequence[str] = ("alertname",), group_wait: str = "1s", group_interval: str = "1s",
                 repeat_interval: str = "1h") -> None:
        super().__init__()
        self.binary = find_binary(["prometheus-alertmanager", "alertmanager"], "TRDRHUB_ALERTMANAGER")
        self.host = "127.0.0.1"
        self.port = 0
        self.basic_auth = dict(basic_auth or {})
        self.webhooks: List[dict] = [dict(w) for w in webhooks or ()]
        self.route = {"group_by": list(group_by), "group_wait": group_wait, "group_interval": group_interval,
                      "repeat_interval": repeat_interval}

    def config_text(self) -> str:
        """The configuration file: the silent default unless webhooks were given (JSON is YAML)."""
        if not self.webhooks:
            return _CONFIG
        return json.dumps({
            "route": {"receiver": "webhook", **self.route},
            "receivers": [{"name": "webhook", "webhook_configs": self.webhooks}],
        }, indent=1)

    def start(self) -> "AlertmanagerServer":
        config = self.workdir / "alertmanager.yml"
        config.write_text(self.config_text())
        config.chmod(0o600)   # may hold webhook credentials
        (self.workdir / "data").mkdir()
        self.port = free_port()
        argv = [
            self.binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.host}:{self.port}", "--cluster.listen-address=",
            "--log.level=warn",
        ]
        if self.basic_auth:
            web_config = self.workdir / "web.yml"
            users = {user: bcrypt_hash(password) for user, password in self.basic_auth.items()}
            web_config.write_text(json.dumps({"basic_auth_users": users}))  # JSON is YAML
            argv.append(f"--web.config.file={web_config}")
        self._spawn(argv)
        self._wait_ready(self._probe)
        return self

    def reload(self, webhooks: Optional[Sequence[dict]] = None) -> None:
        """Rewrite the configuration (new ``webhooks`` when given) and have the running server load it."""
        if webhooks is not None:
            self.webhooks = [dict(w) for w in webhooks]
        (self.workdir / "alertmanager.yml").write_text(self.config_text())
        req = urllib.request.Request(self.url + "/-/reload", method="POST", headers=self.auth_header())
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            if resp.status != 200:
                raise HarnessError(f"alertmanager refused the new configuration:\n{self.log_tail()}")

    def auth_header(self) -> Dict[str, str]:
        """An Authorization header for the first basic-auth user; empty without basic auth."""
        if not self.basic_auth:
            return {}
        user, password = next(iter(self.basic_auth.items()))
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    def _probe(self) -> bool:
        req = urllib.request.Request(self.url + "/-/ready", headers=self.auth_header())
        with urllib.request.urlopen(req, timeout=1) as resp:  # noqa: S310 - loopback only
            return resp.status == 200

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict:
        return {"TRDRHUB_ALERTMANAGER_URL": self.url}


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for --web.config.file: the bcrypt package, else libcrypt through ``crypt`` (Python < 3.13)."""
    try:
        import bcrypt
    except ImportError:
        pass
    else:
        # Cost 4 (the minimum): a throwaway test server, and Alertmanager checks it on every request.
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # noqa: PLC0415 - removed in Python 3.13, only a fallback
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    except (ImportError, AttributeError, OSError):
        hashed = None
    if not hashed or not hashed.startswith("$2"):
        raise HarnessError("basic_auth needs a bcrypt hash: pip install bcrypt (requirements-dev.txt)")
    return hashed
