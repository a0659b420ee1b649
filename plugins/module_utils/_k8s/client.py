# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Kubernetes API connection shared by the collection's Kubernetes modules.

The option spec lives here once (``K8S_AUTH_ARGS``) and is documented once in the
``trdrhub.incident.k8s`` doc fragment. Options not set fall back to the environment
variables the ``kubernetes.core`` collection reads (``K8S_AUTH_*``), then to
``KUBECONFIG``, then to the pod's service account. Unlike ``kubectl``, the default
``~/.kube/config`` is read only together with an explicit context: its
current-context is whichever cluster someone last switched to, never a target. The collection talks to the API through the official ``kubernetes``
client's ``ApiClient`` and never depends on ``kubernetes.core``.

Objects are read as the API server's JSON (``_preload_content=False``) rather than
the client's generated models: the answer is exactly what ``kubectl get -o json``
shows, and a field the models do not know (a newer server) cannot break a read.

Every failure becomes one ``K8sError`` whose text is the final ``msg``: it names the
API server, the request and the server's own ``Status`` message, and never contains
a token.
"""

from __future__ import annotations

import json
import os
import time
import typing as t
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import MAX_BODY_BYTES, MAX_RETRY_AFTER, condense, size_text, transport_reason
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Library
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import (  # noqa: F401  # pylint: disable=unused-import
    K8sApiError,
    K8sAuthError,
    K8sConfigError,
    K8sConflictError,
    K8sError,
    K8sInputError,
    K8sNotFoundError,
    K8sTooLargeError,
    K8sUnreachableError,
    config_reason,
    display_url,
    scrub,
    status_message,
    summary,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.kubeconfig import (  # noqa: F401  # pylint: disable=unused-import
    kubeconfig_contexts,
    kubeconfig_shape,
)

with Library.optional('kubernetes') as KUBERNETES:
    import kubernetes
    import urllib3
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

DEFAULT_KUBECONFIG = '~/.kube/config'
# Where a pod finds its service account; module attributes so tests can point them elsewhere.
IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'
IN_CLUSTER_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'
# A connection error is retried once; a dead API server must not hold an incident playbook for minutes.
CONNECT_RETRIES = 1
_sleep = time.sleep  # replaced by the unit tests

K8S_AUTH_ARGS: dict[str, dict[str, t.Any]] = {
    'kubeconfig': {'type': 'path'},
    'context': {'type': 'str'},
    'host': {'type': 'str'},
    'api_key': {'type': 'str', 'no_log': True},
    'validate_certs': {'type': 'bool', 'aliases': ['verify_ssl']},
    'ca_cert': {'type': 'path', 'aliases': ['ssl_ca_cert']},
    'request_timeout': bounded({'type': 'float', 'default': 10}, above=0, maximum=MAX_SOCKET_TIMEOUT),
}
# host names the API server itself; a kubeconfig context names it too, so both at once is ambiguous.
K8S_AUTH_MUTUALLY_EXCLUSIVE: list[list[str]] = [['host', 'kubeconfig'], ['host', 'context']]
# The namespace a module works in unless told otherwise: the TRDR Hub deployment's.
DEFAULT_NAMESPACE = 'trdrhub-system'


def k8s_spec(**options: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The spec of a module working in one namespace: K8S_AUTH_ARGS, ``namespace`` and the module's ``options``."""
    return dict(K8S_AUTH_ARGS, namespace={'type': 'str', 'default': DEFAULT_NAMESPACE}, **options)


# Same variable names as kubernetes.core, so an inventory written for it works unchanged.
ENV = {
    'kubeconfig': ('K8S_AUTH_KUBECONFIG',),
    'context': ('K8S_AUTH_CONTEXT',),
    'host': ('K8S_AUTH_HOST',),
    'api_key': ('K8S_AUTH_API_KEY',),
    'validate_certs': ('K8S_AUTH_VERIFY_SSL', 'K8S_AUTH_VALIDATE_CERTS'),
    'ca_cert': ('K8S_AUTH_SSL_CA_CERT', 'K8S_AUTH_CA_CERT'),
}
_FALSE = ('0', 'false', 'no', 'off', 'n')


def _env(name: str, environ: t.Mapping[str, str]) -> str | None:
    for var in ENV[name]:
        if environ.get(var):
            return environ[var]
    return None


class ConnectionSettings:
    """Where and how to connect, resolved from options, environment and defaults.

    ``source`` is ``host`` (O(host), optionally with a token), ``kubeconfig``
    or ``in_cluster``. ``api_key`` replaces whatever credentials the source has.
    """

    def __init__(self, params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.environ = environ
        explicit_kubeconfig = bool(params.get('kubeconfig') or params.get('context'))
        self.host: str | None = params.get('host') or (None if explicit_kubeconfig else _env('host', environ))
        self.api_key: str | None = params.get('api_key') or _env('api_key', environ)
        self.ca_cert: str | None = params.get('ca_cert') or _env('ca_cert', environ)
        verify = params.get('validate_certs')
        if verify is None and _env('validate_certs', environ) is not None:
            verify = str(_env('validate_certs', environ)).strip().lower() not in _FALSE
        self.validate_certs: bool | None = verify
        timeout = params.get('request_timeout')
        self.timeout = float(10 if timeout is None else timeout)
        self.kubeconfig: str | None = None
        self.context: str | None = None
        if self.host:
            self.source = 'host'
            self._check_host()
            return
        kubeconfig = params.get('kubeconfig') or _env('kubeconfig', environ) or environ.get('KUBECONFIG')
        self.context = params.get('context') or _env('context', environ)
        default = os.path.expanduser(DEFAULT_KUBECONFIG)
        if kubeconfig or self.context:
            self.source = 'kubeconfig'
            self.kubeconfig = kubeconfig or default
        elif environ.get('KUBERNETES_SERVICE_HOST'):
            self.source = 'in_cluster'
        elif os.path.exists(default):
            raise K8sConfigError(f'No Kubernetes cluster given: set context (a context of {DEFAULT_KUBECONFIG}, or '
                                 'K8S_AUTH_CONTEXT) or kubeconfig (or K8S_AUTH_KUBECONFIG / KUBECONFIG), or host and '
                                 f'api_key. The current-context of {DEFAULT_KUBECONFIG} is never used implicitly')
        else:
            raise K8sConfigError('No Kubernetes connection settings: set kubeconfig (or K8S_AUTH_KUBECONFIG / KUBECONFIG), '
                                 f'or host and api_key (or K8S_AUTH_HOST / K8S_AUTH_API_KEY); {DEFAULT_KUBECONFIG} does '
                                 'not exist and this is not a pod with a service account')

    def _check_host(self) -> None:
        parts = urlsplit(self.host or '')
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise K8sInputError(f'host must be an http:// or https:// URL of the API server, got {display_url(self.host or "")!r}')
        if parts.username or parts.password:
            raise K8sInputError('host must not contain credentials; use api_key')
        self.host = (self.host or '').rstrip('/')

    def describe(self) -> dict[str, t.Any]:
        """What the result reports about the connection (never a credential)."""
        return {'source': self.source, 'kubeconfig': self.kubeconfig, 'context': self.context}


def build_configuration(settings: ConnectionSettings) -> t.Any:
    """A ``kubernetes.client.Configuration`` for the settings; config errors become K8sConfigError."""
    cfg = kubernetes.client.Configuration()
    secrets = [settings.api_key]
    if settings.source == 'host':
        cfg.host = settings.host
    elif settings.source == 'in_cluster':
        try:
            InClusterConfigLoader(token_filename=IN_CLUSTER_TOKEN, cert_filename=IN_CLUSTER_CA,
                                  environ=settings.environ).load_and_set(cfg)
        except (ConfigException, OSError) as exc:
            raise K8sConfigError(f'Cannot use the pod service account ({IN_CLUSTER_TOKEN}): '
                                 f'{scrub(condense(str(exc)), secrets)}') from None
    else:
        load_kubeconfig(cfg, settings)
    if settings.api_key:
        # 'authorization' is the key both older and current clients read for BearerToken auth.
        cfg.api_key = {'authorization': f'Bearer {settings.api_key}'}
        cfg.api_key_prefix = {}
        cfg.refresh_api_key_hook = None
    if settings.validate_certs is not None:
        cfg.verify_ssl = settings.validate_certs
    if settings.ca_cert:
        if not os.path.isfile(settings.ca_cert):
            raise K8sConfigError(f'ca_cert {settings.ca_cert} does not exist or is not a file')
        cfg.ssl_ca_cert = settings.ca_cert
    cfg.retries = bounded_retry()
    return cfg


def bounded_retry() -> t.Any:
    """urllib3's retry policy, once, with a server's Retry-After honoured only up to MAX_RETRY_AFTER.

    urllib3 sleeps as long as a 429/503 answer's Retry-After asks; an API server (or a proxy in
    front of it) asking for an hour would hold the task for an hour.
    """

    class BoundedRetry(urllib3.util.Retry):
        def sleep_for_retry(self, response: t.Any = None) -> bool:
            wait = self.get_retry_after(response) if response is not None else None
            if wait is None or wait > MAX_RETRY_AFTER:
                return False   # retried after the (short) backoff instead
            _sleep(wait)
            return True

    return BoundedRetry(total=CONNECT_RETRIES)


def load_kubeconfig(cfg: t.Any, settings: ConnectionSettings) -> None:
    """Load the kubeconfig (a path or a KUBECONFIG-style list) and context into ``cfg``."""
    path = settings.kubeconfig or ''
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    if not any(os.path.isfile(f) for f in files):
        raise K8sConfigError(f'kubeconfig {path} does not exist or is not a file')
    where = f'kubeconfig {path}'
    names, current = kubeconfig_contexts(files, where)
    if settings.context and settings.context not in names:
        raise K8sConfigError(f'context {settings.context!r} is not in {where}; it has: {", ".join(names) or "no contexts"}')
    if not settings.context and not current:
        raise K8sConfigError(f'{where} has no current-context; set context to one of: {", ".join(names) or "(none)"}')
    settings.context = settings.context or current
    try:
        kubernetes.config.load_kube_config(config_file=os.pathsep.join(files), context=settings.context,
                                           client_configuration=cfg, persist_config=False)
    except Exception as exc:  # noqa: BLE001 - exec plugins and auth providers raise anything
        raise K8sConfigError(f'Cannot use {where}{_context_text(settings)}: {config_reason(exc, [settings.api_key])}') from None


def _context_text(settings: ConnectionSettings) -> str:
    return f' (context {settings.context})' if settings.context else ''


def cap_bodies(api_client: t.Any) -> None:
    """Make the client's connection pool read at most MAX_BODY_BYTES of any answer.

    The kubernetes client reads a whole answer into memory (an error answer too, before
    its ApiException); a server sending far more than any API object is stopped at the cap.
    """
    pool = getattr(getattr(api_client, 'rest_client', None), 'pool_manager', None)
    if pool is None:
        return
    original = pool.request

    def request(method: str, url: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        resp = original(method, url, *args, **kwargs)
        if kwargs.get('preload_content', True):
            return resp
        limit = MAX_BODY_BYTES
        declared = str(resp.headers.get('Content-Length') or '').strip()
        data = b'' if declared.isdigit() and int(declared) > limit else resp.read(limit + 1)
        if len(data) > limit or (declared.isdigit() and int(declared) > limit):
            resp.release_conn()
            size = f'; it declares {size_text(int(declared))}' if declared.isdigit() and not data else ''
            parts = urlsplit(url)
            where = urlunsplit((parts.scheme, parts.netloc.rpartition('@')[2], '', '', ''))
            raise K8sTooLargeError(f'the Kubernetes API at {where} answered {method} {parts.path} with {resp.status} '
                                   f'and a body larger than {size_text(limit)} ({limit} bytes{size}), far more than any '
                                   'API object; reading stopped there - check host', status=resp.status)
        resp._body = data   # pylint: disable=protected-access
        return resp

    pool.request = request


LIST_SHAPE = ('items', list, 'a list of objects')
OBJECT_SHAPE = ('metadata', dict, 'an API object')


class K8sClient:
    """An ApiClient for one cluster, plus the requests made (reported as ``requests``).

    Reads go through ``list``/``get`` of the resources in ``RESOURCES``, writes through
    ``patch`` (of the object or a subresource such as ``scale``), so that every call
    shares the error mapping and the request log. Patches carry the raw JSON body; a
    ``metadata.resourceVersion`` in it makes the API server refuse (409) a write to an
    object that changed since it was read.
    """

    PATCH_TYPES = {'merge': 'application/merge-patch+json', 'strategic': 'application/strategic-merge-patch+json',
                   'json': 'application/json-patch+json'}

    # resource -> API prefix
    RESOURCES: dict[str, str] = {
        'deployments': '/apis/apps/v1',
        'replicasets': '/apis/apps/v1',
        'pods': '/api/v1',
    }

    def __init__(self, params: t.Mapping[str, t.Any], environ: t.Mapping[str, str] | None = None,
                 api_client: t.Any = None) -> None:
        self.settings = ConnectionSettings(params, environ)
        self.requests: list[str] = []
        if api_client is None:
            api_client = kubernetes.client.ApiClient(build_configuration(self.settings))
            api_client.user_agent = 'trdrhub.incident (ansible module)'
            cap_bodies(api_client)
        self.api_client = api_client
        self.host = display_url(str(api_client.configuration.host))

    def describe(self) -> dict[str, t.Any]:
        return dict(self.settings.describe(), api_server=self.host)

    def sender(self, request: str) -> t.Callable[..., t.Any]:
        """The method that sends ``request`` (``'VERB /path?query'``, as :attr:`requests` records it) straight through
        ``ApiClient`` (its authentication, TLS, headers, size cap) and returns the raw answer: the generated ``*Api``
        classes would send the same, but importing them and validating their arguments costs about 1 s of CPU."""
        verb, target = request.split(' ', 1)

        def send(body: t.Any = None, _content_type: str | None = None, _preload_content: bool = False,
                 _request_timeout: t.Any = None) -> t.Any:
            headers = {'Accept': 'application/json', **({} if body is None else {'Content-Type': _content_type or 'application/json'})}
            serialized = self.api_client.param_serialize(method=verb, resource_path=target, header_params=headers, body=body,
                                                         auth_settings=['BearerToken'])
            answer = self.api_client.call_api(*serialized, _request_timeout=_request_timeout)
            if not 200 <= answer.status <= 299:
                answer.read()
                raise ApiException.from_response(http_resp=answer, body=None, data=None)
            return answer.response

        return send

    def send(self, request: str, body: t.Any = None, shape: tuple[str, type, str] | None = None,
             content_type: str | None = None) -> t.Any:
        """Send ``request`` (with a JSON ``body``) and return the parsed JSON answer (see :meth:`call`)."""
        kwargs = {} if body is None else {'body': body, '_content_type': content_type}
        return self.call(request, self.sender(request), shape=shape, **kwargs)

    def list(self, resource: str, namespace: str, label_selector: str | None = None) -> dict[str, t.Any]:
        query = f'?{urlencode({"labelSelector": label_selector})}' if label_selector else ''
        return self.send(f'GET {self.RESOURCES[resource]}/namespaces/{quote(namespace)}/{resource}{query}', shape=LIST_SHAPE)

    def get(self, resource: str, namespace: str, name: str, subresource: str = '') -> dict[str, t.Any]:
        sub = f'/{subresource}' if subresource else ''
        return self.send(f'GET {self.RESOURCES[resource]}/namespaces/{quote(namespace)}/{resource}/{quote(name)}{sub}',
                         shape=OBJECT_SHAPE)

    def patch(self, resource: str, namespace: str, name: str, body: t.Any, patch_type: str = 'strategic',
              subresource: str = '') -> dict[str, t.Any]:
        """PATCH the object (or its ``subresource``) with a ``merge``, ``strategic`` or ``json`` patch."""
        sub = f'/{subresource}' if subresource else ''
        return self.send(f'PATCH {self.RESOURCES[resource]}/namespaces/{quote(namespace)}/{resource}/{quote(name)}{sub}',
                         body, shape=OBJECT_SHAPE, content_type=self.PATCH_TYPES[patch_type])

    def version(self) -> dict[str, t.Any]:
        return self.send('GET /version')

    def call(self, request: str, method: t.Callable[..., t.Any], *args: t.Any,
             shape: tuple[str, type, str] | None = None, **kwargs: t.Any) -> t.Any:
        """Run one API method and return the parsed JSON; every failure becomes a K8sError.

        ``shape`` is (key, type, what): the answer must be an object whose ``key`` has that type
        (``items`` a list for a list, ``metadata`` an object for an object), or nothing read or
        written is trusted - a proxy or another service can answer 200 with any JSON.
        """
        self.requests.append(request)
        secrets = [self.settings.api_key]
        try:
            resp = method(*args, _preload_content=False, _request_timeout=self.settings.timeout, **kwargs)
            body = resp.data
        except ApiException as exc:
            raise self.api_error(exc, request) from None
        except urllib3.exceptions.SSLError as exc:
            raise self.tls_error(exc, request) from None
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.SSLError):
                raise self.tls_error(exc, request) from None
            raise K8sUnreachableError(f'Cannot reach the Kubernetes API at {self.host}: {request} failed: '
                                      f'{scrub(transport_reason(exc), secrets)}') from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise K8sUnreachableError(f'Cannot reach the Kubernetes API at {self.host}: {request} failed: '
                                      f'{scrub(transport_reason(exc), secrets)}') from None
        try:
            answer = json.loads(body)
        except ValueError:
            text = scrub(body.decode('utf-8', 'replace'), secrets)
            shown = summary(text) if text.lstrip()[:1] == '<' else repr(condense(text)[:120])
            raise K8sApiError(f'{self.host} is not a Kubernetes API server: {request} answered {shown}, '
                              'which is not JSON') from None
        if shape is not None:
            key, kind, what = shape
            if not isinstance(answer, dict) or not isinstance(answer.get(key), kind):
                raise K8sApiError(f'{self.host} is not a Kubernetes API server: {request} answered '
                                  f'{scrub(summary(json.dumps(answer, sort_keys=True)), secrets)}, not {what} - check host')
        return answer

    def tls_error(self, exc: BaseException, request: str) -> K8sUnreachableError:
        return K8sUnreachableError(f'TLS handshake with the Kubernetes API at {self.host} failed for {request}: '
                                   f'{scrub(transport_reason(exc), [self.settings.api_key])} (set ca_cert to the CA of '
                                   'the API server, or validate_certs=false to skip verification)')

    def api_error(self, exc: t.Any, request: str) -> K8sError:
        status = int(getattr(exc, 'status', 0) or 0)
        if status == 0:
            # The client reports a TLS failure as status 0 with the urllib3 error text as reason.
            reason = scrub(condense(str(getattr(exc, 'reason', '') or '')), [self.settings.api_key])
            return K8sUnreachableError(f'TLS handshake with the Kubernetes API at {self.host} failed for {request}: {reason} '
                                       '(set ca_cert to the CA of the API server, or validate_certs=false to skip '
                                       'verification)')
        message, reason = status_message(getattr(exc, 'body', None))
        message = scrub(message, [self.settings.api_key])
        said = f': {message}' if message else ''
        head = f'the Kubernetes API at {self.host} answered {request} with {status} {getattr(exc, "reason", "") or reason}'.rstrip()
        if status == 401:
            return K8sAuthError(f'Authentication failed: {head}{said} - the credentials are missing, wrong or expired '
                                f'(check {self._credentials_source()})', status=status)
        if status == 403:
            return K8sAuthError(f'Permission denied: {head}{said} - grant the account RBAC permission for this request',
                                status=status)
        if status == 404:
            return K8sNotFoundError(f'Not found: {head}{said}', status=status)
        if status == 409:
            return K8sConflictError(f'Conflict: {head}{said}', status=status)
        return K8sApiError(f'Request failed: {head}{said}', status=status)

    def _credentials_source(self) -> str:
        if self.settings.api_key:
            return 'api_key / K8S_AUTH_API_KEY'
        if self.settings.source == 'kubeconfig':
            return f'the user of kubeconfig {self.settings.kubeconfig}{_context_text(self.settings)}'
        if self.settings.source == 'in_cluster':
            return 'the pod service account token'
        return 'api_key / K8S_AUTH_API_KEY: none is set'

    def close(self) -> None:
        close = getattr(self.api_client, 'close', None)
        if close is not None:
            close()


def selector_text(selector: t.Mapping[str, t.Any] | None) -> str:
    """A LabelSelector object (matchLabels, matchExpressions) as a labelSelector query string."""
    selector = selector or {}
    parts = [f'{k}={v}' for k, v in sorted((selector.get('matchLabels') or {}).items())]
    for expr in selector.get('matchExpressions') or []:
        key, op, values = expr.get('key'), expr.get('operator'), sorted(expr.get('values') or [])
        if op == 'In':
            parts.append(f'{key} in ({",".join(values)})')
        elif op == 'NotIn':
            parts.append(f'{key} notin ({",".join(values)})')
        elif op == 'Exists':
            parts.append(str(key))
        elif op == 'DoesNotExist':
            parts.append(f'!{key}')
    return ','.join(parts)
