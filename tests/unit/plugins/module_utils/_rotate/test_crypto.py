# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Secret generation and SCRAM-SHA-256 verifiers: the password policy, RFC 5802/7677 verifiers computed independently, fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import (
    SYMBOLS,
    SecretPolicyError,
    fingerprint,
    generate,
    scram_verifier,
    short_fingerprint,
    verifier_matches,
)

# RFC 7677 section 3: user "user", password "pencil".
RFC_SALT = 'W22ZaJ0SNY7soEsUEjb6gQ=='


RFC_AUTH_MESSAGE = ('n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,'
                    's=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0')


RFC_PROOF = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='


RFC_SERVER_SIGNATURE = '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='


def independent_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """RFC 5802 section 3, written out again here so the test does not trust the production code."""
    salted = hashlib.pbkdf2_hmac('sha256', password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.new(salted, b'Client Key', hashlib.sha256).digest()).digest()
    server = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    enc = base64.b64encode
    return f'SCRAM-SHA-256${iterations}:{enc(salt).decode()}${enc(stored).decode()}:{enc(server).decode()}'


def test_scram_verifier_matches_an_independent_computation():
    salt = bytes(range(16))
    assert scram_verifier('s3cret-Pa55', salt=salt) == independent_verifier('s3cret-Pa55', salt)


def test_scram_verifier_against_the_rfc_7677_exchange():
    verifier = scram_verifier('pencil', salt=base64.b64decode(RFC_SALT))
    head, keys = verifier.split('$')[1:]
    assert head == f'4096:{RFC_SALT}'
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(':'))
    # The server side of the RFC exchange: the client's proof checks out against StoredKey ...
    signature = hmac.new(stored_key, RFC_AUTH_MESSAGE.encode(), hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC_PROOF), signature))
    assert hashlib.sha256(client_key).digest() == stored_key
    # ... and ServerKey produces the RFC's server signature.
    assert base64.b64encode(hmac.new(server_key, RFC_AUTH_MESSAGE.encode(), hashlib.sha256).digest()).decode() == RFC_SERVER_SIGNATURE


def test_verifier_is_salted_and_recognises_its_password():
    one, two = scram_verifier('pw-1234567890abcdef'), scram_verifier('pw-1234567890abcdef')
    assert one != two
    assert verifier_matches(one, 'pw-1234567890abcdef', 'app') is True
    assert verifier_matches(one, 'other', 'app') is False
    md5 = 'md5' + hashlib.md5(b'secretapp').hexdigest()
    assert verifier_matches(md5, 'secret', 'app') is True and verifier_matches(md5, 'nope', 'app') is False
    assert verifier_matches(None, 'x', 'app') is None and verifier_matches('SCRAM-SHA-256$bad', 'x', 'app') is None


@pytest.mark.parametrize(('classes', 'allowed'), [
    (['letters', 'digits'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')),
    (['letters', 'digits', 'symbols'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' + SYMBOLS)),
    (['urlsafe'], set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_')),
    (['digits'], set('0123456789')),
])
def test_generate_follows_the_policy(classes, allowed):
    values = {generate(24, classes) for dummy in range(20)}
    assert len(values) == 20
    for value in values:
        assert len(value) == 24 and set(value) <= allowed
    if classes == ['letters', 'digits', 'symbols']:
        assert all(any(c in SYMBOLS for c in v) and any(c.isdigit() for c in v) for v in values)


@pytest.mark.parametrize(('length', 'classes', 'message'), [
    (8, ['letters'], 'between 16 and 1024'),
    (2000, ['letters'], 'between 16 and 1024'),
    (32, ['urlsafe', 'symbols'], 'use it alone'),
    (32, ['emoji'], 'emoji is not one of'),
])
def test_bad_policy(length, classes, message):
    with pytest.raises(SecretPolicyError, match=message):
        generate(length, classes)


def test_fingerprints():
    assert fingerprint('abc') == hashlib.sha256(b'abc').hexdigest()
    assert short_fingerprint('abc') == 'sha256:' + hashlib.sha256(b'abc').hexdigest()[:12]
    assert fingerprint(None) is None and short_fingerprint(None) is None
