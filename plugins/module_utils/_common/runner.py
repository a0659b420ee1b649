# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The one way the collection's modules run: check the libraries, build the worker, open the client, run, exit.

A worker validates the options when it is built (before any connection), ``run(client)``
returns the result, and its ``warnings`` (if any) become module warnings. Every expected
failure is a ``TrdrhubError`` and ends as a single ``fail_json`` message (its text and its
``details``, never a traceback); the client is always closed.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import mask_secrets

# (pip name, imported?, the import traceback): each client module_utils exports one for its library.
Library = tuple[str, bool, t.Optional[str]]


def require_libraries(module: t.Any, *libraries: Library) -> None:
    """Fail with Ansible's standard message for the first library that did not import."""
    for name, present, error in libraries:
        if not present:
            module.fail_json(msg=missing_required_lib(name), exception=error)


def fail_from_exception(module: t.Any, exc: Exception, secrets: t.Iterable[str | None] = (), **extra: t.Any) -> None:
    """Exit with the error's sentence as ``msg`` (``secrets`` masked) and its ``details`` (evidence) as result keys."""
    extra.update(getattr(exc, 'details', None) or {})
    module.fail_json(msg=mask_secrets(str(exc), secrets, min_length=1), **extra)


def _warn(module: t.Any, worker: t.Any) -> None:
    for warning in getattr(worker, 'warnings', None) or ():
        module.warn(warning)


def run_worker(module: t.Any, make_worker: t.Callable[[], t.Any], make_client: t.Callable[[t.Any], t.Any] | None = None, *,
               requires: t.Sequence[Library] = (),
               errors: tuple[type[Exception], ...] = (TrdrhubError,),
               error_extra: t.Callable[[t.Any], dict[str, t.Any]] | None = None,
               finish: t.Callable[[dict[str, t.Any], t.Any], str | None] | None = None,
               secrets: t.Iterable[str | None] = ()) -> None:
    """Run ``make_worker().run(make_client(worker))`` and exit the module with its result.

    ``requires`` are the libraries checked first. ``make_client`` may be None (or return
    None) for a worker that needs no connection. ``error_extra`` adds result keys to a
    failure (for example the HTTP request log); ``finish`` may turn a successful result into
    a failure by returning a message (``fail_on_*`` options). ``secrets`` are masked in a failure's
    message (a server may echo a credential).
    """
    require_libraries(module, *requires)
    worker = client = None
    try:
        worker = make_worker()
        client = make_client(worker) if make_client else None
        result = worker.run(client)
    except errors as exc:
        _warn(module, worker)
        fail_from_exception(module, exc, secrets, **(error_extra(client) if error_extra else {}))
    else:
        _warn(module, worker)
        message = finish(result, client) if finish else None
        if message:
            module.fail_json(msg=message, **result)
        module.exit_json(**result)
    finally:
        if client is not None:
            client.close()


class Call:
    """A worker made of one function: ``run`` calls it (for work that needs no client object)."""

    def __init__(self, func: t.Callable[[], dict[str, t.Any]]) -> None:
        self.func = func

    def run(self, client: t.Any) -> dict[str, t.Any]:   # pylint: disable=unused-argument
        return self.func()
