# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The one way the collection's modules run: build the worker, open the client, run, exit.

A worker validates the options when it is built (before any connection), ``run(client)``
returns the result, and its ``warnings`` (if any) become module warnings. Every expected
failure is one of ``errors`` and ends as a single ``fail_json`` message; the client is
always closed.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    PgIncidentError,
)


def _warn(module: t.Any, worker: t.Any) -> None:
    for warning in getattr(worker, 'warnings', None) or ():
        module.warn(warning)


def run_worker(module: t.Any, make_worker: t.Callable[[], t.Any], make_client: t.Callable[[t.Any], t.Any], *,
               errors: tuple[type[Exception], ...] = (PgIncidentError,),
               error_extra: t.Callable[[t.Any], dict[str, t.Any]] | None = None,
               finish: t.Callable[[dict[str, t.Any], t.Any], str | None] | None = None) -> None:
    """Run ``make_worker().run(make_client(worker))`` and exit the module with its result.

    ``make_client`` may return None for a worker that needs no connection. ``error_extra``
    adds result keys to a failure (for example the HTTP request log); ``finish`` may turn a
    successful result into a failure by returning a message (``fail_on_*`` options).
    """
    worker = client = None
    try:
        worker = make_worker()
        client = make_client(worker)
        result = worker.run(client)
    except errors as exc:
        _warn(module, worker)
        extra = error_extra(client) if error_extra else {}
        extra.update(getattr(exc, 'details', None) or {})
        module.fail_json(msg=str(exc), **extra)
    else:
        _warn(module, worker)
        message = finish(result, client) if finish else None
        if message:
            module.fail_json(msg=message, **result)
        module.exit_json(**result)
    finally:
        if client is not None:
            client.close()
