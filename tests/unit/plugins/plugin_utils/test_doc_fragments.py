# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A composed doc fragment documents a module exactly as listing its pieces one by one does."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from ansible.utils.plugin_docs import add_fragments
from ansible_collections.trdrhub.incident.plugins.doc_fragments import (
    approval_store,
    attributes,
    http_api,
    k8s,
    ledger,
    notify_http,
    postgres,
    redis,
)
from ansible_collections.trdrhub.incident.plugins.plugin_utils._doc_fragments import compose

MODULE_DOC = {
    'module': 'example',
    'options': {'incident_id': {'description': ['Own option.'], 'type': 'str'},
                'timeout': {'description': ['The module says it differently.'], 'type': 'float', 'default': 30}},
    'attributes': {'check_mode': {'details': ['Writes nothing.']}, 'diff_mode': {'support': 'full'}},
    'notes': ['The module note comes first.'],
}


class Loader:
    """A fragment loader that knows the given texts by name (what ansible-core's fragment_loader returns)."""

    def __init__(self, texts):
        self.texts = texts

    def get(self, name):
        if name not in self.texts:
            return None
        return type('ModuleDocFragment', (), {'DOCUMENTATION': self.texts[name], 'ansible_name': f'trdrhub.incident.{name}'})


def documented(**texts):
    doc = dict(copy.deepcopy(MODULE_DOC), extends_documentation_fragment=list(texts))
    add_fragments(doc, '/collection/plugins/modules/example.py', fragment_loader=Loader(texts), is_module=True)
    return json.dumps(doc)   # key order included: ansible-doc shows options and attributes in this order


PIECES = {
    'postgres group member': (postgres.ModuleDocFragment.OPTIONS, postgres.ModuleDocFragment.SESSION_FILTERS,
                              attributes.action_group('postgresql', 'the connection options')),
    'ledger module': (ledger.ModuleDocFragment.OPTIONS, postgres.ModuleDocFragment.OPTIONS, attributes.ModuleDocFragment.DOCUMENTATION,
                      attributes.ModuleDocFragment.CONTROLLER),
    'notification module': (notify_http.ModuleDocFragment.OPTIONS, http_api.ModuleDocFragment.TRANSPORT, attributes.ModuleDocFragment.DOCUMENTATION),
}


@pytest.mark.parametrize('family', sorted(PIECES))
def test_a_composed_fragment_documents_a_module_as_its_pieces_do(family):
    pieces = PIECES[family]
    one_by_one = documented(**{f'piece{number}': text for number, text in enumerate(pieces)})
    assert documented(family=compose(*pieces)) == one_by_one


def test_compose_merges_like_ansible_core():
    first = 'options: {a: {type: str, description: [first]}}\nattributes: {check_mode: {support: full}}\nnotes: [one]\nrequirements: [zlib, b]\n'
    second = 'options: {a: {description: [second], default: x}, b: {type: int}}\nattributes: {check_mode: {details: [d]}}\nnotes: [two]\nrequirements: [b, a]\n'
    assert yaml.safe_load(compose(first, second)) == {
        'options': {'a': {'description': ['first'], 'default': 'x', 'type': 'str'}, 'b': {'type': 'int'}},
        'attributes': {'check_mode': {'details': ['d'], 'support': 'full'}},
        'notes': ['one', 'two'],
        'requirements': ['a', 'b', 'zlib'],
    }


FAMILIES = {
    'trdrhub.incident.postgres': (postgres.ModuleDocFragment.DOCUMENTATION, 'trdrhub.incident.postgresql', 'login_host'),
    'trdrhub.incident.postgres.connection': (postgres.ModuleDocFragment.CONNECTION, None, 'login_host'),
    'trdrhub.incident.k8s': (k8s.ModuleDocFragment.DOCUMENTATION, 'trdrhub.incident.kubernetes', 'kubeconfig'),
    'trdrhub.incident.k8s.connection': (k8s.ModuleDocFragment.CONNECTION, None, 'kubeconfig'),
    'trdrhub.incident.redis': (redis.ModuleDocFragment.DOCUMENTATION, 'trdrhub.incident.redis', 'host'),
    'trdrhub.incident.http_api': (http_api.ModuleDocFragment.DOCUMENTATION, None, 'retry_delay'),
    'trdrhub.incident.http_api.alertmanager': (http_api.ModuleDocFragment.ALERTMANAGER, 'trdrhub.incident.alertmanager', 'bearer_token'),
    'trdrhub.incident.notify_http': (notify_http.ModuleDocFragment.DOCUMENTATION, None, 'retry_delay'),
    'trdrhub.incident.ledger': (ledger.ModuleDocFragment.DOCUMENTATION, None, 'backend'),
    'trdrhub.incident.approval_store': (approval_store.ModuleDocFragment.DOCUMENTATION, None, 'store_backend'),
}


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_a_family_fragment_carries_the_shared_attributes_and_its_group(name):
    text, group, option = FAMILIES[name]
    doc = yaml.safe_load(text)
    assert option in doc['options']
    assert {'check_mode', 'diff_mode', 'platform'} <= set(doc['attributes'])
    if group:
        assert doc['attributes']['action_group']['membership'] == [group]
        assert f'C(group/{group})' in doc['attributes']['action_group']['description']
    else:
        assert 'action_group' not in doc['attributes']
    controller = {'action', 'async', 'bypass_host_loop'}
    assert (controller <= set(doc['attributes'])) == (name in ('trdrhub.incident.ledger', 'trdrhub.incident.approval_store'))
