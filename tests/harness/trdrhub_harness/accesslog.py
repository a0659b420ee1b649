"""Synthetic nginx access logs: normal TRDR Hub traffic with known attacks mixed in.

Used by the access_log_scan tests and by ``bench/log_scan_bench.py``:

    gen = AccessLogGenerator(start=datetime.datetime(2025, 1, 15, 12, tzinfo=datetime.UTC))
    log = gen.write(tmp / "access.log", lines=20000, attacks=[
        Attack("203.0.113.66", "sql_injection", count=30),
        Attack("203.0.113.67", "brute_force", count=60, start=300, interval=0.5),
    ])
    log.expected()        # {"203.0.113.66": {"sql_injection"}, "203.0.113.67": {"brute_force"}}
    log.normal_ips        # every address of the normal traffic (none of them may be flagged)

Normal traffic is deliberately awkward: search queries with ``'``, ``(``, ``+`` and
``%``-escapes, "union" and "select" in paths, a busy API client (``busy_ip``) whose 404s
alone would reach a burst count, a health probe, IPv6 clients. Attack kinds are the
module's categories; each attack produces exactly its own category (its user agent is a
browser's unless ``agent`` names a scanner, which adds ``scanner``).

Lines are produced in time order (``rate`` normal lines per second, attack lines merged at
their own times) and written ``combined`` (nginx's default) or ``json`` (nginx
``escape=json`` style keys, or ``json_keys="alt"`` for other common key names). ``gzip=True``
compresses; ``write_rotated`` splits one stream into ``access.log.N.gz ... access.log.1,
access.log`` as logrotate leaves them.
"""
from __future__ import annotations

import datetime
import gzip as gzip_lib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

KINDS = ("sql_injection", "path_traversal", "xss", "scanner", "brute_force", "error_burst", "not_found_burst")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "TRDRHub-iOS/4.12.0 (iPhone15,2; iOS 17.2; Scale/3.00)",
    "okhttp/4.12.0",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)
BUSY_AGENT = "trdrhub-partner-sync/2.3 (+https://partner.example/bot)"
PROBE_AGENT = "kube-probe/1.29"
SCANNERS = (
    "sqlmap/1.7.12#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000412)",
    "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    "Mozilla/5.0 zgrab/0.x",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
    "gobuster/3.6",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
)
REFERERS = ("-", "-", "-", "https://app.trdrhub.example/", "https://app.trdrhub.example/orders",
            "https://www.google.com/")

# (method, path; {id} {n} {hash} are filled in, weight, status for a normal answer)
NORMAL = (
    ("GET", "/", 6, 200),
    ("GET", "/api/v1/orders/{id}", 20, 200),
    ("GET", "/api/v1/orders?page={n}&sort=-created_at", 8, 200),
    ("POST", "/api/v1/orders", 6, 201),
    ("GET", "/api/v1/market/ticker?symbols=BTC-USD,ETH-USD", 14, 200),
    ("GET", "/static/js/app.{hash}.js", 10, 200),
    ("GET", "/static/css/main.{hash}.css", 6, 304),
    ("GET", "/api/v1/search?q=O%27Reilly+%28books%29", 2, 200),
    ("GET", "/api/v1/search?q=red+alert+(film)", 1, 200),
    ("GET", "/api/v1/search?q=sleep+(5+tips)", 1, 200),
    ("GET", "/api/v1/search?q=rock+and+roll", 1, 200),
    ("GET", "/api/v1/search?q=drop+table+tennis", 1, 200),
    ("GET", "/api/v1/search?q=tom+%26+jerry%3A+the+movie", 1, 200),
    ("GET", "/api/v1/search?q=regular+expression+(regex)", 1, 200),
    ("GET", "/blog/2024/12/union-station-opening", 2, 200),
    ("GET", "/docs/select-a-plan", 2, 200),
    ("GET", "/images/logo%20small.png", 3, 200),
    ("GET", "/api/v1/users/me", 8, 200),
    ("PUT", "/api/v1/users/me/settings", 2, 204),
    ("POST", "/api/v1/auth/login", 3, 200),
    ("GET", "/api/v1/time?at=2025-01-15T14:30:00Z", 1, 200),
    ("GET", "/favicon.ico", 2, 200),
    ("GET", "/api/v1/portfolio/{id}/positions?fields=symbol,qty,(avg_price)", 3, 200),
)

ATTACKS = {
    "sql_injection": (
        "GET /api/v1/products?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users-- HTTP/1.1",
        "GET /api/v1/products?id=1'+or+1=1-- HTTP/1.1",
        "GET /api/v1/products?id=%2527%2520OR%25201%253D1 HTTP/1.1",
        "GET /api/v1/products?id=1;DROP%20TABLE%20users HTTP/1.1",
        "GET /api/v1/products?id=1%20AND%20SLEEP(5) HTTP/1.1",
        "GET /api/v1/products?id=1+AND+BENCHMARK(5000000,MD5(1)) HTTP/1.1",
        "GET /api/v1/products?id=1/**/UNION/**/SELECT/**/table_name/**/FROM/**/information_schema.tables HTTP/1.1",
        "POST /api/v1/auth/login?user=admin%27-- HTTP/1.1",
    ),
    "path_traversal": (
        "GET /static/../../../../etc/passwd HTTP/1.1",
        "GET /download?file=..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1",
        "GET /%2e%2e/%2e%2e/windows/win.ini HTTP/1.1",
        "GET /..%252f..%252f..%252fetc%252fpasswd HTTP/1.1",
        "GET /api/v1/export?path=....//....//proc/self/environ HTTP/1.1",
    ),
    "xss": (
        "GET /api/v1/search?q=<script>alert(1)</script> HTTP/1.1",
        "GET /api/v1/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E HTTP/1.1",
        "GET /profile?name=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E HTTP/1.1",
        "GET /redirect?to=javascript:alert(1) HTTP/1.1",
        "GET /api/v1/search?q=%253Csvg%2520onload%253Dalert%25281%2529%253E HTTP/1.1",
    ),
    "scanner": ("GET / HTTP/1.1", "GET /robots.txt HTTP/1.1", "GET /api/v1/market/ticker HTTP/1.1",
                "HEAD / HTTP/1.1"),
    "brute_force": ("POST /api/v1/auth/login HTTP/1.1",),
    "error_burst": ("POST /api/v1/orders HTTP/1.1", "PUT /api/v1/orders/77 HTTP/1.1"),
    "not_found_burst": tuple(f"GET {p} HTTP/1.1" for p in (
        "/admin.php", "/wp-login.php", "/.env", "/.git/config", "/backup.zip", "/phpmyadmin/index.php",
        "/server-status", "/config.json", "/api/v0/debug", "/old/login.aspx", "/test.php", "/db.sql")),
}
ATTACK_STATUS = {"sql_injection": (200, 400, 200, 500), "path_traversal": (400, 200, 403), "xss": (200, 400),
                 "scanner": (200, 200, 301), "brute_force": (401,), "error_burst": (500, 502, 500),
                 "not_found_burst": (404,)}
ATTACK_INTERVAL = {"sql_injection": 2.0, "path_traversal": 2.0, "xss": 2.0, "scanner": 5.0, "brute_force": 0.5,
                   "error_burst": 0.5, "not_found_burst": 0.2}


@dataclass
class Attack:
    """``count`` requests of one kind from ``ip``, ``interval`` seconds apart, from ``start`` seconds into the log."""
    ip: str
    kind: str
    count: int = 40
    start: float = 0.0
    interval: float | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown attack kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.interval is None:
            self.interval = ATTACK_INTERVAL[self.kind]
        if self.agent is None:
            self.agent = SCANNERS[0] if self.kind == "scanner" else BROWSERS[2]

    @property
    def categories(self) -> set[str]:
        return {self.kind} | ({"scanner"} if self.agent in SCANNERS else set())


@dataclass
class GeneratedLog:
    paths: list[Path]
    fmt: str
    lines: int = 0
    attack_lines: int = 0
    bytes: int = 0
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    attacks: list[Attack] = field(default_factory=list)
    normal_ips: set[str] = field(default_factory=set)

    @property
    def path(self) -> Path:
        return self.paths[-1]

    def expected(self) -> dict[str, set[str]]:
        """Attacker address -> the categories the scan must report for it."""
        out: dict[str, set[str]] = {}
        for attack in self.attacks:
            out.setdefault(attack.ip, set()).update(attack.categories)
        return out


def clf_time(moment: datetime.datetime) -> str:
    """``$time_local``: 15/Jan/2025:14:30:00 +0000 (month names independent of the locale)."""
    offset = moment.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year:04d}:{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d} {sign}{minutes // 60:02d}{minutes % 60:02d}")


class AccessLogGenerator:
    def __init__(self, *, start: datetime.datetime, rate: float = 50.0, clients: int = 300, seed: int = 7,
                 fmt: str = "combined", json_keys: str = "nginx", busy_ip: str | None = "198.51.100.20",
                 busy_share: float = 0.3, busy_404_share: float = 0.06, probe_ip: str | None = "10.0.0.5",
                 probe_every: float = 10.0, utc_offset_minutes: int = 0,
                 outage: tuple[float, float] | None = None) -> None:
        if fmt not in ("combined", "json"):
            raise ValueError("fmt is combined or json")
        self.start = start if start.tzinfo else start.replace(tzinfo=datetime.UTC)
        self.rate, self.fmt, self.json_keys = rate, fmt, json_keys
        self.busy_ip, self.busy_share, self.busy_404_share = busy_ip, busy_share, busy_404_share
        self.probe_ip, self.probe_every = probe_ip, probe_every
        self.tz = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
        self.outage = outage
        self.rng = random.Random(seed)
        rng = self.rng
        ips = []
        for i in range(clients):
            if i % 10 == 9:
                ips.append(f"2001:db8:{i // 256:x}:{i % 256:x}::{rng.randrange(1, 0xffff):x}")
            else:
                ips.append(f"100.{64 + i // 65536 % 64}.{i // 256 % 256}.{i % 256}")
        self.clients = ips
        self.agents = [BROWSERS[rng.randrange(len(BROWSERS))] for _client in ips]
        requests = []
        for method, path, weight, status in NORMAL:
            for _copy in range(weight * 4):
                filled = path.format(id=rng.randrange(1, 99999), n=rng.randrange(1, 20), hash=f"{rng.getrandbits(32):08x}")
                requests.append((f"{method} {filled} HTTP/1.1", status))
        self.requests = requests
        self._time_cache: tuple[int, str] = (-1, "")

    # ------------------------------------------------------------------------------------------

    def _stamp(self, seconds: float) -> str:
        whole = int(seconds)
        if whole != self._time_cache[0]:
            moment = (self.start + datetime.timedelta(seconds=whole)).astimezone(self.tz)
            text = clf_time(moment) if self.fmt == "combined" else moment.isoformat()
            self._time_cache = (whole, text)
        return self._time_cache[1]

    def _format(self, seconds: float, ip: str, request: str, status: int, size: int, referer: str, agent: str) -> str:
        if self.fmt == "combined":
            return f'{ip} - - [{self._stamp(seconds)}] "{request}" {status} {size} "{referer}" "{agent}"\n'
        stamp = self._stamp(seconds)
        if self.json_keys == "alt":
            method, _sp, rest = request.partition(" ")
            uri, _sp, protocol = rest.rpartition(" ")
            path, _q, query = uri.partition("?")
            record = {"@timestamp": stamp, "client_ip": ip, "method": method, "uri": path, "args": query,
                      "protocol": protocol, "status_code": str(status), "bytes_sent": size, "referrer": referer,
                      "user_agent": agent, "duration": 0.004}
        else:
            record = {"time_iso8601": stamp, "remote_addr": ip, "request": request, "status": status,
                      "body_bytes_sent": size, "http_referer": referer, "http_user_agent": agent,
                      "request_time": "0.004"}
        return json.dumps(record, separators=(",", ":")) + "\n"

    def _attack_events(self, attacks: Iterable[Attack]) -> list[tuple[float, int, int]]:
        events = []
        for number, attack in enumerate(attacks):
            for i in range(attack.count):
                events.append((attack.start + i * attack.interval, number, i))
        events.sort()
        return events

    def lines(self, *, count: int | None = None, size: int | None = None, attacks: Iterable[Attack] = (),
              log: GeneratedLog | None = None) -> Iterator[str]:
        """Normal lines until ``count`` lines or ``size`` bytes, attack lines merged in at their times.

        Attack lines not yet due when the normal traffic ends are written after it, so every attack is
        complete. ``log`` (if given) is updated with counts, times and addresses.
        """
        attacks = list(attacks)
        events = self._attack_events(attacks)
        rnd = self.rng.random
        clients, agents, requests = self.clients, self.agents, self.requests
        nclients, nrequests = len(clients), len(requests)
        busy_ip, busy_share, busy_404 = self.busy_ip, self.busy_share, self.busy_404_share
        probe_ip, probe_every = self.probe_ip, self.probe_every
        outage = self.outage
        fmt = self._format
        rate = float(self.rate)
        normal_ips: set[str] = set()
        next_probe = 0.0
        produced = written = attack_lines = 0
        e = 0
        i = 0
        seconds = 0.0
        while (count is None or produced < count) and (size is None or written < size):
            seconds = i / rate
            i += 1
            while e < len(events) and events[e][0] <= seconds:
                line = self._attack_line(attacks[events[e][1]], events[e][2], events[e][0])
                e += 1
                produced += 1
                attack_lines += 1
                written += len(line)
                yield line
            in_outage = outage is not None and outage[0] <= seconds < outage[0] + outage[1]
            if probe_ip is not None and seconds >= next_probe:
                next_probe += probe_every
                line = fmt(seconds, probe_ip, "GET /health HTTP/1.1", 503 if in_outage else 200, 17, "-", PROBE_AGENT)
                normal_ips.add(probe_ip)
            else:
                r = rnd()
                request, status = requests[int(rnd() * nrequests)]
                if busy_ip is not None and r < busy_share:
                    ip, agent = busy_ip, BUSY_AGENT
                    if rnd() < busy_404:
                        status = 404
                else:
                    client = int(rnd() * nclients)
                    ip, agent = clients[client], agents[client]
                    x = rnd()
                    if x < 0.02:
                        status = 404
                    elif x < 0.03 and request.startswith("GET /api/v1/users/me"):
                        status = 401
                    elif x < 0.032:
                        status = 500
                if in_outage:
                    status = 503 if rnd() < 0.7 else 502
                line = fmt(seconds, ip, request, status, 200 + int(rnd() * 5000), REFERERS[int(rnd() * 6)], agent)
                normal_ips.add(ip)
            produced += 1
            written += len(line)
            yield line
        while e < len(events):
            line = self._attack_line(attacks[events[e][1]], events[e][2], max(events[e][0], seconds))
            e += 1
            produced += 1
            attack_lines += 1
            written += len(line)
            yield line
        if log is not None:
            log.lines += produced
            log.attack_lines += attack_lines
            log.bytes += written
            log.attacks = attacks
            log.normal_ips |= normal_ips
            log.start = self.start
            last = max([seconds] + [ev[0] for ev in events])
            log.end = self.start + datetime.timedelta(seconds=int(last) + 1)

    def _attack_line(self, attack: Attack, number: int, seconds: float) -> str:
        requests = ATTACKS[attack.kind]
        statuses = ATTACK_STATUS[attack.kind]
        return self._format(seconds, attack.ip, requests[number % len(requests)], statuses[number % len(statuses)],
                            150 + number % 300, "-", attack.agent)

    # ------------------------------------------------------------------------------------------

    def write(self, path: Path | str, *, lines: int | None = None, size: int | None = None,
              attacks: Iterable[Attack] = (), gzip: bool = False) -> GeneratedLog:
        """Write one log file (``gzip`` compresses it, whatever its name); ``lines`` or ``size`` (bytes) bounds it."""
        if lines is None and size is None:
            raise ValueError("give lines or size")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        log = GeneratedLog(paths=[path], fmt=self.fmt)
        opener = (lambda: gzip_lib.open(path, "wt", encoding="utf-8", compresslevel=6)) if gzip else \
            (lambda: open(path, "w", encoding="utf-8"))
        with opener() as out:
            batch: list[str] = []
            for line in self.lines(count=lines, size=size, attacks=attacks, log=log):
                batch.append(line)
                if len(batch) >= 4096:
                    out.write("".join(batch))
                    batch.clear()
            out.write("".join(batch))
        return log

    def write_rotated(self, directory: Path | str, *, lines: int, attacks: Iterable[Attack] = (), files: int = 3,
                      name: str = "access.log", compress_from: int = 2) -> GeneratedLog:
        """One stream of ``lines`` split over ``files`` files as logrotate leaves them (oldest first).

        ``name.{files-1}[.gz]`` ... ``name.1``, ``name``; rotated files numbered ``compress_from`` or
        higher are gzip-compressed (``delaycompress``).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        names = []
        for index in range(files - 1, -1, -1):
            if index == 0:
                names.append((directory / name, False))
            else:
                compressed = index >= compress_from
                names.append((directory / f"{name}.{index}{'.gz' if compressed else ''}", compressed))
        log = GeneratedLog(paths=[p for p, _c in names], fmt=self.fmt)
        per_file = -(-lines // files)
        stream = self.lines(count=lines, attacks=attacks, log=log)
        for path, compressed in names:
            opener = gzip_lib.open(path, "wt", encoding="utf-8") if compressed else open(path, "w", encoding="utf-8")
            with opener as out:
                for _n, line in zip(range(per_file), stream):
                    out.write(line)
        rest = list(stream)  # attack lines due after the normal traffic ended, if any
        if rest:
            with open(names[-1][0], "a", encoding="utf-8") as out:
                out.write("".join(rest))
        return log


def default_attacks(duration: float, *, prefix: str = "203.0.113.") -> list[Attack]:
    """One attacker per kind plus sqlmap (SQL injection with a scanner agent), spread over ``duration`` seconds."""
    spots = [duration * f for f in (0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.95)]
    return [
        Attack(prefix + "10", "sql_injection", count=60, start=spots[0]),
        Attack(prefix + "11", "path_traversal", count=40, start=spots[1]),
        Attack(prefix + "12", "xss", count=40, start=spots[2]),
        Attack(prefix + "13", "scanner", count=200, start=spots[3], agent=SCANNERS[1]),
        Attack(prefix + "14", "brute_force", count=400, start=spots[4]),
        Attack(prefix + "15", "error_burst", count=150, start=spots[5]),
        Attack(prefix + "16", "not_found_burst", count=600, start=spots[6]),
        Attack(prefix + "17", "sql_injection", count=300, start=spots[7], interval=0.5, agent=SCANNERS[0]),
    ]
