#!/usr/bin/env python
# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""List, show and vote on approval requests of the trdrhub.incident.approval gate.

    scripts/approve.py list
    scripts/approve.py show req-3f9a1c2b7d4e
    scripts/approve.py vote req-3f9a1c2b7d4e approve [--approver bob] [--comment ...]

The store and the ledger are found like the gate finds them, in the incidents home: --dir, else
TRDRHUB_LEDGER_DIR, else the inventory variable trdrhub_incidents_dir of -i INVENTORY, else
~/.local/state/trdrhub-incident/incidents ($XDG_STATE_HOME/trdrhub-incident/incidents); or
--postgres with TRDRHUB_LEDGER_DSN. A vote shows the evidence and its hash first and asks for
confirmation (--yes skips the question).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if _REPO.parent.name == 'trdrhub' and _REPO.parent.parent.name == 'ansible_collections':
    sys.path.insert(0, str(_REPO.parents[2]))
else:
    sys.path.insert(0, str(_REPO / '.collections'))

# pylint: disable=wrong-import-position
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.gate import (  # noqa: E402
    cast_vote,
    evidence_text,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import (  # noqa: E402
    no_such_request,
    open_store,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (  # noqa: E402
    PgIncidentError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.incidents_home import (  # noqa: E402
    INVENTORY_VAR,
    absolute,
    incidents_home,
)


def inventory_variables(sources: list[str]) -> dict:
    """The incidents-home variables of localhost in the given inventories (as ansible-playbook would see them)."""
    if not sources:
        return {}
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[absolute(s) for s in sources])
    host = inventory.get_host('localhost')
    variables = VariableManager(loader=loader, inventory=inventory).get_vars(host=host)
    value = variables.get(INVENTORY_VAR)
    if isinstance(value, str) and '{' in value:
        value = Templar(loader=loader, variables=variables).template(value)
    return {INVENTORY_VAR: value, 'inventory_dir': variables.get('inventory_dir'),
            'ansible_inventory_sources': [absolute(s) for s in sources]}


def store_params(args: argparse.Namespace) -> dict:
    params = {'store_backend': 'postgres' if args.postgres else 'dir', 'store_table': args.table,
              'root': absolute(args.dir) if args.dir else incidents_home(os.environ, inventory_variables(args.inventory))[0]}
    if args.postgres and os.environ.get('TRDRHUB_LEDGER_DSN'):
        params['dsn'] = os.environ['TRDRHUB_LEDGER_DSN']
    return params


def store_where(params: dict) -> str:
    return f"table {params['store_table']}" if params['store_backend'] == 'postgres' else f"{params['root']}/*/approvals"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dir', help='the incidents home (default TRDRHUB_LEDGER_DIR, else trdrhub_incidents_dir of '
                        '--inventory, else ~/.local/state/trdrhub-incident/incidents)')
    parser.add_argument('-i', '--inventory', action='append', default=[],
                        help='inventory whose trdrhub_incidents_dir names the incidents home (repeatable)')
    parser.add_argument('--postgres', action='store_true', help='the postgres store (connection TRDRHUB_LEDGER_DSN)')
    parser.add_argument('--table', default='trdrhub_incident_approvals', help='table of the postgres store')
    parser.add_argument('--incident', help='the request\'s incident (default: search every incident)')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='pending requests')
    show = sub.add_parser('show', help='a request with its evidence and votes')
    show.add_argument('request_id')
    vote = sub.add_parser('vote', help='approve or deny a request')
    vote.add_argument('request_id')
    vote.add_argument('decision', choices=['approve', 'deny'])
    vote.add_argument('--approver', help='who votes (default: the AWX/Rundeck user, else the OS user)')
    vote.add_argument('--comment')
    vote.add_argument('--yes', action='store_true', help='do not ask for confirmation')
    args = parser.parse_args(argv)
    params = store_params(args)
    try:
        with open_store(params) as store:
            if args.command == 'list':
                pending = list(store.pending())
                for req in pending:
                    print(f"{req['request_id']}  {req['incident_id']}  {req['priority']}  {req['action']}  "
                          f"requested by {req['requester']}, expires {req['expires_at']}: {req['summary']}")
                if not pending:
                    print(f'No pending approval request in {store_where(params)}.')
                return 0
            request = store.get(args.request_id, args.incident)
            if request is None:
                raise no_such_request(args.request_id, store, args.incident)
            votes = store.votes(request)
        print(f"{request['request_id']} ({request['status']}) incident {request['incident_id']}, {request['priority']} "
              f"{request['action']}: {request['summary']}\nrequested by {request['requester']} at {request['created_at']}, "
              f"expires {request['expires_at']}, needs {request['required']} approver(s)\n"
              f"evidence sha256 {request['evidence_hash']}:\n{evidence_text(request, 20000)}")
        for item in votes:
            print(f"vote: {item.get('approver')} {item.get('decision')} at {item.get('ts')}")
        if args.command == 'show':
            return 0
        if not args.yes and input(f'{args.decision} {request["request_id"]} with this evidence? (yes/no) ').strip().lower() != 'yes':
            print('Nothing was voted.')
            return 1
        result = cast_vote(dict(params, request_id=request['request_id'], incident_id=request['incident_id'],
                                decision=args.decision, approver=args.approver, comment=args.comment,
                                evidence_hash=request['evidence_hash']))
        print(f"{result['msg']}: {result['approvals']} of {result['required']} approval(s).")
        return 0
    except PgIncidentError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f'error: unreadable request: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
