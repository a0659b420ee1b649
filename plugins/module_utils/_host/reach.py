# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""TCP reachability with latency (the runbook's ``ping`` and ``telnet redis-host 6379``) from the host the module runs on.

A TCP connect is what the application itself does, works where ICMP is filtered and needs no
privilege; the connect time is the round trip of the handshake, name resolution excluded.
"""

from __future__ import annotations

import socket
import statistics
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._host.procfs import HostError


def parse_target(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6 address]:port``; a bad one is one sentence naming it."""
    raw = str(text).strip()
    if raw.startswith('['):
        host, sep, port = raw[1:].partition(']:')
    else:
        host, sep, port = raw.rpartition(':')
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise HostError(f"targets: {text!r} is not host:port (a port between 1 and 65535; [address]:port for IPv6)")
    return host, int(port)


def reach(target: str, timeout: float, attempts: int) -> dict[str, t.Any]:
    host, port = parse_target(target)
    view: dict[str, t.Any] = {'target': target, 'host': host, 'port': port, 'address': None, 'reachable': False,
                              'latency_ms': None, 'samples_ms': [], 'error': None}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        view['error'] = f'name resolution failed: {exc.strerror or exc}'
        return view
    family, kind, proto, _canon, address = infos[0]
    view['address'] = address[0]
    for _attempt in range(attempts):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        started = time.perf_counter()
        try:
            sock.connect(address)
        except socket.timeout:
            view['error'] = f'no answer within {timeout:g}s (filtered, or the host is down)'
        except OSError as exc:
            view['error'] = exc.strerror or str(exc)
        else:
            view['samples_ms'].append(round((time.perf_counter() - started) * 1000, 3))
        finally:
            sock.close()
    if view['samples_ms']:
        view.update(reachable=True, latency_ms=round(statistics.median(view['samples_ms']), 3))
        if len(view['samples_ms']) == attempts:
            view['error'] = None
    return view


def reach_all(targets: t.Iterable[str], timeout: float, attempts: int) -> list[dict[str, t.Any]]:
    targets = list(targets)
    for target in targets:  # every target is valid before the first connect
        parse_target(target)
    return [reach(target, timeout, attempts) for target in targets]
