# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Secret rotation: SCRAM verifier, generation, stores, and the rotation flow with fakes."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import stat
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import PgInputError
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sConflictError,
    K8sNotFoundError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate import stores as _rotate_stores
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import (
    SYMBOLS,
    SecretPolicyError,
    fingerprint,
    generate,
    scram_verifier,
    short_fingerprint,
    verifier_matches,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import RestartError
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import (
    RotationError,
    Rotator,
    parse_age,
    validate,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FileStore,
    K8sSecretStore,
    StoreError,
    atomic_write,
)

# RFC 7677 section 3: user "user", password "pencil".
RFC_SALT = 'W22ZaJ0SNY7soEsUEjb6gQ=='
RFC_AUTH_MESSAGE = ('n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,'
                    's=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0')
RFC_PROOF = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='
RFC_SERVER_SIGNATURE = '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='


def independent_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """RFC 5802 section 3, written out again here so the test does not trust the production code."""
    salted = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b'Client Key', hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    enc = base64.b64encode
    return f'SCRAM-SHA-256${iterations}:{enc(salt).decode()}${enc(stored).decode()}:{enc(server).decode()}'


def test_scram_verifier_matches_an_independent_computation():
    salt = bytes(range(16))
    assert scram_verifier('s3cret-Pa55', salt=salt) == independent_verifier('s3cret-Pa55', salt)


def test_scram_verifier_against_the_rfc_7677_exchange():
    verifier = scram_verifier('pencil', salt=base64.b64decode(RFC_SALT))
    head, keys = verifier.split('$')[1:]
    assert head == f'4096:{RFC_SALT}'
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(':'))
    # The server side of the RFC exchange: the client's proof checks out against StoredKey ...
    signature = hmac.new(stored_key, RFC_AUTH_MESSAGE.encode(), hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC_PROOF), signature))
    assert hashlib.sha256(client_key).digest() == stored_key
    # ... and ServerKey produces the RFC's server signature.
    assert base64.b64encode(hmac.new(server_key, RFC_AUTH_MESSAGE.encode(), hashlib.sha256).digest()).decode() == RFC_SERVER_SIGNATURE


def test_verifier_is_salted_and_recognises_its_password():
    one, two = scram_verifier('pw-1234567890abcdef'), scram_verifier('pw-1234567890abcdef')
    assert one != two
    assert verifier_matches(one, 'pw-1234567890abcdef', 'app') is True
    assert verifier_matches(one, 'other', 'app') is False
    md5 = 'md5' + hashlib.md5(b'secretapp').hexdigest()
    assert verifier_matches(md5, 'secret', 'app') is True and verifier_matches(md5, 'nope', 'app') is False
    assert verifier_matches(None, 'x', 'app') is None and verifier_matches('SCRAM-SHA-256$bad', 'x', 'app') is None


@pytest.mark.parametrize(('classes', 'allowed'), [
    (['letters', 'digits'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')),
    (['letters', 'digits', 'symbols'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' + SYMBOLS)),
    (['urlsafe'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_')),
    (['digits'], set('0123456789')),
])
def test_generate_follows_the_policy(classes, allowed):
    values = {generate(24, classes) for dummy in range(20)}
    assert len(values) == 20
    for value in values:
        assert len(value) == 24 and set(value) <= allowed
    if classes == ['letters', 'digits', 'symbols']:
        assert all(any(c in SYMBOLS for c in v) and any(c.isdigit() for c in v) for v in values)


@pytest.mark.parametrize(('length', 'classes', 'message'), [
    (8, ['letters'], 'between 16 and 1024'),
    (2000, ['letters'], 'between 16 and 1024'),
    (32, ['urlsafe', 'symbols'], 'use it alone'),
    (32, ['emoji'], 'emoji is not one of'),
])
def test_bad_policy(length, classes, message):
    with pytest.raises(SecretPolicyError, match=message):
        generate(length, classes)


def test_fingerprints():
    assert fingerprint('abc') == hashlib.sha256(b'abc').hexdigest()
    assert short_fingerprint('abc') == 'sha256:' + hashlib.sha256(b'abc').hexdigest()[:12]
    assert fingerprint(None) is None and short_fingerprint(None) is None


@pytest.mark.parametrize(('text', 'seconds'), [('30d', 2592000), ('12h', 43200), ('90m', 5400), ('2w', 1209600),
                                               ('45', 45), ('0', 0), (None, 0)])
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


def test_parse_age_rejects_words():
    with pytest.raises(PgInputError, match="min_age 'a month' is not a duration"):
        parse_age('a month')


def test_validate_needs_a_store_location():
    base = {'length': 32, 'alphabet': ['letters'], 'min_age': '0', 'restart_timeout': 1, 'health_timeout': 1}
    with pytest.raises(PgInputError, match='path is required'):
        validate(dict(base, store='file'))
    with pytest.raises(PgInputError, match='k8s_secret and key are required'):
        validate(dict(base, store='k8s_secret', k8s_secret='db'))


# -- atomic write and the file store --------------------------------------------------------

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


# -- the rotation flow with fakes -------------------------------------------------------------

class FakeRole:
    role = 'app'

    def __init__(self, password: str, login_works: bool = True) -> None:
        self.password = password
        self.login_works = login_works
        self.verifiers: list[str] = []

    def check(self) -> None:
        pass

    def verifier(self) -> str:
        return 'SCRAM-SHA-256$old-verifier'

    def set_verifier(self, verifier: str) -> None:
        assert verifier.startswith('SCRAM-SHA-256$')
        self.verifiers.append(verifier)

    def login(self, password: str) -> tuple[bool, str]:
        current = self.verifiers[-1] if self.verifiers else None
        ok = current == 'SCRAM-SHA-256$old-verifier' and password == self.password
        ok = ok or verifier_matches(current, password, 'app') is True or (current is None and password == self.password)
        return (ok and self.login_works), 'answered' if ok else 'password authentication failed'

    def accepts(self, password: str, verifier: str | None = None) -> tuple[bool, str]:
        return self.login(password)


class FakeLog:
    present = True
    table = 'secret_rotation_logs'

    def __init__(self, last: datetime.datetime | None = None) -> None:
        self.rows: list[dict[str, t.Any]] = []
        self.last = last

    def last_completed(self, secret_type: str, environment: str) -> datetime.datetime | None:
        return self.last

    def insert(self, row: dict[str, t.Any]) -> None:
        self.rows.append(row)


class Restarts:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.count = 0

    @staticmethod
    def targets() -> list[str]:
        return ['deployment/api (ns)']

    def restart(self) -> list[str]:
        self.count += 1
        if self.fail:
            raise RestartError('rollout of Deployment api timed out')
        return ['api']


PARAMS = {'length': 24, 'alphabet': ['letters', 'digits'], 'secret_type': 'db_password', 'environment': 'test',
          'min_age': '0', 'force': False, 'log_table': 'secret_rotation_logs', 'log_rotation': True}


@pytest.fixture
def store(tmp_path):
    path = tmp_path / 'api.env'
    path.write_text('DATABASE_PASSWORD=old-password-1234\n')
    return FileStore(str(path), 'DATABASE_PASSWORD')


def rotator(store, role=None, restarter=None, log=None, check_mode=False, **params):
    return Rotator(dict(PARAMS, **params), role or FakeRole('old-password-1234'), store, restarter or Restarts(),
                   log if log is not None else FakeLog(), check_mode=check_mode, actor='local:test', crash=lambda step: None)


def test_successful_rotation(store):
    log, role = FakeLog(), FakeRole('old-password-1234')
    result = rotator(store, role=role, log=log).run()
    new = store.read()
    assert result['status'] == 'completed' and new != 'old-password-1234' and len(new) == 24
    assert [s['step'] for s in result['steps']] == ['pending', 'alter_role', 'store', 'restart', 'verify']
    assert result['services_restarted'] == ['api']
    assert log.rows[0]['status'] == 'completed'
    assert log.rows[0]['old_fingerprint'] == fingerprint('old-password-1234') and log.rows[0]['new_fingerprint'] == fingerprint(new)
    assert store.read_pending() is None
    assert new not in json.dumps(result) and 'old-password-1234' not in json.dumps(result)


def test_failed_rollout_rolls_back_everything(store):
    log, role, restarts = FakeLog(), FakeRole('old-password-1234'), Restarts(fail=True)
    with pytest.raises(RotationError, match='failed at restart and was rolled back') as info:
        rotator(store, role=role, restarter=restarts, log=log).run()
    result = info.value.result
    assert result['status'] == 'rolled_back' and result['failed_step'] == 'restart'
    assert role.verifiers[-1] == 'SCRAM-SHA-256$old-verifier'   # the old verifier from pg_authid is put back
    assert store.read() == 'old-password-1234' and store.read_pending() is None
    assert restarts.count == 2 and log.rows[0]['status'] == 'rolled_back'


def test_failed_verification_rolls_back(store):
    role = FakeRole('old-password-1234')
    role.login = lambda password: (password == 'old-password-1234', 'answered' if password == 'old-password-1234' else 'refused')
    with pytest.raises(RotationError) as info:
        rotator(store, role=role).run()
    assert info.value.result['status'] == 'rolled_back' and info.value.result['failed_step'] == 'verify'
    assert store.read() == 'old-password-1234'


def test_check_mode_plans_only(store):
    role, log = FakeRole('old-password-1234'), FakeLog()
    result = rotator(store, role=role, log=log, check_mode=True).run()
    assert result['status'] == 'planned' and not result['changed']
    assert result['plan']['targets']['restart'] == ['deployment/api (ns)']
    assert result['old_fingerprint'] == short_fingerprint('old-password-1234')
    assert role.verifiers == [] and log.rows == [] and store.read_pending() is None


def test_min_age_skip_and_force(store):
    recent = FakeLog(last=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3))
    assert rotator(store, log=recent, min_age='30d').run()['status'] == 'skipped'
    assert store.read() == 'old-password-1234'
    assert rotator(store, log=recent, min_age='30d', force=True).run()['status'] == 'completed'


def test_recovery_completes_when_the_server_has_the_new_password(store):
    role = FakeRole('old-password-1234')
    role.verifiers.append(scram_verifier('new-password-5678'))
    store.write_pending({'old': 'old-password-1234', 'new': 'new-password-5678', 'rotation_id': 'rot-1'})
    result = rotator(store, role=role).run()
    assert result['recovery'] == {'found': True, 'database_accepts': 'new', 'action': 'completed'}
    assert result['rotation_id'] == 'rot-1' and store.read() == 'new-password-5678' and store.read_pending() is None


def test_recovery_refuses_when_the_server_accepts_neither(store):
    role = FakeRole('old-password-1234', login_works=False)
    store.write_pending({'old': 'old-password-1234', 'new': 'new-password-5678'})
    with pytest.raises(RotationError, match='accepts neither') as info:
        rotator(store, role=role).run()
    assert 'new-password-5678' not in str(info.value)
    assert store.read_pending() is not None


class FakeDeployments:
    """Deployments that finish their rollout as soon as they are patched, or stall."""

    def __init__(self, stall: bool = False) -> None:
        self.stall = stall
        self.patches: list[tuple[str, dict[str, t.Any]]] = []
        self.deps: dict[str, dict[str, t.Any]] = {}

    def _dep(self, name: str) -> dict[str, t.Any]:
        return self.deps.setdefault(name, {
            'metadata': {'name': name, 'generation': 1, 'resourceVersion': '1'},
            'spec': {'replicas': 1, 'template': {'metadata': {}}},
            'status': {'observedGeneration': 1, 'replicas': 1, 'updatedReplicas': 1, 'availableReplicas': 1}})

    def get(self, resource: str, namespace: str, name: str, subresource: str = '') -> dict[str, t.Any]:
        return json.loads(json.dumps(self._dep(name)))

    def patch(self, resource, namespace, name, body, patch_type='strategic', subresource=''):
        self.patches.append((name, body))
        dep = self._dep(name)
        dep['metadata']['generation'] += 1
        if not self.stall:
            dep['status']['observedGeneration'] = dep['metadata']['generation']
        return json.loads(json.dumps(dep))


def test_kube_restarter_sets_restarted_at_and_waits():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter
    client = FakeDeployments()
    assert KubeRestarter(client, 'ns', ['trdrhub-api', 'trdrhub-worker'], 5).restart() == ['trdrhub-api', 'trdrhub-worker']
    assert [name for name, _body in client.patches] == ['trdrhub-api', 'trdrhub-worker']
    annotations = client.patches[0][1]['spec']['template']['metadata']['annotations']
    assert 'kubectl.kubernetes.io/restartedAt' in annotations


def test_kube_restarter_restarts_again_in_the_next_second_when_the_template_did_not_change():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter

    class SameSecond(FakeDeployments):
        """The first patch lands in the same second as an earlier restart: the template, so the generation, stays."""

        def patch(self, resource, namespace, name, body, patch_type='strategic', subresource=''):
            if not self.patches:
                self.patches.append((name, body))
                return json.loads(json.dumps(self._dep(name)))
            return super().patch(resource, namespace, name, body, patch_type, subresource)

    client, slept = SameSecond(), []
    assert KubeRestarter(client, 'ns', ['trdrhub-api'], 5, sleep=slept.append).restart() == ['trdrhub-api']
    assert len(client.patches) == 2 and len(slept) == 1 and 0 < slept[0] <= 1.05
    assert client.deps['trdrhub-api']['metadata']['generation'] == 2


def test_kube_restarter_times_out_as_a_restart_error():
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import KubeRestarter
    ticks = iter(range(0, 1000, 3))
    restarter = KubeRestarter(FakeDeployments(stall=True), 'ns', ['trdrhub-api'], 5,
                              clock=lambda: float(next(ticks)), sleep=lambda s: None)
    with pytest.raises(RestartError, match='Timed out after 5s waiting for the rollout of Deployment trdrhub-api'):
        restarter.restart()
