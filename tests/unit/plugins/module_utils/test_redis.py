"""Redis connection options, URL parsing and error messages (module_utils/_redis.py)."""
from __future__ import annotations

from urllib.parse import quote

import pytest
import redis
from ansible_collections.trdrhub.incident.plugins.module_utils import _redis
from ansible_collections.trdrhub.incident.plugins.module_utils._redis import (
    RedisClient,
    RedisCommandError,
    RedisConnectionError,
    RedisInputError,
    RedisPermissionError,
    connection_settings,
    parse_url,
    redis_kwargs,
)

SECRET = 'p@ss:w/rd s3cret'
DEFAULTS = {name: spec.get('default') for name, spec in _redis.REDIS_COMMON_ARGS.items()}


def params(**overrides):
    return dict(DEFAULTS, **overrides)


@pytest.mark.parametrize('url, expected', [
    ('redis://localhost', {'host': 'localhost', 'tls': False}),
    ('redis://10.0.0.5:6380/2', {'host': '10.0.0.5', 'port': 6380, 'db': 2, 'tls': False}),
    ('rediss://ops:secret@redis.example:6390/0', {'host': 'redis.example', 'port': 6390, 'db': 0, 'username': 'ops',
                                                  'password': 'secret', 'tls': True}),
    ('redis://:only%40pw@h/', {'host': 'h', 'password': 'only@pw', 'tls': False}),
    ('REDIS://[::1]:6379', {'host': '::1', 'port': 6379, 'tls': False}),
])
def test_parse_url(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize('url, message', [
    (f'http://user:{SECRET}@host', 'url must start with redis:// or rediss://'),
    (f'redis://user:{SECRET}@host:notaport', 'url is not a valid Redis URL: the port is not a number'),
    ('redis://host:6379/zero', 'url path must be a database number'),
])
def test_bad_url_never_echoes_it(url, message):
    with pytest.raises(RedisInputError) as caught:
        parse_url(url)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value) and 's3cret' not in str(caught.value)


def test_defaults_and_precedence():
    assert connection_settings(params()) == {'host': 'localhost', 'port': 6379, 'db': 0, 'username': None, 'password': None,
                                             'tls': False, 'validate_certs': True, 'socket_timeout': 5}
    from_url = connection_settings(params(url='redis://ops:pw@h:7000/3', db=5, tls=True))
    assert (from_url['host'], from_url['port'], from_url['db'], from_url['username'], from_url['tls']) == ('h', 7000, 5, 'ops', True)
    assert connection_settings(params(host='', port=None))['host'] == 'localhost'


@pytest.mark.parametrize('overrides, message', [
    ({'port': 0}, 'port must be between 1 and 65535, got 0'),
    ({'port': 70000}, 'port must be between 1 and 65535, got 70000'),
    ({'db': -1}, 'db must be 0 or a positive database number, got -1'),
    ({'socket_timeout': 0}, 'socket_timeout must be a positive number of seconds, got 0'),
    ({'ca_path': '/etc/hosts'}, 'ca_path only apply to TLS connections: set tls: true or use a rediss:// url'),
    ({'client_cert': '/etc/hosts', 'client_key': '/etc/hosts'}, 'client_cert, client_key only apply to TLS connections'),
    ({'tls': True, 'ca_path': '/nonexistent/ca.pem'}, 'ca_path /nonexistent/ca.pem does not exist'),
])
def test_option_validation(overrides, message):
    with pytest.raises(RedisInputError, match='^' + message.replace('(', r'\(').replace(')', r'\)').replace('+', r'\+')):
        connection_settings(params(**overrides))


def test_redis_kwargs_plain():
    kwargs = redis_kwargs(connection_settings(params(host='r', port=6380, username='ops', password='pw', socket_timeout=2.5)))
    assert kwargs['host'] == 'r' and kwargs['port'] == 6380 and kwargs['username'] == 'ops' and kwargs['password'] == 'pw'
    assert kwargs['socket_timeout'] == kwargs['socket_connect_timeout'] == 2.5
    assert kwargs['protocol'] == 2 and kwargs['decode_responses'] is True
    assert kwargs['retry'].get_retries() == 0 if hasattr(kwargs['retry'], 'get_retries') else True
    assert 'ssl' not in kwargs


def test_redis_kwargs_tls(tmp_path):
    ca = tmp_path / 'ca.pem'
    ca.write_text('x')
    kwargs = redis_kwargs(connection_settings(params(tls=True, ca_path=str(ca), client_cert=str(ca))))
    assert kwargs['ssl'] is True and kwargs['ssl_cert_reqs'] == 'required' and kwargs['ssl_check_hostname'] is True
    assert kwargs['ssl_ca_certs'] == str(ca) and kwargs['ssl_certfile'] == str(ca) and 'ssl_keyfile' not in kwargs
    as_dir = redis_kwargs(connection_settings(params(url='rediss://h', ca_path=str(tmp_path), validate_certs=False)))
    assert as_dir['ssl_ca_path'] == str(tmp_path) and as_dir['ssl_cert_reqs'] == 'none' and as_dir['ssl_check_hostname'] is False


def test_redis_kwargs_follow_the_installed_redis_py(monkeypatch):
    """An older redis-py without ``protocol`` still gets everything else."""
    class OldRedis:
        def __init__(self, host=None, port=None, db=None, username=None, password=None, socket_timeout=None,
                     socket_connect_timeout=None, decode_responses=False, retry=None):
            pass

    monkeypatch.setattr(_redis.redis, 'Redis', OldRedis)
    kwargs = redis_kwargs(connection_settings(params()))
    assert 'protocol' not in kwargs and kwargs['host'] == 'localhost'


class RaisingConn:
    def __init__(self, exc):
        self.exc = exc
        self.closed = False

    def execute_command(self, *args):
        if self.exc is None:
            return True
        raise self.exc

    def close(self):
        self.closed = True


def client_raising(exc, answered=False, **overrides):
    client = RedisClient(params(**overrides), conn=RaisingConn(exc))
    client.answered = answered
    return client


@pytest.mark.parametrize('exc, overrides, answered, kind, message', [
    (redis.exceptions.ConnectionError('Error 111 connecting to 127.0.0.1:1. Connection refused.'), {'host': '127.0.0.1', 'port': 1},
     False, RedisConnectionError, 'Cannot connect to Redis at 127.0.0.1:1 (db 0, user default): Connection refused'),
    (redis.exceptions.AuthenticationError('invalid username-password pair or user is disabled.'),
     {'host': 'r', 'username': 'ops', 'password': SECRET}, False, RedisConnectionError,
     'Cannot log in to Redis at r:6379 (db 0, user ops): invalid username-password pair or user is disabled'),
    (redis.exceptions.AuthenticationError('Authentication required.'), {}, False, RedisConnectionError,
     'Cannot log in to Redis at localhost:6379 (db 0, user default): the server requires authentication: '
     'set password (and username for an ACL user)'),
    (redis.exceptions.TimeoutError('Timeout connecting to server'), {'socket_timeout': 1.5}, False, RedisConnectionError,
     'Cannot connect to Redis at localhost:6379 (db 0, user default): Timeout connecting to server (socket_timeout is 1.5s)'),
    (redis.exceptions.ConnectionError("Error while reading from 127.0.0.1:7000 : (104, 'Connection reset by peer')"),
     {'port': 7000}, False, RedisConnectionError,
     "Cannot connect to Redis at localhost:7000 (db 0, user default): (104, 'Connection reset by peer'); if the server only "
     "accepts TLS connections, set tls: true or use a rediss:// url"),
    (redis.exceptions.ConnectionError('Error 1 connecting to h:6380. [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed.'),
     {'url': f"rediss://u:{quote(SECRET, safe='')}@h:6380"}, False, RedisConnectionError,
     'Cannot connect to Redis at h:6380 (db 0, user u, TLS): [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed; '
     'check that the port speaks TLS'),
    (redis.exceptions.ConnectionError('Error 111 connecting to h:6380. Connection refused.'), {'url': 'rediss://h:6380'}, False,
     RedisConnectionError, 'Cannot connect to Redis at h:6380 (db 0, user default, TLS): Connection refused$'),
    (redis.exceptions.ConnectionError('Connection closed by server.'), {}, True, RedisConnectionError,
     'Lost the connection to Redis at localhost:6379 (db 0, user default) during LLEN q: Connection closed by server'),
    (redis.exceptions.NoPermissionError("this user has no permissions to run the 'llen' command"), {'username': 'mon', 'password': 'x'},
     True, RedisPermissionError,
     "Redis at localhost:6379 (db 0, user mon) refused LLEN q: this user has no permissions to run the 'llen' command "
     "(grant it with: ACL SETUSER mon +llen)"),
    (redis.exceptions.ResponseError('WRONGTYPE Operation against a key holding the wrong kind of value'), {}, True,
     RedisCommandError, 'LLEN q failed on Redis at localhost:6379 (db 0, user default): WRONGTYPE Operation against a key'),
])
def test_errors_are_one_clear_message(exc, overrides, answered, kind, message):
    client = client_raising(exc, answered, **overrides)
    with pytest.raises(kind) as caught:
        client.command('LLEN', 'q')
    text = str(caught.value)
    if message.endswith('$'):
        assert text == message[:-1]
    assert text.startswith(message.rstrip('$'))
    assert '\n' not in text
    assert SECRET not in text


def test_xinfo_permission_names_the_subcommand():
    client = client_raising(redis.exceptions.NoPermissionError("this user has no permissions to run the 'xinfo|groups' command"),
                            answered=True)
    with pytest.raises(RedisPermissionError, match=r'ACL SETUSER default \+xinfo\|groups\)$'):
        client.command('XINFO GROUPS', 'events')


def test_a_password_in_a_server_message_is_masked():
    client = client_raising(redis.exceptions.ResponseError(f'ERR weird echo {SECRET}'), answered=True, password=SECRET)
    with pytest.raises(RedisCommandError) as caught:
        client.command('PING')
    assert SECRET not in str(caught.value) and '********' in str(caught.value)


def test_queries_are_recorded_once_per_run_of_repeats():
    client = client_raising(None)
    for args in (('PING',), ('PING',), ('LLEN', 'q'), ('LLEN', 'q'), ('PING',)):
        client.command(*args)
    assert client.queries == ['PING', 'LLEN q', 'PING']
    client.close()
    assert client.conn.closed


@pytest.mark.parametrize('overrides', [{}, {'host': ''}, {'port': 6379, 'db': 2}])
def test_no_server_named_fails_before_connecting(monkeypatch, overrides):
    attempts = []
    monkeypatch.setattr(_redis.redis, 'Redis', lambda **kwargs: attempts.append(kwargs))
    with pytest.raises(_redis.RedisInputError) as caught:
        RedisClient(params(**overrides))
    assert str(caught.value) == _redis.NO_TARGET
    assert 'set host (or url)' in str(caught.value)
    assert attempts == []


@pytest.mark.parametrize('overrides', [{'host': 'localhost'}, {'url': 'redis://cache:6379/0'}])
def test_a_named_server_is_connected_to(monkeypatch, overrides):
    attempts = []
    monkeypatch.setattr(_redis.redis, 'Redis', lambda **kwargs: attempts.append(kwargs) or object())
    RedisClient(params(**overrides))
    assert len(attempts) == 1
