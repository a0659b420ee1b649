# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Read an incident's ledger, decide, and append one ``incident`` event under the ledger's lock.

The decision is taken twice: once without any lock (check mode, and the common case that
nothing changes, which then creates no directory, lock file or table), and again with the
ledger locked - the ``flock`` of the file backend or the advisory lock of the postgres
backend - so that two concurrent runs never both append from the same old record.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (
    known_incidents,
    ledger_lines,
    unknown_incident_message,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import (
    EVENT,
    MODULE,
    IncidentError,
    asks_for_change,
    diff,
    dominant,
    fold,
    phase_of,
    plan,
    verify_entries,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.obligations import derive as derive_obligations
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    ENV,
    EXISTS_SQL,
    HEAD_SQL,
    INSERT_SQL,
    LOCK_SQL,
    LedgerError,
    detect_actor,
    encode_line,
    make_entry,
    open_ledger,
    resolve_root,
    validate_incident_id,
)

try:
    from psycopg2 import sql
except ImportError:
    sql = None

ENTRIES_SQL = 'SELECT entry FROM {table} WHERE incident_id = %s ORDER BY seq'
KNOWN_SQL = 'SELECT DISTINCT incident_id FROM {table} ORDER BY incident_id'
UTC = datetime.timezone.utc


# -- reading ---------------------------------------------------------------------------------------
def _file_entries(path: str, lock_held: bool = False) -> list[t.Any]:
    """The entries of a ledger file; without ``lock_held`` an append in progress is waited for (never half an entry)."""
    try:
        lines = list(ledger_lines(path, lock_held))
    except OSError as exc:
        raise LedgerError(f'Cannot read the incident ledger {path}: {exc.strerror}') from None
    if lines and not lines[-1][1].endswith(b'\n'):
        raise LedgerError(f'The incident ledger {path} does not end with a complete entry (a write was cut short); '
                          'nothing was changed. Inspect it and move the incomplete last line aside.')
    entries = []
    for number, line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise IncidentError(f'Line {number} of the incident ledger {path} is not a ledger entry; the incident record '
                                'is not trusted and nothing was changed. Examine it with trdrhub.incident.audit_chain_verify '
                                f'(source: ledger_file, path: {path}).') from None
    return entries


def _table_present(ledger: t.Any) -> bool:
    quoted = ledger.ident.as_string(ledger.client.conn)
    return bool(ledger.client.query(EXISTS_SQL, (quoted,))[0]['present'])


def read_entries(ledger: t.Any, incident_id: str) -> list[t.Any]:
    """Every entry of the incident, oldest first; none when the ledger does not exist yet."""
    if ledger.backend == 'file':
        return _file_entries(ledger.location(incident_id))
    if not _table_present(ledger):
        return []
    rows = ledger.client.query(sql.SQL(ENTRIES_SQL).format(table=ledger.ident), (incident_id,))
    return [row['entry'] for row in rows]


def known_ids(ledger: t.Any) -> list[str]:
    """The incidents that have a ledger, sorted."""
    if ledger.backend == 'file':
        return known_incidents(ledger.root)
    if not _table_present(ledger):
        return []
    return [row['incident_id'] for row in ledger.client.query(sql.SQL(KNOWN_SQL).format(table=ledger.ident))]


def where(ledger: t.Any) -> str:
    return ledger.root if ledger.backend == 'file' else f'the ledger table {ledger.table}'


def how_to_check(ledger: t.Any, incident_id: str) -> str:
    if ledger.backend == 'file':
        return f'trdrhub.incident.audit_chain_verify (source: ledger_file, path: {ledger.location(incident_id)})'
    return f'trdrhub.incident.audit_chain_verify (source: ledger_table, table: {ledger.table}, incident_id: [{incident_id}])'


def current_record(ledger: t.Any, incident_id: str, entries: list[t.Any]) -> dict[str, t.Any] | None:
    verify_entries(entries, incident_id, ledger.location(incident_id), how_to_check(ledger, incident_id))
    return fold(entries, incident_id)


# -- appending under the lock ----------------------------------------------------------------------
def _append_file(ledger: t.Any, incident_id: str, decide: t.Callable[[list[t.Any]], t.Any]) -> t.Any:
    with ledger.locked(incident_id) as path:
        outcome = decide(_file_entries(path, lock_held=True))
        if outcome.fields is not None:
            outcome.entry = ledger._append_locked(path, incident_id, outcome.fields)
        return outcome


def _append_table(ledger: t.Any, incident_id: str, decide: t.Callable[[list[t.Any]], t.Any]) -> t.Any:
    ledger.ensure_table()
    client = ledger.client
    try:
        client.conn.autocommit = False
        client.query(LOCK_SQL, (ledger.table, incident_id))   # held until COMMIT: read, decide and insert are one step
        rows = client.query(sql.SQL(ENTRIES_SQL).format(table=ledger.ident), (incident_id,))
        outcome = decide([row['entry'] for row in rows])
        if outcome.fields is not None:
            head = client.query(sql.SQL(HEAD_SQL).format(table=ledger.ident), (incident_id,))
            seq, prev = (head[0]['seq'] + 1, head[0]['entry_hash']) if head else (1, None)
            entry = make_entry(incident_id, seq, prev, outcome.fields)
            client.query(sql.SQL(INSERT_SQL).format(table=ledger.ident),
                         (incident_id, seq, encode_line(entry).decode(), entry['hash'], prev))
            outcome.entry = entry
        client.conn.commit()
        return outcome
    except BaseException:
        with contextlib.suppress(Exception):
            client.conn.rollback()
        raise
    finally:
        with contextlib.suppress(Exception):
            client.conn.autocommit = True


def append_decided(ledger: t.Any, incident_id: str, decide: t.Callable[[list[t.Any]], t.Any]) -> t.Any:
    """Decide again on the entries read under the ledger's lock and append what the decision asks (at most one entry)."""
    append = _append_file if ledger.backend == 'file' else _append_table
    return append(ledger, incident_id, decide)


# -- the task --------------------------------------------------------------------------------------
class Outcome:
    """One decision: the record before and after, the changes, and the ledger fields to append (or None)."""

    def __init__(self, before: dict[str, t.Any] | None, after: dict[str, t.Any], changes: dict[str, t.Any],
                 fields: dict[str, t.Any] | None) -> None:
        self.before, self.after, self.changes, self.fields = before, after, changes, fields
        self.entry: dict[str, t.Any] | None = None


def redact_params(params: t.Mapping[str, t.Any], redactor: Redactor) -> dict[str, t.Any]:
    """Free text and references lose their secrets before they are compared or stored."""
    out = dict(params)
    for key in ('title', 'summary', 'note', 'root_cause', 'resolution', 'commander'):
        if out.get(key) is not None:
            out[key] = redactor.text(out[key])
    if out.get('references') is not None:
        out['references'] = redactor.clean(out['references'])
    return out


def manage_incident(params: t.Mapping[str, t.Any], *, check_mode: bool = False, want_diff: bool = False,
                    base_dir: str | None = None, context: t.Mapping[str, t.Any] | None = None,
                    env: t.Mapping[str, str] | None = None, variables: t.Mapping[str, t.Any] | None = None,
                    secrets: t.Iterable[str] = (), now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Bring the incident's record to what ``params`` ask; append one ``incident`` event when it changes."""
    env = os.environ if env is None else env
    incident_id = validate_incident_id(params.get('incident_id'))
    actor, provenance = detect_actor(env, variables)
    if env.get('TRDRHUB_LEDGER_RUN'):
        provenance['run'] = env['TRDRHUB_LEDGER_RUN']
    wanted = redact_params(params, Redactor(secrets))
    context = context or {}
    moment = now or datetime.datetime.now(UTC)

    def decide(entries: list[t.Any]) -> Outcome:
        before = current_record(ledger, incident_id, entries)
        if before is None and not asks_for_change(wanted) and (wanted.get('state') or 'open') == 'open':
            # A read of an incident that does not exist: most likely a mistyped id.
            raise IncidentError(unknown_incident_message(incident_id, where(ledger), known_ids(ledger)))
        after, changes, actions = plan(before, wanted, actor=actor, now=moment, policy=wanted.get('policy'))
        if not changes:
            return Outcome(before, after, {}, None)
        action = dominant(actions)
        data: dict[str, t.Any] = {'action': action, 'actions': actions, 'changes': changes, 'record': after}
        if wanted.get('note') is not None:
            data['note'] = wanted['note']
        data.update(provenance)   # provenance last: nothing in the request can forge who recorded it
        fields = dict(event=EVENT, phase=phase_of(action, after), actor=actor, host=context.get('host'),
                      play=context.get('play'), task=context.get('task'), module=MODULE, args={}, data=data)
        return Outcome(before, after, changes, fields)

    root = resolve_root(params.get('root') or env.get(ENV['root']), base_dir)
    with open_ledger(params, base_dir, env) as ledger:
        outcome = decide(read_entries(ledger, incident_id))
        if outcome.fields is not None and not check_mode:
            outcome = append_decided(ledger, incident_id, decide)
        location, backend = ledger.location(incident_id), ledger.backend
    result: dict[str, t.Any] = {
        'changed': bool(outcome.changes), 'incident': outcome.after, 'changes': outcome.changes,
        'entry': outcome.entry, 'ledger': location, 'backend': backend, 'incident_dir': os.path.join(root, incident_id)}
    # Notification obligations of the record, with their deadlines and time left now.
    result['obligations'] = derive_obligations(outcome.after, now=moment, policy=params.get('obligation_policy')) if outcome.after else []
    if check_mode and outcome.fields is not None:
        result['entry'] = None
    if want_diff:
        result['diff'] = diff(incident_id, outcome.before, outcome.after if outcome.changes else outcome.before)
    return result
