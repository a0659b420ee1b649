# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""One log excerpt as app_logs_info returns it: the last lines, each redacted and cut to a readable length.

Application logs are where secrets leak in practice (a DSN in a connection error, a bearer
token in a debug line), so every line goes through the collection's redaction before it
leaves the host, with the secrets the caller knows added to the secret shapes it masks.
"""

from __future__ import annotations

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import TrdrhubError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor


class AppLogsError(TrdrhubError):
    """The logs could not be read at all (the compose command is missing, a bad option)."""


def excerpt(text: str, redactor: Redactor, tail: int, max_line: int) -> dict[str, t.Any]:
    """``lines`` (the last ``tail``, redacted, each at most ``max_line`` characters) and their count."""
    lines = text.splitlines()[-tail:] if tail else []
    shown = []
    for line in lines:
        line = redactor.text(line.rstrip('\r'))
        shown.append(line if len(line) <= max_line else line[:max_line - 3] + '...')
    return {'lines': shown, 'line_count': len(shown)}
