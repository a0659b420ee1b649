"""Bad input, generated from every module's own argument spec, is one plain sentence naming the option.

For each module: every required option left out, a value of the wrong type for every
typed option (suboptions included) and a value just outside the range of every bounded
number. The module must fail before doing anything, with one sentence that names the
option - no traceback, no "Module failed:", no Python type name, no secret.
"""
from __future__ import annotations

import collections
import importlib
import pkgutil
import re
import typing as t

import pytest
from ansible_collections.trdrhub.incident.plugins import modules as modules_pkg
from ansible_collections.trdrhub.incident.plugins.module_utils._common import spec as _spec
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import BOUNDS

MODULES = sorted(m.name for m in pkgutil.iter_modules(modules_pkg.__path__))
SECRET = 'S3cr3t-sentinel-value'

# Options some modules need beyond their required ones (required_one_of, required_together).
EXTRA: dict[str, dict[str, t.Any]] = {
    'email_notify': {'to': ['ops@customer.example']},
    'slack_message': {'text': 'hello'},
    'ip_block_plan': {'addresses': ['203.0.113.7'], 'override_reason': 'INC-2025-0042 needs more'},
    'alertmanager_silence': {'matchers': ['alertname=QueueLagCritical'], 'duration': '1h'},
    'pagerduty_event': {'dedup_key': 'INC-2025-0042', 'summary': 'Queue lag', 'source': 'trdrhub', 'severity': 'critical'},
    'pg_restore_db': {'backup': '/backups/trdrhub_backup_20250115_143000.sql.gz'},
    'incident_ticket': {'username': 'sre-bot@trdrhub.example', 'api_token': 'S3cr3t-sentinel-value'},
    'database_url': {'path': '/srv/trdrhub/.env'},
}

EXPECTED = {'missing': r'^missing required arguments: ', 'wrong type': r' must be ',
            'out of range': r' must be (between|at least|at most|greater than) '}
PYTHON_NAMES = re.compile(r"<class|\b(?:str|int|float|dict|NoneType|bool|tuple|bytes)\b|_Ansible\w+|object at 0x")


def _load(name: str) -> t.Any:
    return importlib.import_module(f'{modules_pkg.__name__}.{name}')


def _valid(option: dict[str, t.Any]) -> t.Any:
    """A value the spec accepts for the option (the default, a choice, or a number in range)."""
    if option.get('default') is not None:
        return option['default']
    if option.get('choices'):
        return list(option['choices'])[:1] if option.get('type') == 'list' else list(option['choices'])[0]
    kind = option.get('type', 'str')
    if kind in ('int', 'float'):
        bounds = option.get(BOUNDS) or {}
        low = bounds.get('minimum')
        low = low if low is not None else (bounds['above'] + 1 if bounds.get('above') is not None else 1)
        return int(low) if kind == 'int' else float(low)
    if kind == 'dict':
        return _required_only(option.get('options') or {})
    if kind == 'list':
        return [_required_only(option['options'])] if option.get('options') else ['x']
    return {'bool': True, 'raw': 'x', 'jsonarg': '{}', 'json': '{}'}.get(kind, 'trdrhub-api')


def _required_only(spec: dict[str, t.Any]) -> dict[str, t.Any]:
    return {name: _valid(option) for name, option in spec.items() if option.get('required')}


_WRONG = {'int': 'not-a-number', 'float': 'not-a-number', 'bool': 'maybe', 'list': {'key': 1}, 'dict': 5,
          'str': {'nested': SECRET}, 'path': ['/tmp/a', '/tmp/b']}


def _wrong(option: dict[str, t.Any]) -> list[t.Any]:
    kind = option.get('type', 'str')
    values = [_WRONG[kind]] if kind in _WRONG else []
    if kind == 'list' and option.get('elements') in ('int', 'float'):
        values.append(['not-a-number'])
    if kind == 'list' and option.get('elements') in ('str', 'path'):
        values.append([{'nested': SECRET}])
    if kind == 'list' and option.get('elements') == 'dict':
        values.append([5])
    return values


def _outside(option: dict[str, t.Any]) -> list[t.Any]:
    bounds = option.get(BOUNDS) or {}
    step = 1 if option.get('type') == 'int' else 0.5
    values = []
    if bounds.get('minimum') is not None:
        values.append(bounds['minimum'] - step)
    if bounds.get('maximum') is not None:
        values.append(bounds['maximum'] + step)
    if bounds.get('above') is not None:
        values.append(bounds['above'])
        values.append(bounds['above'] - step)
    return values


def _cases(spec: dict[str, t.Any], base: dict[str, t.Any], path: tuple[str, ...] = ()
           ) -> t.Iterator[tuple[str, str, tuple[str, ...], t.Any]]:
    """(kind, option name, where in the args, value or None for "leave out")."""
    for name, option in spec.items():
        where = (*path, name)
        if option.get('required'):
            yield 'missing', name, where, None
        for value in _wrong(option):
            yield 'wrong type', name, where, value
        for value in _outside(option):
            yield 'out of range', name, where, value
        sub = option.get('options')
        if sub:
            inner = _required_only(sub)
            index: tuple[t.Any, ...] = (0,) if option.get('type') == 'list' else ()
            yield from _cases(sub, inner, (*where, *index))


def _with(base: dict[str, t.Any], spec: dict[str, t.Any], where: tuple[t.Any, ...], value: t.Any) -> dict[str, t.Any]:
    """``base`` with the option at ``where`` set to ``value`` (left out when value is None)."""
    args = dict(base)
    target: t.Any = args
    options = spec
    for step in where[:-1]:
        if isinstance(step, int):
            target[step] = dict(target[step])
            target = target[step]
            continue
        option = options[step]
        current = target.get(step)
        if option.get('type') == 'list':
            current = list(current) if current else [_required_only(option['options'])]
        else:
            current = dict(current) if current else _required_only(option['options'])
        target[step] = current
        target, options = current, option['options']
    if value is None:
        target.pop(where[-1], None)
    else:
        target[where[-1]] = value
    return args


class _Captured(Exception):
    pass


def _constraints(module: t.Any) -> dict[str, t.Any]:
    """The keyword arguments the module gives IncidentModule besides its spec (required_together...)."""
    def capture(self: t.Any, argument_spec: t.Any, **kwargs: t.Any) -> None:
        raise _Captured(kwargs)

    original = _spec.IncidentModule.__init__
    _spec.IncidentModule.__init__ = capture  # type: ignore[method-assign]
    try:
        module.main()
    except _Captured as caught:
        return caught.args[0]
    finally:
        _spec.IncidentModule.__init__ = original  # type: ignore[method-assign]
    raise AssertionError(f'{module.__name__} does not build an IncidentModule')


def _consistent(args: dict[str, t.Any], option: str, spec: dict[str, t.Any], rules: dict[str, t.Any]) -> dict[str, t.Any]:
    """``args`` completed so that only ``option`` is wrong: its partners given, its exclusions left out."""
    args = dict(args)
    for group in rules.get('required_together') or ():
        if option in group:
            args.update({other: _valid(spec[other]) for other in group if other != option and other not in args})
    needed = (rules.get('required_by') or {}).get(option) or ()
    for other in [needed] if isinstance(needed, str) else needed:
        args.setdefault(other, _valid(spec[other]))
    for group in rules.get('mutually_exclusive') or ():
        if option in group:
            for other in group:
                if other != option:
                    args.pop(other, None)
    return args


def _module_cases() -> list[t.Any]:
    params = []
    for name in MODULES:
        module = _load(name)
        spec = module.argument_spec()
        rules = _constraints(module)
        base = dict(_required_only(spec), **EXTRA.get(name, {}))
        for kind, option, where, value in _cases(spec, base):
            label = '.'.join(str(s) for s in where)
            args = _with(_consistent(base, where[0], spec, rules), spec, where, value)
            params.append(pytest.param(name, kind, option, args, id=f'{name}-{kind}-{label}-{value!r}'[:120]))
    return params


CASES = _module_cases()
COUNTS = collections.Counter(p.values[0] for p in CASES)


@pytest.mark.parametrize('name, kind, option, args', CASES)
def test_bad_input_is_one_plain_sentence(run_module, name, kind, option, args):
    result = run_module(_load(name), args)
    msg = result.get('msg', '')
    assert result.get('failed') is True, (kind, args, result)
    assert option in msg, msg
    assert re.search(EXPECTED[kind], msg), msg
    assert '\n' not in msg and not re.search(r'[.!?]\s+[A-Z]', msg), msg
    assert 'Traceback' not in msg and not msg.startswith('Module failed'), msg
    assert 'exception' not in result, result['exception']
    assert not PYTHON_NAMES.search(msg), msg
    assert SECRET not in str(result), msg


def test_every_module_has_generated_cases(capsys):
    assert set(COUNTS) == set(MODULES)
    with capsys.disabled():
        print('\nbad-input cases per module: ' + ', '.join(f'{name} {COUNTS[name]}' for name in MODULES)
              + f' (total {sum(COUNTS.values())})')
