"""audit_chain_verify against TRDR Hub's audit_log_entries layout: each way of tampering, caught where it happened.

Every test gets a fresh copy of the application's table (``LIKE audit_log_entries INCLUDING ALL``)
holding a valid chain for three tenants that take turns on one global sequence counter:
tenant-a has 1, 4, 7 ... 34, tenant-b 2, 5, 8 ... 35, tenant-c 3, 6, 9 ... 36. The hashes come
from the tests' own implementation of the application's recipe (``_itest_audit``).

The application's table has ``sequence_number UNIQUE`` and ``entry_hash NOT NULL``. To stage a
duplicate sequence number, a forged entry in the middle, or a null hash, those tests drop the
constraint on their own copy of the table (``create_audit_table(unique_sequence=False)`` /
``hash_not_null=False``); the real table layout is otherwise unchanged.

Every verification reads a table, which the module's action plugin hands to the module unchanged,
so ``verify`` calls the module's entry point directly (test_audit_chain_verify.py runs it through
ansible-playbook as well).
"""
from __future__ import annotations

import uuid

import _itest_audit as audit
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

B_PREV, B_SEQ, B_NEXT = 14, 17, 20   # tenant-b's entries around the one tampered with
COUNT = 36


@pytest.fixture(scope="module")
def audit_db(pg_server, trdrhub_db):
    return audit.ensure_audit_db(pg_server)


@pytest.fixture
def audit_login(login, audit_db):
    return {**login["super_tcp"], "login_db": audit_db}


@pytest.fixture
def chain_table(pg_server, audit_db):
    """A fresh copy of audit_log_entries with a valid chain; yields a helper to tamper and verify it."""
    name = "itest_chain_" + uuid.uuid4().hex[:8]
    conn = pg_server.connect(dbname=audit_db)
    table = Table(conn, name)
    yield table
    conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


class Table:
    def __init__(self, conn, name: str) -> None:
        self.conn, self.name, self.rows = conn, name, []

    def fill(self, **constraints) -> Table:
        audit.create_audit_table(self.conn, self.name, **constraints)
        self.rows = list(audit.audit_rows(COUNT))
        audit.copy_rows(self.conn, self.name, self.rows)
        return self

    def sql(self, statement: str, args: tuple = ()) -> None:
        self.conn.cursor().execute(statement.replace("{t}", self.name), args)

    def id(self, seq: int) -> str:
        return self.rows[seq - 1]["id"]

    def row(self, seq: int) -> dict:
        return self.rows[seq - 1]


@pytest.fixture
def verify(ansible, audit_login):
    def run(table: Table, **args):
        res = ansible.run("audit_chain_verify", {**audit_login, "table": table.name, **args}, via_playbook=False)
        assert "Traceback" not in res.output
        assert not res.failed, res.output
        return res.result
    return run


def located(result) -> set:
    return {(v["kind"], v["tenant_id"], v["sequence_number"], v["id"]) for v in result["violations"]}


def test_valid_chain(chain_table, verify):
    result = verify(chain_table.fill())
    assert result["is_valid"] is True and result["violations"] == []
    assert result["total_entries"] == COUNT and result["tenants"] == 3
    head = {"sequence_number": 35, "entry_hash": chain_table.row(35)["entry_hash"]}
    assert result["chains"]["tenant-b"]["head"] == head
    assert result["chains"]["tenant-b"]["first_sequence"] == 2 and result["chains"]["tenant-b"]["entries"] == 12
    assert result["profile"] == "trdrhub" and result["sequence_scope"] == "table"
    assert "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY" in result["queries"]


CONTENT_CHANGES = {
    "actor_id": "actor_id = gen_random_uuid()",
    "resource_type": "resource_type = 'user'",
    "resource_id": "resource_id = 'LC-999999'",
    "action": "action = 'delete'",
    "before_hash": "before_hash = repeat('0', 64)",
    "after_hash": "after_hash = repeat('0', 64)",
    "created_at": "created_at = created_at + interval '1 microsecond'",
}


@pytest.mark.parametrize("assignment", CONTENT_CHANGES.values(), ids=CONTENT_CHANGES.keys())
def test_changed_hashed_field_is_a_hash_mismatch_at_that_entry(chain_table, verify, assignment):
    chain_table.fill().sql(f"UPDATE {{t}} SET {assignment} WHERE sequence_number = {B_SEQ}")
    result = verify(chain_table)
    assert located(result) == {("hash_mismatch", "tenant-b", B_SEQ, chain_table.id(B_SEQ))}
    assert result["violations"][0]["found"] == chain_table.row(B_SEQ)["entry_hash"]


def test_changed_sequence_number(chain_table, verify):
    chain_table.fill().sql(f"UPDATE {{t}} SET sequence_number = 1000 WHERE sequence_number = {B_SEQ}")
    found = located(verify(chain_table))
    assert ("hash_mismatch", "tenant-b", 1000, chain_table.id(B_SEQ)) in found
    assert ("broken_link", "tenant-b", B_NEXT, chain_table.id(B_NEXT)) in found
    assert ("sequence_gap", None, B_SEQ, None) in found   # the hole in the global counter: the table's finding


def test_changed_tenant_id(chain_table, verify):
    chain_table.fill().sql(f"UPDATE {{t}} SET tenant_id = 'tenant-x' WHERE sequence_number = {B_SEQ}")
    found = located(verify(chain_table))
    assert ("hash_mismatch", "tenant-x", B_SEQ, chain_table.id(B_SEQ)) in found
    assert ("broken_link", "tenant-x", B_SEQ, chain_table.id(B_SEQ)) in found
    assert ("broken_link", "tenant-b", B_NEXT, chain_table.id(B_NEXT)) in found


def test_changed_prev_entry_hash(chain_table, verify):
    chain_table.fill().sql(f"UPDATE {{t}} SET prev_entry_hash = repeat('0', 64) WHERE sequence_number = {B_SEQ}")
    assert located(verify(chain_table)) == {("hash_mismatch", "tenant-b", B_SEQ, chain_table.id(B_SEQ)),
                                            ("broken_link", "tenant-b", B_SEQ, chain_table.id(B_SEQ))}


def test_changed_entry_hash(chain_table, verify):
    chain_table.fill().sql(f"UPDATE {{t}} SET entry_hash = repeat('0', 64) WHERE sequence_number = {B_SEQ}")
    assert located(verify(chain_table)) == {("hash_mismatch", "tenant-b", B_SEQ, chain_table.id(B_SEQ)),
                                            ("broken_link", "tenant-b", B_NEXT, chain_table.id(B_NEXT))}


UNPROTECTED = {
    "actor_role": "actor_role = 'superadmin'",
    "actor_ip": "actor_ip = '203.0.113.9'",
    "actor_user_agent": "actor_user_agent = 'sqlmap'",
    "resource_name": "resource_name = 'renamed'",
    "action_description": "action_description = 'nothing to see'",
    "severity": "severity = 'low'",
    "event_metadata": "event_metadata = '{\"forged\": true}'",
    "correlation_id": "correlation_id = gen_random_uuid()",
    "id": "id = gen_random_uuid()",
}


def test_unhashed_columns_cannot_be_checked(chain_table, verify):
    """Documented limitation: the application does not hash these columns, so no chain can show a change.

    Each column is changed in an entry of its own (sequence 2, 3, 4 ...), so a violation would name the column.
    """
    chain_table.fill()
    for seq, assignment in enumerate(UNPROTECTED.values(), start=2):
        chain_table.sql(f"UPDATE {{t}} SET {assignment} WHERE sequence_number = {seq}")
    result = verify(chain_table)
    assert result["violations"] == [] and result["is_valid"] is True


def test_deleted_first_entry(chain_table, verify):
    chain_table.fill().sql("DELETE FROM {t} WHERE sequence_number = 2")  # tenant-b's first
    result = verify(chain_table)
    assert located(result) == {("broken_link", "tenant-b", 5, chain_table.id(5)), ("sequence_gap", None, 2, None)}
    link = next(v for v in result["violations"] if v["kind"] == "broken_link")
    assert link["expected"] is None and link["found"] == chain_table.row(2)["entry_hash"]


def test_deleted_middle_entry(chain_table, verify):
    """tenant-b's chain breaks; the hole in the global counter is the table's, once; tenant-a and tenant-c stay valid.

    The entry after the hole (B_SEQ + 1) is tenant-c's, which nobody touched: no finding names tenant-c.
    """
    chain_table.fill().sql(f"DELETE FROM {{t}} WHERE sequence_number = {B_SEQ}")
    result = verify(chain_table)
    assert located(result) == {("broken_link", "tenant-b", B_NEXT, chain_table.id(B_NEXT)),
                               ("sequence_gap", None, B_SEQ, None)}
    gap = next(v for v in result["violations"] if v["kind"] == "sequence_gap")
    assert (gap["expected"], gap["found"], gap["missing"]) == (B_SEQ, B_SEQ + 1, [B_SEQ, B_SEQ])
    assert gap["message"].startswith(f"table: sequence number {B_SEQ} is missing, between tenant_id tenant-a "
                                     f"#{B_SEQ - 1} and tenant_id tenant-c #{B_SEQ + 1}")
    assert {key: chain["violations"] for key, chain in result["chains"].items()} == {
        "tenant-a": 0, "tenant-b": 1, "tenant-c": 0}


def test_deleted_last_entry_of_the_table_needs_expected_heads(chain_table, verify):
    before = verify(chain_table.fill())
    chain_table.sql("DELETE FROM {t} WHERE sequence_number = 36")  # tenant-c's head, the table's last entry
    assert verify(chain_table)["is_valid"] is True   # no link points at it: invisible without heads
    result = verify(chain_table, expected_heads=before["chains"])
    assert located(result) == {("truncated", "tenant-c", 36, None)}
    assert (result["violations"][0]["expected"], result["violations"][0]["found"]) == (36, 33)


def test_deleted_last_entry_of_a_tenant(chain_table, verify):
    before = verify(chain_table.fill())
    chain_table.sql("DELETE FROM {t} WHERE sequence_number = 35")  # tenant-b's head; tenant-c wrote 36 after it
    # one global counter: the hole shows even without heads ...
    assert located(verify(chain_table)) == {("sequence_gap", None, 35, None)}
    # ... but not when one tenant is verified alone: the other tenants' numbers are not read
    alone = verify(chain_table, tenant_id="tenant-b")
    assert alone["is_valid"] is True and "sequence gaps were not checked" in alone["notes"][0]
    result = verify(chain_table, expected_heads=before["chains"])
    assert ("truncated", "tenant-b", 35, None) in located(result)


def forged(table: Table, seq: int, prev_seq: int) -> dict:
    """An entry for tenant-b with a correct link to ``prev_seq`` and a correctly computed hash."""
    row = dict(table.row(B_SEQ), id=str(uuid.uuid4()), sequence_number=seq, resource_id="LC-FORGED",
               prev_entry_hash=table.row(prev_seq)["entry_hash"])
    row["entry_hash"] = audit.app_entry_hash(row)
    audit.copy_rows(table.conn, table.name, [row])
    return row


def test_forged_entry_appended_is_undetectable(chain_table, verify):
    """Documented limitation: an entry appended with a correct link and hash looks like normal growth."""
    before = verify(chain_table.fill())
    forged(chain_table, 37, 35)
    result = verify(chain_table, expected_heads=before["chains"])
    assert result["is_valid"] is True and result["chains"]["tenant-b"]["head"]["sequence_number"] == 37


def test_forged_entry_inserted_in_the_middle(chain_table, verify):
    chain_table.fill(unique_sequence=False)
    row = forged(chain_table, B_SEQ - 1, B_PREV)   # 16 is tenant-a's number: a duplicate in the table
    found = located(verify(chain_table))
    assert ("duplicate_sequence", "tenant-b", B_SEQ - 1, row["id"]) in found
    assert ("broken_link", "tenant-b", B_SEQ, chain_table.id(B_SEQ)) in found
    assert not any(v[0] == "hash_mismatch" for v in found)


def test_swapped_entries(chain_table, verify):
    chain_table.fill().sql(f"""
        UPDATE {{t}} SET sequence_number = -1 WHERE sequence_number = {B_SEQ};
        UPDATE {{t}} SET sequence_number = {B_SEQ} WHERE sequence_number = {B_NEXT};
        UPDATE {{t}} SET sequence_number = {B_NEXT} WHERE sequence_number = -1""")
    found = located(verify(chain_table))
    assert ("hash_mismatch", "tenant-b", B_SEQ, chain_table.id(B_NEXT)) in found
    assert ("hash_mismatch", "tenant-b", B_NEXT, chain_table.id(B_SEQ)) in found
    assert ("broken_link", "tenant-b", B_SEQ, chain_table.id(B_NEXT)) in found
    assert ("broken_link", "tenant-b", B_NEXT + 3, chain_table.id(B_NEXT + 3)) in found


def test_duplicate_sequence_number(chain_table, verify):
    chain_table.fill(unique_sequence=False)
    copy = dict(chain_table.row(B_SEQ), id=str(uuid.uuid4()))
    audit.copy_rows(chain_table.conn, chain_table.name, [copy])
    result = verify(chain_table)
    dups = [v for v in result["violations"] if v["kind"] == "duplicate_sequence"]
    assert [(v["tenant_id"], v["sequence_number"]) for v in dups] == [("tenant-b", B_SEQ)]
    assert dups[0]["id"] in (copy["id"], chain_table.id(B_SEQ))
    assert result["violation_counts"] == {"broken_link": 1, "duplicate_sequence": 1}


def test_entry_moved_to_another_tenant(chain_table, verify):
    chain_table.fill().sql(f"UPDATE {{t}} SET tenant_id = 'tenant-c' WHERE sequence_number = {B_SEQ}")
    found = located(verify(chain_table))
    assert found == {("hash_mismatch", "tenant-c", B_SEQ, chain_table.id(B_SEQ)),
                     ("broken_link", "tenant-c", B_SEQ, chain_table.id(B_SEQ)),
                     ("broken_link", "tenant-c", B_SEQ + 1, chain_table.id(B_SEQ + 1)),
                     ("broken_link", "tenant-b", B_NEXT, chain_table.id(B_NEXT))}


@pytest.mark.parametrize("value", [None, ""], ids=["null", "empty"])
def test_missing_entry_hash(chain_table, verify, value):
    chain_table.fill(hash_not_null=False)
    chain_table.sql(f"UPDATE {{t}} SET entry_hash = %s WHERE sequence_number = {B_SEQ}", (value,))
    result = verify(chain_table)
    assert located(result) == {("missing_hash", "tenant-b", B_SEQ, chain_table.id(B_SEQ))}
    assert result["violations"][0]["expected"] == chain_table.row(B_SEQ)["entry_hash"]


def test_rewritten_history_is_caught_by_expected_heads_only(chain_table, verify):
    before = verify(chain_table.fill())
    conn, rows = chain_table.conn, chain_table.rows
    rows[B_SEQ - 1]["resource_id"] = "LC-REWRITTEN"
    prev = rows[B_PREV - 1]["entry_hash"]
    for row in rows[B_SEQ - 1::3]:   # tenant-b from 17 on: every later hash and link recomputed
        row["prev_entry_hash"] = prev
        row["entry_hash"] = prev = audit.app_entry_hash(row)
        conn.cursor().execute(f"UPDATE {chain_table.name} SET resource_id = %s, prev_entry_hash = %s, entry_hash = %s "
                              "WHERE sequence_number = %s", (row["resource_id"], row["prev_entry_hash"],
                                                             row["entry_hash"], row["sequence_number"]))
    assert verify(chain_table)["is_valid"] is True
    result = verify(chain_table, expected_heads=before["chains"])
    assert located(result) == {("head_mismatch", "tenant-b", 35, chain_table.id(35))}
