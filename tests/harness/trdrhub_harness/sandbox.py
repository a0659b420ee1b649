"""The sandbox: everything the playbooks talk to, on loopback, from the project's own files.

    with Sandbox(Path("build/sandbox")) as box:
        box.env()                    # TRDRHUB_* variables the sandbox inventory reads
        box.describe()               # [(what, where), ...]
        box.stop_postgres()          # faults: the database down, a bad deploy, a tampered audit row ...

It starts a PostgreSQL with a seeded ``trdrhub`` database (the application's tables, a valid
audit hash chain per tenant, ``secret_rotation_logs``, ``alembic_version``) and a real backup
of it (``pg_dump --format=custom`` under the application's ``trdrhub_backup_<stamp>.sql.gz``
name, with its ``.sha256``); Redis with the application's queues; Alertmanager; a TRDR Hub
health server whose answers follow the database, the Kubernetes rollout and injected faults;
the Statuspage, PagerDuty, Slack and SMTP contract servers; the Kubernetes API double with
``trdrhub-api`` in ``trdrhub-system``; an nginx access log being written; a service manager for
PostgreSQL (``bin/postgresql-service restart``, the configured restart method of recover_db.yml
here, what ``systemctl`` or ``pg_ctlcluster`` is on a database host); and the sandbox
page (``dashboard.py``) that shows what was "sent". ``python -m trdrhub_harness sandbox``
runs it until Ctrl-C or SIGTERM; ``make sandbox`` / ``make sandbox-down`` in the background.

``Sandbox.inject(name)`` applies one of ``FAULTS`` (the same methods the drills call);
``python -m trdrhub_harness fault NAME`` asks a running sandbox to do it through its page
server (``POST /api/fault`` with the sandbox's control token).
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import queue
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import psycopg2

from ._common import HarnessError
from ._inproc import InProcessHTTPServer, json_answer
from .accesslog import AccessLogGenerator, Attack
from .alertmanager import AlertmanagerServer
from .k8sapi import NAMESPACE, REVISION, K8sApiServer
from .pagerduty import PagerDutyServer
from .postgres import PostgresServer
from .redis import RedisServer
from .slack import SlackServer
from .smtp import SmtpServer
from .statuspage import StatuspageServer
from .workload import ALEMBIC_REVISION, create_trdrhub_db

UTC = datetime.timezone.utc
DEPLOYMENT = "trdrhub-api"
# Celery's default queue, then one per queue-backed component of the application's alert rules
# (FACTS names the components, not the queues: the names are configurable, trdrhub_redis_queues).
QUEUES = {"celery": 3, "notifications": 2, "reports": 1, "bulk": 0}
QUEUE = "celery"
AUDIT_TENANTS = ("tenant-1", "tenant-2", "tenant-3")
AUDIT_ROWS = 60
CUSTOMER_EMAIL = "drill-customer@customer.example"
STATUSPAGE_COMPONENTS = {"API": "operational", "Document processing": "operational", "Dashboard": "operational"}
ATTACKER_SQLI = "203.0.113.10"
ATTACKER_BRUTE = "203.0.113.14"
BAD_IMAGE = "ghcr.io/trdrhub/api:1.3.0"
FAULTS = {
    "db-down": "stop PostgreSQL (fast shutdown); /health/ready answers 503",
    "db-up": "start PostgreSQL again on its port with its data",
    "bad-deploy": f"roll trdrhub-api out to {BAD_IMAGE}, whose pods crash-loop; every health route answers 503",
    "attack": "SQL injection and brute force in the access log, bulk exports from the attacker's address in the audit log",
    "tamper": "edit audit row 17 in place: the application's audit chain no longer verifies",
    "alert": "fire the P1 alert AllWorkersDown in Alertmanager",
    "clear": "undo what can be undone: PostgreSQL up, trdrhub-api back on its previous revision, the audit row restored",
}

SECRET_ROTATION_DDL = """
CREATE TABLE IF NOT EXISTS secret_rotation_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_type varchar(64) NOT NULL,
    environment varchar(64) NOT NULL,
    rotation_method varchar(32) NOT NULL,
    rotated_by varchar(128),
    old_secret_fingerprint varchar(64),
    new_secret_fingerprint varchar(64),
    services_restarted jsonb,
    downtime_seconds double precision,
    status varchar(16) NOT NULL,
    error_message text,
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
GRANT SELECT, INSERT, UPDATE ON secret_rotation_logs TO trdrhub_app;
"""

_AUDIT_COLUMNS = ("id", "sequence_number", "tenant_id", "actor_id", "actor_role", "actor_ip", "actor_user_agent",
                  "resource_type", "resource_id", "resource_name", "action", "action_description", "severity",
                  "before_hash", "after_hash", "prev_entry_hash", "entry_hash", "event_metadata", "correlation_id",
                  "created_at")
_ACTIONS = ("create", "read", "update", "approve", "export", "login", "logout", "update", "read")


def app_entry_hash(row: dict) -> str:
    """The application's ``compute_entry_hash``: SHA-256 of ``json.dumps(d, sort_keys=True, default=str)``, ten keys."""
    d = {
        "sequence_number": row["sequence_number"], "tenant_id": row["tenant_id"],
        "actor_id": str(row["actor_id"]) if row["actor_id"] is not None else None,
        "resource_type": row["resource_type"], "resource_id": row["resource_id"], "action": row["action"],
        "before_hash": row["before_hash"], "after_hash": row["after_hash"],
        "prev_entry_hash": row["prev_entry_hash"], "created_at": row["created_at"].astimezone(UTC).isoformat(),
    }
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def audit_rows(count: int, first_seq: int = 1, heads: Optional[dict] = None, start: Optional[datetime.datetime] = None,
               actor_ip: Optional[str] = None, action: Optional[str] = None, severity: str = "medium",
               description: str = "sandbox activity") -> List[dict]:
    """``count`` chained rows after ``heads`` ({tenant: last entry_hash}); sequence numbers are global."""
    heads = dict(heads or {})
    start = start or datetime.datetime.now(UTC) - datetime.timedelta(hours=6)
    ns = uuid.UUID(int=first_seq)
    rows = []
    for i in range(count):
        seq = first_seq + i
        tenant = AUDIT_TENANTS[seq % len(AUDIT_TENANTS)]
        row = {
            "id": str(uuid.uuid4()), "sequence_number": seq, "tenant_id": tenant,
            "actor_id": str(uuid.uuid5(ns, f"actor-{seq % 7}")), "actor_role": "admin" if seq % 3 else "analyst",
            "actor_ip": actor_ip or f"10.42.{seq % 200}.{(seq * 7) % 250 + 1}", "actor_user_agent": "Mozilla/5.0 (sandbox)",
            "resource_type": "lc_document", "resource_id": f"LC-{seq:06d}", "resource_name": f"Letter of credit {seq}",
            "action": action or _ACTIONS[seq % len(_ACTIONS)], "action_description": description, "severity": severity,
            "before_hash": hashlib.sha256(f"before-{seq}".encode()).hexdigest() if seq % 4 else None,
            "after_hash": hashlib.sha256(f"after-{seq}".encode()).hexdigest(),
            "prev_entry_hash": heads.get(tenant), "event_metadata": json.dumps({"source": "sandbox"}),
            "correlation_id": str(uuid.uuid4()),
            "created_at": start + datetime.timedelta(seconds=30 * i, microseconds=(seq * 7919) % 1_000_000),
        }
        row["entry_hash"] = heads[tenant] = app_entry_hash(row)
        rows.append(row)
    return rows


def insert_audit_rows(conn, rows: List[dict]) -> None:
    cols = ", ".join(_AUDIT_COLUMNS)
    marks = ", ".join(["%s"] * len(_AUDIT_COLUMNS))
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO audit_log_entries ({cols}) VALUES ({marks})",  # noqa: S608 - fixed names
                        [tuple(r[c] for c in _AUDIT_COLUMNS) for r in rows])


def pg_bin(pg: PostgresServer, name: str) -> str:
    path = os.path.join(pg.bindir or "", name)
    if pg.bindir and os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if not found:
        raise HarnessError(f"{name} not found beside {pg.bindir}")
    return found


class HealthServer(InProcessHTTPServer):
    """TRDR Hub's health routes; their answers follow the real database, the rollout and injected faults."""

    name = "trdrhub-health"

    def __init__(self, sandbox: "Sandbox") -> None:
        super().__init__()
        self.sandbox = sandbox
        self.started = time.time()
        self.faults: Dict[str, str] = {}     # database / s3 / schema / app -> message

    def _database(self) -> Tuple[str, Optional[str]]:
        if "database" in self.faults:
            return "error", self.faults["database"]
        try:
            conn = self.sandbox.app_connect(connect_timeout=2)
        except psycopg2.Error as exc:
            return "error", str(exc).strip().splitlines()[0] if str(exc).strip() else "database unreachable"
        conn.close()
        return "ok", None

    def _schema(self) -> str:
        if "schema" in self.faults:
            return "drift"
        try:
            conn = self.sandbox.app_connect(connect_timeout=2)
        except psycopg2.Error:
            return "error"
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version_num FROM alembic_version")
                found = [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
        return "ok" if found == [ALEMBIC_REVISION] else "drift"

    def app_problem(self) -> Optional[str]:
        if "app" in self.faults:
            return self.faults["app"]
        return self.sandbox.rollout_problem()

    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        path = path.split("?", 1)[0]
        now = datetime.datetime.now(UTC).isoformat()
        problem = self.app_problem()
        if path not in ("/healthz", "/health/live", "/health/ready", "/health/db-schema"):
            return json_answer(404, {"detail": "Not Found"})
        if problem is not None:
            # The pods behind the service crash: the proxy in front answers for them.
            return json_answer(503, {"status": "error", "detail": problem, "timestamp": now})
        if path == "/healthz":
            return json_answer(200, {"status": "ok"})
        if path == "/health/live":
            return json_answer(200, {"status": "ok", "timestamp": now, "version": self.sandbox.app_version(),
                                     "environment": "sandbox", "uptime_seconds": int(time.time() - self.started)})
        if path == "/health/db-schema":
            return json_answer(200, {"status": self._schema(), "timestamp": now, "expected": ALEMBIC_REVISION})
        db_state, db_message = self._database()
        s3_state = "error" if "s3" in self.faults else "ok"
        checks = {"database": {"status": db_state, "response_time_ms": 2.1, "message": db_message},
                  "s3": {"status": s3_state, "response_time_ms": 4.0, "message": self.faults.get("s3")},
                  "document_ai": {"status": "ok", "response_time_ms": 11.3, "message": None}}
        healthy = db_state == "ok" and s3_state == "ok"
        return json_answer(200 if healthy else 503, {"status": "ok" if healthy else "error", "timestamp": now,
                                                     "checks": checks, "overall_healthy": healthy})


class ServiceControl(InProcessHTTPServer):
    """The sandbox's service manager for PostgreSQL: ``POST /postgresql/{restart,start,stop}``, ``GET /postgresql/status``.

    ``bin/postgresql-service <action>`` (written by the sandbox, with its token) is the command the
    sandbox inventory configures as recover_db's restart method (``recover_db_service_command``).
    """

    name = "sandbox-services"

    def __init__(self, sandbox: "Sandbox") -> None:
        super().__init__()
        self.sandbox = sandbox
        self.token = secrets.token_hex(16)
        self.actions: List[str] = []
        # PostgreSQL is started from one long-lived thread: a child started from a request's thread
        # would get its parent-death signal when that thread ends (PR_SET_PDEATHSIG is per thread).
        self._jobs: List[Tuple[str, dict, threading.Event]] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="sandbox-services-worker", daemon=True)

    def start(self):
        self._worker.start()
        return super().start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        super().stop()
        self._worker.join(timeout=10)

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                action, out, done = self._jobs.pop(0)
            try:
                if action in ("restart", "stop"):
                    self.sandbox.stop_postgres()
                if action in ("restart", "start"):
                    self.sandbox.start_postgres()
            except Exception as exc:  # noqa: BLE001 - the answer says why the service did not start
                out["error"] = str(exc)
            done.set()

    def run_action(self, action: str, timeout: float = 90.0) -> Optional[str]:
        """Do ``action`` on the worker thread; None when done, else why not."""
        out: dict = {}
        done = threading.Event()
        with self._wake:
            self._jobs.append((action, out, done))
            self._wake.notify_all()
        if not done.wait(timeout):
            return f"{action} did not finish within {timeout:.0f}s"
        return out.get("error")

    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        if headers.get("authorization") != f"Bearer {self.token}":
            return json_answer(401, {"error": "a Bearer token is needed"})
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] != "postgresql":
            return json_answer(404, {"error": f"no such service action: {path}"})
        action, box = parts[1], self.sandbox
        if method == "GET" and action == "status":
            return json_answer(200, {"service": "postgresql", "active": box.postgres_running()})
        if method != "POST" or action not in ("restart", "start", "stop"):
            return json_answer(405, {"error": f"{method} {action}: use POST restart, start or stop"})
        error = self.run_action(action)
        if error:
            return json_answer(500, {"service": "postgresql", "action": action, "error": error})
        self.actions.append(action)
        return json_answer(200, {"service": "postgresql", "action": action, "active": box.postgres_running()})

    def write_command(self, path: Path) -> Path:
        """The command line client: ``postgresql-service restart`` (exit 0 when done, 1 with the reason)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"""#!{sys.executable}
# The sandbox's PostgreSQL service manager (trdrhub_harness.sandbox.ServiceControl):
#   postgresql-service restart|start|stop|status
import json, sys, urllib.error, urllib.request
action = sys.argv[1] if len(sys.argv) > 1 else "status"
request = urllib.request.Request({self.url + "/postgresql/"!r} + action, method="GET" if action == "status" else "POST",
                                 headers={{"Authorization": "Bearer {self.token}"}}, data=None if action == "status" else b"")
try:
    with urllib.request.urlopen(request, timeout=60) as answer:
        print(json.dumps(json.loads(answer.read())))
except urllib.error.HTTPError as exc:
    sys.exit("postgresql-service " + action + ": " + exc.read().decode(errors="replace"))
except OSError as exc:
    sys.exit("postgresql-service " + action + ": the sandbox does not answer: " + str(exc))
""")
        path.chmod(0o700)
        return path


class AccessLogWriter:
    """Appends nginx combined-format lines to ``path`` in a thread (``rate`` lines a second); attacks on demand."""

    def __init__(self, path: Path, rate: float = 20.0) -> None:
        self.path = path
        self.rate = rate
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.lines_written = 0

    def _generator(self, seconds: float, attacks=()) -> List[str]:
        gen = AccessLogGenerator(start=datetime.datetime.now(UTC), rate=self.rate, seed=int(time.time()) % 10_000)
        return list(gen.lines(count=max(1, int(self.rate * seconds)), attacks=attacks))

    def write(self, lines: List[str]) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write("".join(lines))
            self.lines_written += len(lines)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.write(self._generator(1.0))

    def attack(self) -> List[Attack]:
        """SQL injection and brute force from two addresses, written now, amid normal traffic."""
        attacks = [Attack(ATTACKER_SQLI, "sql_injection", count=60, start=0.5, interval=0.05),
                   Attack(ATTACKER_BRUTE, "brute_force", count=150, start=1.0, interval=0.02)]
        self.write(self._generator(5.0, attacks))
        return attacks

    def start(self) -> "AccessLogWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write(self._generator(30.0))
        self._thread = threading.Thread(target=self._run, name="sandbox-access-log", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Sandbox:
    """Start every sandbox service under ``state_dir``; ``stop()`` removes what it started (state_dir stays)."""

    def __init__(self, state_dir: Path, *, kubernetes: bool = True, dashboard: bool = True,
                 access_log_rate: float = 20.0) -> None:
        self.dir = Path(state_dir).resolve()
        self.kubernetes = kubernetes
        self.with_dashboard = dashboard
        self.access_log_rate = access_log_rate
        self._stack: Optional[ExitStack] = None
        self.pg: Optional[PostgresServer] = None
        self.creds: dict = {}
        self.redis = self.alertmanager = self.health = self.statuspage = self.services = None
        self.service_command: Optional[Path] = None
        self.pagerduty = self.slack = self.smtp = self.k8s = self.access_log = self.dashboard = None
        self.page = None
        self.routing_key = self.webhook = ""
        self.kubeconfig: Optional[Path] = None
        self.backup: Optional[Path] = None
        self.leaked_secret_file: Optional[Path] = None
        self.incidents_dir = self.dir / "incidents"
        self.started_at = 0.0
        self.control_token = secrets.token_urlsafe(24)
        self._tampered: Dict[int, str] = {}       # sequence_number -> original resource_id
        self._fault_lock = threading.Lock()
        self._inject_lock = threading.Lock()
        self._alerts: List[dict] = []             # alerts fired by inject("alert"), resolved by clear
        self._fault_queue: "queue.Queue" = queue.Queue()
        self._fault_thread: Optional[threading.Thread] = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "Sandbox":
        self.started_at = time.time()
        for sub in ("incidents", "backups", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for stale in (self.dir / "backups").glob("trdrhub_backup_*"):
            stale.unlink()
        self._stack = ExitStack()
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        return self

    def _enter(self, server):
        self._stack.callback(server.stop)
        return server

    def _start_all(self) -> None:
        self.pg = self._enter(PostgresServer())
        self.pg.start()
        self.creds = create_trdrhub_db(self.pg)
        self.seed_database()
        self.backup = self.make_backup()
        self.leaked_secret_file = self.make_leaked_secret()
        self.redis = self._enter(RedisServer())
        self.redis.start()
        client = self.redis.client()
        for name, jobs in QUEUES.items():
            client.delete(name)
            if jobs:
                client.rpush(name, *[json.dumps({"task": f"{name}_job", "id": i}) for i in range(jobs)])
        client.close()
        self.services = self._enter(ServiceControl(self))
        self.services.start()
        self.service_command = self.services.write_command(self.dir / "bin" / "postgresql-service")
        self.alertmanager = self._enter(AlertmanagerServer())
        self.alertmanager.start()
        if self.kubernetes:
            self.k8s = self._enter(K8sApiServer(tls=True))
            self.k8s.state.add_deployment(DEPLOYMENT, NAMESPACE, replicas=2,
                                          revisions=[{"api": f"ghcr.io/trdrhub/api:1.{r}.0"} for r in (1, 2)],
                                          change_causes=["deploy 1.1.0", "deploy 1.2.0"])
            self.k8s.state.add_deployment("trdrhub-worker", NAMESPACE, replicas=1,
                                          revisions=[{"worker": "ghcr.io/trdrhub/worker:1.2.0"}])
            self.k8s.start()
            self.kubeconfig = self.k8s.write_kubeconfig(self.dir / "kubeconfig", namespace=NAMESPACE)
        self.health = self._enter(HealthServer(self))
        self.health.start()
        self.statuspage = self._enter(StatuspageServer())
        self.statuspage.start()
        self.page = self.statuspage.add_page(dict(STATUSPAGE_COMPONENTS))
        self.pagerduty = self._enter(PagerDutyServer())
        self.pagerduty.start()
        self.routing_key = self.pagerduty.add_routing_key()
        self.slack = self._enter(SlackServer())
        self.slack.start()
        self.webhook = self.slack.add_webhook()
        self.smtp = self._enter(SmtpServer())
        self.smtp.start()
        self.access_log = self._enter(AccessLogWriter(self.dir / "logs" / "access.log", rate=self.access_log_rate))
        self.access_log.start()
        if self.with_dashboard:
            from .dashboard import Dashboard
            self.dashboard = self._enter(Dashboard(self))
            self.dashboard.start()

    def stop(self) -> None:
        """Stop every service, then remove the files that hold its credentials (kubeconfig, leaked secret)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        thread, self._fault_thread = self._fault_thread, None
        if thread is not None:
            self._fault_queue.put(None)
            thread.join(timeout=10)
        for path in (self.kubeconfig, self.leaked_secret_file):
            if path is not None:
                path.unlink(missing_ok=True)
        secrets_dir = self.dir / "secrets"
        if secrets_dir.is_dir() and not any(secrets_dir.iterdir()):
            secrets_dir.rmdir()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the database --------------------------------------------------------
    def app_connect(self, dbname: str = "trdrhub", connect_timeout: int = 5):
        conn = psycopg2.connect(host=self.pg.host, port=self.pg.port, dbname=dbname, user=self.creds["app"]["user"],
                                password=self.creds["app"]["password"], connect_timeout=connect_timeout)
        conn.autocommit = True
        return conn

    def seed_database(self) -> None:
        conn = self.pg.connect(dbname="trdrhub")
        try:
            with conn.cursor() as cur:
                cur.execute(SECRET_ROTATION_DDL)
                cur.execute("TRUNCATE audit_log_entries")
            insert_audit_rows(conn, audit_rows(AUDIT_ROWS))
            with conn.cursor() as cur:
                cur.execute("GRANT SELECT ON audit_log_entries TO trdrhub_ops")
        finally:
            conn.close()

    def make_leaked_secret(self) -> Path:
        """The reporting service's database login (role trdrhub_reports), kept in an env file: the secret to rotate."""
        password = "reports-" + uuid.uuid4().hex
        conn = self.pg.connect(dbname="postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'trdrhub_reports'")
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(f"{verb} ROLE trdrhub_reports LOGIN PASSWORD %s", (password,))
                cur.execute("GRANT CONNECT ON DATABASE trdrhub TO trdrhub_reports")
        finally:
            conn.close()
        path = self.dir / "secrets" / "reports.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# reporting service\nDATABASE_USER=trdrhub_reports\nDATABASE_PASSWORD={password}\n")
        path.chmod(0o600)
        return path

    def audit_heads(self) -> Tuple[int, dict]:
        conn = self.pg.connect(dbname="trdrhub")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT coalesce(max(sequence_number), 0) FROM audit_log_entries")
                last = cur.fetchone()[0]
                cur.execute("SELECT DISTINCT ON (tenant_id) tenant_id, entry_hash FROM audit_log_entries "
                            "ORDER BY tenant_id, sequence_number DESC")
                return last, dict(cur.fetchall())
        finally:
            conn.close()

    def make_backup(self) -> Path:
        """A backup as ``scripts/dr/backup_db.py`` makes it: custom format under a .sql.gz name, plus sha256."""
        stamp = datetime.datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        dest = self.dir / "backups" / f"trdrhub_backup_{stamp}.sql.gz"
        info = f"host={self.pg.host} port={self.pg.port} user={self.pg.superuser} dbname=trdrhub"
        res = subprocess.run([pg_bin(self.pg, "pg_dump"), "--format=custom", "--file", str(dest), "--dbname", info],
                             env=dict(os.environ, PGPASSWORD=self.pg.password), capture_output=True, text=True,
                             check=False)
        if res.returncode != 0:
            raise HarnessError(f"pg_dump failed: {res.stderr.strip()}")
        digest = hashlib.sha256(dest.read_bytes()).hexdigest()
        Path(str(dest) + ".sha256").write_text(f"{digest}  {dest.name}\n")
        return dest

    # -- faults --------------------------------------------------------------
    def stop_postgres(self) -> None:
        """The database goes down (fast shutdown); ``start_postgres`` brings the same data directory back."""
        proc = self.pg.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(self.pg.stop_signal)
            proc.wait(timeout=30)

    def postgres_running(self) -> bool:
        return self.pg.proc is not None and self.pg.proc.poll() is None

    def start_postgres(self) -> None:
        """Restart the server on its port with its data (what ``systemctl restart postgresql`` does)."""
        if threading.current_thread() is not threading.main_thread() and \
                threading.current_thread() is not self._fault_thread:
            return self.on_worker(self.start_postgres)
        if self.postgres_running():
            return
        argv = [os.path.join(self.pg.bindir, "postgres"), "-D", str(self.pg.datadir), "-p", str(self.pg.port),
                "-k", self.pg.socket_dir, "-c", "listen_addresses=127.0.0.1",
                "-c", f"max_connections={self.pg.max_connections}", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=64MB",
                "-c", "log_min_messages=warning", "-c", "unix_socket_permissions=0777"]
        self.pg._spawn(argv, user=self.pg.os_user)
        self.pg._wait_ready(self.pg._probe)

    def tamper_audit_row(self, sequence_number: int = 17, resource_id: str = "LC-FORGED") -> None:
        """Edit a hashed field of one audit row in place (the chain no longer verifies from there)."""
        conn = self.pg.connect(dbname="trdrhub")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT resource_id FROM audit_log_entries WHERE sequence_number = %s", (sequence_number,))
                row = cur.fetchone()
                if row is not None:
                    self._tampered.setdefault(sequence_number, row[0])
                cur.execute("UPDATE audit_log_entries SET resource_id = %s WHERE sequence_number = %s",
                            (resource_id, sequence_number))
        finally:
            conn.close()

    def restore_audit_rows(self) -> List[int]:
        """Put the original values back into rows ``tamper_audit_row`` edited; their sequence numbers."""
        if not self._tampered:
            return []
        conn = self.pg.connect(dbname="trdrhub")
        try:
            with conn.cursor() as cur:
                for seq, original in self._tampered.items():
                    cur.execute("UPDATE audit_log_entries SET resource_id = %s WHERE sequence_number = %s",
                                (original, seq))
        finally:
            conn.close()
        restored, self._tampered = sorted(self._tampered), {}
        return restored

    def anomalous_audit_entries(self, count: int = 12) -> None:
        """Exports of many documents from the attacker's address, late at night (validly chained)."""
        last, heads = self.audit_heads()
        rows = audit_rows(count, first_seq=last + 1, heads=heads, actor_ip=ATTACKER_SQLI, action="export",
                          severity="high", description="bulk export",
                          start=datetime.datetime.now(UTC) - datetime.timedelta(minutes=5))
        conn = self.pg.connect(dbname="trdrhub")
        try:
            insert_audit_rows(conn, rows)
        finally:
            conn.close()

    def bad_deploy(self, image: str = BAD_IMAGE) -> None:
        """A rollout of trdrhub-api whose new pods crash-loop and never become ready."""
        self.k8s.state.stall_rollout(DEPLOYMENT, {"api": image}, NAMESPACE, new_pods=2, waiting_reason="CrashLoopBackOff",
                                     change_cause="deploy 1.3.0")

    def undo_bad_deploy(self, timeout: float = 20.0) -> bool:
        """``kubectl rollout undo`` of a stalled rollout: the previous revision's template back, rolled out."""
        if self.k8s is None or self.rollout_problem() is None:
            return False
        state = self.k8s.state
        with state.lock:
            dep = copy.deepcopy(state.get("deployments", NAMESPACE, DEPLOYMENT))
            current = int(dep["metadata"]["annotations"][REVISION])
            older = sorted((rs for rs in state.owned("replicasets", dep)
                            if int(rs["metadata"]["annotations"].get(REVISION, 0)) < current),
                           key=lambda rs: int(rs["metadata"]["annotations"][REVISION]))
            if not older:
                return False
            template = copy.deepcopy(older[-1]["spec"]["template"])
            template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
            dep["spec"]["template"] = template
            state.clear_stall(DEPLOYMENT, NAMESPACE)
            state.update("deployments", NAMESPACE, DEPLOYMENT, dep)
        deadline = time.monotonic() + timeout
        while self.rollout_problem() is not None:
            if time.monotonic() > deadline:
                raise HarnessError(f"{DEPLOYMENT} did not roll back within {timeout:.0f}s: {self.rollout_problem()}")
            time.sleep(0.2)
        return True

    def _fault_worker(self) -> None:
        while True:
            job = self._fault_queue.get()
            if job is None:
                return
            call, answer = job
            try:
                answer.put((True, call()))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                answer.put((False, exc))

    def on_worker(self, call, timeout: float = 120.0):
        """``call()`` run by the sandbox's one long-lived worker thread; its result (or its exception).

        Servers the harness spawns die with the thread that spawned them (a parent-death signal):
        a PostgreSQL (re)started from an HTTP request's thread would go down when the request
        ends, so callers on short-lived threads (the page server, the service manager) go through here.
        """
        if threading.current_thread() is threading.main_thread() or \
                threading.current_thread() is self._fault_thread:
            return call()
        with self._fault_lock:
            if self._fault_thread is None:
                self._fault_thread = threading.Thread(target=self._fault_worker, name="sandbox-worker", daemon=True)
                self._fault_thread.start()
        answer: "queue.Queue" = queue.Queue()
        self._fault_queue.put((call, answer))
        ok, value = answer.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def inject_from_thread(self, fault: str, timeout: float = 120.0) -> str:
        """``inject`` on the long-lived worker thread (see ``on_worker``), for the page server."""
        return self.on_worker(lambda: self.inject(fault), timeout=timeout)

    def inject(self, fault: str) -> str:
        """Apply one of ``FAULTS`` now; one sentence saying what was done."""
        if fault not in FAULTS:
            raise HarnessError(f"unknown fault {fault!r}: choose one of {', '.join(FAULTS)}")
        with self._inject_lock:
            if fault == "db-down":
                if not self.postgres_running():
                    return "PostgreSQL is already down"
                self.stop_postgres()
                return f"PostgreSQL on {self.pg.host}:{self.pg.port} stopped; db-up or clear starts it again"
            if fault == "db-up":
                if self.postgres_running():
                    return "PostgreSQL is already running"
                self.start_postgres()
                return f"PostgreSQL on {self.pg.host}:{self.pg.port} started again"
            if fault == "bad-deploy":
                if self.k8s is None:
                    raise HarnessError("this sandbox runs without the Kubernetes API double (--no-kubernetes)")
                if self.rollout_problem() is not None:
                    return f"a rollout of {DEPLOYMENT} is already failing: {self.rollout_problem()}"
                self.bad_deploy()
                return (f"{DEPLOYMENT} is rolling out {BAD_IMAGE}, whose pods crash-loop; roll it back with "
                        "playbooks/rollback.yml (or clear)")
            if fault == "attack":
                self.access_log.attack()
                self.anomalous_audit_entries()
                return (f"SQL injection from {ATTACKER_SQLI} and brute force from {ATTACKER_BRUTE} written to "
                        f"{self.access_log.path}; 12 bulk exports from {ATTACKER_SQLI} added to audit_log_entries")
            if fault == "tamper":
                self.tamper_audit_row(17)
                return "audit row 17 edited in place (resource_id LC-FORGED): the audit chain breaks there"
            if fault == "alert":
                self._alerts.append(self.fire_alert("AllWorkersDown", "P1"))
                return "P1 alert AllWorkersDown firing in Alertmanager"
            done = []
            if not self.postgres_running():
                self.start_postgres()
                done.append("PostgreSQL started")
            if self.undo_bad_deploy():
                done.append(f"{DEPLOYMENT} rolled back to {self.deployment_image()}")
            restored = self.restore_audit_rows()
            if restored:
                done.append(f"audit row(s) {', '.join(map(str, restored))} restored")
            if self._alerts:
                self.resolve_alerts(self._alerts)
                done.append(f"{len(self._alerts)} alert(s) resolved")
                self._alerts = []
            if self.health is not None and self.health.faults:
                self.health.faults.clear()
                done.append("health faults cleared")
            return ("; ".join(done) or "nothing to clear") + \
                " (attack lines and audit entries stay, as they would in production)"

    def rollout_problem(self) -> Optional[str]:
        if self.k8s is None:
            return None
        dep = self.k8s.state.get("deployments", NAMESPACE, DEPLOYMENT)
        if dep is None:
            return f"deployment {DEPLOYMENT} not found"
        status = dep.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
                return f"{DEPLOYMENT}: {cond.get('message')}"
        if status.get("readyReplicas", 0) < 1:
            return f"{DEPLOYMENT}: no ready pods"
        return None

    def app_version(self) -> str:
        if self.k8s is None:
            return "1.2.0"
        dep = self.k8s.state.get("deployments", NAMESPACE, DEPLOYMENT)
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return image.rsplit(":", 1)[-1]

    def deployment_image(self) -> str:
        dep = self.k8s.state.get("deployments", NAMESPACE, DEPLOYMENT)
        return dep["spec"]["template"]["spec"]["containers"][0]["image"]

    def fire_alert(self, name: str, severity: str, component: str = "queue", minutes_ago: int = 2,
                   labels: Optional[dict] = None) -> dict:
        import requests

        started = datetime.datetime.now(UTC) - datetime.timedelta(minutes=minutes_ago)
        alert = {"labels": {"alertname": name, "severity": severity, "component": component, "service": "lcpilot",
                            **(labels or {})},
                 "annotations": {"runbook_url": f"https://runbooks.trdrhub.example/{component}",
                                 "summary": f"{name} firing"},
                 "startsAt": started.isoformat(), "endsAt": (started + datetime.timedelta(hours=2)).isoformat()}
        requests.post(self.alertmanager.url + "/api/v2/alerts", json=[alert], timeout=10).raise_for_status()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = requests.get(self.alertmanager.url + "/api/v2/alerts",
                                 params={"filter": f'alertname="{name}"'}, timeout=10).json()
            if found and found[0]["status"]["state"] == "active":
                return alert
            time.sleep(0.2)
        raise HarnessError(f"Alertmanager never showed {name} as active")

    def resolve_alerts(self, alerts: List[dict]) -> None:
        """Post the alerts again with ``endsAt`` now: Alertmanager marks them resolved."""
        import requests

        now = datetime.datetime.now(UTC).isoformat()
        resolved = [dict(alert, endsAt=now) for alert in alerts]
        requests.post(self.alertmanager.url + "/api/v2/alerts", json=resolved, timeout=10).raise_for_status()

    # -- what the playbooks see ---------------------------------------------
    def env(self) -> Dict[str, str]:
        out = dict(self.pg.env())
        out.update({
            "TRDRHUB_PG_APP_PASSWORD": self.creds["app"]["password"],
            "TRDRHUB_PG_OPS_PASSWORD": self.creds["ops"]["password"],
            **self.redis.env(), **self.alertmanager.env(),
            "TRDRHUB_BASE_URL": self.health.url,
            "TRDRHUB_STATUSPAGE_URL": self.statuspage.url, "TRDRHUB_STATUSPAGE_PAGE_ID": self.page.id,
            "TRDRHUB_STATUSPAGE_API_KEY": self.statuspage.api_key,
            "TRDRHUB_STATUSPAGE_COMPONENT_API": self.page.component_id("API"),
            **self.pagerduty.env(), "TRDRHUB_PAGERDUTY_ROUTING_KEY": self.routing_key,
            "TRDRHUB_SLACK_WEBHOOK_URL": self.webhook,
            **self.smtp.env(), "TRDRHUB_SMTP_USERNAME": self.smtp.username, "TRDRHUB_SMTP_PASSWORD": self.smtp.password,
            "TRDRHUB_SMTP_CA": self.smtp.ca_path,
            "TRDRHUB_BACKUP_DIR": str(self.backup.parent), "TRDRHUB_BACKUP_ID": self.backup.name.split(".")[0],
            "TRDRHUB_ACCESS_LOG": str(self.access_log.path),
            "TRDRHUB_REPORTS_SECRET_FILE": str(self.leaked_secret_file),
            "TRDRHUB_LEDGER_DIR": str(self.incidents_dir),
            "TRDRHUB_PG_SERVICE_COMMAND": str(self.service_command),
        })
        if self.k8s is not None:
            out["TRDRHUB_KUBECONFIG"] = str(self.kubeconfig)
        if self.dashboard is not None:
            out["TRDRHUB_SANDBOX_URL"] = self.dashboard.url
            out["TRDRHUB_SANDBOX_TOKEN"] = self.control_token
        return out

    def describe(self) -> List[Tuple[str, str]]:
        rows = [
            ("PostgreSQL (database trdrhub, roles trdrhub_app / trdrhub_ops)", f"{self.pg.host}:{self.pg.port}"),
            ("backup", f"{self.backup} (+ .sha256)"),
            ("Redis (queues " + ", ".join(QUEUES) + ")", self.redis.url),
            ("Alertmanager", self.alertmanager.url),
            ("TRDR Hub health (/healthz /health/live /health/ready /health/db-schema)", self.health.url),
            ("Statuspage API", f"{self.statuspage.url} (page {self.page.id})"),
            ("PagerDuty Events API", self.pagerduty.url),
            ("Slack webhook", self.webhook),
            ("SMTP (STARTTLS, AUTH)", f"{self.smtp.host}:{self.smtp.port}"),
            ("nginx access log", str(self.access_log.path)),
            ("PostgreSQL service manager (recover_db's restart method)", f"{self.service_command} restart"),
            ("incidents home (ledgers, approvals, PIRs)", str(self.incidents_dir)),
        ]
        if self.k8s is not None:
            rows.insert(4, ("Kubernetes API (trdrhub-api in trdrhub-system)", f"{self.k8s.url} (kubeconfig {self.kubeconfig})"))
        if self.dashboard is not None:
            rows.append(("sandbox page: status page, Slack, emails, PagerDuty, ledger", self.dashboard.url + "/"))
        return rows

    def write_env_file(self, path: Optional[Path] = None) -> Path:
        path = path or self.dir / "env"
        lines = ["# The sandbox's services: source this file, then run the playbooks with -i inventories/sandbox."]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(self.env().items())]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)
        return path
