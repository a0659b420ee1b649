# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Redis connection layer shared by the collection's Redis modules.

The option spec lives here once (``REDIS_COMMON_ARGS``) and is documented once in
the ``trdrhub.incident.redis`` doc fragment. Every redis-py failure is turned into
one of the collection's exceptions with a single-line message that names the server
(``host:port``) and quotes its reason, and never contains a password: redis-py does
not echo credentials today, but the URL form could carry one into a future message,
so every text is scrubbed before it leaves this file.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import typing as t
from urllib.parse import quote, quote_plus, unquote, urlsplit

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError, TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import condense, scrub
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Library
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import MAX_SOCKET_TIMEOUT, bounded

with Library.optional('redis') as REDIS:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

DEFAULT_HOST = 'localhost'
DEFAULT_PORT = 6379
NO_TARGET = ('No Redis server given: set host (or url). A module never connects to the Redis on localhost:6379 by '
             'itself; to use a local server on purpose, set host to localhost')

REDIS_COMMON_ARGS: dict[str, dict[str, t.Any]] = {
    'host': {'type': 'str', 'aliases': ['login_host']},
    'port': bounded({'type': 'int', 'aliases': ['login_port']}, 1, 65535),
    'db': bounded({'type': 'int'}, minimum=0),
    'username': {'type': 'str', 'aliases': ['login_user']},
    'password': {'type': 'str', 'no_log': True, 'aliases': ['login_password']},
    'url': {'type': 'str', 'no_log': True},
    'tls': {'type': 'bool', 'default': False},
    'validate_certs': {'type': 'bool', 'default': True},
    'ca_path': {'type': 'path', 'aliases': ['ca_certs']},
    'client_cert': {'type': 'path'},
    'client_key': {'type': 'path', 'no_log': False},
    'socket_timeout': bounded({'type': 'float', 'default': 5}, above=0, maximum=MAX_SOCKET_TIMEOUT),
}

# A url is a complete target; mixing it with host/port/credentials would make it
# unclear which server or user is actually used. db and tls may refine it.
REDIS_MUTUALLY_EXCLUSIVE: list[list[str]] = [['url', option] for option in ('host', 'port', 'username', 'password')]
# The module keywords of a module with the connection options (run_module(..., **REDIS_CONSTRAINTS)).
REDIS_CONSTRAINTS: dict[str, t.Any] = dict(mutually_exclusive=REDIS_MUTUALLY_EXCLUSIVE)


class RedisError(TrdrhubError):
    """A Redis failure: the base of the Redis errors below."""


class RedisInputError(RedisError, InputError):
    """An option value is invalid in a way argument_spec cannot express."""


class RedisConnectionError(RedisError):
    """The server could not be reached, the TLS handshake failed, or the login was refused."""


class RedisCommandError(RedisError):
    """A command failed; the message names the command and quotes the server."""


class RedisPermissionError(RedisCommandError):
    """The ACL user may not run a command; the message says what to grant."""


_URL_SCHEMES = {'redis': False, 'rediss': True}
# redis-py prefixes socket errors with "Error 111 connecting to host:port." - we name the target ourselves.
_SOCKET_PREFIX = re.compile(r'^Error (?:-?\d+ )?(?:connecting to|while reading from|while writing to) \S+:\d+ ?[.:]\s*')
# What a TLS-only port answers to a plain-text client.
_PLAIN_TO_TLS = re.compile(r'closed by server|reset by peer', re.I)
# Failures before any TLS byte is exchanged: no TLS hint for these.
_NO_SERVER = re.compile(r'refused|not known|no route|unreachable|name resolution', re.I)
_NEEDS_AUTH = re.compile(r'authentication required|NOAUTH|HELLO must be called with the client already authenticated', re.I)


def parse_url(url: str) -> dict[str, t.Any]:
    """host, port, db, username, password and tls of a redis:// or rediss:// URL.

    Parsed here rather than by redis-py so that the same precedence and error
    messages apply to both ways of connecting, and no message quotes the URL.
    """
    scheme = url.strip().split('://', 1)[0].lower() if '://' in url else ''
    if scheme not in _URL_SCHEMES:
        raise RedisInputError('url must start with redis:// or rediss:// (TLS), for example redis://user:password@host:6379/0')
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        reason = 'the port is not a number between 0 and 65535' if 'port' in str(exc).lower() else 'it cannot be parsed'
        raise RedisInputError(f'url is not a valid Redis URL: {reason} (percent-encode @ : / and spaces in the user name '
                              'and password)') from None
    path = parts.path.strip('/')
    if path and not path.isdigit():
        raise RedisInputError('url path must be a database number, as in redis://host:6379/0')
    settings: dict[str, t.Any] = {'tls': _URL_SCHEMES[scheme]}
    if parts.hostname:
        settings['host'] = parts.hostname
    if port is not None:
        settings['port'] = port
    if path:
        settings['db'] = int(path)
    if parts.username:
        settings['username'] = unquote(parts.username)
    if parts.password is not None:
        settings['password'] = unquote(parts.password)
    return settings


def connection_settings(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Where and how to connect: defaults < url < explicit options (db and tls refine a url)."""
    settings: dict[str, t.Any] = {'host': DEFAULT_HOST, 'port': DEFAULT_PORT, 'db': 0, 'username': None, 'password': None,
                                  'tls': False}
    if params.get('url'):
        settings.update(parse_url(params['url']))
    for option in ('host', 'port', 'db', 'username', 'password'):
        if params.get(option) not in (None, ''):
            settings[option] = params[option]
    settings['tls'] = bool(settings['tls'] or params.get('tls'))
    settings['validate_certs'] = params.get('validate_certs', True) is not False
    if not 0 < settings['port'] < 65536:
        raise RedisInputError(f"port must be between 1 and 65535, got {settings['port']}")
    if settings['db'] < 0:
        raise RedisInputError(f"db must be 0 or a positive database number, got {settings['db']}")
    timeout = params.get('socket_timeout', 5)
    if timeout is None or timeout <= 0:
        raise RedisInputError(f'socket_timeout must be a positive number of seconds, got {timeout}')
    settings['socket_timeout'] = timeout
    files = {option: params.get(option) for option in ('ca_path', 'client_cert', 'client_key') if params.get(option)}
    if files and not settings['tls']:
        raise RedisInputError(f"{', '.join(files)} only apply to TLS connections: set tls: true or use a rediss:// url")
    for option, path in files.items():
        if not os.path.exists(path):
            raise RedisInputError(f'{option} {path} does not exist')
    settings.update(files)
    return settings


def redis_kwargs(settings: dict[str, t.Any]) -> dict[str, t.Any]:
    """Keyword arguments for ``redis.Redis``, limited to what the installed redis-py accepts.

    RESP2 is asked for explicitly: redis-py 8 defaults to RESP3, whose HELLO handshake
    turns a missing password into a confusing message, and RESP2 works on every server.
    Retries are off: a module must report a refused connection, not hide it for seconds.
    """
    timeout = settings['socket_timeout']
    kwargs: dict[str, t.Any] = {
        'host': settings['host'], 'port': settings['port'], 'db': settings['db'],
        'username': settings['username'], 'password': settings['password'],
        'socket_timeout': timeout, 'socket_connect_timeout': timeout, 'decode_responses': True,
        'protocol': 2, 'retry': Retry(NoBackoff(), 0),
    }
    if settings['tls']:
        validate = settings['validate_certs']
        kwargs.update(ssl=True, ssl_cert_reqs='required' if validate else 'none', ssl_check_hostname=validate)
        ca_path = settings.get('ca_path')
        if ca_path:
            kwargs['ssl_ca_path' if os.path.isdir(ca_path) else 'ssl_ca_certs'] = ca_path
        if settings.get('client_cert'):
            kwargs['ssl_certfile'] = settings['client_cert']
        if settings.get('client_key'):
            kwargs['ssl_keyfile'] = settings['client_key']
    accepted = inspect.signature(redis.Redis.__init__).parameters
    return {key: value for key, value in kwargs.items() if key in accepted}


def describe_target(settings: dict[str, t.Any]) -> str:
    host = settings['host']
    if ':' in host:
        host = f'[{host}]'
    extras = [f"db {settings['db']}", f"user {settings['username'] or 'default'}"]
    if settings['tls']:
        extras.append('TLS')
    return f"Redis at {host}:{settings['port']} ({', '.join(extras)})"


def secrets_of(params: dict[str, t.Any], settings: dict[str, t.Any]) -> list[str]:
    """Every password that could surface in an error text, in its raw and URL forms."""
    found = [params.get('password'), params.get('url'), settings.get('password')]
    secrets: set[str] = set()
    for value in found:
        if value:
            secrets.update({str(value), quote(str(value), safe=''), quote_plus(str(value))})
    return sorted(secrets, key=len, reverse=True)


def server_reason(exc: BaseException) -> str:
    """The server's (or the socket's) own words, one line, without redis-py's prefix."""
    text = condense(str(exc))
    return _SOCKET_PREFIX.sub('', text).rstrip('.') or type(exc).__name__


class RedisClient:
    """A connection plus the list of commands run on it (reported as ``queries``).

    Commands are recorded as name and key only; this client never sends a value
    that could be secret, and AUTH is done by redis-py while connecting, so it is
    never recorded.
    """

    def __init__(self, params: dict[str, t.Any], conn: t.Any = None) -> None:
        if conn is None and not (params.get('host') or params.get('url')):
            # Whatever answers on localhost is rarely the server an incident is about.
            raise RedisInputError(NO_TARGET)
        self.params = params
        self.settings = connection_settings(params)
        self.target = describe_target(self.settings)
        self.secrets = secrets_of(params, self.settings)
        self.queries: list[str] = []
        self.answered = False
        self.conn = conn if conn is not None else redis.Redis(**redis_kwargs(self.settings))

    def command(self, *args: t.Any) -> t.Any:
        """Run one command; map every redis-py error to one of the collection's exceptions."""
        text = ' '.join(str(arg) for arg in args)
        if not self.queries or self.queries[-1] != text:
            # Polling repeats one command many times; list it once per run of repeats.
            self.queries.append(text)
        try:
            reply = self.conn.execute_command(*args)
        except redis.exceptions.RedisError as exc:
            raise self.error(text, exc) from None
        self.answered = True
        return reply

    def error(self, command: str, exc: t.Any) -> Exception:
        """One message naming the target and, for a command, the command; never a password."""
        errors = redis.exceptions
        reason = server_reason(exc)
        if isinstance(exc, errors.AuthenticationError) or _NEEDS_AUTH.search(reason):
            if _NEEDS_AUTH.search(reason):
                reason = 'the server requires authentication: set password (and username for an ACL user)'
            return RedisConnectionError(self._scrub(f'Cannot log in to {self.target}: {reason}'))
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
            if isinstance(exc, errors.TimeoutError):
                reason += f" (socket_timeout is {self.settings['socket_timeout']}s)"
            if self.settings['tls'] and not self.answered and not _NO_SERVER.search(reason):
                reason += '; check that the port speaks TLS and that ca_path, validate_certs and the client certificate match it'
            elif _PLAIN_TO_TLS.search(reason) and not self.answered:
                reason += '; if the server only accepts TLS connections, set tls: true or use a rediss:// url'
            verb = f'Lost the connection to {self.target} during {command}' if self.answered else f'Cannot connect to {self.target}'
            return RedisConnectionError(self._scrub(f'{verb}: {reason}'))
        if isinstance(exc, getattr(errors, 'NoPermissionError', ())) or reason.startswith('NOPERM'):
            user = self.settings['username'] or 'default'
            words = command.lower().split(' ')
            # Container commands are granted per subcommand (+xinfo|groups).
            grant = '|'.join(words[:2]) if words[0] == 'xinfo' else words[0]
            return RedisPermissionError(self._scrub(
                f'{self.target} refused {command}: {reason} (grant it with: ACL SETUSER {user} +{grant})'))
        return RedisCommandError(self._scrub(f'{command} failed on {self.target}: {reason}'))

    def _scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def close(self) -> None:
        # Closing is best effort; the module result is already decided.
        with contextlib.suppress(Exception):
            self.conn.close()
