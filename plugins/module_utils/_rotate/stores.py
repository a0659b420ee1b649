# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Where a rotated secret is kept: a local file or a Kubernetes Secret, plus a pending slot.

A store holds the *current* secret under one key, either as the password itself or inside a
PostgreSQL URL (``value_format: dsn``, e.g. ``DATABASE_URL``). Before the database changes,
the rotation writes the old and the new secret to the store's *pending slot* (``<file>.pending``,
mode 0600, or the Secret ``<name>-rotation-pending``); a run that finds it knows a rotation was
interrupted and can finish or undo it. Every write of a file is atomic: a temporary file in the
same directory, fsync, rename, fsync of the directory.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import tempfile
import typing as t
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import utc_now  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sClient,
    K8sConflictError,
    K8sNotFoundError,
)

FILE_FORMATS = ('env', 'json', 'raw')
VALUE_FORMATS = ('password', 'dsn')
PENDING_SUFFIX = '.pending'
PENDING_SECRET_SUFFIX = '-rotation-pending'
PENDING_KEY = 'pending.json'
ROTATED_AT = 'trdrhub.incident/rotated-at'
WRITE_ATTEMPTS = 3
_ENV_LINE = re.compile(r'^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<eq>\s*=\s*)(?P<value>.*?)(?P<trail>\s*)$')


class StoreError(TrdrhubError):
    """The store cannot be read or written; the message names it and never holds a secret."""


def extract(value: str, value_format: str, where: str) -> str:
    """The secret inside a stored value: the value itself, or the password of a URL."""
    if value_format == 'password':
        return value
    parts = urlsplit(value)
    if not parts.scheme or parts.password is None:
        raise StoreError(f'{where} is not a URL with a password (scheme://user:password@host/db), as value_format=dsn expects')
    return unquote(parts.password)


def embed(current: str | None, secret: str, value_format: str, where: str) -> str:
    """The stored value with ``secret`` in place of the old one (a URL keeps host, user and query)."""
    if value_format == 'password':
        return secret
    parts = urlsplit(current or '')
    if not parts.scheme or parts.password is None:
        raise StoreError(f'{where} is not a URL with a password, as value_format=dsn expects')
    host = parts.netloc.rpartition('@')[2]
    netloc = f'{parts.username or ""}:{quote(secret, safe="")}@{host}'
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def atomic_write(path: str, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically: tmp in the same directory, fsync, rename, fsync dir."""
    directory = os.path.dirname(os.path.abspath(path))
    owner = None
    with contextlib.suppress(OSError):
        info = os.stat(path)
        owner = (info.st_uid, info.st_gid)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        os.fchmod(fd, mode)
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unquote_env(raw: str) -> tuple[str, str]:
    """(value, quote character) of an env-file value."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in '"\'':
        return raw[1:-1], raw[0]
    return raw, ''


class FileStore:
    """A local file: ``KEY=value`` lines (env), a JSON object key, or the whole file (raw)."""

    kind = 'file'

    def __init__(self, path: str, key: str | None, file_format: str = 'env', value_format: str = 'password') -> None:
        if file_format != 'raw' and not key:
            raise StoreError(f'key is required for a {file_format} file store (the variable or JSON key holding the secret)')
        self.path = path
        self.key = key
        self.file_format = file_format
        self.value_format = value_format
        self.pending_path = path + PENDING_SUFFIX

    @property
    def where(self) -> str:
        return f'file {self.path}' + (f' key {self.key}' if self.file_format != 'raw' else '')

    def describe(self) -> dict[str, t.Any]:
        return {'type': self.kind, 'location': self.path, 'key': self.key, 'format': self.file_format,
                'value_format': self.value_format, 'pending': self.pending_path}

    def _read_text(self) -> str:
        try:
            with open(self.path, encoding='utf-8', newline='') as handle:
                return handle.read()
        except FileNotFoundError:
            raise StoreError(f'The secret store {self.path} does not exist') from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f'Cannot read the secret store {self.path}: {getattr(exc, "strerror", None) or type(exc).__name__}') from None

    def _stored(self, text: str) -> str:
        if self.file_format == 'raw':
            return text.rstrip('\r\n')
        if self.file_format == 'json':
            try:
                data = json.loads(text)
            except ValueError:
                raise StoreError(f'The secret store {self.path} is not valid JSON') from None
            if not isinstance(data, dict) or not isinstance(data.get(self.key), str):
                raise StoreError(f'The secret store {self.path} has no string key {self.key!r} at its top level')
            return data[self.key]
        for line in text.splitlines():
            match = _ENV_LINE.match(line)
            if match and match.group('key') == self.key:
                return _unquote_env(match.group('value'))[0]
        raise StoreError(f'The secret store {self.path} has no line {self.key}=...')

    def read(self) -> str:
        """The current secret."""
        return extract(self._stored(self._read_text()), self.value_format, self.where)

    def render(self, secret: str) -> bytes:
        """The file's new content with only the secret replaced."""
        text = self._read_text()
        value = embed(self._stored(text), secret, self.value_format, self.where)
        if self.file_format == 'raw':
            return (value + ('\n' if text.endswith('\n') else '')).encode()
        if self.file_format == 'json':
            data = json.loads(text)
            data[self.key] = value
            return (json.dumps(data, indent=2) + '\n').encode()
        lines = text.splitlines(keepends=True)
        for index, line in enumerate(lines):
            body = line.rstrip('\r\n')
            match = _ENV_LINE.match(body)
            if match and match.group('key') == self.key:
                quote_char = _unquote_env(match.group('value'))[1]
                new = f"{match.group('lead')}{self.key}{match.group('eq')}{quote_char}{value}{quote_char}{match.group('trail')}"
                lines[index] = new + line[len(body):]
                break
        return ''.join(lines).encode()

    def write(self, secret: str) -> None:
        data = self.render(secret)
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            raise StoreError(f'Cannot write the secret store {self.path}: {exc.strerror or type(exc).__name__}') from None

    def last_rotated(self) -> datetime.datetime | None:
        with contextlib.suppress(OSError):
            return datetime.datetime.fromtimestamp(os.stat(self.path).st_mtime, datetime.timezone.utc)
        return None

    # -- pending slot -------------------------------------------------------------------
    def read_pending(self) -> dict[str, t.Any] | None:
        try:
            with open(self.pending_path, encoding='utf-8') as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f'Cannot read the pending rotation {self.pending_path}: '
                             f'{getattr(exc, "strerror", None) or "not valid JSON"}; inspect it before rotating again') from None
        if not isinstance(data, dict) or 'new' not in data:
            raise StoreError(f'{self.pending_path} is not a pending rotation written by this collection; inspect it')
        return data

    def write_pending(self, record: t.Mapping[str, t.Any]) -> None:
        try:
            atomic_write(self.pending_path, (json.dumps(dict(record), sort_keys=True) + '\n').encode())
        except OSError as exc:
            raise StoreError(f'Cannot write the pending rotation {self.pending_path}: {exc.strerror}') from None

    def clear_pending(self) -> None:
        try:
            os.unlink(self.pending_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f'Cannot remove the pending rotation {self.pending_path}: {exc.strerror}') from None


class SecretsClient(K8sClient):
    """K8sClient with core/v1 Secrets: get (inherited), create, replace (PUT with resourceVersion) and delete."""

    RESOURCES = dict(K8sClient.RESOURCES, secrets='/api/v1')

    def create(self, namespace: str, body: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        return self.send(f'POST /api/v1/namespaces/{quote(namespace)}/secrets', dict(body))

    def replace(self, namespace: str, name: str, body: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        return self.send(f'PUT /api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}', dict(body))

    def delete(self, namespace: str, name: str, resource_version: str | None = None) -> dict[str, t.Any]:
        """DELETE the Secret; with ``resource_version`` only that version of it (409 when it changed)."""
        body = None
        if resource_version:
            body = {'apiVersion': 'v1', 'kind': 'DeleteOptions', 'preconditions': {'resourceVersion': resource_version}}
        return self.send(f'DELETE /api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}', body)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode('utf-8')).decode('ascii')


def _unb64(value: str | None, where: str) -> str:
    try:
        return base64.b64decode(value or '', validate=True).decode('utf-8')
    except (ValueError, UnicodeDecodeError):
        raise StoreError(f'{where} is not base64-encoded UTF-8 text') from None


class K8sSecretStore:
    """One data key of a Kubernetes Secret; writes are PUTs guarded by the resourceVersion read."""

    kind = 'k8s_secret'

    def __init__(self, client: t.Any, namespace: str, name: str, key: str, value_format: str = 'password') -> None:
        if not name or not key:
            raise StoreError('k8s_secret and key are required for a Kubernetes Secret store')
        self.client = client
        self.namespace = namespace
        self.name = name
        self.key = key
        self.value_format = value_format
        self.pending_name = name + PENDING_SECRET_SUFFIX
        self._object: dict[str, t.Any] | None = None

    @property
    def where(self) -> str:
        return f'Secret {self.namespace}/{self.name} key {self.key}'

    def describe(self) -> dict[str, t.Any]:
        return {'type': self.kind, 'location': f'{self.namespace}/{self.name}', 'key': self.key,
                'value_format': self.value_format, 'pending': f'{self.namespace}/{self.pending_name}'}

    def _get(self) -> dict[str, t.Any]:
        self._object = self.client.get('secrets', self.namespace, self.name)
        return self._object

    def _stored(self, obj: t.Mapping[str, t.Any]) -> str:
        data = obj.get('data') or {}
        if self.key not in data:
            raise StoreError(f'The {self.where} does not exist (the Secret has: {", ".join(sorted(data)) or "no keys"})')
        return _unb64(data[self.key], self.where)

    def read(self) -> str:
        return extract(self._stored(self._get()), self.value_format, self.where)

    # The annotation that records when the key was written (a subclass may name its own).
    changed_at_annotation = ROTATED_AT

    def _value(self, obj: t.Mapping[str, t.Any], secret: str) -> str:
        """The key's new text: the secret embedded in what the key holds, in its value format."""
        return embed(self._stored(obj), secret, self.value_format, self.where)

    def _body(self, obj: t.Mapping[str, t.Any], secret: str) -> dict[str, t.Any]:
        """The Secret as read, with the key replaced, the changed-at annotation set and the resourceVersion read."""
        body = {key: obj[key] for key in ('apiVersion', 'kind', 'type', 'immutable') if key in obj}
        body.setdefault('apiVersion', 'v1')
        body.setdefault('kind', 'Secret')
        meta = dict(obj.get('metadata') or {})
        meta['annotations'] = dict(meta.get('annotations') or {}, **{self.changed_at_annotation: utc_now().isoformat()})
        body['metadata'] = {k: meta[k] for k in ('name', 'namespace', 'labels', 'annotations', 'resourceVersion') if k in meta}
        body['data'] = dict(obj.get('data') or {})
        body['data'][self.key] = _b64(self._value(obj, secret))
        return body

    def write(self, secret: str) -> None:
        """PUT the Secret with the resourceVersion read.

        A 409 (someone changed the Secret in between) is retried on a fresh read as long as the
        key itself still holds what was read first - other keys, labels and annotations that
        changed are kept; a changed key is never overwritten.
        """
        obj = self._get()
        first = (obj.get('data') or {}).get(self.key)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                self._object = self.client.replace(self.namespace, self.name, self._body(obj, secret))
                return
            except K8sConflictError as exc:
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(f'{exc} - the {self.where} kept changing while it was written ({WRITE_ATTEMPTS} attempts, '
                                     'each refused); it was not written') from None
                obj = self._get()
                if (obj.get('data') or {}).get(self.key) != first:
                    raise StoreError(f'The {self.where} was changed by someone else while it was being written (409 Conflict); '
                                     'it was not overwritten') from None

    def last_rotated(self) -> datetime.datetime | None:
        meta = (self._object or self._get()).get('metadata') or {}
        stamp = (meta.get('annotations') or {}).get(ROTATED_AT) or meta.get('creationTimestamp')
        with contextlib.suppress(TypeError, ValueError):
            return datetime.datetime.fromisoformat(str(stamp).replace('Z', '+00:00'))
        return None

    # -- pending slot: a separate Secret, so envFrom of the main Secret never exposes it ----
    def _pending_object(self) -> dict[str, t.Any] | None:
        try:
            return self.client.get('secrets', self.namespace, self.pending_name)
        except K8sNotFoundError:
            return None

    def read_pending(self) -> dict[str, t.Any] | None:
        obj = self._pending_object()
        raw = ((obj or {}).get('data') or {}).get(PENDING_KEY)
        if not raw:
            return None
        try:
            data = json.loads(_unb64(raw, f'Secret {self.namespace}/{self.pending_name}'))
        except ValueError:
            data = None
        if not isinstance(data, dict) or 'new' not in data:
            raise StoreError(f'Secret {self.namespace}/{self.pending_name} is not a pending rotation written by this collection')
        return data

    def _put_pending(self, data: dict[str, str]) -> None:
        obj = self._pending_object()
        body: dict[str, t.Any] = {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque', 'data': data,
                                  'metadata': {'name': self.pending_name, 'namespace': self.namespace,
                                               'labels': {'app.kubernetes.io/managed-by': 'trdrhub.incident'}}}
        if obj is None:
            self.client.create(self.namespace, body)
        else:
            body['metadata']['resourceVersion'] = (obj.get('metadata') or {}).get('resourceVersion')
            self.client.replace(self.namespace, self.pending_name, body)

    def write_pending(self, record: t.Mapping[str, t.Any]) -> None:
        self._put_pending({PENDING_KEY: _b64(json.dumps(dict(record), sort_keys=True))})

    def clear_pending(self) -> None:
        """Delete the pending Secret (the version read, so a concurrent rewrite of it is never lost)."""
        obj = self._pending_object()
        if obj is None:
            return
        try:
            self.client.delete(self.namespace, self.pending_name, (obj.get('metadata') or {}).get('resourceVersion'))
        except K8sNotFoundError:
            pass
