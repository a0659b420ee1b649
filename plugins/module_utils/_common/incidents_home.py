# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Where incidents live: the one rule every playbook, module, plugin, script and extension follows.

The incidents home holds one directory per incident (ledger, approvals, diagnostics, review):

1. the environment variable ``TRDRHUB_LEDGER_DIR``, else
2. the inventory variable ``trdrhub_incidents_dir``, else
3. ``$XDG_STATE_HOME/trdrhub-incident/incidents`` (``~/.local/state/trdrhub-incident/incidents``).

None of them depends on the playbook's directory or the current directory, so a playbook run
from a checkout, the same playbook installed, the approve CLI, EDA and Rundeck jobs all find
the same incidents. A relative environment value is taken from the current directory (it is
the shell's), a relative inventory value from the inventory's directory; both are made absolute
before use, so the printed paths and commands work from anywhere.

Each incident's ledger is ``<home>/<incident_id>/ledger.jsonl``; ``ledger_lines`` is the one reader
of such files (the writer is ``_ledger/ledger.py``).
"""

from __future__ import annotations

import difflib
import fcntl
import os
import typing as t

ENV_VAR = 'TRDRHUB_LEDGER_DIR'
INVENTORY_VAR = 'trdrhub_incidents_dir'
STATE_SUBDIR = os.path.join('trdrhub-incident', 'incidents')
LEDGER_FILE = 'ledger.jsonl'
LOCK_FILE = 'ledger.lock'   # appends hold it exclusively (flock), readers briefly shared
# The host variables the rule reads.
HOME_VARIABLES = (INVENTORY_VAR, 'inventory_dir', 'ansible_inventory_sources')


def default_home(env: t.Mapping[str, str] | None = None) -> str:
    """The XDG state directory of the user running the controller."""
    env = os.environ if env is None else env
    state = env.get('XDG_STATE_HOME') or ''
    if not os.path.isabs(state):   # the XDG spec ignores relative values
        state = os.path.join(os.path.expanduser('~'), '.local', 'state')
    return os.path.normpath(os.path.join(state, STATE_SUBDIR))


def absolute(path: t.Any, base: str | None = None) -> str:
    """``~`` expanded; relative to ``base`` (else the current directory)."""
    text = os.path.expanduser(str(path))
    if not os.path.isabs(text):
        text = os.path.join(base or os.getcwd(), text)
    return os.path.normpath(text)


def incidents_home(env: t.Mapping[str, str] | None = None,
                   variables: t.Mapping[str, t.Any] | None = None) -> tuple[str, str]:
    """``(absolute path, source)``; source is ``environment``, ``inventory`` or ``default``.

    ``variables`` are a host's variables, already templated where it matters (the inventory
    variable, ``inventory_dir`` and ``ansible_inventory_sources``, see HOME_VARIABLES).
    """
    env = os.environ if env is None else env
    if env.get(ENV_VAR):
        return absolute(env[ENV_VAR]), 'environment'
    value = (variables or {}).get(INVENTORY_VAR)
    if value not in (None, ''):
        return absolute(value, inventory_base(variables or {})), 'inventory'
    return default_home(env), 'default'


def inventory_base(variables: t.Mapping[str, t.Any]) -> str | None:
    """The directory of the host's inventory; for the implicit localhost, that of the first inventory source."""
    if variables.get('inventory_dir'):
        return str(variables['inventory_dir'])
    sources = [str(s) for s in variables.get('ansible_inventory_sources') or () if os.path.exists(str(s))]
    if not sources:
        return None
    first = os.path.abspath(sources[0])
    return first if os.path.isdir(first) else os.path.dirname(first)


def known_incidents(home: str) -> list[str]:
    """The incidents that have a ledger under ``home``, sorted."""
    try:
        names = os.listdir(home)
    except OSError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(home, n, LEDGER_FILE)))


def closest(incident_id: str, known: t.Sequence[str]) -> str | None:
    """The known incident an id most likely meant (a typo such as INC-UX-001 for INC-UX-0001)."""
    found = difflib.get_close_matches(incident_id, [k for k in known if k != incident_id], n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_incident_message(incident_id: str, where: str, known: t.Sequence[str]) -> str:
    """Why an incident that should exist is refused, with what does exist."""
    guess = closest(incident_id, known)
    listed = ', '.join(known[-20:]) if known else 'none'
    more = f' (the last 20 of {len(known)})' if len(known) > 20 else ''
    return (f'Incident {incident_id} has no record in its ledger yet (looked in {where}); nothing was done. '
            + (f'Did you mean {guess}? ' if guess else '')
            + f'Known incidents{more}: {listed}. Open a new incident with the triage playbook.')


def settled_size(path: str) -> int | None:
    """The size of the ledger file at ``path`` once no append is in progress, or None when there is no file.

    An append holds ``ledger.lock`` beside the file exclusively while it writes (and cuts a short write
    back); taking the lock shared for a moment waits for it, so a reader that reads only this many bytes
    never sees half an entry, and does not hold appends up while it reads. Without a lock file no append
    has run there (or the ledger was copied): the file is read as it is.
    """
    try:
        lock = os.open(os.path.join(os.path.dirname(path) or '.', LOCK_FILE), os.O_RDONLY)
    except OSError:
        lock = None
    try:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_SH)
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
    finally:
        if lock is not None:
            os.close(lock)   # releases the shared lock


def ledger_lines(path: str, lock_held: bool = False) -> t.Iterator[tuple[int, bytes]]:
    """The one reader of ledger files: ``(line number, raw line)`` of the ledger file at ``path``, newline kept.

    Used by the incident record, the ledger callback and audit_chain_verify alike; each parses the
    lines its own way. Without ``lock_held`` only the bytes present once no append is in progress
    are read (``settled_size``), so never half an entry; with it (the caller holds the ledger lock)
    the whole file. A missing file has no lines; any other ``OSError`` is the caller's to word.
    """
    size = None if lock_held else settled_size(path)
    if size is None and not lock_held:
        return
    try:
        handle = open(path, 'rb')
    except FileNotFoundError:
        return
    with handle:
        yield from enumerate(handle if size is None else _lines_within(handle, size), start=1)


def _lines_within(handle: t.BinaryIO, size: int) -> t.Iterator[bytes]:
    """The lines of ``handle`` that lie within its first ``size`` bytes."""
    for raw in handle:
        if size <= 0:
            return
        if len(raw) > size:
            raw = raw[:size]
        size -= len(raw)
        yield raw
