# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""An authenticated Alertmanager webhook receiver: the ``trdrhub.incident.alertmanager`` event source.

Unlike a receiver that accepts anyone who can reach its port, every request must carry a
bearer token and/or an HMAC signature over its body; the source refuses to start without
one unless ``insecure_no_auth`` says so. Each alert of a webhook becomes one event.
"""


import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhooks, authenticated by bearer token and/or HMAC signature.
description:
  - An ansible-rulebook event source that receives Prometheus Alertmanager webhook notifications
    (C(webhook_config), payload version 4) on O(path) and puts one event per alert on the queue.
  - "Every request must authenticate. With O(token) (or O(token_env), O(token_file)) the request must carry
    C(Authorization: Bearer <token>), compared in constant time - Alertmanager sends it from
    C(http_config.authorization.credentials). With O(hmac_secret) the request must carry an HMAC of its raw body in
    O(hmac_header). With both, both are required."
  - A request that does not authenticate is answered 401 (with C(WWW-Authenticate) for bearer tokens) and queues
    nothing. A body that is not JSON is answered 400, a JSON body that is not an Alertmanager payload 400, a body of
    another content type 415 and a body over O(max_body_size) 413.
  - The source refuses to start when no token and no HMAC secret are configured, unless O(insecure_no_auth) is true.
  - "Each event is C({alert: <the alert as sent>, alertname, severity, fingerprint, status, meta: {...}}).
    C(severity) is the C(severity) label normalised to V(P1) to V(P4) (see O(severity_map)), else null;
    C(fingerprint) is Alertmanager's, or a SHA-256 of the sorted labels when the sender gives none;
    C(status) is the alert's (V(firing) or V(resolved)), else the payload's.
    C(meta) holds the payload's C(receiver), C(groupKey), C(groupLabels), C(commonLabels), C(externalURL),
    the path, the hosts found at O(data_host_path) and the request headers without credentials."
  - Secrets are never logged and never reach an event - the C(Authorization) header and the signature and timestamp
    headers are dropped from C(meta.headers).
  - Runs under ansible-rulebook (and the EDA controller); it only needs C(aiohttp).
options:
  host:
    description:
      - Address to listen on. V(0.0.0.0) listens on all interfaces.
    type: str
    default: 127.0.0.1
  port:
    description:
      - TCP port to listen on.
    type: int
    default: 5000
  path:
    description:
      - URL path that accepts the webhooks (C(POST)). C(GET /healthz) answers C(up) without authentication.
    type: str
    default: /alerts
  token:
    description:
      - Bearer token the sender must present. A list accepts any of its tokens (for rotation).
    type: raw
  token_env:
    description:
      - Name of an environment variable holding the bearer token, used when O(token) is empty.
    type: str
  token_file:
    description:
      - File holding the bearer token (surrounding white space is ignored), used when O(token) is empty.
    type: path
  hmac_secret:
    description:
      - Shared secret of the HMAC signature. O(hmac_secret_env) and O(hmac_secret_file) are used when it is empty.
    type: str
  hmac_secret_env:
    description:
      - Name of an environment variable holding O(hmac_secret).
    type: str
  hmac_secret_file:
    description:
      - File holding O(hmac_secret).
    type: path
  hmac_header:
    description:
      - Header carrying the signature, as C(<algorithm>=<digest>) or the bare digest.
    type: str
    default: X-Hub-Signature-256
  hmac_algo:
    description:
      - Digest of the HMAC, any name C(hashlib) knows (V(sha256), V(sha512), ...).
    type: str
    default: sha256
  hmac_format:
    description:
      - Encoding of the digest in O(hmac_header).
    type: str
    choices: [hex, base64]
    default: hex
  hmac_timestamp_header:
    description:
      - Header carrying the signing time in Unix seconds. When set, it is required, the signature covers
        C(<timestamp>.<body>), a request whose time is more than O(hmac_max_skew) seconds from now is refused, and
        a signature is accepted only once within that window (replay protection).
    type: str
  hmac_max_skew:
    description:
      - Largest accepted difference, in seconds, between O(hmac_timestamp_header) and the receiver's clock.
    type: int
    default: 300
  insecure_no_auth:
    description:
      - Accept unauthenticated requests. Only for a receiver that nothing else can reach; a warning is logged
        at start.
    type: bool
    default: false
  max_body_size:
    description:
      - Largest accepted body in bytes; larger requests are answered 413.
    type: int
    default: 1048576
  data_alerts_path:
    description:
      - Dot-separated path of the alert list in the payload. Empty treats the whole payload as one alert.
    type: str
    default: alerts
  data_host_path:
    description:
      - Dot-separated path, inside an alert, of the host the alert is about, for example V(labels.instance); its port
        is removed and it is put in C(meta.hosts) (absent when the alert has no such value).
      - ansible-rulebook limits C(run_playbook) and C(run_module) to the hosts in C(meta.hosts). The collection's
        playbooks run on the controller, so the default (empty) sets no hosts; set it only for playbooks that act on
        the alerting host itself.
    type: str
    default: ""
  skip_original_data:
    description:
      - "When false, the whole payload is also queued first, as C({payload: ..., meta: ...})."
    type: bool
    default: true
  severity_map:
    description:
      - "Maps other C(severity) label values (lower case) to a priority, for example C({critical: P1, warning: P3}).
        V(P1) to V(P4) are recognised in any case without it."
    type: dict
    default: {}
  certfile:
    description:
      - PEM certificate (chain) to serve HTTPS with. Without it the source serves plain HTTP.
    type: path
  keyfile:
    description:
      - PEM private key of O(certfile); omit when O(certfile) contains it.
    type: path
  cafile:
    description:
      - PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS).
    type: path
"""

EXAMPLES = r"""
- name: TRDR Hub alerts
  hosts: all
  sources:
    - name: alertmanager
      trdrhub.incident.alertmanager:
        host: 0.0.0.0
        port: 5000
        token_env: TRDRHUB_EDA_TOKEN
        certfile: /etc/eda/tls/tls.crt
        keyfile: /etc/eda/tls/tls.key
  rules:
    - name: Show a firing P1
      condition: event.alert.status == "firing" and event.alert.labels.severity == "P1"
      action:
        debug:

- name: Another sender, HMAC-signed with a timestamp
  hosts: all
  sources:
    - trdrhub.incident.alertmanager:
        port: 5001
        hmac_secret_file: /etc/eda/hmac.key
        hmac_header: X-Signature
        hmac_timestamp_header: X-Signature-Timestamp
        hmac_max_skew: 120
  rules:
    - name: Show it
      condition: event.alertname is defined
      action:
        debug:
"""

LOG = logging.getLogger(__name__)
_PRIORITY = re.compile(r"^[Pp]([1-4])$")
_REPLAY_CACHE_SIZE = 10000


class ConfigError(ValueError):
    """The source's arguments cannot make a safe receiver; the message says which and why."""


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _int(args: Dict[str, Any], name: str, default: int) -> int:
    value = args.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a whole number") from None


def _secret(args: Dict[str, Any], name: str, unset: List[str]) -> Optional[bytes]:
    """``name``, else the variable named by ``name_env``, else the file ``name_file``: stripped, or None.

    An unset variable is noted in ``unset`` (the start-up error names it); a named file that cannot be
    read is an error of its own.
    """
    value = args.get(name)
    if value not in (None, ""):
        return str(value).strip().encode()
    env_name = args.get(f"{name}_env")
    if env_name and os.environ.get(env_name, "").strip():
        return os.environ[env_name].strip().encode()
    if env_name:
        unset.append(f"{name}_env: the environment variable {env_name} is not set")
    path = args.get(f"{name}_file")
    if path:
        try:
            with open(path, "rb") as handle:
                data = handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_file: cannot read {path}: {exc.strerror}") from None
        if not data:
            raise ConfigError(f"{name}_file: {path} is empty")
        return data
    return None


@dataclass
class Settings:
    """The validated arguments of the source."""

    host: str = "127.0.0.1"
    port: int = 5000
    path: str = "/alerts"
    tokens: List[bytes] = field(default_factory=list, repr=False)
    hmac_secret: Optional[bytes] = field(default=None, repr=False)
    hmac_header: str = "X-Hub-Signature-256"
    hmac_algo: str = "sha256"
    hmac_format: str = "hex"
    hmac_timestamp_header: Optional[str] = None
    hmac_max_skew: int = 300
    insecure_no_auth: bool = False
    max_body_size: int = 1048576
    data_alerts_path: str = "alerts"
    data_host_path: str = ""
    skip_original_data: bool = True
    severity_map: Dict[str, str] = field(default_factory=dict)
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    cafile: Optional[str] = None

    @classmethod
    def from_args(cls, args: Dict[str, Any]) -> "Settings":
        args = dict(args or {})
        unset: List[str] = []
        raw_tokens = args.get("token")
        tokens = [str(t).strip().encode() for t in raw_tokens if str(t).strip()] if isinstance(raw_tokens, list) else []
        if not tokens:
            single = _secret({**args, "token": None if isinstance(raw_tokens, list) else raw_tokens}, "token", unset)
            tokens = [single] if single else []
        settings = cls(
            host=str(args.get("host") or "127.0.0.1"), port=_int(args, "port", 5000),
            path="/" + str(args.get("path") or "/alerts").lstrip("/"), tokens=tokens,
            hmac_secret=_secret(args, "hmac_secret", unset),
            hmac_header=str(args.get("hmac_header") or "X-Hub-Signature-256"),
            hmac_algo=str(args.get("hmac_algo") or "sha256").lower(),
            hmac_format=str(args.get("hmac_format") or "hex").lower(),
            hmac_timestamp_header=args.get("hmac_timestamp_header") or None,
            hmac_max_skew=_int(args, "hmac_max_skew", 300),
            insecure_no_auth=_bool(args.get("insecure_no_auth", False)),
            max_body_size=_int(args, "max_body_size", 1048576),
            data_alerts_path=str(args.get("data_alerts_path", "alerts") or ""),
            data_host_path=str(args.get("data_host_path") or ""),
            skip_original_data=_bool(args.get("skip_original_data", True)),
            severity_map={str(k).lower(): str(v).upper() for k, v in (args.get("severity_map") or {}).items()},
            certfile=args.get("certfile") or None, keyfile=args.get("keyfile") or None,
            cafile=args.get("cafile") or None,
        )
        settings.check(unset)
        return settings

    def check(self, unset: Optional[List[str]] = None) -> None:
        if not self.tokens and not self.hmac_secret and not self.insecure_no_auth:
            raise ConfigError(
                "no authentication configured: set token (or token_env, token_file) and/or hmac_secret "
                "(or hmac_secret_env, hmac_secret_file); insecure_no_auth: true accepts anyone and is not for production"
                + "".join(f"; {note}" for note in unset or []))
        if self.hmac_algo not in hashlib.algorithms_available:
            raise ConfigError(f"hmac_algo: unknown digest {self.hmac_algo}")
        if self.hmac_format not in ("hex", "base64"):
            raise ConfigError("hmac_format: must be hex or base64")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port: {self.port} is not a TCP port")
        if self.max_body_size < 1 or self.hmac_max_skew < 1:
            raise ConfigError("max_body_size and hmac_max_skew must be positive")
        if self.keyfile and not self.certfile:
            raise ConfigError("keyfile needs certfile")
        if self.cafile and not self.certfile:
            raise ConfigError("cafile (client certificates) needs certfile")
        bad = {k: v for k, v in self.severity_map.items() if not _PRIORITY.match(v)}
        if bad:
            raise ConfigError(f"severity_map: values must be P1 to P4, not {sorted(bad.values())}")

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        if not self.certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        if self.cafile:
            context.load_verify_locations(self.cafile)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class Receiver:
    """The webhook endpoint: authenticate, parse, normalise, queue."""

    # Never copied into an event: they carry or protect credentials.
    _DROPPED_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie"))

    def __init__(self, queue: asyncio.Queue, settings: Settings) -> None:
        self.queue = queue
        self.settings = settings
        self._seen: "OrderedDict[bytes, float]" = OrderedDict()
        dropped = {settings.hmac_header, settings.hmac_timestamp_header or ""}
        self._dropped = self._DROPPED_HEADERS | {h.lower() for h in dropped if h}

    def app(self) -> web.Application:
        # client_max_size makes aiohttp itself answer 413 for a body over the limit.
        app = web.Application(client_max_size=self.settings.max_body_size)
        app.router.add_post(self.settings.path, self.webhook)
        app.router.add_get("/healthz", self.health)
        return app

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="up")

    def _refuse(self, request: web.Request, reason: str, bearer: bool) -> web.Response:
        # The reason names the check that failed, never a value the client sent.
        LOG.warning("alertmanager source: refused a request from %s: %s", request.remote, reason)
        headers = {"WWW-Authenticate": 'Bearer realm="trdrhub.incident"'} if bearer else {}
        return web.json_response({"error": "unauthorized"}, status=401, headers=headers)

    def _bearer_ok(self, request: web.Request) -> bool:
        scheme, _space, value = request.headers.get("Authorization", "").partition(" ")
        presented = value.strip().encode()
        if scheme.lower() != "bearer" or not presented:
            return False
        matched = False
        for token in self.settings.tokens:   # every token compared: the time does not tell which matched
            matched |= hmac.compare_digest(presented, token)
        return matched

    def _signature_error(self, request: web.Request, body: bytes) -> Optional[str]:
        settings = self.settings
        header = request.headers.get(settings.hmac_header, "").strip()
        if not header:
            return f"no {settings.hmac_header} header"
        prefix, sep, digest = header.partition("=")
        if sep and prefix.lower() == settings.hmac_algo:
            header = digest
        try:
            presented = bytes.fromhex(header) if settings.hmac_format == "hex" else base64.b64decode(header, validate=True)
        except (ValueError, binascii.Error):
            return f"{settings.hmac_header} is not a {settings.hmac_format} digest"
        message = body
        now = time.time()
        if settings.hmac_timestamp_header:
            stamp = request.headers.get(settings.hmac_timestamp_header, "").strip()
            try:
                signed_at = float(stamp)
            except ValueError:
                return f"no valid {settings.hmac_timestamp_header} header"
            if abs(now - signed_at) > settings.hmac_max_skew:
                return f"signature time is more than {settings.hmac_max_skew}s from now (stale or replayed)"
            message = stamp.encode() + b"." + body
        expected = hmac.new(settings.hmac_secret, message, settings.hmac_algo).digest()
        if not hmac.compare_digest(presented, expected):
            return "signature does not match the body"
        if settings.hmac_timestamp_header:
            if self._replayed(expected, now):
                return "signature already used (replayed)"
        return None

    def _replayed(self, signature: bytes, now: float) -> bool:
        window = 2 * self.settings.hmac_max_skew
        while self._seen and (next(iter(self._seen.values())) < now - window or len(self._seen) >= _REPLAY_CACHE_SIZE):
            self._seen.popitem(last=False)
        if signature in self._seen:
            return True
        self._seen[signature] = now
        return False

    async def webhook(self, request: web.Request) -> web.Response:
        settings = self.settings
        if settings.tokens and not self._bearer_ok(request):
            return self._refuse(request, "missing or wrong bearer token", bearer=True)
        if request.content_length is not None and request.content_length > settings.max_body_size:
            return web.json_response({"error": f"body over {settings.max_body_size} bytes"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"body over {settings.max_body_size} bytes"}, status=413)
        if settings.hmac_secret:
            error = self._signature_error(request, body)
            if error:
                return self._refuse(request, error, bearer=False)
        if request.content_type not in ("application/json", "text/json") and not request.content_type.endswith("+json"):
            return web.json_response({"error": "content type must be application/json"}, status=415)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body is not valid JSON"}, status=400)
        try:
            events = self.events(payload, request)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for event in events:
            await self.queue.put(event)
        LOG.info("alertmanager source: queued %d event(s) from %s", len(events), request.remote)
        return web.json_response({"queued": len(events)}, status=202)

    def events(self, payload: Any, request: web.Request) -> List[Dict[str, Any]]:
        """The events of one payload; ValueError when it is not an Alertmanager-like payload."""
        settings = self.settings
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        if settings.data_alerts_path:
            alerts = _lookup(payload, settings.data_alerts_path)
            if alerts is None:
                raise ValueError(f"payload has no {settings.data_alerts_path}")
            alerts = alerts if isinstance(alerts, list) else [alerts]
        else:
            alerts = [payload]
        if not all(isinstance(alert, dict) for alert in alerts):
            raise ValueError(f"every item of {settings.data_alerts_path or 'the payload'} must be an object")
        meta = {
            "endpoint": request.path,
            "headers": {k: v for k, v in request.headers.items() if k.lower() not in self._dropped},
            "receiver": payload.get("receiver"),
            "group_key": payload.get("groupKey"),
            "group_labels": payload.get("groupLabels") or {},
            "common_labels": payload.get("commonLabels") or {},
            "external_url": payload.get("externalURL"),
            "truncated_alerts": payload.get("truncatedAlerts", 0),
        }
        events = [] if settings.skip_original_data else [{"payload": payload, "meta": dict(meta)}]
        for alert in alerts:
            labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
            hosts = self.hosts(alert)
            events.append({
                "alert": alert,
                "alertname": labels.get("alertname"),
                "severity": self.severity(labels.get("severity")),
                "fingerprint": alert.get("fingerprint") or _fingerprint(labels),
                "status": alert.get("status") or payload.get("status"),
                # ansible-rulebook runs actions on meta.hosts when the key exists, even when empty.
                "meta": {**meta, "hosts": hosts} if hosts else dict(meta),
            })
        return events

    def severity(self, label: Any) -> Optional[str]:
        if label is None:
            return None
        match = _PRIORITY.match(str(label).strip())
        if match:
            return "P" + match.group(1)
        return self.settings.severity_map.get(str(label).strip().lower())

    def hosts(self, alert: Dict[str, Any]) -> List[str]:
        if not self.settings.data_host_path:
            return []
        host = _lookup(alert, self.settings.data_host_path)
        if not isinstance(host, str) or not host:
            return []
        if host.startswith("["):          # [ipv6]:port
            return [host[1:].split("]", 1)[0]]
        return [host.rsplit(":", 1)[0] if host.count(":") == 1 else host]


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _fingerprint(labels: Dict[str, Any]) -> str:
    canonical = json.dumps(labels, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


async def serve(queue: asyncio.Queue, settings: Settings) -> web.AppRunner:
    """Start listening; the caller cleans the returned runner up."""
    if settings.insecure_no_auth and not settings.tokens and not settings.hmac_secret:
        LOG.warning("alertmanager source: insecure_no_auth is set - ANYONE who can reach %s:%s can trigger the rules",
                    settings.host, settings.port)
    runner = web.AppRunner(Receiver(queue, settings).app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, ssl_context=settings.ssl_context())
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    LOG.info("alertmanager source: listening on %s://%s:%s%s (%s)", "https" if settings.certfile else "http",
             settings.host, settings.port, settings.path,
             " and ".join(a for a, on in (("bearer token", settings.tokens), ("HMAC", settings.hmac_secret)) if on)
             or "NO authentication")
    return runner


async def main(queue: asyncio.Queue, args: Dict[str, Any]) -> None:
    """The ansible-rulebook entry point: serve until cancelled; bad arguments raise ConfigError before listening."""
    runner = await serve(queue, Settings.from_args(args))
    try:
        await asyncio.Future()
    except asyncio.CancelledError:
        LOG.info("alertmanager source: stopping")
        raise
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    class _PrintQueue(asyncio.Queue):
        async def put(self, item: Any) -> None:
            print(json.dumps(item, default=str))  # noqa: T201 - the point of running it by hand

    asyncio.run(main(_PrintQueue(), {"token_env": "TRDRHUB_EDA_TOKEN", "port": int(os.environ.get("PORT", "5000"))}))
