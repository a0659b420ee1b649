# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Alertmanager API v2: label matchers, silence time windows and the API calls.

Matchers are validated here, before anything is sent, because Alertmanager's own
answer to a bad matcher ("matcher value contains unescaped double quote") does not
say which of several filters was wrong. Only API v2 is spoken: v1 answers 410 since
Alertmanager 0.27.0.
"""

from __future__ import annotations

import datetime
import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HttpApiMismatchError,
    HttpClient,
    HttpInputError,
    HttpNotFoundError,
    describe_json,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import (  # noqa: F401  # pylint: disable=unused-import
    iso_millis_z as format_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import (
    parse_time as common_parse_time,
)

SERVICE = 'Alertmanager API v2'
ALERTS = '/api/v2/alerts'
SILENCES = '/api/v2/silences'
SILENCE = '/api/v2/silence/{id}'
UTC = datetime.timezone.utc

# Alertmanager's own grammar (pkg/labels/parse.go): name, operator, optionally quoted value.
_MATCHER = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.DOTALL)
_LABEL_NAME = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
_RE2_UNSUPPORTED = re.compile(r'\(\?(=|!|<=|<!)|\\[1-9]')
_DURATION = re.compile(r'(\d+(?:\.\d+)?)(ms|s|m|h|d|w)')
_DURATION_UNITS = {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}
_OPERATORS = {('=', False, True), ('!=', False, False), ('=~', True, True), ('!~', True, False)}


def _unquote(value: str, text: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner, out, escaped = value[1:-1], [], False
        for char in inner:
            if escaped:
                out.append({'n': '\n', '"': '"', '\\': '\\'}.get(char, '\\' + char))
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                raise HttpInputError(f'invalid matcher {text!r}: the value has an unescaped double quote')
            else:
                out.append(char)
        if escaped:
            raise HttpInputError(f'invalid matcher {text!r}: the value ends with a lone backslash')
        return ''.join(out)
    if '"' in value:
        raise HttpInputError(f'invalid matcher {text!r}: quote the value on both sides, like name="value"')
    return value


def check_regex(pattern: str, what: str) -> None:
    """Reject regular expressions Alertmanager (Go RE2) would refuse; Python's re is close enough for the rest."""
    if _RE2_UNSUPPORTED.search(pattern):
        raise HttpInputError(f'invalid {what}: {pattern!r} uses lookaround or a backreference, '
                             'which Alertmanager (Go RE2) does not support')
    try:
        re.compile(pattern)
    except re.error as exc:
        raise HttpInputError(f'invalid {what}: {pattern!r} is not a valid regular expression ({exc})') from None


def parse_matcher(text: str) -> dict[str, t.Any]:
    """``severity="P1"`` / ``alertname=~"Queue.*"`` -> {name, value, isRegex, isEqual}."""
    if not isinstance(text, str):
        raise HttpInputError(f'invalid matcher {text!r}: expected a string like alertname="QueueLagCritical"')
    found = _MATCHER.match(text)
    if not found:
        raise HttpInputError(f'invalid matcher {text!r}: expected <label><op>"<value>" with op one of =, !=, =~, !~, '
                             'for example severity="P1" or alertname=~"Queue.*"')
    name, op, raw = found.groups()
    matcher = {'name': name, 'value': _unquote(raw, text), 'isRegex': op in ('=~', '!~'), 'isEqual': op in ('=', '=~')}
    if matcher['isRegex']:
        check_regex(matcher['value'], f'matcher {text!r}')
    return matcher


def normalize_matcher(item: t.Any) -> dict[str, t.Any]:
    """A matcher from a string or a dict ({name, value, isRegex, isEqual}, snake_case accepted)."""
    if isinstance(item, str):
        return parse_matcher(item)
    if not isinstance(item, dict):
        raise HttpInputError(f'invalid matcher {item!r}: expected a string like alertname="X" or a dict with name and value')
    known = {'name', 'value', 'isRegex', 'isEqual', 'is_regex', 'is_equal'}
    unknown = sorted(set(item) - known)
    if unknown:
        raise HttpInputError(f'invalid matcher {item!r}: unknown key(s) {", ".join(unknown)}; use name, value, isRegex, isEqual')
    name, value = item.get('name'), item.get('value')
    if not isinstance(name, str) or not _LABEL_NAME.match(name):
        raise HttpInputError(f'invalid matcher {item!r}: name must be a label name like alertname')
    if value is None or isinstance(value, (dict, list)):
        raise HttpInputError(f'invalid matcher {item!r}: value must be a string')
    flags = {}
    for camel, snake, default in (('isRegex', 'is_regex', False), ('isEqual', 'is_equal', True)):
        flag = item.get(camel, item.get(snake, default))
        if flag is None:
            flag = default
        if not isinstance(flag, bool):
            raise HttpInputError(f'invalid matcher {item!r}: {camel} must be true or false')
        flags[camel] = flag
    matcher = {'name': name, 'value': str(value), **flags}
    if matcher['isRegex']:
        check_regex(matcher['value'], f'matcher {matcher_text(matcher)!r}')
    return matcher


def matcher_text(matcher: dict[str, t.Any]) -> str:
    """The matcher in Alertmanager's filter syntax, quoted and escaped."""
    op = {(False, True): '=', (False, False): '!=', (True, True): '=~', (True, False): '!~'}[
        (bool(matcher.get('isRegex')), matcher.get('isEqual', True) is not False)]
    value = str(matcher['value']).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    return f'{matcher["name"]}{op}"{value}"'


def matcher_key(matcher: dict[str, t.Any]) -> tuple[str, str, bool, bool]:
    return (matcher['name'], str(matcher['value']), bool(matcher.get('isRegex')), matcher.get('isEqual', True) is not False)


def same_matchers(left: t.Iterable[dict[str, t.Any]], right: t.Iterable[dict[str, t.Any]]) -> bool:
    """Equal as sets: Alertmanager stores matchers in the order given, the order means nothing."""
    return sorted(matcher_key(m) for m in left) == sorted(matcher_key(m) for m in right)


def parse_duration(text: t.Any) -> float:
    """Go/Alertmanager style durations (``90m``, ``1h30m``, ``2d``) in seconds; bare numbers are seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text or '').strip().replace(' ', '')
        if re.fullmatch(r'\d+(\.\d+)?', value):
            seconds = float(value)
        elif value and re.fullmatch(f'(?:{_DURATION.pattern})+', value):
            seconds = sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION.findall(value))
        else:
            raise HttpInputError(f'invalid duration {text!r}: use a number with units like 30m, 2h, 1h30m or 1d')
    if seconds <= 0:
        raise HttpInputError(f'invalid duration {text!r}: it must be longer than zero')
    return seconds


def parse_time(text: t.Any, option: str) -> datetime.datetime:
    """``_common/time.parse_time`` for an Alertmanager time: text or a datetime only, required, the error names ``option``."""
    try:
        return common_parse_time(text if isinstance(text, datetime.datetime) else str(text or ''), required=True)
    except ValueError:
        raise HttpInputError(f'invalid {option} {text!r}: use ISO 8601, for example 2025-01-15T14:30:00Z') from None


def silence_state(silence: dict[str, t.Any]) -> str:
    return str((silence.get('status') or {}).get('state') or 'unknown')


def silence_view(silence: dict[str, t.Any]) -> dict[str, t.Any]:
    """The keys a playbook needs, matchers sorted so that results compare stably."""
    return {
        'id': silence.get('id'),
        'matchers': sorted(({'name': m['name'], 'value': m['value'], 'isRegex': bool(m.get('isRegex')),
                             'isEqual': m.get('isEqual', True) is not False} for m in silence.get('matchers') or []),
                           key=matcher_key),
        'startsAt': silence.get('startsAt'),
        'endsAt': silence.get('endsAt'),
        'createdBy': silence.get('createdBy'),
        'comment': silence.get('comment'),
        'updatedAt': silence.get('updatedAt'),
        'status': {'state': silence_state(silence)},
    }


class AlertmanagerClient(HttpClient):
    """HttpClient that knows Alertmanager API v2's paths and checks the shape of its answers."""

    def __init__(self, params: dict[str, t.Any], **kwargs: t.Any) -> None:
        super().__init__(params, params['url'], service=SERVICE, **kwargs)

    def _list(self, path: str, **kwargs: t.Any) -> list[dict[str, t.Any]]:
        body = self.request_json('GET', path, **kwargs)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise HttpApiMismatchError(f'{self.display} is not an {SERVICE}: GET {self.prefix}{path} answered '
                                       f'{describe_json(body)}, not a list of objects')
        return body

    def alerts(self, query: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        return self._list(ALERTS, params=query)

    def silences(self) -> list[dict[str, t.Any]]:
        return self._list(SILENCES)

    def silence(self, silence_id: str) -> dict[str, t.Any] | None:
        """One silence, or None when Alertmanager does not know the id."""
        try:
            body = self.request_json('GET', SILENCE.format(id=silence_id), missing='object')
        except HttpNotFoundError:
            return None
        if not isinstance(body, dict) or 'id' not in body:
            raise HttpApiMismatchError(f'{self.display} is not an {SERVICE}: GET {self.prefix}'
                                       f'{SILENCE.format(id=silence_id)} answered {describe_json(body)}, not a silence')
        return body

    def create(self, body: dict[str, t.Any]) -> str:
        answer = self.request_json('POST', SILENCES, json_body=body)
        if not isinstance(answer, dict) or not answer.get('silenceID'):
            raise HttpApiMismatchError(f'{self.display} is not an {SERVICE}: POST {self.prefix}{SILENCES} '
                                       f'answered {describe_json(answer)}, not {{"silenceID": ...}}, so the silence was '
                                       'not confirmed')
        return str(answer['silenceID'])

    def expire(self, silence_id: str) -> None:
        self.request_json('DELETE', SILENCE.format(id=silence_id), missing='object')
