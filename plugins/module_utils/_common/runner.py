# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The one way the collection's modules run: check the libraries, build the worker, open the client, run, exit.

A worker (a ``Worker``) validates the options when it is built (before any connection),
``run(client)`` returns the result, and its ``warnings`` (if any) become module warnings. Every expected
failure is a ``TrdrhubError`` and ends as a single ``fail_json`` message (its text and its
``details``, never a traceback); the client is always closed.
"""

from __future__ import annotations

import contextlib
import traceback
import typing as t

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import mask_secrets
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import IncidentModule


class Library:
    """A library a module may need, for the missing-library check: its pip name, whether it imported, the traceback.

    Each client module_utils exports one, made where it imports the library (an ImportError
    inside the block is kept, with its traceback, for the module's failure message)::

        with Library.optional('requests') as REQUESTS:
            import requests

    It unpacks as ``(name, present, error)``.
    """

    def __init__(self, name: str, present: bool = True, error: t.Optional[str] = None) -> None:
        self.name, self.present, self.error = name, present, error

    def __iter__(self) -> t.Iterator[t.Any]:
        return iter((self.name, self.present, self.error))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Library) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f'Library(name={self.name!r}, present={self.present!r}, error={self.error!r})'

    def _replace(self, **changes: t.Any) -> Library:
        """A copy with ``changes`` (as a named tuple's ``_replace``)."""
        return Library(**dict(zip(('name', 'present', 'error'), self), **changes))

    @classmethod
    def missing(cls, name: str) -> Library:
        """The library that did not import (call it in the ``except ImportError`` branch: it keeps the traceback)."""
        return cls(name, False, traceback.format_exc())

    @classmethod
    @contextlib.contextmanager
    def optional(cls, name: str) -> t.Iterator[Library]:
        """The library imported in the ``with`` block: present, or missing with the ImportError's traceback."""
        library = cls(name)
        try:
            yield library
        except ImportError:
            library.present, library.error = False, traceback.format_exc()


class Worker:
    """The base of every module's worker: the options, check mode and diff mode, and the warnings of the run.

    Built from the module's options before any connection is opened: ``check()`` (or a
    subclass's ``__init__`` after calling this one) refuses options that cannot work with an
    error naming the option; ``run(client)`` does the work and returns the module's result;
    what it appends to ``warnings`` becomes module warnings, on success and on failure.
    """

    def __init__(self, params: t.Mapping[str, t.Any], check_mode: bool = False, diff: bool = False) -> None:
        self.params: t.Any = params
        self.check_mode, self.diff = check_mode, diff
        self.warnings: list[str] = []
        self.check()

    def check(self) -> None:
        """Refuse options that cannot work (an error naming the option); nothing to refuse by default."""

    def run(self, client: t.Any) -> dict[str, t.Any]:
        """The module's result, from ``client`` (None for a worker that needs no connection)."""
        raise NotImplementedError


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


def run_module(argument_spec: dict[str, t.Any], worker: t.Callable[[t.Any], t.Any],
               client: t.Callable[[t.Any, t.Any], t.Any] | None = None, *,
               requires: t.Sequence[Library] | t.Callable[[dict[str, t.Any]], t.Sequence[Library]] = (),
               errors: tuple[type[Exception], ...] = (TrdrhubError,),
               error_extra: t.Callable[[t.Any, t.Any], dict[str, t.Any]] | None = None,
               finish: t.Callable[[t.Any, dict[str, t.Any], t.Any], str | None] | None = None,
               secret_options: t.Sequence[str] = (), **constraints: t.Any) -> None:
    """A module's whole ``main()``: build the module (check mode supported) and run its worker.

    ``worker(module)`` builds the worker, ``client(module, worker)`` its connection (or None).
    ``requires`` are the libraries checked before either is built (or a function of the
    options returning them, for a library only some options need). ``error_extra(module,
    client)`` and ``finish(module, result, client)`` are those of ``run_worker``; the values of
    ``secret_options`` are masked in a failure's message. The other keywords
    (``mutually_exclusive``, ``required_if``...) go to the module.
    """
    module = IncidentModule(argument_spec=argument_spec, supports_check_mode=True, **constraints)
    run_worker(module, lambda: worker(module), (lambda made: client(module, made)) if client else None,
               requires=requires(module.params) if callable(requires) else requires, errors=errors,
               error_extra=(lambda made: error_extra(module, made)) if error_extra else None,
               finish=(lambda result, made: finish(module, result, made)) if finish else None,
               secrets=[module.params.get(name) for name in secret_options])


def request_log(module: t.Any, client: t.Any) -> dict[str, t.Any]:   # pylint: disable=unused-argument
    """``error_extra`` of a module whose client records its requests: them, even on failure."""
    return {'requests': client.requests if client else []}


class Call:
    """A worker made of one function: ``run`` calls ``func(*args, **kwargs)`` (for work that needs no client object)."""

    def __init__(self, func: t.Callable[..., dict[str, t.Any]], *args: t.Any, **kwargs: t.Any) -> None:
        self.func, self.args, self.kwargs = func, args, kwargs

    def run(self, client: t.Any) -> dict[str, t.Any]:   # pylint: disable=unused-argument
        return self.func(*self.args, **self.kwargs)
