# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_chain_verify
short_description: Verify a hash-chained audit log - TRDR Hub's audit_log_entries or the incident ledger
version_added: 1.0.0
description:
  - Recomputes every entry hash of a hash-chained log and checks the links between entries, in one streaming pass, and
    reports each violation with its chain, sequence number and row id.
  - O(source=table) reads TRDR Hub's C(audit_log_entries) table (profile V(trdrhub), the application's
    C(compute_entry_hash)). O(source=ledger_file) and O(source=ledger_table) read this collection's incident ledger
    (profile V(ledger)).
  - An incident ledger file on the controller (O(source=ledger_file) over a local connection, for example a task
    delegated to localhost) is verified in the controller process by the module's action plugin; every other
    source runs the module on the task's host.
  - Read-only; never changes anything. The result has the shape of the application's admin endpoint
    (RV(is_valid), RV(total_entries), RV(violations), RV(verified_at)) plus per-chain heads to pin next time.
  - "Chain rules. One chain per chain key (C(tenant_id) for V(trdrhub), C(incident_id) for V(ledger)), ordered by
    sequence number. Each entry's stored hash must equal the hash recomputed from its content (V(hash_mismatch)). An
    empty stored hash is V(missing_hash) (legacy rows are reported, not skipped); the link of the entry after it is then
    not checked, because there is nothing to link to, and the chain continues from that entry. Each entry's previous
    hash must equal the stored hash of the entry before it in the chain (V(broken_link)); the first entry of a chain
    must have none. Sequence numbers must increase (V(duplicate_sequence), V(out_of_order)); gaps
    (V(sequence_gap)) are judged as O(sequence_scope) says."
  - "What the links cannot show. Someone who can write the table and recomputes the hash of a changed entry and of
    every later entry of its chain leaves a valid chain behind, and entries cut from the end of a chain leave no broken
    link. Only a head recorded earlier and kept elsewhere catches that: pass it as O(expected_heads). A chain now
    shorter than its recorded head is V(truncated), a recorded head row with a different hash is V(head_mismatch)
    (history rewritten), a recorded chain without entries is V(missing_chain). Entries appended after the recorded
    head, forged or not, look like normal growth."
  - "Not protected by the V(trdrhub) profile. The application hashes ten fields only (sequence_number, tenant_id,
    actor_id, resource_type, resource_id, action, before_hash, after_hash, prev_entry_hash, created_at). Changes to
    C(id), C(actor_role), C(actor_ip), C(actor_user_agent), C(resource_name), C(action_description), C(severity),
    C(event_metadata) and C(correlation_id) cannot be detected by the chain and are not reported. The V(ledger) profile
    hashes every field of an entry except the hash itself."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  source:
    description:
      - Where the entries are read.
      - V(table) - a PostgreSQL table laid out like TRDR Hub's C(audit_log_entries) (see O(columns)).
      - V(ledger_file) - an incident ledger in JSON-lines form (O(path)).
      - V(ledger_table) - an incident ledger in PostgreSQL, a table with columns C(incident_id) text, C(seq) integer,
        C(entry) jsonb (the whole entry, hash included), C(entry_hash) text, C(prev_hash) text and C(recorded_at).
        The hashes are verified over the C(entry) objects; a column that disagrees with its entry is a
        V(column_mismatch).
    type: str
    choices: [table, ledger_file, ledger_table]
    default: table
  profile:
    description:
      - How entries are hashed. V(trdrhub) for O(source=table), V(ledger) for the ledger sources; these are also the
        defaults, and other combinations are refused.
    type: str
    choices: [trdrhub, ledger]
  table:
    description:
      - Table to read, V(table) or V(schema.table); names are case-sensitive and an unqualified name is looked up in
        the C(search_path).
      - Defaults to V(audit_log_entries) for O(source=table) and V(trdrhub_incident_ledger) for O(source=ledger_table).
    type: str
  columns:
    description:
      - Real column names for the logical fields, for a table whose columns are named differently; only the fields
        given change.
      - For O(source=table) the fields and their defaults are C(id), C(sequence_number), C(tenant_id), C(actor_id),
        C(resource_type), C(resource_id), C(action), C(before_hash), C(after_hash), C(prev_entry_hash),
        C(entry_hash) and C(created_at).
      - For O(source=ledger_table) they are C(incident_id), C(seq), C(entry), C(entry_hash) and C(prev_hash).
    type: dict
    default: {}
  tenant_id:
    description:
      - Verify only the chains of these tenants (O(source=table)). Omitted means every tenant.
    type: list
    elements: str
  incident_id:
    description:
      - Verify only the ledger of these incidents (ledger sources). Omitted means every incident found.
      - With O(source=ledger_file) and O(path) a directory like C(incidents/), a single incident id picks
        C(incidents/<incident_id>/ledger.jsonl).
    type: list
    elements: str
  path:
    description:
      - The ledger for O(source=ledger_file) - a JSON-lines file with one entry object per line, or a directory
        containing C(ledger.jsonl) (such as C(incidents/INC-2025-0042/)).
      - Required with O(source=ledger_file), refused with the other sources.
    type: path
  start_sequence:
    description:
      - Verify only entries with this sequence number or higher.
      - The first entry of each chain in the range is linked to the stored hash of the chain's last entry before
        O(start_sequence), which is read but not itself verified; a chain with no entry before the range must begin
        with an entry that names no previous hash.
    type: int
  end_sequence:
    description:
      - Verify only entries with this sequence number or lower. Must not be less than O(start_sequence).
    type: int
  sequence_scope:
    description:
      - How sequence gaps are judged.
      - V(table) - one counter is shared by every chain, as TRDR Hub's C(sequence_number) (unique across the whole
        table), so a tenant's own numbers normally have holes. Entries are read in global sequence order and numbers
        missing from the whole table are one V(sequence_gap) per hole about the table itself (RV(violations[].tenant_id)
        null, RV(violations[].missing) the range), never about the tenant whose entry follows the hole; the chain
        links show which tenant lost it. This also catches the last entry of a tenant deleted while other tenants kept
        writing. Not checked when O(tenant_id) selects some chains only.
      - V(chain) - each chain numbers its own entries consecutively, as the incident ledger does, so any jump inside
        a chain is a V(sequence_gap).
      - Defaults to V(table) for the V(trdrhub) profile and V(chain) for the V(ledger) profile.
    type: str
    choices: [chain, table]
  expected_heads:
    description:
      - Heads recorded by an earlier run - a dictionary mapping each chain key (tenant or incident) to a dictionary
        with the head's C(sequence_number) and C(entry_hash) (C(seq) and C(hash) are accepted too). The RV(chains)
        dictionary of an earlier result can be passed as it is.
      - For each chain, the entry at sequence N must still exist with stored hash H. Catches truncation and rollback
        (V(truncated)), rewritten history (V(head_mismatch)) and removed chains (V(missing_chain)), which links alone
        cannot show. Keep the recorded heads somewhere the database's writers cannot change them.
      - Heads of chains not selected, or outside O(start_sequence)..O(end_sequence), are not checked (see RV(notes)).
    type: dict
  fail_on_violation:
    description:
      - Fail the task when any violation is found, with a message counting them by kind. The full result is returned
        either way.
    type: bool
    default: false
  max_violations:
    description:
      - List at most this many violations in RV(violations); all of them are still counted in RV(violation_count) and
        RV(violation_counts). Must be V(0) or more.
    type: int
    default: 1000
extends_documentation_fragment:
  - trdrhub.incident.postgres
notes:
  - The connection options apply to the table sources only; O(source=ledger_file) ignores them, so they can stay in
    C(module_defaults).
  - Tables are read through a server-side cursor in one read-only REPEATABLE READ transaction, so the whole
    verification sees one consistent snapshot while the application keeps writing, and memory stays flat however
    large the table is. C(created_at) is read in UTC, as the application hashes it.
  - The PgBouncer note of the connection options does not apply here - the module signals no session and does all its
    reading inside one transaction, so it also works through the pooler (port C(6543)).
  - O(statement_timeout) limits each statement, including each fetch of 5000 rows. Without an index on the sequence
    column (O(sequence_scope=table)) or on chain key and sequence (O(sequence_scope=chain)) the server sorts the whole
    table before the first fetch; raise O(statement_timeout) or set V(0) for such a table.
  - The login role needs C(SELECT) on the table (C(GRANT SELECT ON audit_log_entries TO trdrhub_ops)).
  - TRDR Hub's incident-response runbook checks the audit log in phase 2.3; its Python snippet calls a
    C(verify_chain) the application does not have. This module is the replacement.
"""

EXAMPLES = r"""
# Runbook phase 2.3: is the audit trail intact before we rely on it?
- name: Verify the audit log of every tenant
  trdrhub.incident.audit_chain_verify:
    login_host: db-primary.trdrhub.internal
    login_port: 5432
    login_user: trdrhub_ops
    login_password: "{{ vault_pg_ops_password }}"
    login_db: trdrhub
    statement_timeout: 0
    expected_heads: "{{ lookup('ansible.builtin.file', 'evidence/audit_heads.json') | from_json }}"
    fail_on_violation: true
  register: audit

- name: Keep this run's heads for the next verification (store them away from the database)
  ansible.builtin.copy:
    content: "{{ audit.chains | to_nice_json }}"
    dest: evidence/audit_heads.json
    mode: "0600"
  delegate_to: localhost

- name: Verify one tenant's entries written since the incident started
  trdrhub.incident.audit_chain_verify:
    dsn: "{{ vault_pg_ops_dsn }}"
    tenant_id: tenant-acme
    start_sequence: 1250000
  register: acme

- name: Show what is broken, where
  ansible.builtin.debug:
    msg: "{{ item.kind }} in {{ item.tenant_id }} at #{{ item.sequence_number }} (row {{ item.id }}): {{ item.message }}"
  loop: "{{ acme.violations }}"
  when: not acme.is_valid

- name: Verify a copy of the table restored into another schema, with renamed columns
  trdrhub.incident.audit_chain_verify:
    login_unix_socket: /var/run/postgresql
    login_db: forensics
    table: restore_20250115.audit_log
    columns:
      sequence_number: seq_no
      entry_hash: hash

- name: Verify the ledger of this incident before handing it to the auditors
  trdrhub.incident.audit_chain_verify:
    source: ledger_file
    path: incidents/INC-2025-0042/
    fail_on_violation: true

- name: Verify the ledger kept in PostgreSQL
  trdrhub.incident.audit_chain_verify:
    source: ledger_table
    dsn: "{{ vault_pg_ops_dsn }}"
    incident_id: INC-2025-0042
"""

RETURN = r"""
is_valid:
  description: V(true) when no violation of any kind was found.
  returned: always
  type: bool
  sample: false
total_entries:
  description: Entries read and checked (for a ledger file, lines that were not blank, malformed ones included).
  returned: always
  type: int
  sample: 1048576
tenants:
  description: Number of chains with at least one entry checked (tenants, or incidents for the ledger).
  returned: always
  type: int
  sample: 10
violations:
  description: The first O(max_violations) violations, in the order found.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description:
        - V(hash_mismatch), V(missing_hash), V(broken_link), V(sequence_gap), V(duplicate_sequence), V(out_of_order),
          V(truncated), V(head_mismatch), V(missing_chain), V(malformed_entry) or V(column_mismatch).
      type: str
      sample: broken_link
    tenant_id:
      description:
        - The chain key (the tenant, or for the ledger the incident id); null when it cannot be read, and for a
          V(sequence_gap) of O(sequence_scope=table), which is about the table, not a chain.
      type: str
      sample: tenant-acme
    missing:
      description: The missing sequence numbers, first and last, of a V(sequence_gap) of O(sequence_scope=table).
      returned: for a sequence_gap with sequence_scope=table
      type: list
      elements: int
      sample: [1250017, 1250019]
    incident_id:
      description: The incident id (the same value as RV(violations[].tenant_id)).
      returned: for the ledger sources
      type: str
      sample: INC-2025-0042
    sequence_number:
      description: Sequence number of the entry concerned, the expected head sequence for V(truncated) and
        V(missing_chain), or the first missing number of a V(sequence_gap) of O(sequence_scope=table).
      type: int
      sample: 1250017
    id:
      description: Row id of the entry (the C(seq) for ledger entries); null for chain-level violations.
      type: str
      sample: 6f1c2d9e-0b7a-4c55-9d0e-7a1d1b2f3c4d
    expected:
      description: What the rules expected - the recomputed hash, the previous entry's stored hash, the next sequence
        number or the recorded head.
      type: raw
      sample: 9f2c5a0e1b7d...
    found:
      description: What the entry holds instead.
      type: raw
      sample: 3b8e01c4d2a9...
    message:
      description: One line naming the chain, the sequence number and what is wrong.
      type: str
      sample: "tenant_id tenant-acme #1250017: previous hash does not match the stored hash of entry #1250012"
    line:
      description: Line number in the ledger file.
      returned: for O(source=ledger_file)
      type: int
      sample: 42
violation_count:
  description: All violations found, listed or not.
  returned: always
  type: int
  sample: 2
violation_counts:
  description: Violations found, by kind.
  returned: always
  type: dict
  sample: {"broken_link": 1, "hash_mismatch": 1}
violations_truncated:
  description: V(true) when RV(violations) lists fewer than RV(violation_count).
  returned: always
  type: bool
  sample: false
verified_at:
  description: When the verification finished, ISO 8601 in UTC.
  returned: always
  type: str
  sample: "2025-01-15T14:31:02.417733+00:00"
chains:
  description:
    - Per chain with entries checked, its head and counts. Pass the whole dictionary as O(expected_heads) next time.
  returned: always
  type: dict
  sample:
    tenant-acme:
      head: {sequence_number: 1250017, entry_hash: 3b8e01c4d2a9...}
      first_sequence: 1
      entries: 104857
      violations: 0
  contains:
    head:
      description: Sequence number and stored hash of the last entry checked (the hash is null when that entry has
        none).
      type: dict
    first_sequence:
      description: Sequence number of the first entry checked.
      type: int
    entries:
      description: Entries checked in this chain.
      type: int
    violations:
      description: Violations found in this chain.
      type: int
notes:
  description: What could not be checked in this run and why (expected heads outside the selection, gap checks skipped).
  returned: always
  type: list
  elements: str
  sample: ["expected head of tenant-old (sequence 42) not checked: outside the verified range"]
profile:
  description: The hashing profile used.
  returned: always
  type: str
  sample: trdrhub
source:
  description: The source read.
  returned: always
  type: str
  sample: table
sequence_scope:
  description: How sequence gaps were judged (see O(sequence_scope)).
  returned: always
  type: str
  sample: table
ledger_path:
  description:
    - The ledger file read (O(path) itself, or the ledger file found in that directory).
    - Not named C(path), which Ansible reserves for a file the module manages (it would add that file's attributes).
  returned: when O(source=ledger_file)
  type: str
  sample: incidents/INC-2025-0042/ledger.jsonl
elapsed_s:
  description: Seconds the reading and checking took, connecting excluded.
  returned: always
  type: float
  sample: 9.82
queries:
  description: SQL statements the module ran, in order, without parameter values.
  returned: when O(source) is V(table) or V(ledger_table)
  type: list
  elements: str
  sample:
    - "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_run import AuditChainVerification, chain_argument_spec, failure_message
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_COMMON_ARGS, POSTGRES_MUTUALLY_EXCLUSIVE, PSYCOPG2, PgClient


def argument_spec() -> dict[str, t.Any]:
    return chain_argument_spec(POSTGRES_COMMON_ARGS)


def main() -> None:
    run_module(argument_spec(), lambda module: AuditChainVerification(module.params),
               lambda module, verification: PgClient(module.params) if verification.uses_database else None,
               requires=lambda params: [PSYCOPG2] if params['source'] != 'ledger_file' else [],
               finish=lambda module, result, client: failure_message(result)
               if module.params['fail_on_violation'] and not result['is_valid'] else None,
               mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
