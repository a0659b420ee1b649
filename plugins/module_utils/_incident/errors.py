# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The errors of the incident domain: ``IncidentError`` and one subclass per part of it.

All of them are inputs the incident logic refuses (an ``InputError``): a record or ledger
it cannot use, a time, priority or policy it cannot place. ``except IncidentError``
catches any of them; the modules and filters let the runner or the filter report the text.
"""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError


class IncidentError(InputError):
    """The incident cannot be read or changed as asked; the message says why and what to do."""


class AssessmentError(IncidentError):
    """An input the matrix cannot place: unknown severity, impact, scope, policy or time."""


class EscalationError(IncidentError):
    """An input escalation cannot use: unknown category, level, contact field or time."""


class ObligationError(IncidentError):
    """An obligation policy or notification the module cannot use."""
