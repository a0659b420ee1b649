# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Redaction of secrets before anything reaches the incident ledger.

The ledger is kept for auditors and pasted into post-mortems, so it must never hold
a password, token, DSN or webhook URL, not even one Ansible itself failed to mask.
Four nets, applied to nested dicts and lists:

* keys whose name looks secret (``login_password``, ``api_key``, ``dsn``,
  ``routing_key``, ``slack_webhook_url``...) lose their value entirely;
* values equal to a known secret, or Ansible's ``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``
  marker, become ``<redacted>``;
* a known secret inside a longer string is masked;
* secret shapes inside text are masked wherever they appear: ``scheme://user:pw@``,
  libpq ``password=...``, ``token: ...``, ``Bearer ...``, Slack webhook paths.

Values are also made JSON-safe here (``jsonable``) so that the ledger's hash is
computed over exactly what is stored, whatever the storage backend.
"""

from __future__ import annotations

import math
import re
import typing as t

MASK = '********'
REDACTED = '<redacted>'
NO_LOG_MARKER = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
# Secrets shorter than this are redacted where they are a whole value, but not searched
# for inside other strings: masking every "abc" in every message would destroy the record.
MIN_INLINE_SECRET = 3
# A float this large comes back from PostgreSQL jsonb as an integer, which would change
# the entry's hash; such values are stored as strings.
_FLOAT_LIMIT = 1e15

# Substrings of a key (lower-cased, '-' read as '_') that mark its value as secret.
_SECRET_KEY_PARTS = (
    'password', 'passwd', 'passphrase', 'secret', 'token', 'api_key', 'apikey', 'private_key',
    'privatekey', 'credential', 'routing_key', 'integration_key', 'webhook', 'authorization',
    'cookie', 'access_key', 'signing_key', 'pgpass', 'vault_pass',
)
# Whole words of a key (split on '_') that mark it secret: 'dsn' but not 'dsname'.
_SECRET_KEY_WORDS = frozenset(('dsn', 'pw', 'pwd', 'pass', 'auth'))

# An Authorization header quoted in an API client's exception: masked whatever the token's shape.
_BEARER = re.compile(r'(?i)(bearer\s+)[^\s,;"\']+')
_PASSWORD_KEYWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@\s]*@", re.IGNORECASE)

_TEXT_PATTERNS = (
    # token: abc / "api_key": "abc" / secret=abc (libpq password=... is handled by scrub()).
    (re.compile(r'''(?i)((?:passwd|passphrase|secret|token|api[_-]?key|routing[_-]?key|private[_-]?key)["']?\s*[:=]\s*)'''
                r'''("[^"]*"|'[^']*'|[^\s,;}&"']+)'''), r'\g<1>' + MASK),
    (re.compile(r'(?i)\b(Bearer|OAuth|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}'), r'\g<1> ' + MASK),
    (re.compile(r'(?i)(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s"\'<>]+'), r'\g<1>' + MASK),
)

# A last word of a key that names something about a secret, not the secret itself: the role whose
# password is rotated (rotate_secrets_role), where a secret is kept (rotate_secrets_path,
# vault_password_file), its type or its name. Such values stay readable in the ledger.
_ABOUT_A_SECRET = frozenset((
    'role', 'roles', 'user', 'path', 'file', 'dir', 'directory', 'type', 'name', 'names', 'namespace', 'store',
    'environment', 'mode', 'method', 'length', 'alphabet', 'format', 'age', 'host', 'hosts', 'priority', 'timeout',
    'interval', 'backend', 'ledger', 'deployments', 'command', 'enabled', 'count', 'label', 'labels',
))


def scrub(text: str, secrets: t.Iterable[str] = ()) -> str:
    """Mask known secrets and anything shaped like a password in libpq/psycopg2 text.

    psycopg2 echoes the connection string in "invalid dsn" errors, so the password
    has to be removed here rather than trusted to Ansible's no_log masking.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _PASSWORD_KEYWORD.sub(r'\g<1>' + MASK, text)
    return _URL_CREDENTIALS.sub(r'\g<1>' + MASK + '@', text)


def mask_secrets(text: str, secrets: t.Iterable[str | None], min_length: int = MIN_INLINE_SECRET) -> str:
    """``text`` with every occurrence of each secret (of at least ``min_length`` characters) masked, longest first."""
    for secret in sorted((s for s in secrets if s and len(s) >= min_length), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrub_token(text: str, secrets: t.Iterable[str | None] = ()) -> str:
    """Known secrets (any length) and any ``Bearer <token>`` masked: for API client errors that may quote a request."""
    return _BEARER.sub(r'\g<1>' + MASK, mask_secrets(text, secrets, min_length=1))


def condense(text: str) -> str:
    """One line, single spaces: server and SQL texts are multi-line and tab-indented."""
    return ' '.join(str(text).split())


def is_secret_key(key: t.Any) -> bool:
    """Whether a dict key names a secret (``login_password``, ``X-Api-Key``, ``TRDRHUB_LEDGER_DSN``...).

    Not a key whose last word says it is about a secret (``rotate_secrets_role``, ``secret_type``,
    ``vault_password_file``): those hold role names, paths and types, which the record must show.
    """
    name = str(key).lower().replace('-', '_')
    if name.rsplit('_', 1)[-1] in _ABOUT_A_SECRET and '_' in name:
        return False
    if any(part in name for part in _SECRET_KEY_PARTS):
        return True
    return any(word in _SECRET_KEY_WORDS for word in re.split(r'[^a-z0-9]+', name))


def jsonable(value: t.Any) -> t.Any:
    """Plain JSON types only: str subclasses (AnsibleUnsafe, tagged values) become str, and so on.

    NUL characters are replaced (PostgreSQL jsonb rejects them); NaN, infinities and floats
    beyond 1e15 become strings, so a PostgreSQL round trip cannot change the hash.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) < _FLOAT_LIMIT:
            return float(value)
        return repr(float(value))
    if isinstance(value, bytes):
        value = value.decode('utf-8', errors='replace')
    if isinstance(value, str):
        return str(value).replace('\x00', '\ufffd')
    if isinstance(value, t.Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, 'isoformat'):
        return value.isoformat()
    return str(value).replace('\x00', '\ufffd')


class Redactor:
    """Knows the secrets of one run and removes them, and every secret-shaped value, from data.

    ``learn`` collects the values of secret-named keys first, so that a password passed as
    ``login_password`` is also masked where it shows up inside a message or a URL.
    """

    def __init__(self, secrets: t.Iterable[t.Any] = ()) -> None:
        self.secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *values: t.Any) -> None:
        for value in values:
            if isinstance(value, (str, bytes)) and not isinstance(value, bool):
                text = jsonable(value)
                if text and text not in (NO_LOG_MARKER, REDACTED, MASK):
                    self.secrets.add(text)

    def learn(self, value: t.Any, secret: bool = False) -> None:
        """Remember every string stored under a secret-looking key, at any depth."""
        if isinstance(value, t.Mapping):
            for key, item in value.items():
                self.learn(item, secret or is_secret_key(key))
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                self.learn(item, secret)
        elif secret:
            self.add(value)

    def _inline(self) -> list[str]:
        return sorted((s for s in self.secrets if len(s) >= MIN_INLINE_SECRET), key=len, reverse=True)

    def text(self, value: t.Any) -> str:
        """A string with known secrets and secret shapes masked."""
        text = jsonable(value)
        if not isinstance(text, str):
            text = str(text)
        if text in self.secrets or text == NO_LOG_MARKER:
            return REDACTED
        text = scrub(text, self._inline()).replace(NO_LOG_MARKER, REDACTED)
        for pattern, replacement in _TEXT_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact(self, value: t.Any, secret: bool = False) -> t.Any:
        """A JSON-safe copy of ``value`` with every secret removed."""
        if secret:
            return value if value is None or isinstance(value, bool) or value == '' else REDACTED
        if isinstance(value, t.Mapping):
            return {str(jsonable(k)): self.redact(v, is_secret_key(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.redact(v) for v in jsonable(value)]
        if isinstance(value, (str, bytes)):
            return self.text(value)
        return jsonable(value)

    def clean(self, value: t.Any) -> t.Any:
        """learn + redact in one step, for data that carries its own secrets."""
        self.learn(value)
        return self.redact(value)
