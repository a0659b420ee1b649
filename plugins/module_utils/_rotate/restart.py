# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Restarting the consumers of a rotated secret, and the optional health probe afterwards.

Kubernetes Deployments are restarted the way ``kubectl rollout restart`` does it (the
pod template's ``kubectl.kubernetes.io/restartedAt`` annotation) through the collection's
``k8s_rollout`` logic, which also waits for the rollout by kubectl's rules. Anything else
is restarted by a command (for example ``docker compose restart api``).
"""

from __future__ import annotations

import time
import typing as t
import urllib.error

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    K8sError,
    display_url,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.rollout_run import (
    Rollout,
)


class RestartError(TrdrhubError):
    """A consumer did not restart (command failed, rollout failed or timed out)."""


class KubeRestarter:
    """``rollout restart`` of each Deployment, then a wait for every rollout to complete."""

    def __init__(self, client: t.Any, namespace: str, deployments: t.Sequence[str], timeout: float, **rollout_kw: t.Any) -> None:
        self.client = client
        self.namespace = namespace
        self.deployments = list(deployments)
        self.timeout = timeout
        self.rollout_kw = rollout_kw

    def targets(self) -> list[str]:
        return [f'deployment/{name} ({self.namespace})' for name in self.deployments]

    def restart(self) -> list[str]:
        params = {'action': 'restart', 'wait': False, 'timeout': self.timeout, 'incident_id': None}
        sleep = self.rollout_kw.get('sleep', time.sleep)
        rollouts = []
        try:
            for name in self.deployments:
                rollout = Rollout(self.client, self.namespace, name, **self.rollout_kw)
                before, after = rollout.apply(params)[:2]
                if _generation(after) <= _generation(before):
                    # restartedAt has a resolution of one second: a restart in the same second as the
                    # previous one (the rollback right after a rotation's restart) changes nothing and
                    # would roll no pod. The next second's value does.
                    sleep(1.05 - time.time() % 1)
                    after = rollout.apply(params)[1]
                rollouts.append((rollout, _generation(after)))
            for rollout, generation in rollouts:
                rollout.wait(generation, self.timeout)
        except K8sError as exc:
            raise RestartError(str(exc)) from None
        return list(self.deployments)


def _generation(dep: t.Mapping[str, t.Any]) -> int:
    return int((dep.get('metadata') or {}).get('generation') or 0)


class CommandRestarter:
    """One command (argv, no shell) that restarts the consumers; rc 0 means restarted."""

    def __init__(self, argv: t.Sequence[str], runner: t.Callable[[list[str]], tuple[int, str, str]]) -> None:
        self.argv = list(argv)
        self.runner = runner

    def targets(self) -> list[str]:
        return [' '.join(self.argv)]

    def restart(self) -> list[str]:
        try:
            rc, out, err = self.runner(self.argv)
        except OSError as exc:
            raise RestartError(f'restart_command {self.argv[0]} could not run: {exc.strerror or exc}') from None
        if rc != 0:
            tail = ' '.join((err or out or '').split())[-300:]
            raise RestartError(f'restart_command {" ".join(self.argv)} exited with {rc}' + (f': {tail}' if tail else ''))
        return [' '.join(self.argv)]


class NoRestart:
    """No consumer to restart (they re-read the store themselves, or an operator restarts them)."""

    @staticmethod
    def targets() -> list[str]:
        return []

    @staticmethod
    def restart() -> list[str]:
        return []


def probe_health(url: str, timeout: float) -> tuple[bool, str]:
    """GET ``url``: (True, status) for 2xx/3xx; the reason otherwise. No credentials are shown."""
    shown = display_url(url)
    try:
        with open_url(url, method='GET', timeout=timeout, follow_redirects='safe') as resp:
            return 200 <= resp.status < 400, f'GET {shown} answered {resp.status}'
    except urllib.error.HTTPError as exc:
        return False, f'GET {shown} answered {exc.code} {exc.reason}'
    except (urllib.error.URLError, UrlConnectionError, SSLValidationError, OSError, ValueError) as exc:
        return False, f'GET {shown} failed: {getattr(exc, "reason", None) or exc}'
