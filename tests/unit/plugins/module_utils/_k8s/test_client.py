# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Kubernetes connection: where settings come from, and one clear exception per failure kind."""

from __future__ import annotations

import json

import pytest

kubernetes = pytest.importorskip('kubernetes')

import urllib3  # noqa: E402 - only once kubernetes (which brings it) is known to be there
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import client as _k8s  # noqa: E402
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (  # noqa: E402
    ConnectionSettings,
    K8sApiError,
    K8sAuthError,
    K8sClient,
    K8sConfigError,
    K8sInputError,
    K8sNotFoundError,
    K8sUnreachableError,
    build_configuration,
    selector_text,
)

TOKEN = 'eyJhbGciOiJSUzI1NiJ9.s3cr3t-token'


def params(**overrides):
    base = {name: spec.get('default') for name, spec in _k8s.K8S_AUTH_ARGS.items()}
    base.update(overrides)
    return base


def kubeconfig(path, contexts=('prod', 'staging'), current='prod', server='https://10.0.0.1:6443', token=TOKEN, **extra):
    data = {'apiVersion': 'v1', 'kind': 'Config',
            'clusters': [{'name': f'c-{path.name}', 'cluster': {'server': server, **extra}}],
            'users': [{'name': f'u-{path.name}', 'user': {'token': token}}],
            'contexts': [{'name': name, 'context': {'cluster': f'c-{path.name}', 'user': f'u-{path.name}'}} for name in contexts]}
    if current:
        data['current-context'] = current
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A HOME without ~/.kube/config, so the machine's own kubeconfig is never read."""
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    return tmp_path / 'home'


# -- where the settings come from ------------------------------------------------------------

def test_host_and_api_key_from_options(home):
    settings = ConnectionSettings(params(host='https://k8s.example:6443/', api_key=TOKEN), environ={})
    cfg = build_configuration(settings)
    assert settings.source == 'host' and cfg.host == 'https://k8s.example:6443'
    assert cfg.get_api_key_with_prefix('BearerToken', alias='authorization') == f'Bearer {TOKEN}'
    assert cfg.verify_ssl is True and cfg.retries.total == _k8s.CONNECT_RETRIES


def test_environment_like_kubernetes_core(home, tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('x')
    env = {'K8S_AUTH_HOST': 'https://env.example', 'K8S_AUTH_API_KEY': TOKEN, 'K8S_AUTH_VERIFY_SSL': 'no',
           'K8S_AUTH_SSL_CA_CERT': str(ca)}
    settings = ConnectionSettings(params(), environ=env)
    cfg = build_configuration(settings)
    assert (settings.source, cfg.host, cfg.verify_ssl, cfg.ssl_ca_cert) == ('host', 'https://env.example', False, str(ca))


def test_options_win_over_environment(home, tmp_path):
    path = kubeconfig(tmp_path / 'kc')
    settings = ConnectionSettings(params(kubeconfig=str(path)), environ={'K8S_AUTH_HOST': 'https://env.example'})
    assert settings.source == 'kubeconfig' and settings.host is None
    settings = ConnectionSettings(params(validate_certs=True), environ={'K8S_AUTH_VERIFY_SSL': 'false', 'K8S_AUTH_HOST': 'http://h'})
    assert settings.validate_certs is True


@pytest.mark.parametrize('var', ['K8S_AUTH_KUBECONFIG', 'KUBECONFIG'])
def test_kubeconfig_from_environment_and_current_context(home, tmp_path, var):
    path = kubeconfig(tmp_path / 'kc', server='https://10.0.0.9:6443')
    settings = ConnectionSettings(params(), environ={var: str(path)})
    cfg = build_configuration(settings)
    assert (settings.source, settings.kubeconfig, settings.context, cfg.host) == ('kubeconfig', str(path), 'prod', 'https://10.0.0.9:6443')
    assert cfg.get_api_key_with_prefix('BearerToken', alias='authorization') == f'Bearer {TOKEN}'


def test_kubeconfig_list_and_context_and_api_key_override(home, tmp_path):
    first = kubeconfig(tmp_path / 'a', contexts=('prod',), current='prod')
    second = kubeconfig(tmp_path / 'b', contexts=('kind-trdrhub',), current=None, server='https://127.0.0.1:7443')
    settings = ConnectionSettings(params(kubeconfig=f'{first}:{second}', context='kind-trdrhub', api_key='other'), environ={})
    cfg = build_configuration(settings)
    assert cfg.host == 'https://127.0.0.1:7443'
    assert cfg.get_api_key_with_prefix('BearerToken', alias='authorization') == 'Bearer other'


def test_in_cluster_service_account(home, tmp_path, monkeypatch):
    token, ca = tmp_path / 'token', tmp_path / 'ca.crt'
    token.write_text(TOKEN)
    ca.write_text('-----BEGIN CERTIFICATE-----')
    monkeypatch.setattr(_k8s, 'IN_CLUSTER_TOKEN', str(token))
    monkeypatch.setattr(_k8s, 'IN_CLUSTER_CA', str(ca))
    env = {'KUBERNETES_SERVICE_HOST': '10.96.0.1', 'KUBERNETES_SERVICE_PORT': '443'}
    settings = ConnectionSettings(params(), environ=env)
    cfg = build_configuration(settings)
    assert (settings.source, cfg.host, cfg.ssl_ca_cert) == ('in_cluster', 'https://10.96.0.1:443', str(ca))
    assert TOKEN in cfg.get_api_key_with_prefix('BearerToken', alias='authorization')
    (home / '.kube').mkdir(parents=True)
    kubeconfig(home / '.kube' / 'config')
    # Unlike kubectl: the default kubeconfig's current-context never wins by itself.
    assert ConnectionSettings(params(), environ=env).source == 'in_cluster'


def test_default_kubeconfig_needs_an_explicit_context(home):
    (home / '.kube').mkdir(parents=True)
    path = kubeconfig(home / '.kube' / 'config', contexts=('prod', 'staging'), current='prod')
    with pytest.raises(K8sConfigError) as caught:
        ConnectionSettings(params(), environ={})
    assert str(caught.value).startswith('No Kubernetes cluster given: set context')
    assert 'current-context of ~/.kube/config is never used implicitly' in str(caught.value)
    for settings in (ConnectionSettings(params(context='staging'), environ={}),
                     ConnectionSettings(params(), environ={'K8S_AUTH_CONTEXT': 'staging'})):
        assert (settings.source, settings.kubeconfig, settings.context) == ('kubeconfig', str(path), 'staging')


def test_in_cluster_without_token_file(home, tmp_path, monkeypatch):
    monkeypatch.setattr(_k8s, 'IN_CLUSTER_TOKEN', str(tmp_path / 'missing'))
    settings = ConnectionSettings(params(), environ={'KUBERNETES_SERVICE_HOST': '10.96.0.1', 'KUBERNETES_SERVICE_PORT': '443'})
    with pytest.raises(K8sConfigError, match='pod service account.*token file does not exist'):
        build_configuration(settings)


def test_nothing_configured(home):
    with pytest.raises(K8sConfigError, match='No Kubernetes connection settings'):
        ConnectionSettings(params(), environ={})


@pytest.mark.parametrize('overrides, match', [
    ({'host': 'k8s.example:6443'}, 'host must be an http'),
    ({'host': 'https://admin:pw@k8s.example'}, 'must not contain credentials'),
])
def test_bad_options(home, overrides, match):
    with pytest.raises(K8sInputError, match=match):
        ConnectionSettings(params(**overrides), environ={})


def test_bad_kubeconfigs(home, tmp_path):
    with pytest.raises(K8sConfigError, match='does not exist'):
        build_configuration(ConnectionSettings(params(kubeconfig=str(tmp_path / 'nope')), environ={}))
    path = kubeconfig(tmp_path / 'kc')
    with pytest.raises(K8sConfigError, match="context 'dev' is not in kubeconfig .*; it has: prod, staging"):
        build_configuration(ConnectionSettings(params(kubeconfig=str(path), context='dev'), environ={}))
    nocurrent = kubeconfig(tmp_path / 'nc', current=None)
    with pytest.raises(K8sConfigError, match='has no current-context; set context to one of: prod, staging'):
        build_configuration(ConnectionSettings(params(kubeconfig=str(nocurrent)), environ={}))
    broken = tmp_path / 'broken'
    broken.write_text(f'users:\n- name: u\n  user: {{token: "{TOKEN}"\n  oops: [\n')
    with pytest.raises(K8sConfigError, match='not valid YAML') as caught:
        build_configuration(ConnectionSettings(params(kubeconfig=str(broken)), environ={}))
    assert TOKEN not in str(caught.value)
    nouser = tmp_path / 'nouser'
    nouser.write_text(json.dumps({'clusters': [{'name': 'c', 'cluster': {'server': 'https://x'}}], 'users': [],
                                  'contexts': [{'name': 'p', 'context': {'cluster': 'ghost', 'user': 'u'}}],
                                  'current-context': 'p'}))
    with pytest.raises(K8sConfigError, match=r'Cannot use kubeconfig .* \(context p\): .*ghost'):
        build_configuration(ConnectionSettings(params(kubeconfig=str(nouser)), environ={}))


def test_missing_ca_cert_file(home, tmp_path):
    with pytest.raises(K8sConfigError, match='ca_cert .* does not exist'):
        build_configuration(ConnectionSettings(params(host='https://x', ca_cert=str(tmp_path / 'no.pem')), environ={}))


# -- error mapping -----------------------------------------------------------------------------

class FakeResponse:
    def __init__(self, data):
        self.data = data


def client():
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host='https://k8s.example:6443'))
    return K8sClient(params(host='https://k8s.example:6443', api_key=TOKEN), environ={}, api_client=api)


def raising(exc):
    def method(*args, **kwargs):
        raise exc
    return method


def status(code, reason, message):
    exc = kubernetes.client.ApiException(status=code, reason=reason)
    exc.body = json.dumps({'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure', 'message': message, 'reason': reason, 'code': code})
    return exc


@pytest.mark.parametrize('exc, kind, text', [
    (status(401, 'Unauthorized', 'Unauthorized'), K8sAuthError, r'Authentication failed: .* 401 Unauthorized: Unauthorized - .*api_key'),
    (status(403, 'Forbidden', 'pods is forbidden: User "x" cannot list resource "pods"'), K8sAuthError,
     r'Permission denied: .* 403 Forbidden: pods is forbidden: User "x" cannot list .* RBAC'),
    (status(404, 'NotFound', 'deployments.apps "api" not found'), K8sNotFoundError, 'Not found: .*"api" not found'),
    (status(500, 'InternalError', 'etcdserver: request timed out'), K8sApiError, '500 InternalError: etcdserver'),
    (kubernetes.client.ApiException(status=0, reason='SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED]'), K8sUnreachableError,
     r'TLS handshake .* CERTIFICATE_VERIFY_FAILED.*ca_cert'),
    (urllib3.exceptions.MaxRetryError(None, '/api', urllib3.exceptions.NewConnectionError(None, 'refused')),
     K8sUnreachableError, 'Cannot reach the Kubernetes API at https://k8s.example:6443: GET /x failed'),
    (urllib3.exceptions.ReadTimeoutError(None, '/x', 'Read timed out. (read timeout=10)'), K8sUnreachableError, 'Read timed out'),
])
def test_error_mapping(exc, kind, text):
    k8s = client()
    with pytest.raises(kind, match=text) as caught:
        k8s.call('GET /x', raising(exc))
    assert TOKEN not in str(caught.value)
    assert k8s.requests == ['GET /x']


def test_token_in_a_server_message_is_masked():
    with pytest.raises(K8sAuthError) as caught:
        client().call('GET /x', raising(status(401, 'Unauthorized', f'token {TOKEN} rejected; Authorization: Bearer abc.def')))
    assert TOKEN not in str(caught.value) and 'abc.def' not in str(caught.value)
    assert '********' in str(caught.value)


def test_answer_that_is_not_json():
    with pytest.raises(K8sApiError, match='is not a Kubernetes API server: GET /version answered an HTML page, which is not JSON'):
        client().call('GET /version', lambda *a, **k: FakeResponse(b'<html>login</html>'))


class FakeAnswer:
    """What ApiClient.call_api returns: a RESTResponse around the urllib3 response."""

    def __init__(self, status, data, reason='OK'):
        self.status, self.reason, self.data = status, reason, data
        self.headers = {'Content-Type': 'application/json'}
        self.response = FakeResponse(data)

    def read(self):
        return self.data

    def getheaders(self):
        return self.headers


def recording(k8s, answers):
    """Swap the client's transport for one that records (method, url, headers, body, timeout) and gives ``answers``."""
    sent = []

    def call_api(method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        sent.append({'method': method, 'url': url, 'headers': header_params, 'body': body, 'timeout': _request_timeout})
        return answers.pop(0)

    k8s.api_client.call_api = call_api
    return sent


def test_request_paths_and_timeout():
    k8s = client()
    sent = recording(k8s, [FakeAnswer(200, b'{"items": []}')])
    assert k8s.list('replicasets', 'trdrhub-system', 'app=api,tier in (a,b)') == {'items': []}
    assert k8s.requests == ['GET /apis/apps/v1/namespaces/trdrhub-system/replicasets?labelSelector=app%3Dapi%2Ctier+in+%28a%2Cb%29']
    assert sent[0]['method'] == 'GET' and sent[0]['timeout'] == 10 and sent[0]['body'] is None
    assert sent[0]['url'] == ('https://k8s.example:6443/apis/apps/v1/namespaces/trdrhub-system/replicasets'
                              '?labelSelector=app%3Dapi%2Ctier+in+%28a%2Cb%29')
    assert sent[0]['headers']['Accept'] == 'application/json' and 'Content-Type' not in sent[0]['headers']
    assert k8s.describe() == {'source': 'host', 'kubeconfig': None, 'context': None, 'api_server': 'https://k8s.example:6443'}


def test_a_patch_sends_its_body_with_the_patch_type_and_the_token():
    k8s = K8sClient(params(host='https://k8s.example:6443', api_key=TOKEN), environ={})   # the module's own ApiClient
    sent = recording(k8s, [FakeAnswer(200, b'{"metadata": {"name": "api"}, "spec": {"replicas": 3}}')])
    answer = k8s.patch('deployments', 'trdrhub', 'api', {'spec': {'replicas': 3}}, patch_type='merge', subresource='scale')
    assert answer['spec'] == {'replicas': 3}
    assert k8s.requests == ['PATCH /apis/apps/v1/namespaces/trdrhub/deployments/api/scale']
    assert sent[0]['method'] == 'PATCH' and sent[0]['body'] == {'spec': {'replicas': 3}}
    assert sent[0]['headers']['Content-Type'] == 'application/merge-patch+json'
    assert sent[0]['headers']['authorization'] == f'Bearer {TOKEN}'
    assert sent[0]['headers']['User-Agent'] == 'trdrhub.incident (ansible module)'


def test_an_error_answer_becomes_the_error_of_its_status():
    k8s = client()
    body = json.dumps({'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure', 'reason': 'NotFound', 'code': 404,
                       'message': 'deployments.apps "api" not found'}).encode()
    recording(k8s, [FakeAnswer(404, body, reason='Not Found')])
    with pytest.raises(K8sNotFoundError, match='Not found: the Kubernetes API at https://k8s.example:6443 answered '
                                               'GET /apis/apps/v1/namespaces/trdrhub/deployments/api with 404 Not Found: '
                                               'deployments.apps "api" not found'):
        k8s.get('deployments', 'trdrhub', 'api')


def test_selector_text():
    assert selector_text({'matchLabels': {'b': '2', 'a': '1'}, 'matchExpressions': [
        {'key': 'tier', 'operator': 'In', 'values': ['web', 'api']}, {'key': 'x', 'operator': 'NotIn', 'values': ['y']},
        {'key': 'e', 'operator': 'Exists'}, {'key': 'd', 'operator': 'DoesNotExist'}]}) == 'a=1,b=2,tier in (api,web),x notin (y),e,!d'
    assert selector_text(None) == ''


MALFORMED = {
    'contexts: 5': ('contexts must be a list of entries, got an integer'),
    'users: 1': ('users must be a list of entries, got an integer'),
    'clusters: [{name: c, cluster: 3}]': ('clusters[0].cluster must be a mapping, got an integer'),
    "contexts: [5, 'x']": ('contexts[0] must be a mapping with name and context, got an integer'),
    'contexts: [{name: p, context: [1]}]': ('contexts[0].context must be a mapping, got a list'),
}


@pytest.mark.parametrize('text, problem', MALFORMED.items())
def test_malformed_kubeconfig_is_named_in_words(home, tmp_path, text, problem):
    path = tmp_path / 'kc'
    path.write_text(f'current-context: p\n{text}\n')
    with pytest.raises(K8sConfigError) as caught:
        build_configuration(ConnectionSettings(params(kubeconfig=str(path)), environ={}))
    assert str(caught.value) == f'Cannot use kubeconfig {path}: {problem}'


def test_a_python_error_of_the_client_is_not_shown():
    assert _k8s.config_reason(TypeError("'int' object is not iterable")) == \
        'it is not a valid kubeconfig (an entry has an unexpected structure)'


@pytest.mark.parametrize('module_name, args', [
    ('k8s_rollout', {'action': 'status', 'name': 'trdrhub-api'}),
    ('k8s_workload_info', {}),
])
def test_modules_answer_a_malformed_kubeconfig_in_one_sentence(run_module, home, tmp_path, module_name, args):
    import importlib
    module = importlib.import_module(f'ansible_collections.trdrhub.incident.plugins.modules.{module_name}')
    path = tmp_path / 'kc'
    path.write_text('current-context: p\ncontexts: 5\n')
    res = run_module(module, dict(args, kubeconfig=str(path)))
    assert res['failed'] and res['msg'] == f'Cannot use kubeconfig {path}: contexts must be a list of entries, got an integer'
