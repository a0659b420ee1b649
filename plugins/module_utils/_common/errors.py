# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The collection's one error root, ``TrdrhubError``, and the PostgreSQL errors.

Every failure a user can cause (bad input, unreachable server, missing privilege,
too many matching sessions, a refused API call) is raised as a ``TrdrhubError``
subclass of its domain (``PgIncidentError``, ``HttpApiError``, ``K8sError``,
``EmailError``, ``IpBlockError``, the rotation errors...), so the one runner
(``_common/runner.py``) needs one ``except`` and no Python traceback ever reaches
the playbook output.
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


class PgIncidentError(TrdrhubError):
    """A PostgreSQL failure, and (by its historical name) the input, approval, incident,
    PIR, audit and Redis errors that share its subclasses below."""


class PgInputError(PgIncidentError):
    """An option value is invalid in a way argument_spec cannot express."""


class PgConnectionError(PgIncidentError):
    """The server could not be reached, rejected the login, or is not PostgreSQL."""


class PgQueryError(PgIncidentError):
    """A statement failed; the message names the statement and quotes the server."""


class PgPermissionError(PgQueryError):
    """The login role lacks a privilege; the message names the privilege to grant."""


class PgGuardError(PgIncidentError):
    """A guard rail refused the whole operation before anything was signalled."""
