# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Read the incident's ledger, decide what escalation is due, record each new one under the ledger's lock.

The record and its verification are the incident module's (``_incident_store``); each new
escalation is decided again on the entries read under the lock before it is appended, so two
concurrent runs never record - and never page - the same escalation twice.
"""

from __future__ import annotations

import datetime
import os
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.escalation import (
    EVENT,
    MAX_LEVEL,
    MODULE,
    EscalationError,
    decide,
    message,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.incident import (
    phase_of,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._incident.store import (
    Outcome,
    append_decided,
    current_record,
    read_entries,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    detect_actor,
    open_ledger,
    validate_incident_id,
)

UTC = datetime.timezone.utc

ESCALATE_ARGS: dict[str, dict[str, t.Any]] = {
    'incident_id': {'type': 'str', 'required': True},
    'now': {'type': 'str'},
    'level': bounded({'type': 'int'}, 1, MAX_LEVEL),
    'external': {'type': 'list', 'elements': 'str', 'default': []},
    'contacts': {'type': 'dict', 'default': {}},
    'external_contacts': {'type': 'dict', 'default': {}},
    'external_rules': {'type': 'dict', 'default': {}},
    'policy': {'type': 'dict', 'default': {}},
}


def _fields(incident_id: str, item: dict[str, t.Any], record: dict[str, t.Any], actor: str, provenance: dict[str, t.Any],
            context: t.Mapping[str, t.Any], redactor: Redactor) -> dict[str, t.Any]:
    details = {key: item.get(key) for key in ('kind', 'level', 'who', 'title', 'category', 'due_at', 'reason', 'contact')}
    data: dict[str, t.Any] = dict(action='escalate', escalation=item['key'], priority=record.get('priority'),
                                  status=record.get('status'), **details)
    data = redactor.clean(data)
    data['message'] = redactor.text(message(incident_id, item, record))
    data.update(provenance)   # provenance last: nothing in the request can forge who recorded it
    return dict(event=EVENT, phase=phase_of('escalate', record), actor=actor, host=context.get('host'),
                play=context.get('play'), task=context.get('task'), module=MODULE, args={}, data=data)


def manage_escalation(params: t.Mapping[str, t.Any], *, check_mode: bool = False, base_dir: str | None = None,
                      context: t.Mapping[str, t.Any] | None = None, env: t.Mapping[str, str] | None = None,
                      variables: t.Mapping[str, t.Any] | None = None, secrets: t.Iterable[str] = (),
                      now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Decide the escalation of the incident now; append one ``escalation`` event per new escalation."""
    env = os.environ if env is None else env
    incident_id = validate_incident_id(params.get('incident_id'))
    actor, provenance = detect_actor(env, variables)
    if env.get('TRDRHUB_LEDGER_RUN'):
        provenance['run'] = env['TRDRHUB_LEDGER_RUN']
    redactor, context = Redactor(secrets), context or {}
    moment = params.get('now') or now or datetime.datetime.now(UTC)
    options = {key: params.get(key) for key in ('level', 'external', 'contacts', 'external_contacts', 'policy')}
    options['rules'] = params.get('external_rules')

    def plan(ledger: t.Any, entries: list[t.Any]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
        record = current_record(ledger, incident_id, entries)
        if record is None:
            raise EscalationError(f'Incident {incident_id} has no record in its ledger ({ledger.location(incident_id)}): '
                                  'open it with trdrhub.incident.incident first. Nothing was escalated.')
        return record, decide(record, entries, now=moment, **options)

    def claim(ledger: t.Any, key: str) -> t.Callable[[list[t.Any]], Outcome]:
        def decide_again(entries: list[t.Any]) -> Outcome:
            record, again = plan(ledger, entries)
            item = next((i for i in again['new_escalations'] if i['key'] == key), None)   # None: another run recorded it
            fields = _fields(incident_id, item, record, actor, provenance, context, redactor) if item else None
            return Outcome(record, record, {}, fields)
        return decide_again

    appended: dict[str, dict[str, t.Any]] = {}
    with open_ledger(params, base_dir, env) as ledger:
        record, decision = plan(ledger, read_entries(ledger, incident_id))
        if not check_mode:
            for item in decision['new_escalations']:
                outcome = append_decided(ledger, incident_id, claim(ledger, item['key']))
                if outcome.entry is not None:
                    appended[item['key']] = outcome.entry
            decision['new_escalations'] = [dict(item, seq=appended[item['key']]['seq'])
                                           for item in decision['new_escalations'] if item['key'] in appended]
            decision['notify'] = decision['new_escalations'] + decision['undelivered']
        location, backend = ledger.location(incident_id), ledger.backend
    for item in decision['new_escalations']:
        item['message'] = redactor.text(message(incident_id, item, record))
    for item in decision['undelivered']:
        item['message'] = redactor.text(message(incident_id, item, record))
    return dict(decision, changed=bool(decision['new_escalations']), incident=record, phase=phase_of('escalate', record),
                entries=list(appended.values()),
                ledger=location, backend=backend)
