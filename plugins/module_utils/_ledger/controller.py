# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""What the controller-side modules share: their options and their direct-execution path.

``incident``, ``incident_escalate``, ``ledger_record``, ``approval`` and ``approval_vote``
normally run in their action plugins on the controller, where the incident ledger lives.
Each takes the PostgreSQL connection options, the ledger backend options and its own;
when one is executed directly on a host (for example by ansible-test) ``controller_main``
runs the same operation there, with the host's name as context.
"""

from __future__ import annotations

import os
import platform
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import (
    Call,
    run_module,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    LEDGER_BACKEND_ARGS,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    POSTGRES_MUTUALLY_EXCLUSIVE,
    postgres_spec,
)


def controller_argument_spec(own_args: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """PostgreSQL connection options + ledger backend options + the module's own options."""
    return postgres_spec(LEDGER_BACKEND_ARGS, own_args)


def host_context() -> dict[str, t.Any]:
    """Where an entry comes from when the module runs on a host rather than in its action plugin."""
    return {'host': platform.node() or None}


def controller_main(argument_spec: dict[str, t.Any], operation: t.Callable[..., dict[str, t.Any]], *, want_diff: bool = False,
                    prepare: t.Callable[[t.Any], None] | None = None) -> None:
    """``main()`` of a controller-side module executed directly on a host.

    Runs ``operation(params, check_mode=, base_dir=<cwd>, context=<this host>)`` (and ``want_diff=``
    if asked) through the runner, as the module's action plugin runs it on the controller;
    ``prepare(module)`` runs first (for example to add no_log values). A result marked failed
    is one message too.
    """
    def worker(module: t.Any) -> Call:
        if prepare is not None:
            prepare(module)
        extra = {'want_diff': module._diff} if want_diff else {}

        def work() -> dict[str, t.Any]:
            result = operation(module.params, check_mode=module.check_mode, base_dir=os.getcwd(), context=host_context(), **extra)
            if result.get('failed'):
                details = {key: value for key, value in result.items() if key not in ('msg', 'failed')}
                raise TrdrhubError(result.get('msg') or 'failed', **details)
            return result

        return Call(work)

    run_module(argument_spec, worker, mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)


class ControllerModule(t.NamedTuple):
    """What a controller-side module's file exports (assigned one by one: ansible-doc reads plain names)."""

    argument_spec: t.Callable[[], dict[str, t.Any]]
    main: t.Callable[[], None]


def controller_module(own_args: t.Mapping[str, t.Any], operation: t.Callable[..., dict[str, t.Any]],
                      **options: t.Any) -> ControllerModule:
    """``argument_spec()`` and ``main()`` of a controller-side module: its ``own_args`` run by ``operation``.

    ``main()`` is ``controller_main`` (``options``: ``want_diff``, ``prepare``).
    """
    def argument_spec() -> dict[str, t.Any]:
        return controller_argument_spec(own_args)

    def main() -> None:
        controller_main(argument_spec(), operation, **options)

    return ControllerModule(argument_spec, main)
