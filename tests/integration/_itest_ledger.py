"""Helpers for the incident-ledger integration tests: an independent chain check and playbooks.

The chain check hashes with hashlib and the format documented in docs/ledger.md, not with
the collection's code, so a bug there cannot make the tests agree with it.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

FIELDS = sorted(('v', 'seq', 'incident_id', 'ts', 'event', 'phase', 'actor', 'host', 'play', 'task', 'module',
                 'changed', 'failed', 'args', 'data', 'prev_hash', 'hash'))
TS = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$')
SUMMARY = re.compile(r'INCIDENT LEDGER (\S+): (\d+) entries written to (.+?); head seq (\d+) hash ([0-9a-f]{64})')


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != 'hash'}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode()).hexdigest()


def check_chain(entries: list, incident_id: str) -> None:
    """One unbroken chain: seq 1..n, each entry hashed over all its fields and naming the hash before it."""
    prev = None
    for number, entry in enumerate(entries, start=1):
        assert sorted(entry) == FIELDS, f'entry {number} has fields {sorted(entry)}'
        assert entry['v'] == 1 and entry['incident_id'] == incident_id
        assert entry['seq'] == number, f'entry {number} has seq {entry["seq"]}'
        assert entry['prev_hash'] == prev, f'entry {number} does not link to entry {number - 1}'
        assert entry['hash'] == entry_hash(entry), f'entry {number} hash does not match its content'
        assert TS.match(entry['ts']), entry['ts']
        prev = entry['hash']


def read_file_ledger(path: Path) -> list:
    raw = path.read_bytes()
    assert raw.endswith(b'\n')
    lines = raw.splitlines()
    for line in lines:   # stored compact and sorted, one entry per line
        assert line.decode() == json.dumps(json.loads(line), sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    return [json.loads(line) for line in lines]


def read_table_ledger(conn, table: str, incident_id: str) -> list:
    """The entries of one incident, with the table's columns checked against each entry."""
    with conn.cursor() as cur:
        cur.execute(f'SELECT seq, entry, entry_hash, prev_hash, recorded_at FROM {table} WHERE incident_id = %s '
                    'ORDER BY seq', (incident_id,))
        rows = cur.fetchall()
    for seq, entry, digest, prev, recorded_at in rows:
        assert entry['seq'] == seq and entry['hash'] == digest and entry['prev_hash'] == prev
        assert recorded_at is not None
    return [row[1] for row in rows]


def table_text(conn, table: str) -> str:
    with conn.cursor() as cur:
        cur.execute(f'SELECT string_agg(t::text, E\'\\n\') FROM {table} AS t')
        return cur.fetchone()[0] or ''


def write_playbook(path: Path, tasks: list, name: str = 'ledger itest', vars_: dict | None = None) -> Path:
    play = {'name': name, 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}
    if vars_:
        play['vars'] = vars_
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([play], indent=1))
    return path


def summaries(output: str) -> dict:
    """{incident: (entries, location, head seq, head hash)} from the callback's last lines."""
    return {m[1]: (int(m[2]), m[3], int(m[4]), m[5]) for m in SUMMARY.finditer(output)}
