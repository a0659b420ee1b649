# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The secret stores: atomic file writes, the env/JSON/raw/DSN file formats, the pending slot, the Kubernetes Secret store and its conflicts."""

from __future__ import annotations

import base64
import json
import os
import stat
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sConflictError,
    K8sNotFoundError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate import stores as _rotate_stores
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FileStore,
    K8sSecretStore,
    StoreError,
    atomic_write,
)


def test_atomic_write_replaces_with_mode_0600_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'api.env'
    path.write_text('A=1\n')
    path.chmod(0o644)
    atomic_write(str(path), b'A=2\n')
    assert path.read_text() == 'A=2\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ['api.env']


def test_atomic_write_failure_keeps_the_original(tmp_path, monkeypatch):
    path = tmp_path / 'api.env'
    path.write_text('A=1\n')

    def broken(*_args):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(_rotate_stores.os, 'replace', broken)
    with pytest.raises(OSError):
        atomic_write(str(path), b'A=2\n')
    assert path.read_text() == 'A=1\n' and os.listdir(tmp_path) == ['api.env']


@pytest.mark.parametrize(('content', 'key', 'fmt', 'expected'), [
    ('X=1\nDATABASE_PASSWORD=old-pw\nY=2\n', 'DATABASE_PASSWORD', 'env', 'X=1\nDATABASE_PASSWORD=NEW\nY=2\n'),
    ('export DATABASE_PASSWORD="old-pw"\n', 'DATABASE_PASSWORD', 'env', 'export DATABASE_PASSWORD="NEW"\n'),
    ("DATABASE_PASSWORD = 'old-pw'\r\n", 'DATABASE_PASSWORD', 'env', "DATABASE_PASSWORD = 'NEW'\r\n"),
    ('{"db_password": "old-pw", "other": 1}', 'db_password', 'json', '{\n  "db_password": "NEW",\n  "other": 1\n}\n'),
    ('old-pw\n', None, 'raw', 'NEW\n'),
])
def test_file_store_formats(tmp_path, content, key, fmt, expected):
    path = tmp_path / 'store'
    path.write_text(content, newline='')
    store = FileStore(str(path), key, fmt)
    assert store.read() == 'old-pw'
    store.write('NEW')
    assert path.read_bytes().decode() == expected
    assert store.read() == 'NEW'


def test_file_store_dsn_value(tmp_path):
    path = tmp_path / 'api.env'
    path.write_text('DATABASE_URL=postgresql://app:old%40pw@db:5432/trdrhub?sslmode=require\n')
    store = FileStore(str(path), 'DATABASE_URL', 'env', 'dsn')
    assert store.read() == 'old@pw'
    store.write('n3w/pw:x')
    assert path.read_text() == 'DATABASE_URL=postgresql://app:n3w%2Fpw%3Ax@db:5432/trdrhub?sslmode=require\n'
    assert store.read() == 'n3w/pw:x'


@pytest.mark.parametrize(('content', 'key', 'fmt', 'vfmt', 'message'), [
    ('A=1\n', 'DATABASE_PASSWORD', 'env', 'password', 'has no line DATABASE_PASSWORD=...'),
    ('not json', 'k', 'json', 'password', 'is not valid JSON'),
    ('{"k": 1}', 'k', 'json', 'password', "has no string key 'k'"),
    ('DATABASE_URL=plain\n', 'DATABASE_URL', 'env', 'dsn', 'is not a URL with a password'),
])
def test_file_store_errors_name_the_problem_not_the_value(tmp_path, content, key, fmt, vfmt, message):
    path = tmp_path / 'store'
    path.write_text(content)
    with pytest.raises(StoreError, match=message) as info:
        FileStore(str(path), key, fmt, vfmt).read()
    assert 'plain' not in str(info.value)


def test_pending_slot_round_trip(tmp_path):
    path = tmp_path / 'api.env'
    path.write_text('P=x\n')
    store = FileStore(str(path), 'P')
    assert store.read_pending() is None
    store.write_pending({'old': 'a', 'new': 'b'})
    assert stat.S_IMODE(os.stat(store.pending_path).st_mode) == 0o600
    assert store.read_pending() == {'old': 'a', 'new': 'b'}
    store.clear_pending()
    store.clear_pending()
    assert store.read_pending() is None


# -- the Kubernetes Secret store, client mocked ----------------------------------------------

class FakeSecrets:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, t.Any]] = {}
        self.calls: list[tuple[str, str]] = []
        # name -> changes made by "someone else" just before each of our next PUTs of it
        self.interfere: dict[str, list[t.Callable[[dict[str, t.Any]], None]]] = {}

    def get(self, resource: str, namespace: str, name: str) -> dict[str, t.Any]:
        self.calls.append(('GET', name))
        if name not in self.objects:
            raise K8sNotFoundError(f'Not found: secrets "{name}" not found')
        return json.loads(json.dumps(self.objects[name]))

    def create(self, namespace: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        self.calls.append(('POST', body['metadata']['name']))
        self.objects[body['metadata']['name']] = dict(body, metadata=dict(body['metadata'], resourceVersion='1'))
        return self.objects[body['metadata']['name']]

    def replace(self, namespace: str, name: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        self.calls.append(('PUT', name))
        for change in self.interfere.get(name, [])[:1]:
            self.interfere[name].pop(0)
            change(self.objects[name])
            meta = self.objects[name]['metadata']
            meta['resourceVersion'] = str(int(meta['resourceVersion']) + 1)
        if body['metadata']['resourceVersion'] != self.objects[name]['metadata']['resourceVersion']:
            raise K8sConflictError(f'Conflict: secrets "{name}": the object has been modified')
        version = str(int(body['metadata']['resourceVersion']) + 1)
        self.objects[name] = dict(body, metadata=dict(body['metadata'], resourceVersion=version))
        return self.objects[name]

    def delete(self, namespace: str, name: str, resource_version: str | None = None) -> dict[str, t.Any]:
        self.calls.append(('DELETE', name))
        if name not in self.objects:
            raise K8sNotFoundError(f'Not found: secrets "{name}" not found')
        assert resource_version in (None, self.objects[name]['metadata']['resourceVersion'])
        del self.objects[name]
        return {'kind': 'Status', 'status': 'Success'}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_k8s_secret_store_reads_writes_and_keeps_other_keys():
    client = FakeSecrets()
    client.objects['trdrhub-db'] = {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque',
                                    'metadata': {'name': 'trdrhub-db', 'namespace': 'ns', 'resourceVersion': '7'},
                                    'data': {'DATABASE_PASSWORD': b64('old-pw'), 'REDIS_URL': b64('redis://r')}}
    store = K8sSecretStore(client, 'ns', 'trdrhub-db', 'DATABASE_PASSWORD')
    assert store.read() == 'old-pw'
    store.write('NEW')
    obj = client.objects['trdrhub-db']
    assert obj['data'] == {'DATABASE_PASSWORD': b64('NEW'), 'REDIS_URL': b64('redis://r')}
    assert obj['metadata']['resourceVersion'] == '8' and _rotate_stores.ROTATED_AT in obj['metadata']['annotations']
    assert store.last_rotated() is not None


def test_k8s_secret_store_pending_slot_is_a_separate_secret():
    client = FakeSecrets()
    store = K8sSecretStore(client, 'ns', 'trdrhub-db', 'DATABASE_PASSWORD')
    assert store.read_pending() is None
    store.write_pending({'old': 'a', 'new': 'b'})
    assert ('POST', 'trdrhub-db-rotation-pending') in client.calls
    assert store.read_pending() == {'old': 'a', 'new': 'b'}
    store.clear_pending()
    assert store.read_pending() is None and 'trdrhub-db-rotation-pending' not in client.objects
    assert client.calls[-2:] == [('DELETE', 'trdrhub-db-rotation-pending'), ('GET', 'trdrhub-db-rotation-pending')]
    store.clear_pending()   # nothing pending: nothing deleted
    assert client.calls[-1] == ('GET', 'trdrhub-db-rotation-pending')


def _seeded_store() -> tuple[FakeSecrets, K8sSecretStore]:
    client = FakeSecrets()
    client.objects['trdrhub-db'] = {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque',
                                    'metadata': {'name': 'trdrhub-db', 'namespace': 'ns', 'resourceVersion': '7'},
                                    'data': {'DATABASE_PASSWORD': b64('old-pw')}}
    return client, K8sSecretStore(client, 'ns', 'trdrhub-db', 'DATABASE_PASSWORD')


def test_k8s_secret_store_retries_a_conflict_and_keeps_the_other_change():
    client, store = _seeded_store()
    client.interfere['trdrhub-db'] = [lambda obj: obj['data'].update(OTHER=b64('theirs'))]
    store.write('NEW')
    assert client.objects['trdrhub-db']['data'] == {'DATABASE_PASSWORD': b64('NEW'), 'OTHER': b64('theirs')}
    assert [c for c in client.calls if c[0] == 'PUT'] == [('PUT', 'trdrhub-db')] * 2


def test_k8s_secret_store_never_overwrites_a_concurrent_change_of_its_key():
    client, store = _seeded_store()
    client.interfere['trdrhub-db'] = [lambda obj: obj['data'].update(DATABASE_PASSWORD=b64('theirs'))]
    with pytest.raises(StoreError, match=r'key DATABASE_PASSWORD was changed by someone else .*it was not overwritten'):
        store.write('NEW')
    assert client.objects['trdrhub-db']['data'] == {'DATABASE_PASSWORD': b64('theirs')}


def test_k8s_secret_store_gives_up_after_repeated_conflicts():
    client, store = _seeded_store()
    client.interfere['trdrhub-db'] = [lambda obj: obj.setdefault('metadata', {}).update(labels={'n': '1'})] * 5
    with pytest.raises(StoreError, match=r'kept changing while it was written \(3 attempts, each refused\); it was not written'):
        store.write('NEW')
    assert client.objects['trdrhub-db']['data'] == {'DATABASE_PASSWORD': b64('old-pw')}


def test_k8s_secret_store_missing_key():
    client = FakeSecrets()
    client.objects['s'] = {'metadata': {'name': 's', 'resourceVersion': '1'}, 'data': {'OTHER': b64('x')}}
    with pytest.raises(StoreError, match=r'Secret ns/s key DATABASE_PASSWORD does not exist \(the Secret has: OTHER\)'):
        K8sSecretStore(client, 'ns', 's', 'DATABASE_PASSWORD').read()
