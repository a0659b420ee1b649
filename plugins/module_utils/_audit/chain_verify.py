# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""One-pass verification of hash chains, for every profile in ``_chain.PROFILES``.

The verifier is fed records one at a time and keeps a few fields per chain, never
the records, so memory grows with the number of chains and not with their length.
Records of different chains may arrive interleaved; within a chain they must
arrive in sequence order. The rules (documented for users in the
``audit_chain_verify`` module) are:

- every record's stored hash must equal the hash recomputed from its content
  (``hash_mismatch``); an empty stored hash is ``missing_hash``, and the next
  record's link cannot be checked because there is nothing to link to;
- a record's previous-hash must equal the stored hash of the record before it in
  its chain (``broken_link``); a chain's first record must have none;
- sequence numbers strictly increase within a chain (``duplicate_sequence``,
  ``out_of_order``). Gaps (``sequence_gap``) are judged per chain (scope
  ``chain``: each chain numbers its own records 1, 2, 3...) or over all chains
  together (scope ``table``: one counter shared by the whole table, as TRDR Hub's
  ``sequence_number`` -- then the records must arrive in global sequence order, and
  a hole in the counter is a finding about the table, with no chain: the record after
  the hole usually belongs to a tenant nobody touched, while the tenant that lost the
  entry shows it with a broken link);
- ``expected_heads`` recorded earlier catch what links cannot: a chain cut back
  (``truncated``), a head row rewritten (``head_mismatch``), a chain gone
  (``missing_chain``).
"""

from __future__ import annotations

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain import (
    Profile,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
    TrdrhubError,
)

KINDS = ('hash_mismatch', 'missing_hash', 'broken_link', 'sequence_gap', 'duplicate_sequence', 'out_of_order',
         'truncated', 'head_mismatch', 'missing_chain', 'malformed_entry', 'column_mismatch')
SCOPES = ('chain', 'table')

# What the next record's previous-hash must be, besides a stored hash.
_START = object()    # the chain begins here: no previous hash
_UNKNOWN = object()  # the record before had no stored hash: the link cannot be checked


class AuditError(TrdrhubError):
    """A failure of audit verification that is not PostgreSQL's (those are the ``PgIncidentError`` family)."""


class AuditInputError(AuditError, InputError):
    """A verification option (expected_heads, sequence_scope, the sequence range...) the verifier cannot use."""


class _Chain:
    """Per-chain state: a handful of fields whatever the chain's length."""

    __slots__ = ('first', 'last_seq', 'link', 'entries', 'violations', 'expect_seq', 'expect_hash', 'expect_found')

    def __init__(self) -> None:
        self.first: int | None = None
        self.last_seq: int | None = None
        self.link: t.Any = _START
        self.entries = 0
        self.violations = 0
        self.expect_seq: int | None = None
        self.expect_hash: str | None = None
        self.expect_found: str | None = None  # 'same' or 'changed' once the expected head row was read

    def head(self) -> dict[str, t.Any]:
        return {'sequence_number': self.last_seq, 'entry_hash': self.link if isinstance(self.link, str) else None}


def _int(value: t.Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip('-').isdigit():
        return int(value)
    return None


def parse_expected_heads(heads: t.Any) -> dict[str, tuple[int, str]]:
    """``{chain: (sequence, hash)}`` from what a user or an earlier run's ``chains`` gives.

    Accepted per chain: ``{sequence_number, entry_hash}``, ``{seq, hash}``, or an earlier
    result's ``chains`` entry (``{head: {...}, ...}``), so a run's output can be passed back.
    """
    if not heads:
        return {}
    if not isinstance(heads, t.Mapping):
        raise AuditInputError('expected_heads must be a dictionary {chain key: {sequence_number: N, entry_hash: H}}')
    parsed: dict[str, tuple[int, str]] = {}
    for key, value in heads.items():
        head = value.get('head', value) if isinstance(value, t.Mapping) else None
        if not isinstance(head, t.Mapping):
            head = {}
        seq = _int(head.get('sequence_number', head.get('seq')))
        digest = head.get('entry_hash', head.get('hash'))
        if seq is None or not isinstance(digest, str) or not digest:
            raise AuditInputError(f'expected_heads[{key}] needs an integer sequence_number (or seq) and a non-empty '
                                  f'entry_hash (or hash), got {value!r}')
        parsed[str(key)] = (seq, digest)
    return parsed


class ChainVerifier:
    """Feed records with ``add`` (or ``add_record``), then read ``result()``."""

    def __init__(self, profile: Profile, expected_heads: t.Any = None, max_violations: int = 1000,
                 scope: str = 'chain', start_sequence: int | None = None, end_sequence: int | None = None,
                 chain_keys: t.Iterable[str] | None = None) -> None:
        if scope not in SCOPES:
            raise AuditInputError(f"sequence_scope must be one of {', '.join(SCOPES)}, got {scope}")
        if max_violations is None or max_violations < 0:
            raise AuditInputError(f'max_violations must be 0 or greater, got {max_violations}')
        if start_sequence is not None and end_sequence is not None and start_sequence > end_sequence:
            raise AuditInputError(f'start_sequence ({start_sequence}) is greater than end_sequence ({end_sequence})')
        self.profile = profile
        self.max_violations = max_violations
        self.chain_keys = set(chain_keys) if chain_keys else None
        self.notes: list[str] = []
        self.violations: list[dict[str, t.Any]] = []
        self.counts: dict[str, int] = {}
        self.total = 0
        self._chains: dict[str, _Chain] = {}
        self._per_chain_gaps = scope == 'chain'
        self._table_order = scope == 'table'
        if self._table_order and self.chain_keys is not None:
            self._table_order = False
            self.notes.append('sequence gaps were not checked: with sequence_scope=table the other chains fill the '
                              'numbers between the selected chains\' records')
        self._global: tuple[t.Any, int] | None = None  # (chain key, sequence) of the record read last
        self._expected = self._select_heads(parse_expected_heads(expected_heads), start_sequence, end_sequence)
        for key, (seq, digest) in self._expected.items():
            chain = self._chain(key)
            chain.expect_seq, chain.expect_hash = seq, digest

    def _select_heads(self, heads: dict[str, tuple[int, str]], start: int | None,
                      end: int | None) -> dict[str, tuple[int, str]]:
        """Heads outside the chains or the range verified cannot be checked: say so."""
        chosen = {}
        for key, (seq, digest) in heads.items():
            if self.chain_keys is not None and key not in self.chain_keys:
                self.notes.append(f'expected head of {key} not checked: chain not selected')
            elif (start is not None and seq < start) or (end is not None and seq > end):
                self.notes.append(f'expected head of {key} (sequence {seq}) not checked: outside the verified range')
            else:
                chosen[key] = (seq, digest)
        return chosen

    def _chain(self, key: str) -> _Chain:
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = _Chain()
        return chain

    def anchor(self, key: str, seq: int, stored: str | None) -> None:
        """The chain's last record before the verified range: link and number to continue from (not verified)."""
        chain = self._chain(key)
        chain.last_seq = seq
        chain.link = stored if stored else _UNKNOWN

    def violation(self, kind: str, key: t.Any, seq: t.Any, rid: t.Any, expected: t.Any, found: t.Any, message: str,
                  line: int | None = None, where: str | None = None, **extra: t.Any) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        chain = self._chains.get(key) if key is not None else None
        if chain is not None:
            chain.violations += 1
        if len(self.violations) >= self.max_violations:
            return
        if where is None:
            where = f'{self.profile.chain_key} {key} #{seq}' if seq is not None else f'{self.profile.chain_key} {key}'
        entry = {'kind': kind, 'tenant_id': key, 'sequence_number': seq, 'id': None if rid is None else str(rid),
                 'expected': expected, 'found': found, 'message': f'{where}: {message}', **extra}
        if self.profile.chain_key != 'tenant_id':
            entry[self.profile.chain_key] = key  # the ledger's incident_id, under its own name too
        if line is not None:
            entry['line'] = line
        self.violations.append(entry)

    def add(self, key: str, seq: int, rid: t.Any, prev: t.Any, stored: t.Any, computed: str,
            line: int | None = None) -> None:
        """Check one record; the hot path, so plain comparisons only."""
        self.total += 1
        chain = self._chains.get(key) or self._chain(key)
        last = chain.last_seq
        if last is not None:
            if seq <= last:
                self._not_after(key, seq, rid, last, line, 'appears more than once in the chain', '')
            elif self._per_chain_gaps and seq != last + 1:
                self.violation('sequence_gap', key, seq, rid, last + 1, seq,
                               f'sequence jumps from {last} to {seq}: {self._missing(last, seq)} missing', line)
        if self._table_order:
            self._global_order(key, seq, rid, last, line)
        if not stored:
            self.violation('missing_hash', key, seq, rid, computed, stored,
                           'no stored entry hash (legacy or cleared row); the next link cannot be checked', line)
        elif stored != computed:
            self.violation('hash_mismatch', key, seq, rid, computed, stored,
                           'stored hash does not match the content: a hashed field was changed', line)
        link = chain.link
        if link is _START:
            if prev:
                self.violation('broken_link', key, seq, rid, None, prev,
                               'first entry of the chain names a previous hash: earlier entries were removed or '
                               'the entry was moved here', line)
        elif link is not _UNKNOWN and prev != link:
            self.violation('broken_link', key, seq, rid, link, prev,
                           f'previous hash does not match the stored hash of entry #{last}', line)
        if seq == chain.expect_seq:
            if stored == chain.expect_hash:
                chain.expect_found = 'same'
            else:
                chain.expect_found = chain.expect_found or 'changed'
                self.violation('head_mismatch', key, seq, rid, chain.expect_hash, stored,
                               'the entry recorded as the chain head now has a different hash: history was '
                               'rewritten', line)
        if chain.first is None:
            chain.first = seq
        chain.last_seq = seq
        chain.link = stored if stored else _UNKNOWN
        chain.entries += 1

    def _global_order(self, key: str, seq: int, rid: t.Any, chain_last: int | None, line: int | None) -> None:
        """Scope ``table``: one counter for every chain, so gaps show in the global order."""
        before, self._global = self._global, (key, seq)
        if before is None:
            return
        last_key, last = before
        if seq == last and chain_last == seq:
            return  # a duplicate already reported within its chain
        if seq <= last:
            self._not_after(key, seq, rid, last, line, 'is also used by another chain', ' in the table order')
        elif seq != last + 1:
            # The table's finding, not the next entry's chain: that entry is usually another tenant's, intact.
            self.violation('sequence_gap', None, last + 1, None, last + 1, seq,
                           f'{self._missing(last, seq)} missing, between {self.profile.chain_key} {last_key} #{last} '
                           f'and {self.profile.chain_key} {key} #{seq}: entries were deleted (the chain that lost them '
                           'shows a broken link at its next entry, or ends short of its expected head), or never '
                           'written', line, where='table', missing=[last + 1, seq - 1])

    def _not_after(self, key: t.Any, seq: int, rid: t.Any, last: int, line: int | None, repeated: str, order: str) -> None:
        """A sequence number that does not come after ``last``: used twice (``repeated`` says where) or out of order."""
        if seq == last:
            self.violation('duplicate_sequence', key, seq, rid, None, seq, f'sequence number {seq} {repeated}', line)
        else:
            self.violation('out_of_order', key, seq, rid, last + 1, seq, f'sequence number {seq} comes after {last}{order}', line)

    @staticmethod
    def _missing(last: int, seq: int) -> str:
        return f'sequence number {last + 1} is' if seq == last + 2 else f'sequence numbers {last + 1}-{seq - 1} are'

    def add_record(self, record: t.Any, line: int | None = None) -> None:
        """A record as a mapping in the profile's field names (ledger entries, parsed rows)."""
        p = self.profile
        key = seq = rid = None
        try:
            if not isinstance(record, t.Mapping):
                raise ValueError(f'expected a JSON object, got {type(record).__name__}')
            key, seq, rid = record.get(p.chain_key), record.get(p.sequence), record.get(p.record_id)
            if not isinstance(key, str) or not key:
                raise ValueError(f'{p.chain_key} is missing or not a string')
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise ValueError(f'{p.sequence} is missing or not an integer')
            computed = p.compute(record)
        except (TypeError, ValueError) as exc:
            self.malformed(str(exc), line=line, key=key, seq=seq, rid=rid)
            return
        self.add(key, seq, rid, record.get(p.prev_hash), record.get(p.entry_hash), computed, line)

    def malformed(self, reason: str, line: int | None = None, key: t.Any = None, seq: t.Any = None,
                  rid: t.Any = None) -> None:
        """An entry that cannot be read or hashed: reported, never a crash; its chain is not advanced."""
        self.total += 1
        key = key if isinstance(key, str) else None
        where = f'line {line}: ' if line is not None else ''
        self.violation('malformed_entry', key, seq, rid, None, None, f'{where}unusable entry: {reason}', line)

    def finish_heads(self) -> None:
        for key, (seq, digest) in self._expected.items():
            chain = self._chains[key]
            if chain.expect_found:
                continue  # seen: unchanged, or already reported as head_mismatch
            if chain.last_seq is None:
                self.violation('missing_chain', key, seq, None, digest, None,
                               f'expected chain head at sequence {seq} but the chain has no entries')
            elif chain.last_seq < seq:
                self.violation('truncated', key, seq, None, seq, chain.last_seq,
                               f'chain ends at sequence {chain.last_seq}, below the expected head {seq}: entries '
                               'were removed from the end or rolled back')
            else:
                self.violation('truncated', key, seq, None, seq, None,
                               f'the expected head entry (sequence {seq}) is gone although the chain continues '
                               f'to {chain.last_seq}')

    def result(self) -> dict[str, t.Any]:
        self.finish_heads()
        count = sum(self.counts.values())
        chains = {key: {'head': chain.head(), 'first_sequence': chain.first, 'entries': chain.entries,
                        'violations': chain.violations}
                  for key, chain in self._chains.items() if chain.entries}
        return {
            'is_valid': count == 0,
            'total_entries': self.total,
            'tenants': len(chains),
            'violations': self.violations,
            'violation_count': count,
            'violation_counts': dict(sorted(self.counts.items())),
            'violations_truncated': count > len(self.violations),
            'verified_at': datetime.datetime.now(datetime.timezone.utc).isoformat(),
            'chains': chains,
            'notes': self.notes,
        }


def verify_records(records: t.Iterable[t.Any], profile: Profile, **options: t.Any) -> dict[str, t.Any]:
    """Verify an iterable of mapping records in one pass (ordered as ``ChainVerifier`` needs)."""
    verifier = ChainVerifier(profile, **options)
    for record in records:
        verifier.add_record(record)
    return verifier.result()
