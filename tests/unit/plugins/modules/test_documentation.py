"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, and the docs match the argument spec."""
from __future__ import annotations

import importlib
import pkgutil

import pytest
import yaml
from ansible_collections.trdrhub.incident.plugins import modules as modules_pkg

MODULES = sorted(m.name for m in pkgutil.iter_modules(modules_pkg.__path__))


@pytest.mark.parametrize('name', MODULES)
def test_documentation_parses(name):
    module = importlib.import_module(f'{modules_pkg.__name__}.{name}')
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc['module'] == name
    assert isinstance(yaml.safe_load(module.EXAMPLES), list)
    assert isinstance(yaml.safe_load(module.RETURN), dict)
    documented = set(doc.get('options', {}))
    for fragment in doc.get('extends_documentation_fragment', []):
        if not fragment.startswith('trdrhub.incident.'):
            continue
        frag_mod, _sep, variant = fragment[len('trdrhub.incident.'):].partition('.')
        frag = importlib.import_module(f'ansible_collections.trdrhub.incident.plugins.doc_fragments.{frag_mod}')
        text = getattr(frag.ModuleDocFragment, variant.upper() or 'DOCUMENTATION')
        documented |= set((yaml.safe_load(text) or {}).get('options', {}))
    assert documented == set(module.argument_spec())
