# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The Kubernetes errors and their texts: the server's Status message, URLs without credentials, YAML errors without file content."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import errors as ke


@pytest.mark.parametrize('kind', [ke.K8sConfigError, ke.K8sUnreachableError, ke.K8sAuthError, ke.K8sNotFoundError,
                                  ke.K8sApiError, ke.K8sTooLargeError, ke.K8sConflictError, ke.K8sInputError],
                         ids=lambda cls: cls.__name__)
def test_every_kind_is_a_k8s_error_under_the_one_root(kind):
    exc = kind('Deployment trdrhub-api not found in trdrhub-system', status=404)
    assert isinstance(exc, ke.K8sError) and isinstance(exc, TrdrhubError)
    assert str(exc) == 'Deployment trdrhub-api not found in trdrhub-system' and exc.details == {'status': 404}


def test_a_conflict_and_a_too_large_answer_are_api_errors():
    assert issubclass(ke.K8sConflictError, ke.K8sApiError) and issubclass(ke.K8sTooLargeError, ke.K8sApiError)


@pytest.mark.parametrize('url, shown', [
    ('https://admin:s3cret@k8s.example:6443/api', 'https://***@k8s.example:6443/api'),
    ('https://k8s.example:6443', 'https://k8s.example:6443'),
    ('', ''),
])
def test_display_url_drops_the_credentials(url, shown):
    assert ke.display_url(url) == shown


def test_status_message_of_a_kubernetes_status():
    body = json.dumps({'kind': 'Status', 'status': 'Failure', 'reason': 'NotFound',
                       'message': 'deployments.apps "trdrhub-api" not found'})
    assert ke.status_message(body) == ('deployments.apps "trdrhub-api" not found', 'NotFound')
    assert ke.status_message(body.encode()) == ('deployments.apps "trdrhub-api" not found', 'NotFound')


def test_status_message_of_other_answers_has_no_reason():
    html = '<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>'
    message, reason = ke.status_message(html)
    assert '502 Bad Gateway' in message and reason == ''
    assert ke.status_message('upstream timed out') == ('upstream timed out', '')
    assert ke.status_message(None) == ('', '')
    message, reason = ke.status_message('x' * 1000)
    assert len(message) <= 300 and reason == ''


def test_config_reason_of_a_yaml_error_names_the_place_not_the_content():
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load('users:\n- name: u\n  user: {token: "s3cr3t-token\n')
    reason = ke.config_reason(caught.value)
    assert reason.startswith('not valid YAML: ') and ' at line ' in reason
    assert 's3cr3t-token' not in reason


def test_config_reason_of_a_structure_error_and_of_other_errors():
    assert ke.config_reason(KeyError('cluster')) == 'it is not a valid kubeconfig (an entry has an unexpected structure)'
    assert ke.config_reason(OSError('Permission denied: /home/u/.kube/config')) == 'Permission denied: /home/u/.kube/config'
    assert 'tok-123456' not in ke.config_reason(OSError('bad token tok-123456'), ['tok-123456'])
