# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Certificate analysis on certificates made by the test: names, validity, expiry warnings."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common import tls as _tls
from trdrhub_harness.certs import TestCA

UTC = datetime.timezone.utc
NOW = datetime.datetime(2025, 1, 15, 14, 30, tzinfo=UTC)


@pytest.fixture(scope='module')
def ca():
    return TestCA(now=NOW)


@pytest.mark.parametrize('pattern, host, expected', [
    ('api.trdrhub.example', 'api.trdrhub.example', True),
    ('API.trdrhub.example', 'api.TRDRHUB.example.', True),
    ('api.trdrhub.example', 'www.trdrhub.example', False),
    ('*.trdrhub.example', 'api.trdrhub.example', True),
    ('*.trdrhub.example', 'trdrhub.example', False),
    ('*.trdrhub.example', 'a.b.trdrhub.example', False),   # one label only
    ('*.example', 'trdrhub.example', False),               # no wildcard on a public suffix level
    ('api*.trdrhub.example', 'api1.trdrhub.example', False),  # partial wildcards are not honoured
])
def test_dns_name_matching_follows_rfc6125(pattern, host, expected):
    assert _tls.dns_name_matches(pattern, host) is expected


def test_valid_certificate(ca):
    report = _tls.describe_certificate(ca.issue(valid_days=90).der, 'localhost', min_days=14, now=NOW)
    assert report['hostname_match'] is True
    assert report['expired'] is False and report['expiring_soon'] is False and report['not_yet_valid'] is False
    assert report['days_to_expiry'] == 90.0
    assert report['subject'] == 'CN=localhost,O=trdrhub test'
    assert report['issuer'] == 'CN=trdrhub test CA,O=trdrhub test'
    assert report['sans'] == ['localhost', '127.0.0.1']
    assert report['not_after'] == '2025-04-15T14:30:00+00:00'


def test_ip_host_is_matched_against_ip_sans_only(ca):
    cert = ca.issue(sans=['localhost', '127.0.0.1']).der
    assert _tls.describe_certificate(cert, '127.0.0.1', now=NOW)['hostname_match'] is True
    assert _tls.describe_certificate(cert, '127.0.0.2', now=NOW)['hostname_match'] is False
    dns_only = ca.issue(sans=['127.0.0.1.nip.io']).der
    assert _tls.describe_certificate(dns_only, '127.0.0.1', now=NOW)['hostname_match'] is False


def test_common_name_is_not_a_host_name(ca):
    cert = ca.issue(common_name='localhost', sans=[]).der
    report = _tls.describe_certificate(cert, 'localhost', now=NOW)
    assert report['sans'] == [] and report['hostname_match'] is False


def test_wrong_host(ca):
    report = _tls.describe_certificate(ca.issue(common_name='other', sans=['other.example']).der, 'localhost', now=NOW)
    assert report['hostname_match'] is False


@pytest.mark.parametrize('valid_days, min_days, soon, expired', [
    (3, 14, True, False), (13.9, 14, True, False), (14.5, 14, False, False), (3, 2, False, False), (-1, 14, False, True),
])
def test_expiry(ca, valid_days, min_days, soon, expired):
    report = _tls.describe_certificate(ca.issue(valid_days=valid_days).der, 'localhost', min_days=min_days, now=NOW)
    assert report['expiring_soon'] is soon
    assert report['expired'] is expired
    assert report['days_to_expiry'] == round(valid_days, 2)


def test_not_yet_valid(ca):
    report = _tls.describe_certificate(ca.issue(valid_from_days=2, valid_days=90).der, 'localhost', now=NOW)
    assert report['not_yet_valid'] is True and report['expired'] is False


def test_unreachable_server_gives_an_error_not_an_exception():
    from trdrhub_harness import free_port

    report = _tls.inspect_tls('127.0.0.1', free_port(), timeout=2)
    assert report['error'].startswith('no TLS handshake with 127.0.0.1:')
    assert 'refused' in report['error'].lower()
