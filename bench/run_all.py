"""Run every benchmark in bench/ and print one table: workload, this project, the reference, the ratio, the goal.

    PYTHONPATH=tests/harness .venv/bin/python bench/run_all.py [--full] [--only NAME,...] [--out DIR]

Each ``bench/<name>_bench.py`` is run in turn with ``--table-json`` (and ``--quick`` unless ``--full``);
its own output is shown as it comes, and the last line of its standard output is a JSON list of rows
(see bench/README.md, "Convention for a benchmark script"). The table is printed at the end and written
to ``<out>/table.txt`` and ``<out>/table.json``. Figures never fail the run: the exit status is non-zero
only when a script could not run or printed no table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OPERATORS = {">=": lambda ratio, goal: ratio >= goal, "<=": lambda ratio, goal: ratio <= goal,
             ">": lambda ratio, goal: ratio > goal, "<": lambda ratio, goal: ratio < goal}


def scripts(only: list[str]) -> list[Path]:
    found = sorted(BENCH.glob("*_bench.py"))
    if only:
        found = [path for path in found if path.name[:-len("_bench.py")] in only or path.name in only]
    return found


def verdict(row: dict) -> str:
    """``OK`` / ``not reached`` from the row's ratio and goal; empty for an information-only row."""
    goal = row.get("goal")
    if not goal:
        return ""
    try:
        operator, number = str(goal).split()
        check = OPERATORS[operator]
        return "OK" if check(float(row["ratio"]), float(number)) else "not reached"
    except (KeyError, ValueError, TypeError):
        return f"bad goal {goal!r}"


def last_json_list(stdout: str) -> list[dict] | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            rows = json.loads(line)
        except ValueError:
            return None
        if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
            return rows
        return None
    return None


def run_one(path: Path, full: bool) -> tuple[list[dict] | None, str, float]:
    argv = [sys.executable, str(path), "--table-json"] + ([] if full else ["--quick"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "tests" / "harness"), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    print(f"=== {path.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        # The table line itself is printed once, at the end, as part of the summary.
        if not line.lstrip().startswith("[{"):
            print(f"  | {line}", end="", flush=True)
    code = proc.wait()
    seconds = time.monotonic() - started
    rows = last_json_list("".join(lines))
    if code != 0:
        return None, f"exited {code}", seconds
    if rows is None:
        return None, "printed no JSON table as its last line (--table-json)", seconds
    return rows, "", seconds


def fmt(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, (int, float)):
        magnitude = abs(float(value))
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
    return str(value)


def table(rows: list[dict]) -> str:
    header = ("workload", "project", "reference", "unit", "ratio", "goal", "result")
    body = [(str(row.get("workload", "?")), fmt(row.get("project")), fmt(row.get("reference")), str(row.get("unit", "")),
             fmt(row.get("ratio")), str(row.get("goal") or "-"), row.get("result", "")) for row in rows]
    widths = [max(len(header[i]), *(len(line[i]) for line in body)) if body else len(header[i]) for i in range(len(header))]
    right = {1, 2, 4}

    def line(cells: tuple) -> str:
        return "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    out = [line(header), line(tuple("-" * width for width in widths))]
    out.extend(line(cells) for cells in body)
    notes = [f"  {row['workload']}: {row['note']}" for row in rows if row.get("note")]
    if notes:
        out.append("")
        out.append("notes:")
        out.extend(notes)
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--full", action="store_true", help="the full sizes each benchmark documents (slow)")
    parser.add_argument("--only", default="", help="comma-separated names (log_scan,chain,...) of the benchmarks to run")
    parser.add_argument("--out", default=str(REPO / "build" / "bench"), help="where table.txt and table.json go")
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    paths = scripts(only)
    if not paths:
        print(f"no benchmark matches {args.only!r} in {BENCH}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    rows: list[dict] = []
    failed = []
    started = time.monotonic()
    for path in paths:
        got, error, seconds = run_one(path, args.full)
        if got is None:
            failed.append(path.name)
            rows.append({"workload": f"{path.name}: {error}", "result": "FAILED TO RUN"})
            continue
        for row in got:
            row = dict(row)
            row["result"] = verdict(row)
            row.setdefault("script", path.name)
            rows.append(row)
        print(f"=== {path.name}: {len(got)} row(s) in {seconds:.0f} s", flush=True)
    load_after = os.getloadavg()
    text = table(rows)
    summary = (f"{len(paths)} benchmark(s) in {time.monotonic() - started:.0f} s, {'full' if args.full else 'quick'} sizes; "
               f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (2 cores: compare ratios, not rates)")
    print()
    print(text)
    print()
    print(summary)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.txt").write_text(text + "\n\n" + summary + "\n", encoding="utf-8")
    (out / "table.json").write_text(json.dumps({"rows": rows, "summary": summary, "full": args.full}, indent=1) + "\n",
                                    encoding="utf-8")
    if failed:
        print(f"benchmark(s) that did not run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
