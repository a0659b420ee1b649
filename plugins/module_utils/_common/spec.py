# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Option ranges declared next to the option, and bad input answered in plain words.

An argument spec cannot say "a port is 1-65535" or "a timeout is more than 0", so each
bounded number carries its range in the spec itself (``bounded(...)``) and one function
checks every range after Ansible's own validation. ``IncidentModule`` is the
``AnsibleModule`` every module of the collection builds: it strips the annotations from
the spec Ansible sees, masks the secrets of dict options (a password in ``connect_params``), refuses a mapping or a list given to a string option (Ansible
would quietly turn it into its Python representation), checks the ranges, and rewrites
Ansible's type errors ("is of type str and we were unable to convert to int: <class
'str'> ...") into one sentence that names the option and says what it must be.
"""

from __future__ import annotations

import os
import re
import typing as t
from collections.abc import Mapping

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

BOUNDS = 'bounds'
# A network timeout longer than a day is a mistake, and far larger ones overflow the socket layer.
MAX_SOCKET_TIMEOUT = 86400
SECRET_KEYS = 'secret_keys'
_ANNOTATIONS = (BOUNDS, SECRET_KEYS)

# What an option of each Ansible type must be, and what a value of each Python type is, in words.
_WANT = {'int': 'an integer', 'float': 'a number', 'bool': 'a boolean (true or false)', 'str': 'a string',
         'path': 'a path (a string)', 'list': 'a list', 'dict': 'a mapping', 'raw': 'a value',
         'jsonarg': 'JSON text or a mapping', 'json': 'JSON text or a mapping', 'bytes': 'a size such as 10M',
         'bits': 'a size such as 10Mb'}
_GOT = {'str': 'a string', 'int': 'an integer', 'float': 'a number', 'bool': 'a boolean', 'dict': 'a mapping',
        'list': 'a list', 'tuple': 'a list', 'nonetype': 'null', 'bytes': 'a string'}


def bounded(option: dict[str, t.Any], minimum: float | None = None, maximum: float | None = None, *,
            above: float | None = None) -> dict[str, t.Any]:
    """``option`` with its inclusive range (``minimum``/``maximum``) or exclusive lower bound ``above``."""
    return dict(option, **{BOUNDS: {'minimum': minimum, 'maximum': maximum, 'above': above}})


def with_secret_keys(option: dict[str, t.Any], *keys: str) -> dict[str, t.Any]:
    """A dict ``option`` whose values under ``keys`` are secrets, masked wherever the module's output shows them."""
    return dict(option, **{SECRET_KEYS: keys})


def secret_values(spec: Mapping[str, t.Any], params: Mapping[str, t.Any]) -> list[str]:
    """The values of every annotated secret key given in a dict option."""
    found = []
    for _where, option, value in _items(spec, params, ''):
        if option.get(SECRET_KEYS) and isinstance(value, Mapping):
            found.extend(str(value[key]) for key in option[SECRET_KEYS] if value.get(key) not in (None, ''))
    return found


def ansible_spec(spec: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The spec as Ansible wants it: the range annotations removed, at every level."""
    out = {}
    for name, option in spec.items():
        option = {k: v for k, v in option.items() if k not in _ANNOTATIONS}
        if isinstance(option.get('options'), Mapping):
            option['options'] = ansible_spec(option['options'])
        out[name] = option
    return out


def _number(value: float) -> str:
    return f'{value:g}' if isinstance(value, float) else str(value)


def range_text(bounds: Mapping[str, t.Any]) -> str:
    """``between 1 and 65535``, ``at least 0``, ``greater than 0``, ``at most 255``."""
    low, high, above = bounds.get('minimum'), bounds.get('maximum'), bounds.get('above')
    if low is not None and high is not None:
        return f'between {_number(low)} and {_number(high)}'
    parts = []
    if above is not None:
        parts.append(f'greater than {_number(above)}')
    if low is not None:
        parts.append(f'at least {_number(low)}')
    if high is not None:
        parts.append(f'at most {_number(high)}')
    return ' and '.join(parts)


def _in_range(value: float, bounds: Mapping[str, t.Any]) -> bool:
    low, high, above = bounds.get('minimum'), bounds.get('maximum'), bounds.get('above')
    return not ((low is not None and value < low) or (high is not None and value > high)
                or (above is not None and value <= above))


def _items(spec: Mapping[str, t.Any], params: Mapping[str, t.Any] | None, prefix: str
           ) -> t.Iterator[tuple[str, dict[str, t.Any], t.Any]]:
    """(dotted name, option, value) of every given option, suboptions included."""
    for name, option in spec.items():
        value = None
        for key in (name, *(option.get('aliases') or ())):
            if params is not None and params.get(key) is not None:
                value = params[key]
                break
        if value is None:
            continue
        where = f'{prefix}{name}'
        yield where, option, value
        sub = option.get('options')
        if isinstance(sub, Mapping):
            if option.get('type') == 'list':
                for index, item in enumerate(value if isinstance(value, list) else []):
                    if isinstance(item, Mapping):
                        yield from _items(sub, item, f'{where}[{index}].')
            elif isinstance(value, Mapping):
                yield from _items(sub, value, f'{where}.')


def out_of_range(spec: Mapping[str, t.Any], params: Mapping[str, t.Any]) -> str | None:
    """The message for the first option whose value is outside its declared range, else None."""
    for where, option, value in _items(spec, params, ''):
        bounds = option.get(BOUNDS)
        if not bounds or isinstance(value, bool):
            continue
        values = value if isinstance(value, list) else [value]
        for number in values:
            if isinstance(number, (int, float)) and not _in_range(number, bounds):
                shown = '' if option.get('no_log') else f', got {_number(number)}'
                return f'{where} must be {range_text(bounds)}{shown}'
    return None


def not_a_string(spec: Mapping[str, t.Any], raw: Mapping[str, t.Any]) -> str | None:
    """A mapping or list given to a string option, which Ansible would turn into its Python text."""
    for where, option, value in _items(spec, raw, ''):
        if option.get('type', 'str') in ('str', 'path') and isinstance(value, (Mapping, list)):
            return f'{where} must be {_WANT[option.get("type", "str")]}, got {_words(type(value).__name__)}'
        if option.get('type') == 'list' and option.get('elements') in ('str', 'path') and isinstance(value, list):
            for item in value:
                if isinstance(item, (Mapping, list)):
                    return f'each item of {where} must be a string, got {_words(type(item).__name__)}'
    return None


def not_a_mapping(spec: Mapping[str, t.Any], raw: Mapping[str, t.Any]) -> tuple[str, str] | None:
    """(message, top-level option) for a dict option with suboptions given something else than a mapping.

    Ansible's own validation raises a Python error on such a value, so it is found before.
    """
    for where, option, value in _items(spec, raw, ''):
        if option.get('type') == 'dict' and option.get('options') and not isinstance(value, Mapping):
            return f'{where} must be a mapping, got {_words(type(value).__name__)}', where.split('.')[0].split('[')[0]
    return None


def checked_overrides(rules: t.Any, option: str, what: str, fields: t.Sequence[str], shape: str,
                      error: type[Exception], *, null_ok: bool = False) -> t.Iterator[tuple[t.Any, t.Any]]:
    """Each (key, rule) of ``option``, a mapping of ``what`` giving a rule per key to merge into defaults.

    The mapping and each rule are checked, raising ``error`` with one sentence: a rule must be
    ``shape`` (a dict, unless it is None and ``null_ok``) and has no key outside ``fields``.
    """
    if not isinstance(rules, dict):
        raise error(f'{option} must be a mapping of {what}, got {kind_of(rules)}')
    for key, rule in rules.items():
        if rule is None and null_ok:
            yield key, rule
            continue
        yield key, checked_dict(rule, f'{option}.{key}', shape, fields, error)


def checked_dict(value: t.Any, where: str, shape: str, fields: t.Sequence[str], error: type[Exception],
                 noun: str = 'key(s)') -> dict[str, t.Any]:
    """``value`` if it is a dict without keys outside ``fields``; else ``error`` naming ``where``: must be ``shape``."""
    if not isinstance(value, dict):
        raise error(f'{where} must be {shape}')
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise error(f'{where} has unknown {noun} {", ".join(unknown)}; allowed: {", ".join(fields)}')
    return value


def require_readable_file(path: str, error: type[Exception], what: str, what_else: str | None = None) -> None:
    """Raise ``error`` with one sentence unless ``path`` is an existing, regular, readable file.

    ``what`` names it in the sentences (``ledger file``); ``what_else``, when given, in the "not a
    regular file" one (``backup`` rather than ``backup file``).
    """
    if not os.path.exists(path):
        raise error(f'{what} {path} does not exist')
    if not os.path.isfile(path):
        raise error(f'{what_else or what} {path} is not a regular file')
    if not os.access(path, os.R_OK):
        raise error(f'{what} {path} is not readable by this user')


def kind_of(value: t.Any) -> str:
    """What a value is, in plain words: ``a string``, ``a mapping``, ``null``."""
    return _words(type(value).__name__)


def _words(type_name: str) -> str:
    """A Python type name (possibly Ansible's tagged variant) in plain words."""
    base = re.sub(r'^_?Ansible(Tagged|Lazy\w*)?', '', type_name.strip("'\"")).lower()
    for key, words in _GOT.items():
        if base == key or base.endswith(key):
            return words
    return 'a value of another kind'


_CONVERT = re.compile(r"^(?P<elements>Elements value for option|argument) '(?P<name>[^']+)' is of type (?P<got>\S+?)"
                      r"(?: found in '(?P<parent>[^']+)'\.)? and we were unable to convert to (?P<want>\w+)")
_SUB_ELEMENT = re.compile(r"^Value '.*' in the sub parameter field '(?P<name>[^']+)' must be a list, not '(?P<got>[^']+)'")
_CHOICES = re.compile(r"^value of (?P<name>\S+) must be (?P<how>one of|one or more of): (?P<choices>.*?)(?:, got: |\. Got no match for: )"
                      r"(?P<got>.*?)(?: found in (?P<parent>.+))?$", re.S)
_DICT_OR_LIST = re.compile(r"^value of '(?P<name>[^']+)' must be of type dict or list of dicts")


def plain_message(message: str) -> str | None:
    """Ansible's validation error in plain words, or None when it needs no rewriting (or names no option)."""
    match = _CONVERT.match(message)
    if match:
        parent = match['parent']
        name = match['name'] if not parent else '.'.join(p.strip() for p in parent.split('->')) + '.' + match['name']
        want = _WANT.get(match['want'], f"a value of type {match['want']}")
        if match['elements'].startswith('Elements'):
            return f"each item of {name} must be {want}, got {_words(match['got'])}"
        return f"{name} must be {want}, got {_words(match['got'])}"
    match = _CHOICES.match(message)
    if match and (match['got'][:1] in '{[' or match['how'] != 'one of'):
        parent = f"{match['parent'].strip(chr(39)).replace(' -> ', '.')}." if match['parent'] else ''
        got = match['got']
        got = f'a {"mapping" if got.startswith("{") else "list"}' if got[:1] in '{[' else got
        return f"value of {parent}{match['name']} must be {match['how']}: {match['choices']}, got {got}"
    match = _SUB_ELEMENT.match(message)
    if match:
        return f"each item of {match['name']} must be a mapping, got {_words(match['got'])}"
    match = _DICT_OR_LIST.match(message)
    if match:
        return f"{match['name']} must be a mapping"
    if message.startswith('dictionary requested'):
        return None
    return message


def validation_message(messages: t.Iterable[str], fallback: str) -> str:
    """The first of Ansible's validation errors that names an option, in plain words."""
    for message in messages:
        plain = plain_message(message)
        if plain:
            return plain
    return fallback


def validate_task_args(spec: dict[str, t.Any], args: Mapping[str, t.Any], **constraints: t.Any
                       ) -> tuple[dict[str, t.Any], str | None]:
    """For an action plugin, what ``IncidentModule`` does for a module: (validated options, message or None).

    ``constraints`` are ``mutually_exclusive``, ``required_if`` and the like, as for ``AnsibleModule``.
    """
    raw = dict(args)
    shape = not_a_mapping(spec, raw)
    if shape:
        return {}, shape[0]
    result = ArgumentSpecValidator(ansible_spec(spec), **constraints).validate(raw)
    if result.error_messages:
        return {}, validation_message(result.error_messages, result.error_messages[0])
    params = dict(raw)
    params.update(result.validated_parameters)
    return params, not_a_string(spec, raw) or out_of_range(spec, params)


class IncidentModule(AnsibleModule):
    """``AnsibleModule`` for an annotated spec: plain validation messages, string options and ranges checked."""

    def __init__(self, argument_spec: dict[str, t.Any], **kwargs: t.Any) -> None:
        self._annotated_spec = argument_spec
        self._raw_params: dict[str, t.Any] = {}
        self._shape_error: str | None = None
        self._validating = True
        super().__init__(argument_spec=ansible_spec(argument_spec), **kwargs)
        self._validating = False
        message = self._shape_error or not_a_string(argument_spec, self._raw_params) or out_of_range(argument_spec, self.params)
        if message:
            self.fail_json(msg=message)

    def _load_params(self) -> None:
        super()._load_params()
        self._raw_params = dict(self.params)
        # Masked from the start, so that even a failed validation does not show them.
        self.no_log_values.update(secret_values(self._annotated_spec, self._raw_params))
        shape = not_a_mapping(self._annotated_spec, self._raw_params)
        if shape:
            # Left out of Ansible's validation, which would fail on it with a Python error.
            self._shape_error, top = shape
            option = self._annotated_spec[top]
            for key in (top, *(option.get('aliases') or ())):
                self.params.pop(key, None)

    def fail_json(self, msg: str, **kwargs: t.Any) -> t.NoReturn:  # type: ignore[override]
        if getattr(self, '_validating', False):
            result = getattr(self, 'validation_result', None)
            messages = result.error_messages if result is not None else []
            msg = validation_message(messages, msg) if msg in messages or not messages else msg
            msg = self._shape_error or msg
        super().fail_json(msg=msg, **kwargs)
