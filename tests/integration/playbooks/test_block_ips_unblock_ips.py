"""IP blocking for real: playbooks/block_ips.yml and unblock_ips.yml in a throwaway network namespace.

Each test gets its own namespace (``trdrhub-t-<random>``, deleted by a finalizer) and asserts the
rules the kernel actually holds (``iptables -S TRDRHUB-BLOCK``). Where namespaces or iptables are
not usable (not root, no CAP_NET_ADMIN, iptables missing), each test still checks the plan through a
real ansible-playbook run of ip_block_plan in check mode with given rules, then skips the kernel part
with the reason. TRDRHUB_ITEST_NO_NETNS=1 forces that fallback.
"""
from __future__ import annotations

import os
import time

import pytest
from _itest_netns import Netns, NetnsPlaybooks
from _itest_snapshot import Snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CHAIN = "TRDRHUB-BLOCK"
ALLOW = ["10.20.0.0/16", "2001:db8:100::/48"]


@pytest.fixture
def kernel(request, tmp_path, ansible):
    """(NetnsPlaybooks in a fresh namespace, None) or (None, why the kernel part cannot run)."""
    if os.environ.get("TRDRHUB_ITEST_NO_NETNS"):
        return None, "TRDRHUB_ITEST_NO_NETNS is set"
    netns = Netns()
    request.addfinalizer(netns.delete)
    reason = netns.create()
    if reason:
        return None, reason
    return NetnsPlaybooks(ansible, tmp_path, netns), None


def plan_only(ansible, args: dict, current: list | None = None) -> dict:
    """The fallback: the plan through ansible-playbook in check mode, from given rules (no kernel)."""
    run = ansible.run("ip_block_plan", {**args, "current_rules": current or []}, check=True)
    return run.result


def need_kernel(kernel_reason: str | None) -> None:
    if kernel_reason:
        pytest.skip(f"real-kernel part skipped, check-mode plan asserted instead: {kernel_reason}")


def block(pb, addresses, incident="INC-IPB-1", *args, **extra):
    return pb.run("block_ips.yml", {"block_ips_addresses": addresses, "block_ips_allowlist": ALLOW,
                                    "trdrhub_incident_id": incident, "block_ips_confirm": True, **extra}, *args)


def unblock(pb, *args, **extra):
    """Lift blocks; before their expiry that is approved by block_ips_confirm unless the test says otherwise."""
    return pb.run("unblock_ips.yml", {"block_ips_confirm": True, **extra}, *args)


def test_block_is_real_idempotent_refuses_allowlisted_and_a_store_mode_rerun_asks_no_approval(kernel, ansible):
    pb, reason = kernel
    addresses = ["203.0.113.5", "10.20.3.4", "2001:db8:bad::/48", "::ffff:198.51.100.9"]
    if pb is None:
        plan = plan_only(ansible, {"addresses": addresses, "allowlist": ALLOW, "incident_id": "INC-IPB-1"})
        assert sorted(plan["to_block"]) == ["198.51.100.9/32", "2001:db8:bad::/48", "203.0.113.5/32"]
        assert [r["protected_by"] for r in plan["refused"]] == ["10.20.0.0/16"]
        need_kernel(reason)

    first = block(pb, addresses)
    assert first.ok, first.output
    v4, v6 = pb.netns.sources(CHAIN, "ipv4"), pb.netns.sources(CHAIN, "ipv6")
    assert set(v4) == {"203.0.113.5/32", "198.51.100.9/32"}
    assert set(v6) == {"2001:db8:bad::/48"}
    for comment in list(v4.values()) + list(v6.values()):
        incident, expiry = comment.split(":")[1], int(comment.split("exp=")[1])
        assert incident == "INC-IPB-1"
        assert 23 * 3600 < expiry - time.time() <= 24 * 3600
    hook = pb.netns.exec(["iptables", "-S", "INPUT"]).stdout
    assert f"-j {CHAIN}" in hook
    assert f"-j {CHAIN}" in pb.netns.exec(["ip6tables", "-S", "INPUT"]).stdout
    refused = {r["address"]: r for r in first.result["refused"]}
    assert refused["10.20.3.4/32"]["protected_by"] == "10.20.0.0/16"
    assert {r["address"] for r in first.result["blocked"]} == set(v4) | set(v6)
    # The ledger holds the gate decision and the verified blocks.
    entries = pb.ledger("INC-IPB-1")
    blocks = [e for e in entries if e["event"] == "verification" and e["data"].get("action") == "block"]
    assert len(blocks) == 1 and blocks[0]["data"]["verified"] is True
    assert {r["address"] for r in blocks[0]["data"]["blocked"]} == set(v4) | set(v6)
    assert any(e["event"] == "decision" and e["data"]["confirmed"] is True for e in entries)

    second = block(pb, addresses)
    assert second.ok, second.output
    assert second.recap()["changed"] == 0, second.output
    assert pb.netns.sources(CHAIN, "ipv4") == v4 and pb.netns.sources(CHAIN, "ipv6") == v6
    assert second.result["blocked"] == []
    assert {r["requested"] for r in second.result["already_blocked"]} == set(v4) | set(v6)

    # A store-mode rerun with every block in place asks no approval: no request, no vote, no decision.
    def asked():
        return [e for e in pb.ledger("INC-IPB-1") if e["event"] in ("approval", "decision")]
    before, requests = asked(), sorted((pb.ledger_dir / "INC-IPB-1" / "approvals").glob("req-*.json"))
    store = block(pb, addresses, block_ips_confirm=False, block_ips_approval_mode="store", block_ips_approval_timeout=5)
    assert store.ok and store.recap()["changed"] == 0, store.output
    assert "NOTHING TO DO, no approval asked, nothing changed" in " ".join(store.output.split())
    assert asked() == before
    assert sorted((pb.ledger_dir / "INC-IPB-1" / "approvals").glob("req-*.json")) == requests
    assert pb.netns.sources(CHAIN, "ipv4") == v4 and pb.netns.sources(CHAIN, "ipv6") == v6


def test_check_mode_plans_and_changes_nothing(kernel, ansible):
    pb, reason = kernel
    if pb is None:
        plan = plan_only(ansible, {"addresses": ["203.0.113.7"], "incident_id": "INC-IPB-2"})
        assert plan["to_block"] == ["203.0.113.7/32"] and plan["changed"] is False
        need_kernel(reason)
    snapshot = Snapshot(pb.ledger_dir, ansible.workdir / "incidents")
    run = block(pb, ["203.0.113.7", "2001:db8:bad::1"], "INC-IPB-2", "--check")
    assert run.ok, run.output
    assert snapshot.new_or_changed() == []   # no ledger entry, no incident directory, no approval request
    assert "CHECK MODE" in run.output
    assert pb.netns.rules(CHAIN, "ipv4") is None and pb.netns.rules(CHAIN, "ipv6") is None
    assert f"-j {CHAIN}" not in pb.netns.exec(["iptables", "-S", "INPUT"]).stdout
    assert run.result["applied"] is False and run.result["blocked"] == []
    assert sorted(run.result["planned"]["to_block"]) == ["2001:db8:bad::1/128", "203.0.113.7/32"]


def test_cap_exceeded_fails_with_nothing_blocked(kernel, ansible):
    pb, reason = kernel
    addresses = [f"198.51.100.{n}" for n in range(1, 6)]
    if pb is None:
        plan = plan_only(ansible, {"addresses": addresses, "incident_id": "INC-IPB-3", "max_addresses": 4})
        assert plan["failed"] and "5 addresses" in plan["msg"] and "cap of 4" in plan["msg"]
        need_kernel(reason)
    run = block(pb, addresses, "INC-IPB-3", block_ips_max=4)
    assert not run.ok
    assert "5 addresses would be blocked, more than the cap of 4" in run.output
    assert pb.netns.rules(CHAIN, "ipv4") is None


def test_unconfirmed_run_blocks_nothing(kernel, ansible):
    pb, reason = kernel
    if pb is None:
        need_kernel(reason)
    run = block(pb, ["203.0.113.9"], "INC-IPB-4", block_ips_confirm=False)
    assert not run.ok
    assert "Not confirmed, nothing was blocked" in run.output
    assert pb.netns.rules(CHAIN, "ipv4") is None
    decisions = [e for e in pb.ledger("INC-IPB-4") if e["event"] == "decision"]
    assert decisions and decisions[-1]["data"]["confirmed"] is False


def test_invalid_address_is_one_clear_message(kernel, ansible):
    pb, reason = kernel
    if pb is None:
        plan = plan_only(ansible, {"addresses": ["203.0.113.300"], "incident_id": "INC-IPB-5"})
        assert plan["failed"] and "203.0.113.300" in plan["msg"] and "Traceback" not in plan["msg"]
        need_kernel(reason)
    run = block(pb, ["203.0.113.10", "203.0.113.300"], "INC-IPB-5")
    assert not run.ok
    assert "Invalid address '203.0.113.300'" in run.output and "Traceback" not in run.output
    assert pb.netns.rules(CHAIN, "ipv4") is None


def test_unblock_by_expiry_by_incident_and_by_address(kernel, ansible):
    """The expiry sweep lifts only expired blocks; then lifting by incident (dry run first) and by address."""
    pb, reason = kernel
    past = int(time.time()) - 600
    if pb is None:
        current = [f'-A {CHAIN} -s 192.0.2.1/32 -m comment --comment "trdrhub:INC-OLD:exp={past}" -j DROP',
                   f'-A {CHAIN} -s 192.0.2.2/32 -m comment --comment "trdrhub:INC-NEW:exp={past + 86400}" -j DROP']
        plan = plan_only(ansible, {"state": "absent", "expired_only": True}, current)
        assert [r["address"] for r in plan["to_unblock"]] == ["192.0.2.1/32"]
        future = int(time.time()) + 3600
        current = [f'-A {CHAIN} -s 203.0.113.{n}/32 -m comment --comment "trdrhub:INC-{n % 2}:exp={future}" -j DROP'
                   for n in (1, 2, 3)]
        plan = plan_only(ansible, {"state": "absent", "incident_id": "INC-1"}, current)
        assert sorted(r["address"] for r in plan["to_unblock"]) == ["203.0.113.1/32", "203.0.113.3/32"]
        need_kernel(reason)
    old = block(pb, ["192.0.2.1", "2001:db8:dead::1"], "INC-OLD", block_ips_expires_at=str(past),
                block_ips_allow_past_expiry=True)
    assert old.ok, old.output
    assert block(pb, ["203.0.113.21", "2001:db8:bad::21"], "INC-A").ok
    assert block(pb, ["203.0.113.22", "203.0.113.23"], "INC-B").ok
    pb.netns.add_raw("ipv4", "-A", CHAIN, "-s", "192.0.2.3/32", "-j", "DROP")   # not ours: never touched
    fresh = {"203.0.113.21/32", "203.0.113.22/32", "203.0.113.23/32"}
    assert set(pb.netns.sources(CHAIN)) == {"192.0.2.1/32", "192.0.2.3/32"} | fresh

    # The expiry sweep: only the expired blocks go, fresh ones (v4 and v6) and the rule not ours stay.
    sweep = unblock(pb, block_ips_expired_only=True)
    assert sweep.ok, sweep.output
    assert set(pb.netns.sources(CHAIN)) == {"192.0.2.3/32"} | fresh
    assert set(pb.netns.sources(CHAIN, "ipv6")) == {"2001:db8:bad::21/128"}
    assert {r["address"] for r in sweep.result["unblocked"]} == {"192.0.2.1/32", "2001:db8:dead::1/128"}
    lifted = [e for e in pb.ledger("INC-OLD") if e["event"] == "verification" and e["data"].get("action") == "unblock"]
    assert len(lifted) == 1 and {r["address"] for r in lifted[0]["data"]["unblocked"]} == {"192.0.2.1/32", "2001:db8:dead::1/128"}
    for incident in ("INC-A", "INC-B"):
        assert not [e for e in pb.ledger(incident) if e["data"].get("action") == "unblock"]

    again = unblock(pb, block_ips_expired_only=True)
    assert again.ok and again.recap()["changed"] == 0, again.output

    # By incident: a dry run first, which changes nothing.
    snapshot = Snapshot(pb.ledger_dir)
    check = unblock(pb, "--check", block_ips_incident_id="INC-A")
    assert check.ok, check.output
    assert snapshot.new_or_changed() == []
    assert set(pb.netns.sources(CHAIN)) == {"192.0.2.3/32"} | fresh

    by_incident = unblock(pb, block_ips_incident_id="INC-A")
    assert by_incident.ok, by_incident.output
    assert set(pb.netns.sources(CHAIN)) == {"192.0.2.3/32", "203.0.113.22/32", "203.0.113.23/32"}
    assert pb.netns.sources(CHAIN, "ipv6") == {}

    by_address = unblock(pb, block_ips_addresses=["203.0.113.23"])
    assert by_address.ok, by_address.output
    assert set(pb.netns.sources(CHAIN)) == {"192.0.2.3/32", "203.0.113.22/32"}
    assert [r["incident_id"] for r in by_address.result["unblocked"]] == ["INC-B"]

    again = unblock(pb, block_ips_incident_id="INC-A")
    assert again.ok and again.recap()["changed"] == 0, again.output


def test_reject_target_extra_hook_chain_and_unblocking_before_the_expiry_needs_an_approval(kernel, ansible):
    pb, reason = kernel
    if pb is None:
        plan = plan_only(ansible, {"addresses": ["203.0.113.30", "2001:db8:bad::30"], "incident_id": "INC-IPB-8",
                                   "target": "REJECT"})
        assert {r["reject_with"] for r in plan["rules"]} == {"icmp-port-unreachable", "icmp6-port-unreachable"}
        need_kernel(reason)
    args = {"block_ips_target": "REJECT", "block_ips_hook_chains": ["INPUT", "FORWARD"]}
    first = block(pb, ["203.0.113.30", "2001:db8:bad::30"], "INC-IPB-8", **args)
    assert first.ok, first.output
    assert any("-j REJECT" in line for line in pb.netns.rules(CHAIN, "ipv4"))
    assert f"-j {CHAIN}" in pb.netns.exec(["iptables", "-S", "FORWARD"]).stdout
    second = block(pb, ["203.0.113.30", "2001:db8:bad::30"], "INC-IPB-8", **args)
    assert second.ok and second.recap()["changed"] == 0, second.output

    # Lifting the blocks before their expiry needs an approval: refused without one, nothing lifted.
    refused = unblock(pb, block_ips_incident_id="INC-IPB-8", block_ips_confirm=False)
    assert not refused.ok and "Not approved: Nothing was unblocked." in " ".join(refused.output.split()), refused.output
    assert set(pb.netns.sources(CHAIN)) == {"203.0.113.30/32"}
    assert set(pb.netns.sources(CHAIN, "ipv6")) == {"2001:db8:bad::30/128"}
    decision = [e for e in pb.ledger("INC-IPB-8") if e["event"] == "decision"][-1]["data"]
    assert decision["action"] == "unblock_ips" and decision["confirmed"] is False

    lifted = unblock(pb, block_ips_incident_id="INC-IPB-8")
    assert lifted.ok, lifted.output
    assert pb.netns.rules(CHAIN, "ipv4") == [] and pb.netns.rules(CHAIN, "ipv6") == []
    decision = [e for e in pb.ledger("INC-IPB-8") if e["event"] == "decision"][-1]["data"]
    assert decision["action"] == "unblock_ips" and decision["confirmed_by"] == "variable block_ips_confirm"
