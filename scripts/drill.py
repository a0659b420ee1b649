"""Scored incident drills against a private sandbox (trdrhub_harness.drills).

    make drill                         # db-runaway: runaway database sessions contained
    make drill SCENARIO=bad-deploy     # or: python scripts/drill.py --scenario bad-deploy
    make drill SCENARIO=all            # every scenario, then one table

Each scenario starts its own sandbox (PostgreSQL, Redis, Alertmanager, the Kubernetes API
double, the Statuspage, PagerDuty, Slack and SMTP contract servers, ...) on 127.0.0.1,
injects its fault, runs the runbook's playbooks unattended - approval gates in store mode,
answered by a simulated second person - checks the outcome from outside and prints a
scorecard scored against the priority triage recorded. Everything it started is removed
afterwards; the incidents (ledger, approvals, PIR, scorecard.json and the playbooks' logs)
stay under build/drills/<scenario>-<stamp>/incidents/. `make drills` runs them all unattended.

Exit status: 0 when every scenario passed, 1 when one failed, 2 for an unknown scenario.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from trdrhub_harness import HarnessError  # noqa: E402
from trdrhub_harness.drills import SCENARIOS, print_table, run  # noqa: E402


def say(line: str = "") -> None:
    print(line, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--scenario", default="db-runaway",
                        help="one of " + ", ".join(SCENARIOS) + ", or all (default db-runaway)")
    parser.add_argument("--state-dir", type=Path, default=None, help="where the sandboxes keep their incidents "
                        "(default build/drills)")
    parser.add_argument("--json", action="store_true", help="print the scorecards as JSON at the end")
    parser.add_argument("--cards", type=Path, default=None, help="also write the scorecards as a JSON list to this file "
                        "(make test reads the db-down scorecard from it in tests/integration/test_drill.py)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="show the playbooks' output (-vv: ansible -v)")
    args = parser.parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [n.strip() for n in args.scenario.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        say(f"unknown scenario {', '.join(unknown)}: choose one of {', '.join(SCENARIOS)} or all")
        return 2
    started = time.monotonic()
    cards = []
    for name in names:
        try:
            cards.append(run(name, say=say, verbose=args.verbose,
                             state_root=args.state_dir))
        except HarnessError as exc:
            say(f"DRILL {name} COULD NOT RUN: {exc}")
            return 1
        say()
    if len(cards) > 1:
        say(f"== {len(cards)} drills in {time.monotonic() - started:.0f}s")
        print_table(cards, say)
    if args.json:
        say(json.dumps(cards, indent=1))
    if args.cards is not None:
        args.cards.parent.mkdir(parents=True, exist_ok=True)
        args.cards.write_text(json.dumps(cards, indent=1), encoding="utf-8")
    return 0 if all(card["passed"] for card in cards) else 1


if __name__ == "__main__":
    sys.exit(main())
