# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTTP API errors: one class per failure kind, grouped so a caller catches the kind it can act on."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_errors as he
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError

KINDS = [he.HttpInputError, he.HttpUnreachableError, he.HttpTlsError, he.HttpAuthError, he.HttpNotFoundError,
         he.HttpApiMismatchError, he.HttpMalformedJsonError, he.HttpStatusError, he.HttpTooLargeError]


@pytest.mark.parametrize('kind', KINDS, ids=lambda cls: cls.__name__)
def test_every_kind_is_an_http_api_error_under_the_one_root_with_message_and_details(kind):
    exc = kind('GET https://alerts.example/api/v2/alerts answered 503 Service Unavailable', requests=[{'status': 503}])
    assert isinstance(exc, he.HttpApiError) and isinstance(exc, TrdrhubError)
    assert str(exc) == 'GET https://alerts.example/api/v2/alerts answered 503 Service Unavailable'
    assert exc.details == {'requests': [{'status': 503}]}


def test_a_tls_failure_is_caught_as_unreachable():
    with pytest.raises(he.HttpUnreachableError):
        raise he.HttpTlsError('certificate verify failed')


def test_a_body_too_large_is_caught_as_not_the_expected_api():
    with pytest.raises(he.HttpApiMismatchError):
        raise he.HttpTooLargeError('answered with a body over 8 MiB')


@pytest.mark.parametrize('kind', [he.HttpAuthError, he.HttpNotFoundError, he.HttpStatusError, he.HttpMalformedJsonError,
                                  he.HttpInputError])
def test_the_other_kinds_are_not_mistaken_for_unreachable_or_mismatch(kind):
    assert not issubclass(kind, (he.HttpUnreachableError, he.HttpApiMismatchError))
