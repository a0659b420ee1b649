# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""database_url: only the endpoint of the URL changes, the password is never shown, and the source is found."""

from __future__ import annotations

import base64
import copy
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import K8sNotFoundError
from ansible_collections.trdrhub.incident.plugins.module_utils._pooler.database_url import (
    CHANGED_AT,
    EnvSource,
    FileSource,
    SecretSource,
    UrlError,
    kubernetes_source,
    mask,
    parse,
    retarget,
    run,
    secrets_in,
)

URL = 'postgresql://trdrhub_app:p%40ss%3Aw0rd@db-primary:5432/lcopilot?sslmode=require'


def params(**more: t.Any) -> dict[str, t.Any]:
    return dict({'host': 'pgbouncer', 'port': 6543, 'dbname': None, 'query': None}, **more)


def test_parse_mask_and_retarget_keep_user_and_password():
    assert parse(URL, 'x') == {'host': 'db-primary', 'port': 5432, 'dbname': 'lcopilot', 'user': 'trdrhub_app',
                               'query': 'sslmode=require'}
    assert mask(URL) == 'postgresql://trdrhub_app:********@db-primary:5432/lcopilot?sslmode=require'
    assert mask('postgres://u@h/d?password=s3cret&x=1') == 'postgres://u@h/d?password=********&x=1'
    assert retarget(URL, 'pgbouncer', 6543, None, None) == URL.replace('db-primary:5432', 'pgbouncer:6543')
    assert retarget(URL, '::1', None, 'other', '') == 'postgresql://trdrhub_app:p%40ss%3Aw0rd@[::1]/other'
    assert set(secrets_in(URL)) == {'p%40ss%3Aw0rd', 'p@ss:w0rd'}


@pytest.mark.parametrize('value', ['redis://r:6379/0', 'plain', 'postgresql:///db'])
def test_a_value_that_is_not_a_postgres_url_is_refused(value):
    with pytest.raises(UrlError, match='is not a PostgreSQL URL'):
        parse(value, 'The value')


def test_file_check_mode_writes_nothing_then_only_the_line_changes_then_nothing(tmp_path):
    path = tmp_path / '.env'
    text = f'# app\nREDIS_URL=redis://r:6379/0\nexport DATABASE_URL="{URL}"\n'
    path.write_text(text)
    seen: list[str] = []
    planned = run(FileSource(str(path), 'DATABASE_URL', 'env'), params(), True, seen.append)
    assert planned['changed'] and planned['needs_change'] and path.read_text() == text
    assert planned['url'] == 'postgresql://trdrhub_app:********@pgbouncer:6543/lcopilot?sslmode=require'
    assert 'p@ss:w0rd' in seen and URL in seen
    assert 'p%40ss' not in str(dict(planned))
    done = run(FileSource(str(path), 'DATABASE_URL', 'env'), params(), False, seen.append)
    assert done['changed'] and not done['restart_needed']
    assert path.read_text() == text.replace('db-primary:5432', 'pgbouncer:6543')
    assert done['previous_endpoint']['port'] == 5432 and done['endpoint']['port'] == 6543
    again = run(FileSource(str(path), 'DATABASE_URL', 'env'), params(), False, seen.append)
    assert not again['changed'] and 'already points at pgbouncer:6543/lcopilot' in again['msg']


class FakeClient:
    def __init__(self, objects: dict[tuple[str, str], dict[str, t.Any]]) -> None:
        self.objects = objects
        self.requests: list[str] = []
        self.patches: list[t.Any] = []
        self.replaced: list[t.Any] = []

    def get(self, resource: str, namespace: str, name: str) -> dict[str, t.Any]:
        self.requests.append(f'GET {resource}/{name}')
        if (resource, name) not in self.objects:
            raise K8sNotFoundError(f'{resource} {name} not found')
        return copy.deepcopy(self.objects[(resource, name)])

    def patch(self, resource, namespace, name, body, patch_type='strategic'):
        self.patches.append(body)
        return {}

    def replace(self, namespace, name, body):
        self.replaced.append(body)
        self.objects[('secrets', name)] = body
        return body


def deployment(container: dict[str, t.Any]) -> dict[str, t.Any]:
    return {'metadata': {'name': 'trdrhub-api', 'resourceVersion': '7'},
            'spec': {'template': {'spec': {'containers': [dict({'name': 'api'}, **container)]}}}}


def secret(data: dict[str, str]) -> dict[str, t.Any]:
    return {'metadata': {'name': 'trdrhub-db', 'resourceVersion': '3', 'annotations': {'owner': 'sre'}},
            'data': {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_a_plain_env_value_is_patched_with_the_resource_version():
    client = FakeClient({('deployments', 'trdrhub-api'): deployment({'env': [{'name': 'DATABASE_URL', 'value': URL}]})})
    source = kubernetes_source(client, 'trdrhub-system', 'trdrhub-api', 'api', 'DATABASE_URL')
    assert isinstance(source, EnvSource)
    result = run(source, params(), False, lambda _v: None)
    assert result['changed'] and not result['restart_needed'] and result['source']['type'] == 'k8s_env'
    (body,) = client.patches
    assert body['metadata']['resourceVersion'] == '7'
    assert body['spec']['template']['spec']['containers'][0]['env'] == [
        {'name': 'DATABASE_URL', 'value': URL.replace('db-primary:5432', 'pgbouncer:6543')}]


@pytest.mark.parametrize('container, via', [
    ({'env': [{'name': 'DATABASE_URL', 'valueFrom': {'secretKeyRef': {'name': 'trdrhub-db', 'key': 'url'}}}]},
     'env DATABASE_URL valueFrom.secretKeyRef'),
    ({'envFrom': [{'configMapRef': {'name': 'cfg'}}, {'secretRef': {'name': 'trdrhub-db'}, 'prefix': 'APP_'}]},
     'envFrom secretRef trdrhub-db'),
])
def test_a_url_from_a_secret_is_changed_in_the_secret_and_needs_a_restart(container, via):
    key = 'url' if 'env' in container else 'DATABASE_URL'
    client = FakeClient({('deployments', 'trdrhub-api'): deployment(container),
                         ('secrets', 'trdrhub-db'): secret({key: URL, 'OTHER': 'x'})})
    name = 'APP_DATABASE_URL' if 'envFrom' in container else 'DATABASE_URL'
    source = kubernetes_source(client, 'trdrhub-system', 'trdrhub-api', 'api', name)
    assert isinstance(source, SecretSource) and source.describe()['via'] == via
    result = run(source, params(), False, lambda _v: None)
    assert result['restart_needed'] and not client.patches
    (body,) = client.replaced
    assert base64.b64decode(body['data'][key]).decode() == URL.replace('db-primary:5432', 'pgbouncer:6543')
    assert base64.b64decode(body['data']['OTHER']).decode() == 'x'
    assert body['metadata']['resourceVersion'] == '3' and body['metadata']['annotations']['owner'] == 'sre'
    assert CHANGED_AT in body['metadata']['annotations']


@pytest.mark.parametrize('container, message', [
    ({'env': [{'name': 'DATABASE_URL', 'valueFrom': {'configMapKeyRef': {'name': 'c', 'key': 'k'}}}]}, 'comes from configMapKeyRef'),
    ({'env': [{'name': 'OTHER', 'value': 'x'}]}, 'Container api of Deployment trdrhub-system/trdrhub-api has no DATABASE_URL'),
])
def test_sources_that_cannot_be_changed_are_one_sentence(container, message):
    client = FakeClient({('deployments', 'trdrhub-api'): deployment(container)})
    with pytest.raises(UrlError, match=message):
        kubernetes_source(client, 'trdrhub-system', 'trdrhub-api', 'api', 'DATABASE_URL')
