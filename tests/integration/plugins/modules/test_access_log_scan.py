"""access_log_scan through real ansible-playbook runs, on logs from the harness generator.

Generated nginx logs hold normal TRDR Hub traffic (legitimate queries with quotes, brackets
and escapes, a busy API client, IPv6 clients, a health probe) with known attacks mixed in;
the scan must report exactly the attackers, with exactly their categories, and nobody else.
"""
from __future__ import annotations

import datetime
import gzip
import os

import pytest
from trdrhub_harness.accesslog import SCANNERS, AccessLogGenerator, Attack, default_attacks

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

START = datetime.datetime(2025, 1, 15, 9, 0, 0, tzinfo=datetime.UTC)
WINDOW = {"since": "2025-01-15T08:00:00Z", "until": "2025-01-15T20:00:00Z"}
RESULT_KEYS = {"ip", "score", "reasons", "counts", "samples", "first_seen", "last_seen", "requests"}


def reasons(run):
    return {entry["ip"]: set(entry["reasons"]) for entry in run["suspicious"]}


@pytest.fixture
def rotated(tmp_path):
    """access.log.3.gz, access.log.2.gz, access.log.1, access.log: one day's stream with every kind of attack."""
    log = AccessLogGenerator(start=START).write_rotated(tmp_path / "nginx", lines=80000, files=4,
                                                        attacks=default_attacks(80000 / 50))
    return log


def test_known_attacks_among_normal_traffic_in_rotated_logs(ansible, rotated, tmp_path):
    run = ansible.run("access_log_scan", {"paths": [str(tmp_path / "nginx" / "access.log*")], **WINDOW})

    assert not run.failed, run.output
    assert run["changed"] is False
    assert reasons(run) == rotated.expected()
    assert not set(run["suspicious_ips"]) & rotated.normal_ips
    assert run["suspicious_ips"] == [entry["ip"] for entry in run["suspicious"]]
    assert [entry["score"] for entry in run["suspicious"]] == sorted((e["score"] for e in run["suspicious"]), reverse=True)
    for entry in run["suspicious"]:
        assert set(entry) == RESULT_KEYS
        assert 1 <= len(entry["samples"]) <= 5 and all(entry["ip"] in sample for sample in entry["samples"])
        assert entry["first_seen"] <= entry["last_seen"]
    stats = run["stats"]
    assert stats["files_read"] == 4
    assert [os.path.basename(f["path"]) for f in stats["files"]] == \
        ["access.log.3.gz", "access.log.2.gz", "access.log.1", "access.log"]
    assert [f["compressed"] for f in stats["files"]] == [True, True, False, False]
    assert stats["lines_in_window"] == rotated.lines and stats["unparsed_lines"] == 0
    assert stats["bytes_read"] == rotated.bytes
    assert run["window"] == {"since": "2025-01-15T08:00:00Z", "until": "2025-01-15T20:00:00Z"}


def test_check_mode_scans_the_same_and_changes_nothing(ansible, rotated, tmp_path):
    paths = [str(p) for p in rotated.paths]
    before = {p: (os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths}
    normal = ansible.run("access_log_scan", {"paths": paths, **WINDOW})
    check = ansible.run("access_log_scan", {"paths": paths, **WINDOW}, check=True)

    assert not check.failed, check.output
    assert check["changed"] is False
    assert check["suspicious"] == normal["suspicious"]
    assert {p: (os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths} == before


def test_a_missing_file_is_one_clear_message(ansible, rotated, tmp_path):
    missing = tmp_path / "nginx" / "access.log.9.gz"
    run = ansible.run("access_log_scan", {"paths": [str(rotated.path), str(missing), str(tmp_path / "other" / "*.log")],
                                          **WINDOW})

    assert run.failed
    assert run["msg"] == (f"access log not found: {missing}, {tmp_path}/other/*.log (no match). "
                          "Set missing_ok to scan only the logs that exist.")
    assert "Traceback" not in run.output
    assert run.output.count("access log not found") >= 1

    tolerant = ansible.run("access_log_scan", {"paths": [str(rotated.path), str(missing)], "missing_ok": True, **WINDOW})
    assert not tolerant.failed, tolerant.output
    assert tolerant["stats"]["files_read"] == 1
    assert f"access log not found, skipped (missing_ok): {missing}" in tolerant.output


def test_gzip_without_a_gz_name_and_plain_with_one(ansible, tmp_path):
    gen = AccessLogGenerator(start=START, seed=11)
    log = gen.write(tmp_path / "plain.log", lines=5000, attacks=[Attack("203.0.113.44", "xss", count=12, start=20)])
    disguised = tmp_path / "access.log.1"
    disguised.write_bytes(gzip.compress(log.path.read_bytes()))
    named = tmp_path / "access.log.2.gz"
    named.write_bytes(log.path.read_bytes())

    for path in (disguised, named):
        run = ansible.run("access_log_scan", {"paths": [str(path)], **WINDOW})
        assert not run.failed, run.output
        assert reasons(run) == {"203.0.113.44": {"xss"}}
        assert run["stats"]["files"][0]["compressed"] is (path == disguised)


def test_exclude_and_thresholds_through_the_playbook(ansible, tmp_path):
    attacks = [Attack("10.0.0.99", "scanner", count=40, agent=SCANNERS[7]),       # our own weekly Nuclei run
               Attack("203.0.113.45", "brute_force", count=15, interval=2.0),      # 15 in 28 s: below the default 20
               Attack("203.0.113.46", "sql_injection", count=5, start=100)]
    log = AccessLogGenerator(start=START, seed=12).write(tmp_path / "access.log", lines=20000, attacks=attacks)

    default = ansible.run("access_log_scan", {"paths": [str(log.path)], **WINDOW})
    assert reasons(default) == {"10.0.0.99": {"scanner"}, "203.0.113.46": {"sql_injection"}}

    tuned = ansible.run("access_log_scan", {"paths": [str(log.path)], "exclude": ["10.0.0.0/24"],
                                            "thresholds": {"brute_force": {"count": 10, "window": 30}}, **WINDOW})
    assert not tuned.failed, tuned.output
    assert reasons(tuned) == {"203.0.113.45": {"brute_force"}, "203.0.113.46": {"sql_injection"}}
    assert tuned["stats"]["excluded_lines"] >= 40


def test_json_logs(ansible, tmp_path):
    gen = AccessLogGenerator(start=START, fmt="json", seed=13)
    log = gen.write(tmp_path / "access.json.log", lines=20000, attacks=default_attacks(400))
    run = ansible.run("access_log_scan", {"paths": [str(log.path)], "format": "json", **WINDOW})
    assert not run.failed, run.output
    assert reasons(run) == log.expected()


def test_the_default_window_is_the_last_hour_of_the_hosts_clock(ansible, tmp_path):
    """Two hours of traffic ending now: only the attacks of the last hour are reported."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    attacks = [Attack("203.0.113.47", "path_traversal", count=10, start=600),     # 1 h 50 min ago
               Attack("203.0.113.48", "path_traversal", count=10, start=5400)]    # 30 min ago
    gen = AccessLogGenerator(start=now - datetime.timedelta(hours=2), rate=2, seed=14)
    log = gen.write(tmp_path / "access.log", lines=14000, attacks=attacks)

    run = ansible.run("access_log_scan", {"paths": [str(log.path)]})
    assert not run.failed, run.output
    assert reasons(run) == {"203.0.113.48": {"path_traversal"}}
    assert run["stats"]["lines_outside_window"] > 0
    since = datetime.datetime.fromisoformat(run["window"]["since"].replace("Z", "+00:00"))
    until = datetime.datetime.fromisoformat(run["window"]["until"].replace("Z", "+00:00"))
    assert abs((until - since).total_seconds() - 3600) < 1
    assert abs((until - now).total_seconds()) < 120


def test_bad_options_fail_with_a_message(ansible, rotated):
    run = ansible.run("access_log_scan", {"paths": [str(rotated.path)], "since": "yesterday"})
    assert run.failed
    assert run["msg"].startswith("since='yesterday' is neither an ISO 8601 time")
    assert "Traceback" not in run.output
