# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Kubeconfig files merged the way kubectl merges them, and malformed entries named in words."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.errors import K8sConfigError
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.kubeconfig import kubeconfig_contexts, kubeconfig_shape


def write(path, data):
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding='utf-8')
    return str(path)


def config(current, *contexts):
    return {'apiVersion': 'v1', 'kind': 'Config', 'current-context': current,
            'contexts': [{'name': name, 'context': {'cluster': name, 'user': name}} for name in contexts]}


def test_files_merge_like_kubectl_first_file_wins_and_missing_files_are_skipped(tmp_path):
    first = write(tmp_path / 'a', config('prod', 'prod', 'staging'))
    second = write(tmp_path / 'b', config('sandbox', 'staging', 'sandbox'))
    names, current = kubeconfig_contexts([str(tmp_path / 'absent'), first, second], 'KUBECONFIG')
    assert names == ['prod', 'staging', 'sandbox'] and current == 'prod'


def test_an_empty_file_counts_as_no_contexts(tmp_path):
    assert kubeconfig_contexts([write(tmp_path / 'empty', '')], 'kubeconfig') == ([], None)


@pytest.mark.parametrize('content, words', [
    ('- just\n- a list\n', 'is not a kubeconfig (a YAML mapping)'),
    ('contexts: {prod: {}}\n', 'contexts must be a list of entries'),
    ('clusters: [prod]\n', 'clusters[0] must be a mapping with name and cluster'),
    ('users: [{name: u, user: token}]\n', 'users[0].user must be a mapping'),
    ('contexts: [\n', 'Cannot read kubeconfig /x'),
])
def test_a_malformed_file_is_one_sentence_naming_where(tmp_path, content, words):
    path = write(tmp_path / 'config', content)
    with pytest.raises(K8sConfigError) as caught:
        kubeconfig_contexts([path], 'kubeconfig /x')
    message = str(caught.value)
    assert words in message and message.startswith(('Cannot use kubeconfig /x', 'Cannot read kubeconfig /x'))
    assert 'Traceback' not in message


def test_shape_of_a_good_config_is_none():
    assert kubeconfig_shape(config('prod', 'prod')) is None
    assert kubeconfig_shape({}) is None
