# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Ledger entries for the review's tests, hashed and chained as the ledger writes them."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    make_entry,
)


def rec(**kw):
    base = {'incident_id': 'INC-9', 'state': 'open', 'status': 'investigating', 'title': 'Queue stuck', 'priority': 'P2',
            'detected_at': '2025-01-15T10:00:00Z', 'opened_at': '2025-01-15T10:05:00Z', 'opened_by': 'awx:alice',
            'response_deadline': '2025-01-15T11:00:00Z', 'impact': ['internal'], 'acknowledged': False}
    base.update(kw)
    return base


def ledger(*specs):
    entries, prev = [], None
    for seq, (clock, fields) in enumerate(specs, start=1):
        fields = dict({'actor': 'awx:alice'}, **fields)
        entry = make_entry('INC-9', seq, prev, fields, ts=f'2025-01-15T{clock}.000000+00:00')
        prev = entry['hash']
        entries.append(entry)
    return entries


def incident(action, record, changes=None, **fields):
    return dict({'event': 'incident', 'data': {'action': action, 'actions': [action], 'changes': changes or {},
                                               'record': record}}, **fields)


def task(name, module, phase=None, status='changed', run='r', host='db-1', **data):
    return {'event': 'task', 'task': name, 'module': module, 'phase': phase, 'host': host, 'changed': status == 'changed',
            'failed': status == 'failed', 'data': {'run': run, 'status': status, **data}}
