# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The errors of the HTTP API modules: each names the request and quotes the server, never a credential."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError


class HttpApiError(TrdrhubError):
    """Base class: ``str(exc)`` is the final ``msg``; ``details`` are extra result keys."""


class HttpInputError(HttpApiError):
    """An option value is invalid in a way argument_spec cannot express."""


class HttpUnreachableError(HttpApiError):
    """No HTTP answer at all: refused, DNS, timeout, reset."""


class HttpTlsError(HttpUnreachableError):
    """The TLS handshake failed, usually certificate verification."""


class HttpAuthError(HttpApiError):
    """401 or 403: wrong or missing credentials."""


class HttpNotFoundError(HttpApiError):
    """404 for an object (a silence id, say) on an API that otherwise answers."""


class HttpApiMismatchError(HttpApiError):
    """The server answers, but not as the expected API (404/410 on the API path, HTML, wrong shape)."""


class HttpMalformedJsonError(HttpApiError):
    """The server declared JSON but sent something that does not parse."""


class HttpStatusError(HttpApiError):
    """Any other unexpected status; the message quotes the server's reason."""


class HttpTooLargeError(HttpApiMismatchError):
    """The answer is larger than MAX_BODY_BYTES; reading stopped there."""
