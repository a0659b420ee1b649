# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The collection's one error root, ``TrdrhubError``, the neutral ``InputError``, and the PostgreSQL errors.

Every failure a user can cause (bad input, unreachable server, missing privilege,
too many matching sessions, a refused API call) is raised as a ``TrdrhubError``
subclass of its domain, so the one runner (``_common/runner.py``) needs one ``except``
and no Python traceback ever reaches the playbook output. Each domain has its own base
beside its code: ``PgIncidentError`` (PostgreSQL, here), ``HttpApiError`` (``http_errors.py``),
``K8sError``, ``RedisError``, ``LedgerError``, ``ApprovalError``, ``IncidentError``,
``PirError``, ``AuditError``, ``EmailError``, ``IpBlockError``, the rotation errors...
An invalid input that argument_spec cannot express is an ``InputError`` as well
(``PgInputError``, ``RedisInputError``, ``LogInputError``, the incident errors...), so
code that means "the input was refused" catches that, whatever the domain.
"""

from __future__ import annotations

import typing as t


class TrdrhubError(Exception):
    """Root of the collection's errors: ``str(exc)`` is the final ``msg``; ``details`` are extra result keys.

    ``details`` lets a failure carry evidence (for example the sessions that
    matched when ``max_sessions`` was exceeded) without a second exit path.
    """

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.details: dict[str, t.Any] = details


class InputError(TrdrhubError):
    """An option value or input document is invalid in a way argument_spec cannot express (any domain)."""


class PgIncidentError(TrdrhubError):
    """A PostgreSQL failure: the base of the PostgreSQL errors below, and of nothing else."""


class PgInputError(PgIncidentError, InputError):
    """An option of a PostgreSQL module is invalid in a way argument_spec cannot express."""


class PgConnectionError(PgIncidentError):
    """The server could not be reached, rejected the login, or is not PostgreSQL."""


class PgQueryError(PgIncidentError):
    """A statement failed; the message names the statement and quotes the server."""


class PgPermissionError(PgQueryError):
    """The login role lacks a privilege; the message names the privilege to grant."""


class PgGuardError(PgIncidentError):
    """A guard rail refused the whole operation before anything was signalled."""
