# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Builds a secret rotation from module options and runs it; shared by the module and the CLI.

Every failure comes back as ``RotationFailed`` with one message and a result (status,
steps, fingerprints) that never contains a secret.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgIncidentError,
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    KUBERNETES,
    K8sError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    LedgerError,
    detect_actor,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PgClient,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.pg import (
    PgRole,
    RotationLog,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import (
    CommandRestarter,
    KubeRestarter,
    NoRestart,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import (
    CheckFailed,
    RotationError,
    RotationInputError,
    Rotator,
    validate,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FileStore,
    K8sSecretStore,
    SecretsClient,
    StoreError,
)


class RotationFailed(TrdrhubError):
    """``str(exc)`` is the final message; ``result`` (its ``details``) the keys to fail with."""

    def __init__(self, msg: str, result: dict[str, t.Any] | None = None) -> None:
        super().__init__(msg, **(result or {}))
        self.result = self.details


def verify_params(params: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Where the new password is tried: the admin connection's target, or verify_login_host/port."""
    out = dict(params)
    if params.get('verify_login_host'):
        out['login_host'] = params['verify_login_host']
        out['login_unix_socket'] = None
    if params.get('verify_login_port'):
        out['login_port'] = params['verify_login_port']
    return out


def rotate(params: dict[str, t.Any], runner: t.Callable[[list[str]], tuple[int, str, str]], check_mode: bool = False,
           warn: t.Callable[[str], None] = lambda msg: None, **rotator_kw: t.Any) -> dict[str, t.Any]:
    """Run one rotation (or its plan, in check mode) and return the result."""
    pg = k8s = rotator = None
    try:
        validate(params)
        needs_k8s = params.get('store') == 'k8s_secret' or bool(params.get('restart_deployments'))
        if needs_k8s:
            if not KUBERNETES.present:
                raise RotationFailed('store=k8s_secret and restart_deployments need the kubernetes Python package '
                                     '(pip install kubernetes)')
            k8s = SecretsClient(params.get('k8s_auth') or {})
        if params.get('store') == 'k8s_secret':
            store: t.Any = K8sSecretStore(k8s, params['k8s_namespace'], params['k8s_secret'], params['key'], params['value_format'])
        else:
            store = FileStore(params['path'], params.get('key'), params['file_format'], params['value_format'])
        if params.get('restart_deployments'):
            restarter: t.Any = KubeRestarter(k8s, params['k8s_namespace'], params['restart_deployments'], params['restart_timeout'])
        elif params.get('restart_command'):
            restarter = CommandRestarter(params['restart_command'], runner)
        else:
            restarter = NoRestart()
        pg = PgClient(params)
        log = RotationLog(pg, params['log_table']) if params.get('log_rotation') else None
        rotator = Rotator(params, PgRole(pg, params['role'], verify_params(params)), store, restarter, log,
                          check_mode=check_mode, actor=detect_actor()[0], **rotator_kw)
        result = rotator.run()
    except RotationError as exc:
        _flush(rotator, warn)
        raise RotationFailed(str(exc), dict(exc.result, **_trace(pg, k8s))) from None
    except (RotationInputError, CheckFailed, PgIncidentError, StoreError, K8sError, LedgerError) as exc:
        _flush(rotator, warn)
        msg = rotator.scrub(exc) if rotator else str(exc)
        steps = rotator.steps if rotator else []
        raise RotationFailed(msg, dict(status='failed', steps=steps, **_trace(pg, k8s))) from None
    finally:
        if pg is not None:
            pg.close()
        if k8s is not None:
            k8s.close()
    _flush(rotator, warn)
    result.update(_trace(pg, k8s))
    return result


def _flush(rotator: Rotator | None, warn: t.Callable[[str], None]) -> None:
    for warning in rotator.warnings if rotator else []:
        warn(warning)


def _trace(pg: t.Any, k8s: t.Any) -> dict[str, t.Any]:
    return {'queries': list(pg.queries) if pg else [], 'requests': list(k8s.requests) if k8s else []}
