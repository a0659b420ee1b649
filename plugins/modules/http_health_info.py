# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_health_info
short_description: Probe TRDR Hub's HTTP health endpoints and its TLS certificate
version_added: 1.0.0
description:
  - Requests a list of health endpoints below O(base_url) and checks each answer's HTTP status and JSON fields.
    Returns per endpoint the status, latency, parsed body and what failed, and an overall RV(healthy).
  - The default endpoints are TRDR Hub's - C(/healthz) and C(/health/live) (C(status) is V(ok)), C(/health/ready)
    (C(checks.database.status) is V(ok); the application answers C(503) when the database or S3 is down) and
    C(/health/db-schema) (C(status) is not V(drift)).
  - For an C(https://) O(base_url) it also reports the server certificate - subject, issuer, names, validity, days to
    expiry, whether it covers the host name, and why verification fails if it does. This replaces the runbook's
    C(openssl s_client) check.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  base_url:
    description:
      - Base URL of the application, for example V(https://api.trdrhub.example) or V(http://trdrhub-api:8000); may
        include a path prefix. Endpoint paths are appended to it.
      - Must not contain credentials; use O(url_username) and O(url_password) or O(bearer_token).
    type: str
    required: true
    aliases: [url]
  endpoints:
    description:
      - Endpoints to probe, in order. When omitted, TRDR Hub's four health endpoints described above are probed.
    type: list
    elements: dict
    suboptions:
      path:
        description: Path below O(base_url), for example V(/health/ready).
        type: str
        required: true
      method:
        description:
          - HTTP method; with V(HEAD) no body is read and O(endpoints[].json_checks) must be empty.
          - "V(POST) sends O(endpoints[].json_body) (the runbook's phase 4.2 key-functionality check, for example
            C({\"test\": true}) to a test endpoint). A POST may change something, so it is not sent in check mode (see
            RV(endpoints[].skipped)) and is never retried once the server may have processed it."
        type: str
        choices: [GET, HEAD, POST]
        default: GET
      json_body:
        description:
          - JSON body of a V(POST) (a mapping, a list or a scalar); only with O(endpoints[].method=POST).
        type: raw
      expect_status:
        description: Acceptable HTTP status code, or a list of them.
        type: raw
        default: [200]
      json_checks:
        description:
          - Conditions on the JSON body. Each has a C(path) and exactly one of C(equals), C(not_equals) or C(in).
          - A missing field fails every kind of check.
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description:
              - Dotted path into the JSON body, for example V(checks.database.status); a number selects a list item
                (V(items.0.name)).
            type: str
            required: true
          equals:
            description: The field must equal this value.
            type: raw
          not_equals:
            description: The field must not equal this value.
            type: raw
          in:
            description: The field must equal one of these values.
            type: list
            elements: raw
      timeout:
        description: Seconds to wait for this endpoint; defaults to O(timeout).
        type: float
  tls_min_days:
    description:
      - A certificate that expires in fewer days than this gives a warning and RV(tls.expiring_soon=true).
    type: float
    default: 14
  fail_on_unhealthy:
    description:
      - Fail the task, with one message listing every failed endpoint and check, when RV(healthy) is false.
      - The result keys are returned with the failure.
    type: bool
    default: false
extends_documentation_fragment:
  - trdrhub.incident.http_api
attributes:
  check_mode:
    details:
      - GET and HEAD probes run unchanged in check mode; a V(POST) endpoint is not requested (RV(endpoints[].skipped)).
notes:
  - O(retries) applies to each endpoint; a C(503) from C(/health/ready) is retried too, then reported.
  - After the first endpoint that cannot be reached at all, the remaining ones are not requested; they report the same
    error.
  - The certificate is inspected with a direct connection to the host and port of O(base_url), not through a proxy.
    The subject common name is not used for the host name check (only subjectAltName entries), as in browsers and
    Python.
requirements:
  - cryptography (Python package), only for C(https://) URLs
seealso:
  - name: TRDR Hub health endpoints
    description: C(apps/api) health routes of the application.
    link: https://github.com/trdrhub/trdrhub.incident/blob/main/docs/detect.md
"""

EXAMPLES = r"""
- name: "Phase 4.2: key functionality - POST {test: true} and check the answer"
  trdrhub.incident.http_health_info:
    base_url: https://api.trdrhub.example
    endpoints:
      - path: /api/v1/test
        method: POST
        json_body: {test: true}
        expect_status: [200, 201]
        json_checks:
          - {path: status, equals: ok}
    fail_on_unhealthy: true

- name: Health of the TRDR Hub API (default endpoints)
  trdrhub.incident.http_health_info:
    base_url: https://api.trdrhub.example
  register: health

- name: Stop the play when the API is unhealthy
  trdrhub.incident.http_health_info:
    base_url: "{{ trdrhub_api_url }}"
    ca_path: /etc/trdrhub/ca.pem
    tls_min_days: 21
    fail_on_unhealthy: true

- name: Readiness only, accepting a degraded document AI
  trdrhub.incident.http_health_info:
    base_url: http://trdrhub-api.trdrhub-system:8000
    retries: 0
    endpoints:
      - path: /health/ready
        expect_status: [200]
        json_checks:
          - {path: checks.database.status, equals: ok}
          - {path: checks.s3.status, equals: ok}
          - {path: checks.document_ai.status, in: [ok, degraded]}
  register: ready
"""

RETURN = r"""
healthy:
  description:
    - True when every endpoint is RV(endpoints[].ok) and the certificate (for C(https://)) has not expired.
    - An endpoint not requested in check mode (RV(endpoints[].skipped)) does not count.
  returned: always
  type: bool
  sample: true
endpoints:
  description: One entry per probed endpoint, in order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The endpoint's path.
      type: str
      sample: /health/ready
    url:
      description: The full URL requested.
      type: str
      sample: https://api.trdrhub.example/health/ready
    method:
      description: HTTP method used.
      type: str
      sample: GET
    status:
      description: HTTP status of the (last) answer; null when there was none.
      type: int
      sample: 503
    ok:
      description: Answered, with an expected status and every JSON check passing.
      type: bool
      sample: false
    latency_ms:
      description: Time to the (last) answer in milliseconds; null when there was none.
      type: float
      sample: 12.5
    attempts:
      description: Requests made for this endpoint, retries included.
      type: int
      sample: 1
    json:
      description:
        - The parsed JSON body; null when the body is empty, not JSON, or the method is V(HEAD).
        - A body longer than 16384 characters is returned as its first 16384 characters (a string) instead, with
          RV(endpoints[].json_truncated=true).
      type: raw
      sample: {"status": "error", "checks": {"database": {"status": "error", "message": "connection refused"}}}
    json_truncated:
      description: Whether RV(endpoints[].json) was cut.
      type: bool
      sample: false
    failed_checks:
      description: Human-readable failed expectations (status and JSON checks).
      type: list
      elements: str
      sample: ["HTTP status 503, expected 200", "checks.database.status is 'error', expected 'ok'"]
    error:
      description: Why there is no usable answer - unreachable, TLS failure, or a body that is not valid JSON.
      type: str
      sample: null
    skipped:
      description: True for a V(POST) endpoint in check mode, which is not requested.
      returned: for a V(POST) endpoint in check mode
      type: bool
      sample: true
tls:
  description: The server certificate, for an C(https://) O(base_url).
  returned: when O(base_url) is C(https://)
  type: dict
  contains:
    subject:
      description: Subject distinguished name (RFC 4514).
      type: str
      sample: CN=api.trdrhub.example
    issuer:
      description: Issuer distinguished name (RFC 4514).
      type: str
      sample: CN=R11,O=Let's Encrypt,C=US
    sans:
      description: DNS names and IP addresses of the subjectAltName extension.
      type: list
      elements: str
      sample: [api.trdrhub.example]
    serial_number:
      description: Serial number, hexadecimal.
      type: str
      sample: 4a3f0c
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
      sample: "2025-01-01T00:00:00+00:00"
    not_after:
      description: End of validity (ISO 8601, UTC).
      type: str
      sample: "2025-04-01T00:00:00+00:00"
    days_to_expiry:
      description: Days until RV(tls.not_after), negative once expired.
      type: float
      sample: 75.6
    expired:
      description: Whether RV(tls.not_after) has passed.
      type: bool
      sample: false
    not_yet_valid:
      description: Whether RV(tls.not_before) is still in the future.
      type: bool
      sample: false
    expiring_soon:
      description: Not expired, but fewer than O(tls_min_days) days left.
      type: bool
      sample: false
    hostname:
      description: The host name (or IP address) of O(base_url) the certificate was checked against.
      type: str
      sample: api.trdrhub.example
    hostname_match:
      description: Whether a subjectAltName entry covers RV(tls.hostname) (wildcards as in RFC 6125).
      type: bool
      sample: true
    verify_error:
      description:
        - Why certificate verification fails (against O(ca_path) or the default CA bundle), for example
          C(self-signed certificate), C(certificate has expired) or C(Hostname mismatch); null when it succeeds.
        - Reported even with O(validate_certs=false).
      type: str
      sample: null
    error:
      description: Why no certificate could be fetched (no TLS handshake at all); null otherwise.
      type: str
      sample: null
requests:
  description: HTTP requests the module made, as C(METHOD /path).
  returned: always
  type: list
  elements: str
  sample: ["GET /healthz", "GET /health/live", "GET /health/ready", "GET /health/db-schema"]
"""

import json
import typing as t
from urllib.parse import urlsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HTTP_API_ARGS,
    HTTP_API_CONSTRAINTS,
    REQUESTS,
    HttpApiError,
    HttpClient,
    HttpInputError,
    HttpTooLargeError,
    HttpUnreachableError,
    answer_summary,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._common.tls import CRYPTOGRAPHY, inspect_tls

JSON_MAX_CHARS = 16384
NOT_REQUESTED = 'not requested'
OPERATORS = ('equals', 'not_equals', 'in')
_MISSING = object()
DEFAULT_ENDPOINTS: list[dict[str, t.Any]] = [
    {'path': '/healthz', 'json_checks': [{'path': 'status', 'equals': 'ok'}]},
    {'path': '/health/live', 'json_checks': [{'path': 'status', 'equals': 'ok'}]},
    {'path': '/health/ready', 'json_checks': [{'path': 'checks.database.status', 'equals': 'ok'}]},
    {'path': '/health/db-schema', 'json_checks': [{'path': 'status', 'not_equals': 'drift'}]},
]


def argument_spec() -> dict[str, t.Any]:
    check = {'path': {'type': 'str', 'required': True}, 'equals': {'type': 'raw'}, 'not_equals': {'type': 'raw'},
             'in': {'type': 'list', 'elements': 'raw'}}
    endpoint = {
        'path': {'type': 'str', 'required': True},
        'method': {'type': 'str', 'choices': ['GET', 'HEAD', 'POST'], 'default': 'GET'},
        'json_body': {'type': 'raw'},
        'expect_status': {'type': 'raw', 'default': [200]},
        'json_checks': {'type': 'list', 'elements': 'dict', 'default': [], 'options': check},
        'timeout': bounded({'type': 'float'}, above=0, maximum=MAX_SOCKET_TIMEOUT),
    }
    spec = dict(HTTP_API_ARGS)
    spec.update(
        base_url={'type': 'str', 'required': True, 'aliases': ['url']},
        endpoints={'type': 'list', 'elements': 'dict', 'options': endpoint},
        tls_min_days=bounded({'type': 'float', 'default': 14}, minimum=0),
        fail_on_unhealthy={'type': 'bool', 'default': False},
    )
    return spec


def lookup(body: t.Any, path: str) -> t.Any:
    """The value at a dotted path, or _MISSING; digits index lists."""
    current = body
    for part in path.split('.'):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip('-').isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def same(actual: t.Any, expected: t.Any) -> bool:
    """Equality where true is not 1, and "200" (from a template) equals 200."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if (isinstance(actual, (int, float)) and isinstance(expected, str)) or (
            isinstance(expected, (int, float)) and isinstance(actual, str)):
        return str(actual) == str(expected)
    return actual == expected


def run_check(body: t.Any, check: dict[str, t.Any]) -> str | None:
    """None when the check passes, else what an operator should read."""
    path = check['path']
    value = lookup(body, path)
    if value is _MISSING:
        return f'{path} is missing'
    if check.get('equals') is not None and not same(value, check['equals']):
        return f'{path} is {value!r}, expected {check["equals"]!r}'
    if check.get('not_equals') is not None and same(value, check['not_equals']):
        return f'{path} is {value!r}, expected anything but {check["not_equals"]!r}'
    if check.get('in') is not None and not any(same(value, option) for option in check['in']):
        return f'{path} is {value!r}, expected one of {check["in"]!r}'
    return None


def normalize_endpoint(raw: dict[str, t.Any]) -> dict[str, t.Any]:
    """Defaults filled in and every value checked, so a bad one fails before any request."""
    endpoint = {'method': 'GET', 'expect_status': [200], 'json_checks': [], 'timeout': None, 'json_body': None}
    endpoint.update({key: value for key, value in raw.items() if value is not None})
    path = str(endpoint.get('path') or '')
    if not path.startswith('/'):
        raise HttpInputError(f'endpoints: path must start with /, got {path!r}')
    expect = endpoint['expect_status']
    expect = expect if isinstance(expect, list) else [expect]
    try:
        statuses = [int(code) for code in expect]
    except (TypeError, ValueError):
        raise HttpInputError(f'endpoints {path}: expect_status must be an HTTP status code or a list of them, '
                             f'got {endpoint["expect_status"]!r}') from None
    if not statuses or any(not 100 <= code <= 599 for code in statuses):
        raise HttpInputError(f'endpoints {path}: expect_status must hold HTTP status codes (100-599), got {expect!r}')
    for check in endpoint['json_checks']:
        given = [op for op in OPERATORS if check.get(op) is not None]
        if len(given) != 1:
            raise HttpInputError(f'endpoints {path}: json_checks entry for {check.get("path")!r} needs exactly one of '
                                 f'{", ".join(OPERATORS)}, got {", ".join(given) or "none"}')
    if endpoint['method'] == 'HEAD' and endpoint['json_checks']:
        raise HttpInputError(f'endpoints {path}: a HEAD request has no body, json_checks cannot apply')
    if endpoint['json_body'] is not None and endpoint['method'] != 'POST':
        raise HttpInputError(f'endpoints {path}: json_body is only sent with method POST, got method {endpoint["method"]}')
    return dict(endpoint, path=path, expect_status=statuses)


class HealthProbe(Worker):
    """Probes the endpoints one after the other and the certificate once."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False) -> None:
        super().__init__(params, check_mode)
        self.endpoints = [normalize_endpoint(e) for e in (params.get('endpoints') or DEFAULT_ENDPOINTS)]

    def run(self, client: HttpClient) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {'changed': False}
        base = urlsplit(client.origin)
        if base.scheme == 'https':
            result['tls'] = self.tls(client, base.hostname or '', base.port or 443)
        down: str | None = None
        reports = []
        for endpoint in self.endpoints:
            reports.append(self.probe(client, endpoint, down))
            if reports[-1].get('unreachable'):
                down = reports[-1]['error']
        for report in reports:
            report.pop('unreachable', None)
        tls = result.get('tls') or {}
        probed = [r for r in reports if not r.get('skipped')]
        result.update(endpoints=reports, healthy=all(r['ok'] for r in probed) and not tls.get('expired'),
                      requests=client.requests)
        return result

    def tls(self, client: HttpClient, host: str, port: int) -> dict[str, t.Any]:
        params = self.params
        report = inspect_tls(host, port, timeout=params.get('timeout') or 10, ca_path=params.get('ca_path'),
                             client_cert=params.get('client_cert'), client_key=params.get('client_key'),
                             min_days=params.get('tls_min_days', 14))
        if report.get('expiring_soon'):
            self.warnings.append(f'the TLS certificate of {client.display} expires in {report["days_to_expiry"]} days '
                                 f'({report["not_after"]}), sooner than tls_min_days={params.get("tls_min_days", 14):g}')
        if report.get('verify_error') and not params.get('validate_certs', True):
            self.warnings.append(f'the TLS certificate of {client.display} does not verify ({report["verify_error"]}); '
                                 'validate_certs=false let the probes through anyway')
        return report

    def probe(self, client: HttpClient, endpoint: dict[str, t.Any], down: str | None) -> dict[str, t.Any]:
        method, path = endpoint['method'], endpoint['path']
        report: dict[str, t.Any] = {'path': path, 'url': client.url_for(path), 'method': method, 'status': None,
                                    'ok': False, 'latency_ms': None, 'attempts': 0, 'json': None,
                                    'json_truncated': False, 'failed_checks': [], 'error': None}
        if method == 'POST' and self.check_mode:
            # A POST may act on the application: check mode never sends one.
            return dict(report, skipped=True, error=f'{NOT_REQUESTED} in check mode (a POST may change something)')
        if down:
            report['error'] = f'{NOT_REQUESTED}, the server was unreachable: {down}'
            return report
        try:
            resp = client.send(method, path, timeout=endpoint['timeout'], json_body=endpoint['json_body'])
        except HttpUnreachableError as exc:
            return dict(report, attempts=client.last_attempts, error=str(exc), unreachable=True)
        except HttpTooLargeError as exc:
            return dict(report, status=exc.details.get('status'), attempts=client.last_attempts, error=str(exc))
        report.update(status=resp.status_code, latency_ms=client.last_latency_ms, attempts=client.last_attempts)
        failed = report['failed_checks']
        if resp.status_code not in endpoint['expect_status']:
            failed.append(f'HTTP status {resp.status_code}, expected {" or ".join(map(str, endpoint["expect_status"]))}')
        text = client.mask(resp.text) if method != 'HEAD' else ''   # a server may echo the credentials it got
        body: t.Any = None
        if text.strip():
            try:
                body = json.loads(text)
            except ValueError as exc:
                if 'json' in (resp.headers.get('Content-Type') or '').lower():
                    report['error'] = f'{method} {client.prefix}{path} answered malformed JSON ({exc}): {text[:120]!r}'
                elif endpoint['json_checks']:
                    report['error'] = (f'{method} {client.prefix}{path} answered '
                                       f'{answer_summary(resp, secrets=client.secrets)}, not JSON')
            else:
                truncated = len(text) > JSON_MAX_CHARS
                report.update(json=text[:JSON_MAX_CHARS] if truncated else body, json_truncated=truncated)
        if report['error'] is None:
            failed.extend(msg for msg in (run_check(body, c) for c in endpoint['json_checks']) if msg)
        report['ok'] = report['error'] is None and not failed
        return report


def unhealthy_message(display: str, result: dict[str, t.Any]) -> str:
    """One line listing every failure, endpoint by endpoint."""
    problems, skipped = [], 0
    for endpoint in result['endpoints']:
        if endpoint['ok']:
            continue
        if (endpoint['error'] or '').startswith(NOT_REQUESTED):
            skipped += 1
            continue
        problems.append(f"{endpoint['path']}: {'; '.join(filter(None, [endpoint['error']] + endpoint['failed_checks']))}")
    if skipped:
        problems.append(f'{skipped} more endpoint(s) not requested')
    tls = result.get('tls') or {}
    if tls.get('expired'):
        problems.append(f"TLS certificate expired on {tls['not_after']}")
    return f'{display} is unhealthy - ' + ' | '.join(problems)


def main() -> None:
    run_module(argument_spec(), lambda module: HealthProbe(module.params, check_mode=module.check_mode),
               lambda module, probe: HttpClient(module.params, module.params['base_url'], service='', option='base_url'),
               requires=lambda params: [REQUESTS] + ([CRYPTOGRAPHY] if params['base_url'].strip().lower().startswith('https:') else []),
               errors=(HttpApiError,), error_extra=request_log,
               finish=lambda module, result, client: unhealthy_message(client.display, result)
               if module.params['fail_on_unhealthy'] and not result['healthy'] else None, **HTTP_API_CONSTRAINTS)


if __name__ == '__main__':
    main()
