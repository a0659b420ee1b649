# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The Kubernetes errors and the texts they carry: the API server, the request and the
server's own Status message, never a token."""

from __future__ import annotations

import json
import typing as t
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    answer_summary,
    condense,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import scrub_token as scrub


class K8sError(TrdrhubError):
    """Base class: ``str(exc)`` is the final ``msg``; ``details`` are extra result keys."""


class K8sConfigError(K8sError):
    """No usable connection settings: bad kubeconfig, unknown context, missing in-cluster files."""


class K8sUnreachableError(K8sError):
    """No HTTP answer from the API server: refused, DNS, timeout, TLS handshake."""


class K8sAuthError(K8sError):
    """401 (who are you?) or 403 (not allowed); ``status`` tells which."""


class K8sNotFoundError(K8sError):
    """404 for an object; the message quotes the server's Status message."""


class K8sApiError(K8sError):
    """Any other error answer, or an answer that is not Kubernetes JSON."""


class K8sTooLargeError(K8sApiError):
    """An answer larger than MAX_BODY_BYTES; reading stopped there."""


class K8sConflictError(K8sApiError):
    """409: the object changed since it was read (a stale resourceVersion precondition)."""


class K8sInputError(K8sError):
    """An option value is invalid in a way argument_spec cannot express."""


def display_url(url: str) -> str:
    """The URL without user:password@, for messages and results."""
    parts = urlsplit(url or '')
    if '@' not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, '***@' + parts.netloc.rpartition('@')[2], parts.path, parts.query, parts.fragment))


def config_reason(exc: BaseException, secrets: t.Iterable[str | None] = ()) -> str:
    """The reason of a kubeconfig failure, without the file content a YAML error quotes."""
    problem = getattr(exc, 'problem', None)
    mark = getattr(exc, 'problem_mark', None)
    if problem is not None:
        where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
        return f'not valid YAML: {problem}{where}'
    if isinstance(exc, (TypeError, AttributeError, KeyError, IndexError)):
        return 'it is not a valid kubeconfig (an entry has an unexpected structure)'
    return scrub(condense(str(exc) or type(exc).__name__), secrets)


def status_message(body: str | bytes | None) -> tuple[str, str]:
    """(message, reason) of a Kubernetes Status answer; an HTML page's title or the condensed text otherwise."""
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    text = body or ''
    if text.lstrip()[:1] == '<':
        return summary(text), ''
    try:
        data = json.loads(text)
    except ValueError:
        return condense(text)[:300], ''
    if isinstance(data, dict) and data.get('kind') == 'Status':
        return condense(str(data.get('message') or '')), str(data.get('reason') or '')
    return condense(text)[:300], ''


def summary(text: str) -> str:
    """An answer in a few words (an HTML page with its title, JSON, or the text cut short)."""
    answer = type('Answer', (), {'text': text, 'headers': {}})()
    return answer_summary(answer, limit=120)
