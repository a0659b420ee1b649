# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Where the application reads its PostgreSQL URL, and pointing it at another endpoint (PgBouncer or back).

Only the endpoint of the URL changes - host, port and, when asked, the database name and the query
string; the scheme, user and password are kept as they are. The password therefore never has to be
known, stored or shown: results carry the URL with its password masked and the endpoint parts.

Sources:

- ``file``: a ``KEY=value`` env file (docker compose ``env_file``), a JSON object key or a whole file;
- ``kubernetes``: the variable of one container of a Deployment - a plain ``value`` is patched in the
  Deployment (which rolls it out), a ``valueFrom.secretKeyRef`` or an ``envFrom`` Secret is changed in
  that Secret (the Deployments reading it then need a restart: RV(restart_needed)).
"""

from __future__ import annotations

import copy
import typing as t
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import MASK
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.rollout import find_container
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FileStore,
    K8sSecretStore,
    StoreError,
)

SCHEMES = ('postgresql', 'postgres')
CHANGED_AT = 'trdrhub.incident/database-url-changed-at'
_SECRET_QUERY_KEYS = ('password', 'sslpassword')


class UrlError(TrdrhubError):
    """The stored value or the requested endpoint cannot be used; the message never holds a secret."""


def parse(url: str, where: str) -> dict[str, t.Any]:
    """The endpoint parts of a PostgreSQL URL (no password)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise UrlError(f'{where} is not a PostgreSQL URL (postgresql://user:password@host:port/database)')
    try:
        port = parts.port
    except ValueError:
        raise UrlError(f'{where} has a port that is not a number') from None
    return {'host': parts.hostname, 'port': port, 'dbname': parts.path.lstrip('/') or None,
            'user': unquote(parts.username) if parts.username else None, 'query': mask_query(parts.query)}


def mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(key in _SECRET_QUERY_KEYS for key, _value in pairs):
        return query
    return urlencode([(key, MASK if key in _SECRET_QUERY_KEYS else value) for key, value in pairs], safe='*')


def mask(url: str) -> str:
    """The URL with its password (and a password= query parameter) replaced by ********."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if '@' in netloc:
        userinfo, _at, host = netloc.rpartition('@')
        user = userinfo.split(':', 1)[0]
        netloc = f'{user}:{MASK}@{host}' if ':' in userinfo else f'{user}@{host}'
    return urlunsplit((parts.scheme, netloc, parts.path, mask_query(parts.query), parts.fragment))


def secrets_in(url: str) -> list[str]:
    """The password of the URL in every form it may appear in output (for no_log)."""
    parts = urlsplit(url)
    found: list[str] = []
    if '@' in parts.netloc and ':' in parts.netloc.rpartition('@')[0]:
        raw = parts.netloc.rpartition('@')[0].split(':', 1)[1]
        found += [raw, unquote(raw), quote(unquote(raw), safe='')]
    found += [value for key, value in parse_qsl(parts.query) if key in _SECRET_QUERY_KEYS]
    return [value for value in found if value]


def retarget(url: str, host: str, port: int | None, dbname: str | None, query: str | None) -> str:
    """The same URL (scheme, user, password kept byte for byte) at another host/port[/database][?query]."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition('@')[0] if '@' in parts.netloc else ''
    shown = f'[{host}]' if ':' in host and not host.startswith('[') else host
    netloc = (userinfo + '@' if userinfo else '') + shown + (f':{port}' if port else '')
    path = parts.path if dbname is None else '/' + quote(dbname, safe='')
    return urlunsplit((parts.scheme, netloc, path, parts.query if query is None else query, parts.fragment))


def endpoint_text(endpoint: t.Mapping[str, t.Any]) -> str:
    text = f"{endpoint.get('host')}:{endpoint.get('port') or 5432}/{endpoint.get('dbname') or ''}"
    return text + (f"?{endpoint['query']}" if endpoint.get('query') else '')


class UrlSecretStore(K8sSecretStore):
    """A Secret key holding the whole URL: written like the rotation's store, with its own annotation."""

    changed_at_annotation = CHANGED_AT

    def _value(self, obj: t.Mapping[str, t.Any], secret: str) -> str:
        return secret


class _StoreSource:
    """A source that reads and writes the whole URL through a rotation store (``self.store``)."""

    store: t.Any

    @property
    def where(self) -> str:
        return self.store.where

    def read(self) -> str:
        return self.store.read()

    def write(self, value: str) -> None:
        self.store.write(value)


class FileSource(_StoreSource):
    restart_needed = False

    def __init__(self, path: str, key: str, file_format: str) -> None:
        self.store = FileStore(path, key, file_format, 'password')
        self.kind = 'file'

    def describe(self) -> dict[str, t.Any]:
        return {'type': 'file', 'location': self.store.path, 'key': self.store.key, 'format': self.store.file_format}


class SecretSource(_StoreSource):
    restart_needed = True

    def __init__(self, client: t.Any, namespace: str, name: str, key: str, via: str) -> None:
        self.store = UrlSecretStore(client, namespace, name, key, 'password')
        self.kind = 'k8s_secret'
        self.via = via

    def describe(self) -> dict[str, t.Any]:
        return {'type': 'k8s_secret', 'location': f'{self.store.namespace}/{self.store.name}', 'key': self.store.key,
                'via': self.via}


class EnvSource:
    """A plain ``value`` in the container's env: patched with the resourceVersion read (the change rolls out)."""

    restart_needed = False

    def __init__(self, client: t.Any, deployment: dict[str, t.Any], container: str, key: str) -> None:
        self.client = client
        self.deployment = deployment
        self.container = container
        self.key = key
        self.kind = 'k8s_env'
        meta = deployment.get('metadata') or {}
        self.namespace, self.name = meta.get('namespace'), meta.get('name')

    def describe(self) -> dict[str, t.Any]:
        return {'type': 'k8s_env', 'location': f'{self.namespace}/{self.name}', 'container': self.container, 'key': self.key}

    @property
    def where(self) -> str:
        return f'env {self.key} of container {self.container} of Deployment {self.namespace}/{self.name}'

    def read(self) -> str:
        for entry in find_container(self.deployment, self.container).get('env') or []:
            if entry.get('name') == self.key:
                return str(entry.get('value', ''))
        raise UrlError(f'The {self.where} does not exist')

    def write(self, value: str) -> None:
        body = {'metadata': {'resourceVersion': (self.deployment.get('metadata') or {}).get('resourceVersion')},
                'spec': {'template': {'spec': {'containers': [{'name': self.container,
                                                               'env': [{'name': self.key, 'value': value}]}]}}}}
        self.client.patch('deployments', self.namespace, self.name, body, 'strategic')


def kubernetes_source(client: t.Any, namespace: str, deployment: str, container: str, key: str) -> t.Any:
    """Where container ``container`` of ``deployment`` takes ``key`` from: its env value, a secretKeyRef or an envFrom Secret."""
    dep = client.get('deployments', namespace, deployment)
    dep.setdefault('metadata', {}).setdefault('namespace', namespace)
    spec = copy.deepcopy(find_container(dep, container))
    where = f'{key} of container {container} of Deployment {namespace}/{deployment}'
    for entry in spec.get('env') or []:
        if entry.get('name') != key:
            continue
        source = entry.get('valueFrom')
        if not source:
            return EnvSource(client, dep, container, key)
        ref = source.get('secretKeyRef')
        if ref and ref.get('name') and ref.get('key'):
            return SecretSource(client, namespace, ref['name'], ref['key'], f'env {key} valueFrom.secretKeyRef')
        kind = next(iter(source), 'valueFrom')
        raise UrlError(f'{where} comes from {kind}, which this module does not change: only a plain value or a Secret '
                       '(secretKeyRef, envFrom) can be pointed at the pooler')
    for entry in spec.get('envFrom') or []:
        ref, prefix = entry.get('secretRef'), entry.get('prefix') or ''
        if not ref or not ref.get('name') or not key.startswith(prefix):
            continue
        try:
            data = (client.get('secrets', namespace, ref['name']).get('data') or {})
        except TrdrhubError:
            if ref.get('optional'):
                continue
            raise
        if key[len(prefix):] in data:
            return SecretSource(client, namespace, ref['name'], key[len(prefix):], f"envFrom secretRef {ref['name']}")
    raise UrlError(f'Container {container} of Deployment {namespace}/{deployment} has no {key} (neither in env nor in a '
                   'Secret of envFrom); set key to the variable that holds the database URL')


def plan(source: t.Any, host: str, port: int | None, dbname: str | None, query: str | None,
         on_secret: t.Callable[[str], None]) -> dict[str, t.Any]:
    """Read the current URL and work out the new one; nothing is written."""
    try:
        current = source.read()
    except StoreError as exc:
        raise UrlError(str(exc)) from None
    for value in secrets_in(current) + [current]:
        on_secret(value)
    before = parse(current, f'The value of {source.where}')
    wanted = retarget(current, host, port, dbname, query)
    after = parse(wanted, 'The new URL')
    on_secret(wanted)
    return {'current': current, 'wanted': wanted, 'previous_endpoint': before, 'endpoint': after,
            'changed': (before['host'], before['port'], before['dbname'], urlsplit(current).query)
            != (after['host'], after['port'], after['dbname'], urlsplit(wanted).query)}


def run(source: t.Any, params: t.Mapping[str, t.Any], check_mode: bool, on_secret: t.Callable[[str], None]) -> dict[str, t.Any]:
    found = plan(source, params['host'], params['port'], params['dbname'], params['query'], on_secret)
    changed = found['changed']
    if changed and not check_mode:
        try:
            source.write(found['wanted'])
        except StoreError as exc:
            raise UrlError(str(exc)) from None
    before, after = found['previous_endpoint'], found['endpoint']
    verb = ('would be pointed' if check_mode else 'was pointed') if changed else 'already points'
    msg = (f"{source.where}: {endpoint_text(before)} {verb} at {endpoint_text(after)}" if changed
           else f"{source.where} already points at {endpoint_text(after)}")
    return {
        'changed': changed,
        'needs_change': changed,
        'msg': msg,
        'source': source.describe(),
        'previous': mask(found['current']),
        'url': mask(found['wanted'] if changed else found['current']),
        'previous_endpoint': before,
        'endpoint': after,
        'restart_needed': changed and source.restart_needed,
        'diff': {'before': mask(found['current']) + '\n', 'after': mask(found['wanted']) + '\n',
                 'before_header': source.where, 'after_header': source.where},
    }
