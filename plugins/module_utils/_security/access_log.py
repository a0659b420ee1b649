# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Reading nginx access logs: time window, files (plain or gzip), line batches and parsing.

Everything here works on ``bytes``: lines are never decoded unless they are kept as a
sample. A parsed line is the tuple ``(ip, ts, request, status, user_agent)`` -- the
client address (bytes), the time in seconds since the epoch (UTC), the request line
(bytes, as logged), the status as three ASCII digits (bytes) and the user agent (bytes).

Memory does not grow with the size of a file: it is read in chunks of ``CHUNK`` bytes,
and a partial line carried over from one chunk to the next is dropped (counted as
unparsed) once it exceeds ``MAX_LINE`` bytes.
"""

from __future__ import annotations

import calendar
import datetime
import glob
import gzip
import json
import os
import re
import time
import typing as t
import zlib

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import (  # noqa: F401  # pylint: disable=unused-import
    iso_epoch as iso,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import (
    loose_iso_epoch as parse_iso,
)

UTC = datetime.timezone.utc
CHUNK = 1 << 20            # bytes per read
MAX_LINE = 1 << 20         # a line longer than this (no newline within 1 MiB) is dropped as unparsed
FORMATS = ('auto', 'combined', 'json')
GZIP_MAGIC = b'\x1f\x8b'
# Compressions recognised by magic bytes but not read: a clear message beats a file of "unparsed" lines.
UNSUPPORTED_MAGIC = ((b'BZh', 'bzip2'), (b'\xfd7zXZ\x00', 'xz'), (b'\x28\xb5\x2f\xfd', 'zstd'))

MONTHS = {name: number for number, name in enumerate(
    (b'Jan', b'Feb', b'Mar', b'Apr', b'May', b'Jun', b'Jul', b'Aug', b'Sep', b'Oct', b'Nov', b'Dec'), start=1)}

# ----------------------------------------------------------------------------------------------
# Time


class LogInputError(InputError):
    """A bad option or an unreadable file: the module fails with this message."""


_RELATIVE = re.compile(r'^-?\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)$',
                       re.IGNORECASE)
_UNIT_SECONDS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


def parse_moment(value: t.Any, option: str, now: float) -> float:
    """``since``/``until`` -> epoch seconds: ISO 8601, ``now``, or relative to now (``-2h``, ``-30m``, ``-1d``)."""
    if value is None:
        raise LogInputError(f'{option} is missing')
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.lower() == 'now':
        return now
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)[0].lower()]
    parsed = parse_iso(text)
    if parsed is None:
        raise LogInputError(f'{option}={text!r} is neither an ISO 8601 time (2025-01-15T14:30:00Z, 2025-01-15 14:30+01:00) '
                            f'nor a time relative to now (-2h, -30m, -1d, -90s) nor "now"')
    return parsed


def parse_clf_time(raw: bytes) -> float | None:
    """nginx ``$time_local`` (``10/Oct/2024:13:55:36 -0700``) -> epoch seconds; None if malformed."""
    if len(raw) != 26 or raw[2:3] != b'/' or raw[6:7] != b'/' or raw[11:12] != b':' or raw[20:21] != b' ':
        return None
    month = MONTHS.get(raw[3:6])
    sign = raw[21:22]
    if month is None or sign not in (b'+', b'-'):
        return None
    try:
        day, year = int(raw[0:2]), int(raw[7:11])
        hour, minute, second = int(raw[12:14]), int(raw[15:17]), int(raw[18:20])
        shift = int(raw[22:24]) * 3600 + int(raw[24:26]) * 60
    except ValueError:
        return None
    if not (1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    stamp = calendar.timegm((year, month, day, hour, minute, second))
    return float(stamp - shift if sign == b'+' else stamp + shift)


def parse_any_time(value: t.Any) -> float | None:
    """A time value from a JSON log line: ``$time_local``, ISO 8601, or epoch seconds (``$msec``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000.0 if value > 1e11 else float(value)   # milliseconds -> seconds
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text[:1].isdigit() and len(text) == 26 and text[2:3] == '/':
        return parse_clf_time(text.encode('ascii', 'replace'))
    if text.replace('.', '', 1).isdigit():
        return parse_any_time(float(text))
    return parse_iso(text)


# ----------------------------------------------------------------------------------------------
# Parsing

# Fallback for combined lines the fast split cannot take (escaped quotes, Apache style).
_COMBINED = re.compile(
    rb'^(\S+) \S+ (?:\S+|"[^"]*") \[([^\]]{26})\] "((?:[^"\\]|\\.)*)" (\d{3}) (?:\d+|-)'
    rb'(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?')

# JSON key names, first found wins (documented in the module). Values may be strings or numbers.
JSON_TIME_KEYS = ('time_iso8601', 'time_local', '@timestamp', 'timestamp', 'time', 'ts', 'datetime', 'date', 'msec')
JSON_IP_KEYS = ('remote_addr', 'client_ip', 'clientip', 'client_addr', 'client', 'remote_ip', 'ip', 'src_ip')
JSON_REQUEST_KEYS = ('request', 'request_line')
JSON_METHOD_KEYS = ('request_method', 'method', 'verb')
JSON_URI_KEYS = ('request_uri', 'uri', 'url', 'path', 'request_path')
JSON_ARGS_KEYS = ('args', 'query_string', 'query')
JSON_PROTOCOL_KEYS = ('server_protocol', 'protocol', 'http_version')
JSON_STATUS_KEYS = ('status', 'status_code', 'response', 'response_code', 'code')
JSON_UA_KEYS = ('http_user_agent', 'user_agent', 'useragent', 'agent', 'ua')
JSON_REFERER_KEYS = ('http_referer', 'referer', 'referrer')
JSON_BYTES_KEYS = ('body_bytes_sent', 'bytes_sent', 'bytes', 'size')
JSON_REQUEST_TIME_KEYS = ('request_time', 'duration', 'elapsed')


def _first(obj: dict, keys: tuple) -> t.Any:
    for key in keys:
        value = obj.get(key)
        if value is not None and value != '':
            return value
    return None


def _bytes(value: t.Any) -> bytes:
    return value.encode('utf-8', 'surrogateescape') if isinstance(value, str) else str(value).encode('ascii')


def parse_json_line(line: bytes, times: dict) -> tuple | None:
    """One JSON object -> ``(ip, ts, request, status, user_agent)``, or None when a required field is missing.

    Required: a client address, a time and a status. The request is ``request``, or built from
    method, URI (plus ``args`` when the URI has no query) and protocol.
    """
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    ip, when, status = _first(obj, JSON_IP_KEYS), _first(obj, JSON_TIME_KEYS), _first(obj, JSON_STATUS_KEYS)
    if ip is None or when is None or status is None:
        return None
    ts = times.get(when) if isinstance(when, str) else None
    if ts is None:
        ts = parse_any_time(when)
        if ts is None:
            return None
        if isinstance(when, str):
            if len(times) > 4096:
                times.clear()
            times[when] = ts
    status_text = str(status).strip()
    if len(status_text) != 3 or not status_text.isdigit():
        return None
    request = _first(obj, JSON_REQUEST_KEYS)
    if request is None:
        uri = _first(obj, JSON_URI_KEYS)
        if uri is not None:
            uri = str(uri)
            query = _first(obj, JSON_ARGS_KEYS)
            if query is not None and '?' not in uri:
                uri += '?' + str(query)
            parts = [str(_first(obj, JSON_METHOD_KEYS) or '-'), uri]
            protocol = _first(obj, JSON_PROTOCOL_KEYS)
            if protocol is not None:
                parts.append(str(protocol))
            request = ' '.join(parts)
        else:
            request = ''
    agent = _first(obj, JSON_UA_KEYS)
    return (_bytes(str(ip).strip()), ts, _bytes(request), status_text.encode('ascii'),
            _bytes(agent) if agent is not None else b'')


def parse_combined_slow(line: bytes, times: dict) -> tuple | None:
    """The regex path for combined lines the fast path refused (escaped quotes, missing fields)."""
    match = _COMBINED.match(line)
    if match is None:
        return None
    raw = match.group(2)
    ts = times.get(raw)
    if ts is None:
        ts = parse_clf_time(raw)
        if ts is None:
            return None
    return match.group(1), ts, match.group(3), match.group(4), match.group(6) or b''


def line_time(line: bytes, times: dict, fmt: str) -> float | None:
    """Only the time of a line (for the binary search into a file); None when it has none."""
    if line[:1] == b'{':
        if fmt == 'combined':
            return None
        parsed = parse_json_line(line, times)
        return parsed[1] if parsed else None
    if fmt == 'json':
        return None
    start = line.find(b' [')
    if start < 0:
        return None
    return parse_clf_time(line[start + 2:start + 28])


# ----------------------------------------------------------------------------------------------
# Files

_ROTATION = re.compile(r'^(.*?)(?:[.-](\d+))?(?:\.gz)?$')


def rotation_key(path: str) -> tuple:
    """Sort key putting rotated files oldest first: access.log.3.gz, access.log.2.gz, access.log.1, access.log.

    Small numbers are logrotate's indexes (higher is older); numbers of 8 digits or more are dates
    (``access.log-20250115``, higher is newer). The live file, without a number, comes last.
    """
    directory, name = os.path.split(path)
    match = _ROTATION.match(name)
    stem, number = match.group(1), match.group(2)
    if number is None:
        return (directory, stem, 2, 0, name)
    value = int(number)
    return (directory, stem, 1, value, name) if len(number) >= 8 else (directory, stem, 0, -value, name)


def expand_paths(patterns: list[str]) -> tuple[list[str], list[str]]:
    """Paths and glob patterns -> (existing files, oldest first and without duplicates; patterns that found nothing)."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for pattern in patterns:
        pattern = os.path.expanduser(str(pattern))
        if glob.has_magic(pattern):
            matches = [p for p in glob.glob(pattern) if not os.path.isdir(p)]
        elif os.path.isdir(pattern):
            raise LogInputError(f'{pattern} is a directory: name the log files, or a pattern such as {os.path.join(pattern, "access.log*")}')
        else:
            matches = [pattern] if os.path.lexists(pattern) else []
        if not matches:
            missing.append(pattern)
        for match in matches:
            found.setdefault(os.path.realpath(match), match)
    files = sorted(found.values(), key=rotation_key)
    return files, missing


def open_log(path: str) -> tuple[t.Any, bool]:
    """Open a log for binary reading; gzip is recognised by its magic bytes, whatever the name says."""
    try:
        raw = open(path, 'rb')  # pylint: disable=consider-using-with
    except FileNotFoundError:
        raise LogInputError(f'access log not found: {path}') from None
    except PermissionError:
        raise LogInputError(f'cannot read {path}: permission denied (the log is usually readable by root or the adm '
                            f'group: use become, or add the remote user to that group)') from None
    except OSError as exc:
        raise LogInputError(f'cannot read {path}: {exc.strerror or exc}') from None
    try:
        magic = raw.read(6)
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise LogInputError(f'cannot read {path}: {exc.strerror or exc}') from None
    if magic[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode='rb'), True
    for prefix, name in UNSUPPORTED_MAGIC:
        if magic.startswith(prefix):
            raw.close()
            raise LogInputError(f'{path} is compressed with {name}, which this module does not read: decompress it '
                                f'first or give only plain and gzip files')
    return raw, False


def close_log(handle: t.Any) -> None:
    inner = getattr(handle, 'fileobj', None)
    handle.close()
    if inner is not None:
        inner.close()


def read_errors() -> tuple[type[BaseException], ...]:
    """What a damaged or truncated compressed file raises while it is read."""
    return (EOFError, zlib.error, OSError)


def line_batches(handle: t.Any, counters: dict) -> t.Iterator[list[bytes]]:
    """Lists of complete lines (without the newline), read ``CHUNK`` bytes at a time (see ``line_blocks``)."""
    for block in line_blocks(handle, counters):
        yield block.split(b'\n')


def line_blocks(handle: t.Any, counters: dict) -> t.Iterator[bytes]:
    """Blocks of complete lines joined by newlines (no final newline), read ``CHUNK`` bytes at a time.

    ``counters['bytes']`` grows by the (uncompressed) bytes read; ``counters['overlong']`` counts lines
    dropped because they had no newline within ``MAX_LINE`` bytes.
    """
    # read1: at most one read of the underlying stream, so a damaged gzip stream raises only after
    # everything decompressed before the damage has been returned.
    read = getattr(handle, 'read1', None) or handle.read
    carry = b''
    dropping = False
    while True:
        data = read(CHUNK)
        if not data:
            break
        counters['bytes'] += len(data)
        cut = data.rfind(b'\n')
        if cut < 0:                      # no line ends in this chunk
            if not dropping:
                carry += data
                if len(carry) > MAX_LINE:
                    carry, dropping = b'', True
                    counters['overlong'] += 1
            continue
        head, tail = data[:cut], data[cut + 1:]
        if dropping:                     # the rest of an overlong line ends here
            newline = head.find(b'\n')
            dropping = False
            block = head[newline + 1:] if newline >= 0 else None
        else:
            block = carry + head if carry else head
        carry = tail
        if block is not None:
            yield block
    if carry and not dropping:
        yield carry


def seek_to_time(handle: t.Any, size: int, since: float, fmt: str, times: dict) -> int:
    """Binary search in a plain file, time-ordered, for a line start at or before the first line >= since.

    Returns the offset to start reading from (the file is positioned there). A probe that finds no
    parseable time moves the search backwards, so a damaged stretch never makes lines get skipped.
    """
    low, high = 0, size
    probe = 65536
    while high - low > probe:
        middle = (low + high) // 2
        handle.seek(middle)
        block = handle.read(probe)
        newline = block.find(b'\n')
        stamp = None
        if newline >= 0:
            for line in block[newline + 1:].split(b'\n')[:-1][:20]:
                stamp = line_time(line, times, fmt)
                if stamp is not None:
                    break
        if stamp is not None and stamp < since:
            low = middle
        else:
            high = middle
    if low:
        handle.seek(low)
        skipped = handle.readline(MAX_LINE)  # the partial line at the offset
        low += len(skipped)
    handle.seek(low)
    return low


def now() -> float:
    return time.time()
