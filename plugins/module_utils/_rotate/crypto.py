# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Secret generation, fingerprints and PostgreSQL password verifiers for secret rotation.

The SCRAM-SHA-256 verifier is computed here, on the host that runs the module, so that
``ALTER ROLE ... PASSWORD`` only ever carries the verifier: the plaintext never reaches
the server, its statement log (``log_statement``) or ``pg_stat_activity``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import stringprep
import typing as t
import unicodedata

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError

SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16
FINGERPRINT_CHARS = 12
MIN_LENGTH = 16
MAX_LENGTH = 1024

# Symbols that need no quoting in an env file, a JSON string or a shell assignment inside
# double quotes: no quotes, backslash, dollar, backtick, space, '#' or ';'.
SYMBOLS = '!%*+,-./:=?@^_~'
CLASSES: dict[str, str] = {
    'letters': string.ascii_letters,
    'digits': string.digits,
    'symbols': SYMBOLS,
    'urlsafe': string.ascii_letters + string.digits + '-_',
}
DEFAULT_CLASSES = ('letters', 'digits')


class SecretPolicyError(TrdrhubError, ValueError):
    """The length or alphabet of the secret policy is invalid."""


def check_policy(length: int, classes: t.Sequence[str]) -> list[str]:
    """The character classes to draw from; one clear error for a bad policy."""
    chosen = list(dict.fromkeys(classes or DEFAULT_CLASSES))
    unknown = [c for c in chosen if c not in CLASSES]
    if unknown:
        raise SecretPolicyError(f'alphabet {", ".join(unknown)} is not one of {", ".join(CLASSES)}')
    if 'urlsafe' in chosen and len(chosen) > 1:
        raise SecretPolicyError('alphabet urlsafe is a complete alphabet (letters, digits, "-" and "_"); use it alone')
    if not MIN_LENGTH <= int(length) <= MAX_LENGTH:
        raise SecretPolicyError(f'length must be between {MIN_LENGTH} and {MAX_LENGTH} characters, got {length}')
    return chosen


def generate(length: int = 32, classes: t.Sequence[str] = DEFAULT_CLASSES) -> str:
    """A random secret from ``secrets``, with at least one character of every chosen class."""
    chosen = check_policy(length, classes)
    alphabet = ''.join(CLASSES[c] for c in chosen)
    while True:
        value = ''.join(secrets.choice(alphabet) for dummy in range(int(length)))
        if all(any(ch in CLASSES[c] for ch in value) for c in chosen):
            return value


def fingerprint(secret: str | None) -> str | None:
    """Full SHA-256 hex of the secret (for the rotation log); None when there is no secret."""
    if secret is None:
        return None
    return hashlib.sha256(secret.encode('utf-8')).hexdigest()


def short_fingerprint(secret: str | None) -> str | None:
    """``sha256:<first 12 hex>``: enough to tell secrets apart in results, useless to an attacker."""
    full = fingerprint(secret)
    return None if full is None else f'sha256:{full[:FINGERPRINT_CHARS]}'


def saslprep(password: str) -> bytes:
    """RFC 4013 SASLprep as PostgreSQL applies it: on any failure the raw bytes are used."""
    raw = password.encode('utf-8')
    if all(0x20 < b < 0x7f for b in raw):
        return raw
    mapped = ''.join(' ' if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch))
    normal = unicodedata.normalize('NFKC', mapped)
    if not normal:
        return raw
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21_c22, stringprep.in_table_c3, stringprep.in_table_c4,
                  stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
                  stringprep.in_table_c9, stringprep.in_table_a1)
    if any(check(ch) for ch in normal for check in prohibited):
        return raw
    if any(stringprep.in_table_d1(ch) for ch in normal):
        if any(stringprep.in_table_d2(ch) for ch in normal):
            return raw
        if not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])):
            return raw
    return normal.encode('utf-8')


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac('sha256', saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`` (RFC 5802/7677)."""
    salt = secrets.token_bytes(SCRAM_SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return f'SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}'


def verifier_matches(verifier: str | None, password: str, role: str) -> bool | None:
    """Whether a ``pg_authid.rolpassword`` value accepts ``password``; None when it cannot be told."""
    if not verifier:
        return None
    if verifier.startswith('SCRAM-SHA-256$'):
        try:
            head, keys = verifier[len('SCRAM-SHA-256$'):].split('$', 1)
            iterations, salt = head.split(':', 1)
            stored_b64, server_b64 = keys.split(':', 1)
            stored_key, server_key = _keys(password, base64.b64decode(salt), int(iterations))
        except (ValueError, TypeError):
            return None
        return (hmac.compare_digest(stored_key, base64.b64decode(stored_b64))
                and hmac.compare_digest(server_key, base64.b64decode(server_b64)))
    if verifier.startswith('md5') and len(verifier) == 35:
        digest = 'md5' + hashlib.md5((password + role).encode('utf-8'), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(digest, verifier)
    return None
