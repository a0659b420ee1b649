"""How fast, and in how much memory, does audit_chain_verify check a large audit log?

    PYTHONPATH=tests/harness python bench/chain_bench.py [--rows 1000000 | --quick] [--repeat 1] [--table-json]

Starts the harness PostgreSQL (or uses the one named by TRDRHUB_PG_* when set), creates a
database ``chain_bench`` with the application's ``audit_log_entries`` layout and fills two
copies of it with valid chains (COPY from a generator that hashes rows with the tests'
independent implementation; generation is not measured):

  one_tenant   --rows rows, all in one tenant
  ten_tenants  --rows rows across 10 tenants, the tenants taking turns (global sequence numbers)

Then, for each table, each variant runs in a child process of its own so that peak RSS
(the child's ``VmHWM``; ``ru_maxrss`` where /proc is missing) belongs to that variant alone:

  module        audit_chain_verify's own code path in-process: AuditChainVerification + PgClient
                (server-side cursor read ahead by a thread, read-only REPEATABLE READ snapshot, one
                pass, hash input built from the row tuple), connecting included
  module-serial the same without the read-ahead thread (fetch and hashing take turns): what the
                overlap buys
  module-json   the same without the thread and with the canonical form built by json.dumps of a
                dict per row (the code path before the row-tuple builder): what the builder buys
  module@¼      module with end_sequence at a quarter of the rows: peak RSS must not grow with rows
  naive         fetchall() of the same SELECT into a list, then the same checks over the list
  compute       the application's recipe -- json.dumps(d, sort_keys=True, default=str) of the ten-key
                dict + SHA-256 -- over the same rows already in memory (fetched before the clock
                starts): the compute limit of a Python verifier that encodes as the application does;
                the reference of the target
  compute-fast  the module's row-tuple builder + SHA-256 over the same rows in memory: the limit of
                this implementation (module / compute-fast is the share the fetch and the chain rules
                leave of it)
  baseline      the child process with everything imported and nothing read (RSS floor)

Targets: module / compute throughput >= 0.8 (median over rounds, each round's module against
the same round's compute), module peak RSS < 60 MB and flat (module@¼ ~= module).
Prints figures and ratios only; nothing here asserts.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests" / "harness", REPO / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import _itest_audit as gen  # pylint: disable=wrong-import-position
from _itest_ansible import collections_root  # pylint: disable=wrong-import-position

sys.path.insert(0, str(collections_root()))
# pylint: disable=wrong-import-position
from ansible_collections.trdrhub.incident.plugins.module_utils._audit import chain as _chain
from ansible_collections.trdrhub.incident.plugins.module_utils._audit import chain_sources as _chain_sources
from ansible_collections.trdrhub.incident.plugins.module_utils._audit.chain_verify import (
    ChainVerifier,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import (
    PgClient,
)
from ansible_collections.trdrhub.incident.plugins.modules import (
    audit_chain_verify as acv,
)

DB = "chain_bench"
TABLES = {"one_tenant": ("tenant-solo",), "ten_tenants": tuple(f"tenant-{i:02d}" for i in range(10))}
TARGET_RATIO = 0.8
TARGET_RSS_MB = 60.0


def peak_rss_mb() -> float:
    """This process's own peak RSS in MB.

    VmHWM is the high-water mark of the current address space, so it starts afresh at exec.
    ru_maxrss does not on Linux: exec keeps the maximum of the address space it replaces, and
    subprocess forks (vfork) from the parent, so a child would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# -- child side ---------------------------------------------------------------------------------
def module_params(login: dict, table: str, end: int | None) -> dict:
    params = {name: spec.get("default") for name, spec in acv.argument_spec().items()}
    params.update(login, table=table, end_sequence=end, statement_timeout=0)
    return params


def select_statement(conn, table: str):
    reader = _chain_sources.TableReader("table", table, None, None, None, None, "table")
    return reader.statements(_chain_sources.check_columns(_FakeClient(conn), "table", table, reader.mapping))[0]


class _FakeClient:
    """Just enough of PgClient for check_columns, on a plain connection."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def query(self, statement, args=None):
        with self.conn.cursor() as cur:
            cur.execute(statement, args)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]


def child(variant: str, login: dict, table: str, end: int | None) -> dict:
    import psycopg2

    if variant == "baseline":
        return {"rows": 0, "seconds": 0.0, "rss_mb": peak_rss_mb()}
    if variant in ("module", "module-serial", "module-json"):
        if variant != "module":
            _chain_sources.PREFETCH = 0
        if variant == "module-json":
            _chain.PROFILES["trdrhub"] = _chain.PROFILES["trdrhub"]._replace(canonical=_chain.trdrhub_canonical_json)
        params = module_params(login, table, end)
        started = time.perf_counter()
        client = PgClient(params)
        try:
            result = acv.AuditChainVerification(params).run(client)
        finally:
            client.close()
        elapsed = time.perf_counter() - started
        return {"rows": result["total_entries"], "seconds": elapsed, "rss_mb": peak_rss_mb(),
                "valid": result["is_valid"]}
    conn = psycopg2.connect(host=login["login_host"], port=login["login_port"], user=login["login_user"],
                            password=login["login_password"], dbname=login["login_db"])
    conn.cursor().execute("SET TIME ZONE 'UTC'")
    statement = select_statement(conn, table)
    profile = _chain.PROFILES["trdrhub"]
    names = _chain_sources.TABLE_COLUMNS["table"]
    if variant == "naive":
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(statement)
            rows = cur.fetchall()
        verifier = ChainVerifier(profile, scope="table")
        _chain_sources.TableReader._verify_audit_rows(rows, verifier)  # pylint: disable=protected-access
        result = verifier.result()
        return {"rows": result["total_entries"], "seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb(),
                "valid": result["is_valid"]}
    if variant in ("compute", "compute-fast"):
        with conn.cursor() as cur:
            cur.execute(statement)
            rows = cur.fetchall()
        sha256 = hashlib.sha256
        started = time.perf_counter()
        if variant == "compute":
            reference = _chain.trdrhub_canonical_json
            for row in rows:
                sha256(reference(dict(zip(names, row)))).hexdigest()
        else:
            build = _chain.trdrhub_canonical_values
            for _rid, seq, key, actor, rtype, resource, action, before, after, prev, _stored, created in rows:
                sha256(build(seq, key, actor, rtype, resource, action, before, after, prev, created)).hexdigest()
        return {"rows": len(rows), "seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb()}
    raise SystemExit(f"unknown variant {variant}")


def run_child(variant: str, login: dict, table: str, end: int | None = None) -> dict:
    argv = [sys.executable, __file__, "--child", variant, "--table", table, "--login", json.dumps(login)]
    if end is not None:
        argv += ["--end", str(end)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} on {table} failed:\n{proc.stdout}{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- parent side --------------------------------------------------------------------------------
def populate(pg, rows: int) -> None:
    from trdrhub_harness import workload

    workload.create_trdrhub_db(pg, dbname=DB)
    conn = pg.connect(dbname=DB)
    try:
        for table, tenants in TABLES.items():
            cur = conn.cursor()
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            if cur.fetchone()[0]:
                cur.execute(f"SELECT count(*) FROM {table}")
                if cur.fetchone()[0] == rows:
                    print(f"  {table}: {rows} rows already there", flush=True)
                    continue
            started = time.perf_counter()
            gen.create_audit_table(conn, table)
            gen.copy_rows(conn, table, gen.audit_rows(rows, tenants=tenants))
            cur.execute(f"ANALYZE {table}")
            print(f"  {table}: {rows} rows in {len(tenants)} tenant(s) generated in "
                  f"{time.perf_counter() - started:.1f}s (not measured)", flush=True)
    finally:
        conn.close()


def per_round(variant: list, reference: list) -> list:
    return [(v["rows"] / v["seconds"]) / (c["rows"] / c["seconds"]) for v, c in zip(variant, reference)]


def measure(pg, rows: int, repeat: int) -> list:
    login = {"login_host": pg.host, "login_port": pg.port, "login_user": pg.superuser,
             "login_password": pg.password, "login_db": DB}
    table_rows = []
    baseline = run_child("baseline", login, "one_tenant")
    variants = (("module", None), ("module-serial", None), ("module-json", None), ("module@¼", rows // 4),
                ("naive", None), ("compute", None), ("compute-fast", None))
    for table in TABLES:
        runs: dict = {variant: [] for variant, _end in variants}
        for rnd in range(1, repeat + 1):   # rounds, not variant after variant: load drifts hit all alike
            for variant, end in variants:
                fig = run_child(variant.split("@", maxsplit=1)[0], login, table, end)
                runs[variant].append(fig)
                rate = fig["rows"] / fig["seconds"] if fig["seconds"] else 0.0
                print(f"  {table:11s} round {rnd} {variant:13s} {fig['rows']:>9d} rows {fig['seconds']:7.2f}s "
                      f"{rate:>10,.0f} rows/s  peak RSS {fig['rss_mb']:6.1f} MB"
                      + ("" if fig.get("valid", True) else "  (INVALID?)"), flush=True)
        figures = {}
        for variant, done in runs.items():
            figures[variant] = dict(min(done, key=lambda r: r["seconds"]), rss_mb=max(r["rss_mb"] for r in done))
        # each variant against compute of the same round: a burst of load elsewhere skews both alike
        ratios = {variant: per_round(runs[variant], runs["compute"]) for variant in ("module", "module-serial", "module-json")}
        ratios["module/compute-fast"] = per_round(runs["module"], runs["compute-fast"])
        table_rows.append((table, figures, ratios))
    return [baseline, table_rows]


def report(baseline: dict, table_rows: list) -> None:
    print()
    print(f"baseline child (imports only): peak RSS {baseline['rss_mb']:.1f} MB")
    print(f"{'table':12s}{'variant':14s}{'rows':>10s}{'rows/s':>12s}{'vs compute':>12s}{'peak RSS MB':>13s}")
    for table, figures, _ratios in table_rows:
        compute = figures["compute"]["rows"] / figures["compute"]["seconds"]
        for variant, fig in figures.items():
            rate = fig["rows"] / fig["seconds"]
            print(f"{table:12s}{variant:14s}{fig['rows']:>10d}{rate:>12,.0f}{rate / compute:>12.2f}{fig['rss_mb']:>13.1f}")
    print()
    for table, figures, ratios in table_rows:
        m, q = figures["module"], figures["module@¼"]
        ratio = statistics.median(ratios["module"])
        print(f"{table}: module/compute {ratio:.2f} (median of rounds: {' '.join(f'{r:.2f}' for r in ratios['module'])}; "
              f"target >= {TARGET_RATIO}) "
              f"{'OK' if ratio >= TARGET_RATIO else 'UNDER TARGET'}; module peak RSS {m['rss_mb']:.1f} MB "
              f"(target < {TARGET_RSS_MB:.0f}) {'OK' if m['rss_mb'] < TARGET_RSS_MB else 'OVER TARGET'}; "
              f"{q['rows']} rows {q['rss_mb']:.1f} MB vs {m['rows']} rows {m['rss_mb']:.1f} MB "
              f"(+{m['rss_mb'] - q['rss_mb']:.1f} MB); naive peak RSS {figures['naive']['rss_mb']:.1f} MB")
        print(f"{'':{len(table) + 2}}steps (median vs compute): module-json "
              f"{statistics.median(ratios['module-json']):.2f} -> module-serial (row-tuple builder) "
              f"{statistics.median(ratios['module-serial']):.2f} -> module (+ read-ahead thread) {ratio:.2f}; "
              f"module/compute-fast {statistics.median(ratios['module/compute-fast']):.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=None, help="rows per table (default 1,000,000; --quick 50,000)")
    parser.add_argument("--quick", action="store_true", help="50,000 rows per table (make bench): two minutes or so")
    parser.add_argument("--table-json", action="store_true",
                        help="end with one JSON line of rows for bench/run_all.py (bench/README.md)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all variants; the fastest run is reported")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--login", help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        print(json.dumps(child(opts.child, json.loads(opts.login), opts.table, opts.end)))
        return 0
    if opts.rows is None:
        opts.rows = 50_000 if opts.quick else 1_000_000
    load = os.getloadavg()[0]

    from trdrhub_harness import Services, workload

    if os.environ.get("TRDRHUB_PG_PORT"):
        pg, services = workload.postgres_from_env(), None
    else:
        services = Services(("postgres",)).start()
        pg = services.postgres
    try:
        print(f"PostgreSQL on port {pg.port}; {opts.rows} rows per table", flush=True)
        populate(pg, opts.rows)
        baseline, table_rows = measure(pg, opts.rows, opts.repeat)
    finally:
        if services is not None:
            services.stop()
    report(baseline, table_rows)
    if opts.table_json:
        print(json.dumps(table_json(table_rows, opts.rows, load)))
    return 0


def table_json(table_rows: list, rows: int, load: float) -> list[dict]:
    """Rows for bench/run_all.py: throughput against the compute limit, and peak RSS against its limit."""
    out = []
    for table, figures, ratios in table_rows:
        module, compute, quarter = figures["module"], figures["compute"], figures["module@¼"]
        out.append({
            "workload": f"audit_chain_verify, {rows:,} rows, {table}, vs compute",
            "project": round(module["rows"] / module["seconds"]), "reference": round(compute["rows"] / compute["seconds"]),
            "unit": "rows/s", "ratio": round(statistics.median(ratios["module"]), 3), "goal": f">= {TARGET_RATIO}",
            "note": (f"module/compute-fast {statistics.median(ratios['module/compute-fast']):.2f}; "
                     f"serial {statistics.median(ratios['module-serial']):.2f}, json {statistics.median(ratios['module-json']):.2f}; "
                     f"load {load:.1f}"),
        })
        out.append({
            "workload": f"audit_chain_verify, {rows:,} rows, {table}, peak RSS",
            "project": round(module["rss_mb"], 1), "reference": TARGET_RSS_MB, "unit": "MB",
            "ratio": round(module["rss_mb"] / TARGET_RSS_MB, 3), "goal": "< 1",
            "note": f"at a quarter of the rows {quarter['rss_mb']:.1f} MB; fetchall() {figures['naive']['rss_mb']:.1f} MB",
        })
    return out


if __name__ == "__main__":
    sys.exit(main())
