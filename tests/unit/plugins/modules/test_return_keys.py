"""No module returns a key Ansible gives a meaning of its own, unless it is used with that meaning.

With a result key ``skipped`` the task reads as skipped; ``failed`` marks it failed; ``path`` makes
Ansible add the attributes of that file; ``invocation``, ``warnings``, ``exception`` and the loop keys
are filled in by Ansible itself.
"""
from __future__ import annotations

import importlib
import pkgutil

import pytest
import yaml
from ansible_collections.trdrhub.incident.plugins import modules as modules_pkg

MODULES = sorted(m.name for m in pkgutil.iter_modules(modules_pkg.__path__))

# Never a module's own result key.
RESERVED = {'skipped', 'failed', 'invocation', 'warnings', 'deprecations', 'exception', 'results', 'rc',
            'unreachable', 'skip_reason', 'item', 'ansible_loop_var', 'ansible_index_var', 'ansible_job_id',
            'failed_when_result', 'changed_when_result', 'module_stdout', 'module_stderr', '_ansible_no_log'}
# Modules whose result ``path`` is a file they write (Ansible adds its attributes).
MANAGES_FILE: set[str] = set()


def returns(name):
    module = importlib.import_module(f'{modules_pkg.__name__}.{name}')
    return yaml.safe_load(module.RETURN) or {}


def misused(key, doc, name):
    """Why ``key`` may not be returned as documented, or None."""
    doc = doc or {}
    if key in RESERVED or key.startswith('ansible_') and key != 'ansible_facts':
        return 'reserved by Ansible'
    if key == 'changed' and doc.get('type') != 'bool':
        return 'changed must be the bool Ansible reads'
    if key == 'msg' and doc.get('type') != 'str':
        return 'msg must be the one-line message'
    if key == 'ansible_facts' and doc.get('type') != 'dict':
        return 'ansible_facts must be a dict of facts'
    if key == 'diff':
        text = ' '.join(doc.get('description') if isinstance(doc.get('description'), list) else [str(doc.get('description'))])
        if doc.get('type') != 'dict' or 'before' not in text.lower():
            return 'diff must be the before/after Ansible shows with --diff'
    if key == 'path' and name not in MANAGES_FILE:
        return 'path is for a file the module manages: Ansible adds its attributes'
    return None


@pytest.mark.parametrize('name', MODULES)
def test_no_reserved_result_keys(name):
    problems = {key: why for key, doc in returns(name).items() if (why := misused(key, doc, name))}
    assert problems == {}


@pytest.mark.parametrize('key, doc, expected', [
    ('skipped', {'type': 'int'}, 'reserved by Ansible'),
    ('failed', {'type': 'list'}, 'reserved by Ansible'),
    ('invocation', {'type': 'dict'}, 'reserved by Ansible'),
    ('changed', {'type': 'int'}, 'changed must be the bool Ansible reads'),
    ('changed', {'type': 'bool'}, None),
    ('msg', {'type': 'dict'}, 'msg must be the one-line message'),
    ('path', {'type': 'str'}, 'path is for a file the module manages: Ansible adds its attributes'),
    ('diff', {'type': 'list', 'description': 'changes'}, 'diff must be the before/after Ansible shows with --diff'),
    ('diff', {'type': 'dict', 'description': 'Before and after of the object.'}, None),
    ('ansible_facts', {'type': 'str'}, 'ansible_facts must be a dict of facts'),
    ('skipped_tables', {'type': 'int'}, None),
])
def test_the_check_itself(key, doc, expected):
    assert misused(key, doc, 'some_module') == expected
