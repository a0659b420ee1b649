# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""One run of audit_chain_verify: its options, the choice of reader and the verdict.

The module runs it on its host; for an incident ledger file on the controller, the module's
action plugin runs it in the controller process (no module process for the verification that
ends every procedure).
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import PROFILES
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_sources import LedgerFileError, TableReader, ledger_path, read_ledger_file
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import SCOPES, ChainVerifier
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import InputError
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded

SOURCES = {'table': 'trdrhub', 'ledger_file': 'ledger', 'ledger_table': 'ledger'}  # source -> its profile
DEFAULT_SCOPE = {'trdrhub': 'table', 'ledger': 'chain'}
# Options that mean something for some sources only: refused elsewhere rather than silently ignored.
ONLY_FOR = {'table': ('table', 'ledger_table'), 'columns': ('table', 'ledger_table'), 'tenant_id': ('table',),
            'incident_id': ('ledger_file', 'ledger_table'), 'path': ('ledger_file',)}


def chain_argument_spec(connection_args: dict[str, t.Any]) -> dict[str, t.Any]:
    """The options of audit_chain_verify: ``connection_args`` (PostgreSQL's, given by the caller: ``_postgres``
    imports this package, so this package does not import it) and the verification's own."""
    spec = dict(connection_args)
    spec.update(
        source={'type': 'str', 'default': 'table', 'choices': list(SOURCES)},
        profile={'type': 'str', 'choices': sorted(PROFILES)},
        table={'type': 'str'},
        columns={'type': 'dict', 'default': {}},
        tenant_id={'type': 'list', 'elements': 'str'},
        incident_id={'type': 'list', 'elements': 'str'},
        path={'type': 'path'},
        start_sequence={'type': 'int'},
        end_sequence={'type': 'int'},
        sequence_scope={'type': 'str', 'choices': list(SCOPES)},
        expected_heads={'type': 'dict'},
        fail_on_violation={'type': 'bool', 'default': False},
        max_violations=bounded({'type': 'int', 'default': 1000}, minimum=0),
    )
    return spec


class AuditChainVerification:
    """Option checks and the choice of reader; the rules themselves live in ChainVerifier."""

    def __init__(self, params: dict[str, t.Any]) -> None:
        self.params = params
        self.source = params['source']
        self.profile = params.get('profile') or SOURCES[self.source]
        if self.profile != SOURCES[self.source]:
            raise InputError(f'profile {self.profile} cannot verify source {self.source}: its entries are hashed '
                             f'with the {SOURCES[self.source]} profile')
        for option, sources in ONLY_FOR.items():
            if params.get(option) and self.source not in sources:
                raise InputError(f"{option} is used with source {' or '.join(sources)} only, not {self.source}")
        if self.source == 'ledger_file' and not params.get('path'):
            raise LedgerFileError('source is ledger_file but path is missing: give the ledger file or its directory')
        self.scope = params.get('sequence_scope') or DEFAULT_SCOPE[self.profile]
        self.keys = params.get('tenant_id') if self.source == 'table' else params.get('incident_id')
        self.verifier = ChainVerifier(
            PROFILES[self.profile], expected_heads=params.get('expected_heads'),
            max_violations=params.get('max_violations'), scope=self.scope, start_sequence=params.get('start_sequence'),
            end_sequence=params.get('end_sequence'), chain_keys=self.keys)

    @property
    def uses_database(self) -> bool:
        return self.source != 'ledger_file'

    def run(self, client: t.Any) -> dict[str, t.Any]:
        started = time.monotonic()
        p = self.params
        extra: dict[str, t.Any] = {}
        if client is not None:
            TableReader(self.source, p.get('table'), p.get('columns'), self.keys, p.get('start_sequence'),
                        p.get('end_sequence'), self.scope).run(client, self.verifier)
            extra['queries'] = client.queries
        else:
            path = ledger_path(p['path'], self.keys)
            read_ledger_file(path, self.verifier, self.keys, p.get('start_sequence'), p.get('end_sequence'))
            extra['ledger_path'] = path
        result = self.verifier.result()
        result.update(changed=False, profile=self.profile, source=self.source, sequence_scope=self.scope,
                      elapsed_s=round(time.monotonic() - started, 3), **extra)
        return result


def failure_message(result: dict[str, t.Any]) -> str:
    kinds = ', '.join(f'{count} {kind}' for kind, count in result['violation_counts'].items())
    first = result['violations'][0]['message'] if result['violations'] else ''
    return (f"audit chain verification failed: {result['violation_count']} violation(s) in "
            f"{result['total_entries']} entries ({kinds})" + (f'; first: {first}' if first else ''))
