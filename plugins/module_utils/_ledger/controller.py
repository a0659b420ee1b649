# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What the controller-side modules share: their options and their direct-execution path.

``incident``, ``incident_escalate``, ``ledger_record``, ``approval`` and ``approval_vote``
normally run in their action plugins on the controller, where the incident ledger lives.
Each takes the PostgreSQL connection options, the ledger backend options and its own;
when one is executed directly on a host (for example by ansible-test) it runs there with
the host's name as context.
"""

from __future__ import annotations

import platform
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import (
    Call,
    run_worker,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    LEDGER_BACKEND_ARGS,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    POSTGRES_COMMON_ARGS,
)


def controller_argument_spec(own_args: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """PostgreSQL connection options + ledger backend options + the module's own options."""
    spec = dict(POSTGRES_COMMON_ARGS)
    spec.update(LEDGER_BACKEND_ARGS)
    spec.update(own_args)
    return spec


def host_context() -> dict[str, t.Any]:
    """Where an entry comes from when the module runs on a host rather than in its action plugin."""
    return {'host': platform.node() or None}


def run_on_host(module: t.Any, act: t.Callable[[dict[str, t.Any]], dict[str, t.Any]]) -> None:
    """Exit ``module`` with ``act(context)`` through the runner; a result marked failed is one message too."""
    def work() -> dict[str, t.Any]:
        result = act(host_context())
        if result.get('failed'):
            details = {key: value for key, value in result.items() if key not in ('msg', 'failed')}
            raise TrdrhubError(result.get('msg') or 'failed', **details)
        return result

    run_worker(module, lambda: Call(work))
