"""How fast, and in how much memory, does access_log_scan read a large nginx access log?

    PYTHONPATH=tests/harness python bench/log_scan_bench.py [--size-mb 1024 | --quick] [--gz] [--ansible] [--dir DIR] [--keep]
                                                            [--table-json]

Generates a combined-format access log of ``--size-mb`` MB (MB = 2**20 bytes here) with the harness
generator (``trdrhub_harness.accesslog``: normal TRDR Hub traffic, ~50 lines a second over many
hours, and one attacker of every kind spread through it) into a temporary directory; ``--gz``
also writes a gzip copy. Generation is printed, not measured.

Then every variant runs in a child process of its own, so that its peak RSS is its own:

  imports      the child with the module imported and nothing read (the RSS floor)
  baseline     ``for line in open(path, 'rb')``: read every line and count it, nothing else
  scan         ``AccessLogScan(...).run()`` (the module's own code path) with a window holding the
               whole file: every line parsed, counted, matched
  scan-lines   the same with the block path off (``bulk = False``): every line through the
               line-by-line loop, what the block path buys
  scan-1h      the same with a window of the file's last hour (``time_ordered``: binary search)
  scan-1h-all  the last hour with ``time_ordered: false``: every line read, the time checked only
  fields       the floor of any scan that finds the same things: 1 MiB blocks split with C-level
               operations into every line's address (counted), request and user agent (gathered
               into sets, as a scan checks each distinct value once); no time, status or match.
               A floor below the goal means the goal cannot be reached by taking a line's fields
               apart in Python at all, whatever is done with them after
  *-gz         the same on the gzip copy (``--gz``)
  ansible      the module through ``ansible-playbook`` (``--ansible``), wall time including start-up

Peak RSS is ``ru_maxrss`` of the child as ``os.wait4`` returns it (``resource.getrusage`` semantics);
the child's own ``VmHWM`` is printed beside it, because on Linux ``ru_maxrss`` of a process started
by fork+exec can include the pre-exec image of its (small) parent. Throughput is MB/s of the
uncompressed log and lines/s; "vs baseline" divides the scan's throughput by the baseline's.

Target: scan / baseline >= 0.25 (the whole-file scan at a quarter of the speed of the read loop or
better), with the generated attackers found and no normal client flagged.
Prints figures and ratios only; nothing here asserts.
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests" / "harness", REPO / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _itest_ansible import AnsibleRunner, collections_root  # pylint: disable=wrong-import-position
from trdrhub_harness.accesslog import AccessLogGenerator, default_attacks  # pylint: disable=wrong-import-position

sys.path.insert(0, str(collections_root()))
MB = float(1 << 20)
START = datetime.datetime(2025, 1, 15, 0, 0, 0, tzinfo=datetime.UTC)
RATE = 50.0                 # normal lines per second in the generated log
LINE_ESTIMATE = 183         # bytes per generated combined line, to spread the attacks over the file


def vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------------------------
# Child side


def fields_floor(path: str) -> dict:
    """The ``fields`` variant: every line's address counted, requests and agents gathered, nothing else.

    Blocks come from the scan's own reader (``access_log.line_blocks``), so reading costs the same as in the scan.
    """
    from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import line_blocks

    addresses: Counter = Counter()
    requests: set = set()
    agents: set = set()
    counters = {"bytes": 0, "overlong": 0}
    lines = 0
    with open(path, "rb") as handle:
        for block in line_blocks(handle, counters):
            pieces = (b"\n" + block).split(b'"')
            heads = pieces[0:-1:6]
            addresses.update([head[1:head.find(b" ")] for head in heads])
            requests.update(pieces[1::6])
            agents.update(pieces[5::6])
            lines += len(heads)
    return {"lines": lines, "bytes": counters["bytes"], "addresses": len(addresses)}


def child(args: argparse.Namespace) -> None:
    from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import AccessLogScan

    out: dict = {"variant": args.child}
    started = time.perf_counter()
    cpu_started = time.process_time()
    if args.child == "imports":
        pass
    elif args.child == "ansible":
        run = AnsibleRunner(Path(tempfile.mkdtemp(prefix="ansible-", dir=os.path.dirname(args.path)))).run(
            "access_log_scan", {"paths": [args.path], "since": args.since, "until": args.until}, timeout=7200)
        stats = run.get("stats") or {}
        out.update(lines=stats.get("lines_read", 0), bytes=stats.get("bytes_read", 0), failed=run.failed,
                   module_seconds=stats.get("duration"), msg=run.get("msg"),
                   found={entry["ip"]: sorted(entry["reasons"]) for entry in run.get("suspicious") or []},
                   largest_descendant_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
    elif args.child == "fields":
        out.update(fields_floor(args.path))
    elif args.child == "baseline":
        lines = size = 0
        opener = gzip.open if args.path.endswith(".gz") else open
        with opener(args.path, "rb") as handle:
            for line in handle:
                lines += 1
                size += len(line)
        out.update(lines=lines, bytes=size)
    else:
        scan = AccessLogScan({"paths": [args.path], "since": args.since, "until": args.until,
                              "time_ordered": args.time_ordered == "true"})
        scan.bulk = args.child != "scan-lines"
        result = scan.run()
        stats = result["stats"]
        out.update(lines=stats["lines_read"], bytes=stats["bytes_read"], in_window=stats["lines_in_window"],
                   skipped_bytes=stats["bytes_skipped"],
                   found={entry["ip"]: sorted(entry["reasons"]) for entry in result["suspicious"]},
                   ips_tracked=stats["ips_tracked"], warnings=scan.warnings)
    out["seconds"] = time.perf_counter() - started
    out["cpu_seconds"] = time.process_time() - cpu_started
    out["vm_hwm_mb"] = vm_hwm_mb()
    out["self_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


# ----------------------------------------------------------------------------------------------
# Parent side


def run_child(variant: str, path: Path, since: str = "", until: str = "", time_ordered: bool = True) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--path", str(path),
            "--since", since, "--until", until, "--time-ordered", "true" if time_ordered else "false"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"child {variant} failed ({proc.returncode}):\n{stderr.decode(errors='replace')}")
    out = json.loads(stdout.decode().strip().splitlines()[-1])
    out["ru_maxrss_mb"] = usage.ru_maxrss / 1024.0
    out["wall"] = wall
    return out


def generate(directory: Path, size_mb: float, with_gz: bool) -> tuple:
    size = int(size_mb * MB)
    duration = size / LINE_ESTIMATE / RATE
    gen = AccessLogGenerator(start=START, rate=RATE, clients=2000)
    path = directory / "access.log"
    print(f"generating {size_mb:.0f} MB of combined log into {directory} ...", flush=True)
    started = time.perf_counter()
    log = gen.write(path, size=size, attacks=default_attacks(duration))
    print(f"  {log.lines:,} lines, {log.bytes / MB:.1f} MB, {log.start:%Y-%m-%d %H:%M} .. {log.end:%Y-%m-%d %H:%M} UTC, "
          f"{log.attack_lines:,} attack lines from {len(log.expected())} attackers, {len(log.normal_ips):,} normal "
          f"clients ({time.perf_counter() - started:.0f} s, not measured)", flush=True)
    gz_path = None
    if with_gz:
        gz_path = directory / "access.log.1.gz"
        started = time.perf_counter()
        with open(path, "rb") as source, gzip.open(gz_path, "wb", compresslevel=6) as target:
            shutil.copyfileobj(source, target, 1 << 20)
        print(f"  gzip copy: {gz_path.stat().st_size / MB:.1f} MB ({time.perf_counter() - started:.0f} s, not measured)",
              flush=True)
    return log, path, gz_path


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report(rows: list[dict], file_mb: float, baseline: dict[str, dict]) -> None:
    print()
    print(f"{'variant':14s} {'seconds':>8s} {'MB/s':>8s} {'lines/s':>11s} {'vs baseline':>11s} {'ru_maxrss MB':>12s} "
          f"{'VmHWM MB':>9s} {'RSS/file':>9s}")
    for row in rows:
        seconds = row["seconds"]
        mbps = row.get("bytes", 0) / MB / seconds if seconds and row.get("bytes") else None
        lps = row.get("lines", 0) / seconds if seconds and row.get("lines") else None
        base = baseline.get("gz" if row["variant"].endswith("-gz") else "plain")
        ratio = ""
        if base and mbps and row["variant"] not in ("baseline", "baseline-gz"):
            base_mbps = base["bytes"] / MB / base["seconds"]
            ratio = f"{mbps / base_mbps:.3f}"
        rss = row.get("largest_descendant_mb") or row.get("ru_maxrss_mb")
        hwm = row.get("vm_hwm_mb")
        print(f"{row['variant']:14s} {seconds:8.2f} {mbps if mbps else 0:8.1f} {lps if lps else 0:11,.0f} {ratio:>11s} "
              f"{rss if rss else 0:12.1f} {hwm if hwm else 0:9.1f} {(rss or 0) / file_mb:9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=float, default=None, help="size of the generated log (default 1024, --quick 128)")
    parser.add_argument("--quick", action="store_true", help="a 128 MB log (make bench): about half a minute")
    parser.add_argument("--table-json", action="store_true",
                        help="end with one JSON line of rows for bench/run_all.py (bench/README.md)")
    parser.add_argument("--gz", action="store_true", help="also scan a gzip copy")
    parser.add_argument("--ansible", action="store_true", help="also run the module through ansible-playbook")
    parser.add_argument("--dir", help="generate into this directory (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    parser.add_argument("--time-ordered", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.size_mb is None:
        args.size_mb = 128.0 if args.quick else 1024.0
    load = os.getloadavg()[0]

    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="log_scan_bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        log, path, gz_path = generate(directory, args.size_mb, args.gz)
        file_mb = path.stat().st_size / MB
        whole = (iso(log.start - datetime.timedelta(hours=1)), iso(log.end + datetime.timedelta(hours=1)))
        last_hour = (iso(log.end - datetime.timedelta(hours=1)), iso(log.end))
        print(f"parent (generator) peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0:.1f} MB; "
              f"windows: whole file {whole[0]} .. {whole[1]}, last hour {last_hour[0]} .. {last_hour[1]}", flush=True)
        rows: list[dict] = []
        baseline: dict[str, dict] = {}

        def go(variant, work, target, window=("", ""), ordered=True):
            print(f"  running {variant} ...", flush=True)
            row = run_child(work, target, *window, time_ordered=ordered)
            row["variant"] = variant
            rows.append(row)
            return row

        go("imports", "imports", path)
        baseline["plain"] = go("baseline", "baseline", path)
        scan = go("scan", "scan", path, whole)
        lines = go("scan-lines", "scan-lines", path, whole)
        fields = go("fields", "fields", path)
        go("scan-1h", "scan", path, last_hour)
        go("scan-1h-all", "scan", path, last_hour, ordered=False)
        if gz_path is not None:
            baseline["gz"] = go("baseline-gz", "baseline", gz_path)
            go("scan-gz", "scan", gz_path, whole)
        if args.ansible:
            ansible = go("ansible", "ansible", path, whole)
            if ansible.get("failed"):
                print(f"  ansible run failed: {ansible.get('msg')}")
            elif ansible.get("module_seconds"):
                print(f"  ansible: the module's own stats.duration {ansible['module_seconds']:.2f} s of "
                      f"{ansible['seconds']:.2f} s wall", flush=True)
        report(rows, file_mb, baseline)
        print("(ansible: seconds is the whole ansible-playbook run; RSS is its largest process, from RUSAGE_CHILDREN)"
              if args.ansible else "")

        expected = {ip: sorted(kinds) for ip, kinds in log.expected().items()}
        found = scan.get("found", {})
        flagged_normal = sorted(set(found) & log.normal_ips)
        print()
        print(f"scan found {len(found)} addresses; expected attackers {len(expected)}: "
              f"{'all found with the expected categories' if found == expected else 'DIFFERENT: ' + json.dumps(found)}; "
              f"normal clients flagged: {len(flagged_normal)}")
        for row in rows:
            if row["variant"].startswith("scan-1h"):
                print(f"{row['variant']}: {row['in_window']:,} lines in the window, {row['lines']:,} lines read, "
                      f"{row['skipped_bytes'] / MB:.1f} MB skipped by the binary search")
            if row.get("warnings"):
                print(f"{row['variant']} warnings: {row['warnings']}")
        if lines.get("found") != scan.get("found"):
            print("scan-lines found DIFFERENT addresses or categories than scan")
        cpu_ratio = baseline["plain"]["cpu_seconds"] / scan["cpu_seconds"] if scan.get("cpu_seconds") else None
        lines_cpu = baseline["plain"]["cpu_seconds"] / lines["cpu_seconds"] if lines.get("cpu_seconds") else None
        print(f"scan-lines / baseline on CPU time: {lines_cpu:.3f} (the block path off)")
        fields_cpu = baseline["plain"]["cpu_seconds"] / fields["cpu_seconds"] if fields.get("cpu_seconds") else None
        print(f"fields / baseline on CPU time: {fields_cpu:.3f} (the floor: every line's address, request and agent taken out, "
              f"nothing analysed; {fields['cpu_seconds'] / log.lines * 1e6:.2f} us a line)")
        print(f"scan / baseline on CPU time: {cpu_ratio:.3f} (baseline {baseline['plain']['cpu_seconds'] / log.lines * 1e6:.2f} "
              f"us a line, scan {scan['cpu_seconds'] / log.lines * 1e6:.2f} us a line); load average {load:.1f} at the start")
        if args.table_json:
            base = baseline["plain"]
            print(json.dumps([{
                "workload": f"access_log_scan, {file_mb:.0f} MB log, vs read loop",
                "project": round(scan["lines"] / scan["seconds"]), "reference": round(base["lines"] / base["seconds"]),
                "unit": "lines/s", "ratio": round((scan["bytes"] / scan["seconds"]) / (base["bytes"] / base["seconds"]), 3),
                "goal": ">= 0.25",
                "note": (f"CPU-time ratio {cpu_ratio:.3f} (line by line {lines_cpu:.3f}); peak RSS {scan.get('vm_hwm_mb') or 0:.0f} MB; "
                         f"{'same findings as generated' if found == expected else 'FINDINGS DIFFER'}; load {load:.1f}"),
            }, {
                "workload": "access_log_scan floor: fields only, vs read loop",
                "project": round(fields["lines"] / fields["seconds"]), "reference": round(base["lines"] / base["seconds"]),
                "unit": "lines/s", "ratio": round((fields["bytes"] / fields["seconds"]) / (base["bytes"] / base["seconds"]), 3),
                "goal": None,
                "note": f"CPU-time ratio {fields_cpu:.3f}: every line's address, request and agent, nothing analysed",
            }]))
    finally:
        if args.keep:
            print(f"kept {directory}")
        elif not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for name in ("access.log", "access.log.1.gz"):
                (directory / name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
