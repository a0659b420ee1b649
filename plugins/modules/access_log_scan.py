# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: access_log_scan
short_description: Scan nginx access logs for suspicious clients - attack signatures, scanners, brute force, error bursts
version_added: 1.0.0
description:
  - Runbook 3.3 (Security Incident Response), the suspicious-traffic scan. Reads nginx access logs (the C(combined)
    format or one JSON object per line; plain or gzip-compressed, rotated files included) and reports the client
    addresses that look like attackers, with a score, the reasons, counts per category, the first and last time seen
    and sample lines.
  - "Categories. V(sql_injection), V(path_traversal) and V(xss) - signatures in the request line, matched after
    URL-decoding it up to three times (so double encoding such as C(%2527) is seen), with C(+) read as a space and
    SQL comments C(/**/) as a space, case-insensitively. V(scanner) - a scanner's user agent (sqlmap, Nikto, Nmap,
    masscan, zgrab, WPScan, DirBuster, gobuster, Nuclei, Acunetix, Netsparker, OpenVAS, Nessus, w3af, ffuf,
    feroxbuster, wfuzz and others, plus O(scanner_user_agents)). V(brute_force), V(error_burst) and
    V(not_found_burst) - bursts of 401/403, 5xx and 404 responses to one address (see O(thresholds))."
  - "Score - the sum over an address's categories of weight x (1 + log2(count)); weights V(sql_injection) 10,
    V(path_traversal) 8, V(xss) 6, V(brute_force) 6, V(scanner) 5, V(error_burst) 3, V(not_found_burst) 3. A
    signature or scanner category counts the matching lines, a burst category the responses that belong to a burst."
  - Read-only. The module never changes anything, so check mode runs the same scan; it always reports C(changed=false).
  - "Memory stays bounded whatever the size of the logs - files are streamed in 1 MiB chunks (gzip too), and what is
    kept per address is bounded by O(max_tracked_ips), O(max_samples) and O(sample_length). Unparseable lines are
    counted (RV(stats.unparsed_lines)) and never fail the task."
author:
  - TRDR Hub SRE (@trdrhub)
options:
  paths:
    description:
      - Log files and glob patterns, for example V(/var/log/nginx/access.log*). Rotated files (C(access.log.1),
        C(access.log.2.gz), C(access.log-20250115.gz)) are read like the others; gzip is recognised by its magic
        bytes, not by the name. bzip2, xz and zstd files are refused with a message.
      - Files are read oldest first, as logrotate names them, and each file once even if several patterns match it.
      - A file that does not exist, or a pattern that matches nothing, fails the task with one message naming all of
        them, unless O(missing_ok) is set.
    type: list
    elements: path
    required: true
  format:
    description:
      - V(combined) - nginx's default C(log_format combined) - C($remote_addr - $remote_user [$time_local] "$request"
        $status $body_bytes_sent "$http_referer" "$http_user_agent"); fields appended after the user agent (for example
        C($request_time)) are ignored.
      - V(json) - one JSON object per line (C(log_format ... escape=json)). Key names, the first present wins -
        time C(time_iso8601), C(time_local), C(@timestamp), C(timestamp), C(time), C(ts), C(datetime), C(date) or
        C(msec) (ISO 8601, C($time_local) form or seconds since the epoch); client C(remote_addr), C(client_ip),
        C(clientip), C(client_addr), C(client), C(remote_ip), C(ip) or C(src_ip); request line C(request) or
        C(request_line), or else method (C(request_method), C(method), C(verb)) with URI (C(request_uri), C(uri),
        C(url), C(path), C(request_path); C(args), C(query_string) or C(query) appended when the URI has no query)
        and protocol (C(server_protocol), C(protocol), C(http_version)); status C(status), C(status_code),
        C(response), C(response_code) or C(code); user agent C(http_user_agent), C(user_agent), C(useragent),
        C(agent) or C(ua). C(body_bytes_sent), C(http_referer) and C(request_time) may be present and are not used.
        A line without a client, a time or a status is unparsed.
      - V(auto) - decides per line - a line starting with C({) is JSON, any other is combined.
    type: str
    choices: [auto, combined, json]
    default: auto
  since:
    description:
      - Start of the time window - ISO 8601 (V(2025-01-15T14:00:00Z), V(2025-01-15 14:00+01:00); no offset means UTC),
        relative to now on the host that reads the logs (V(-2h), V(-30m), V(-1d), V(-90s)) or V(now).
      - Lines before it are skipped after reading only their time. The default V(-1h) is the last hour - the
        runbook's "what is hitting us right now"; widen it for forensics.
    type: str
    default: "-1h"
  until:
    description:
      - End of the time window (inclusive), in the same forms as O(since).
    type: str
    default: now
  exclude:
    description:
      - Addresses and networks (CIDR, IPv4 or IPv6) that are never flagged - monitoring, health probes, your own
        scanners, the office. Their lines count in RV(stats.excluded_lines) and nowhere else.
    type: list
    elements: str
    default: []
  missing_ok:
    description:
      - Skip files that do not exist and patterns that match nothing, with a warning, instead of failing.
    type: bool
    default: false
  time_ordered:
    description:
      - Trust that each file is in time order within 10 minutes, as nginx writes it (C($time_local) is the time the
        line is written). Then a file last modified before O(since) is not opened, an uncompressed file of 4 MiB or
        more is entered by binary search 10 minutes before O(since), and reading a file stops at the first line later
        than O(until) plus 10 minutes. RV(stats.files) shows what was skipped.
      - Set V(false) for logs that were merged or sorted otherwise; every line of every file is then read.
    type: bool
    default: true
  thresholds:
    description:
      - The burst rules. A burst is at least C(count) responses with one of C(statuses) to one address, at most
        C(window) seconds apart, making up at least C(min_ratio) of that address's requests from the first of them
        to the last (so a busy client with a few 404 among many 200 is not a burst).
      - When C(baseline_factor) is not V(0) the address's share of such responses over the whole window must also be
        at least C(baseline_factor) times the share among all other clients - during an outage, when everybody gets
        502 and 503, nobody is flagged for it (RV(stats.bursts_suppressed) counts them, and a warning says so). It is
        on for V(error_burst) only - a brute force or a content discovery spread over many addresses would hide
        behind its own baseline.
      - "Defaults - V(brute_force) count 20, window 60, statuses [401, 403], baseline_factor 0; V(error_burst) count
        50, window 60, statuses [5xx], baseline_factor 2; V(not_found_burst) count 50, window 60, statuses [404],
        baseline_factor 0; all min_ratio 0.5. Only the values given change."
    type: dict
    suboptions:
      brute_force:
        description: Authentication brute force (C(count) V(0) turns it off).
        type: dict
        suboptions: &rule
          count:
            description: Responses in a burst; V(0) turns the rule off.
            type: int
          window:
            description: Seconds from the first to the last response of a burst, at most.
            type: int
          statuses:
            description: Statuses (V(401)) and classes (V(5xx), V(50x)) the rule counts.
            type: list
            elements: raw
          min_ratio:
            description: Share of the address's requests the burst must make up, from 0 to 1.
            type: float
          baseline_factor:
            description: How many times the share among all other clients the address's share must reach; V(0) turns
              the comparison off.
            type: float
      error_burst:
        description: Bursts of server errors, for example an injection or fuzzing campaign breaking requests.
        type: dict
        suboptions: *rule
      not_found_burst:
        description: Bursts of 404 - content discovery (dirbuster, gobuster, ffuf) and probing for known files.
        type: dict
        suboptions: *rule
  scanner_user_agents:
    description:
      - More user-agent substrings (case-insensitive) that mark a scanner, in addition to the built-in names.
    type: list
    elements: str
    default: []
  min_score:
    description:
      - Report only addresses with at least this score. The default reports every address with any finding.
    type: float
    default: 1.0
  max_results:
    description:
      - List at most this many addresses in RV(suspicious), the highest scores; RV(suspicious_ips) always lists all of
        them and RV(stats.suspicious_total) counts them.
    type: int
    default: 500
  max_samples:
    description:
      - Sample lines kept per address, preferring one per category. V(0) keeps none.
    type: int
    default: 5
  sample_length:
    description:
      - Sample lines longer than this many characters are cut and end in C(...).
    type: int
    default: 400
  max_tracked_ips:
    description:
      - Addresses tracked at once - the bound on memory (a clean address costs about 300 bytes, a flagged one up to
        O(max_samples) x O(sample_length) more).
      - When the limit is reached the quarter of the clean addresses (no finding so far) idle the longest is
        forgotten (RV(stats.ips_evicted)); if one of them comes back its counters start again. When nearly every
        tracked address is flagged, lines of new addresses are not tracked (RV(stats.untracked_lines)) and a warning
        says so.
    type: int
    default: 50000
extends_documentation_fragment:
  - trdrhub.incident.attributes
notes:
  - nginx must log the client's own address as C($remote_addr). Behind a load balancer or Kubernetes ingress, set
    C(real_ip_header)/C(set_real_ip_from) (or C(use-forwarded-headers) in ingress-nginx), or every request comes from
    the balancer. Put the balancer's and the monitoring addresses in O(exclude).
  - Only the request line is matched against signatures - request bodies are not in access logs, and headers other
    than the user agent are not matched. Obfuscated payloads beyond URL encoding can pass; a finding is a lead for a
    human, not a verdict, and a clean result does not prove there was no attack.
  - The logs are usually readable by C(root) or the C(adm) group - use C(become) or a remote user in that group.
  - "Speed - about 40 MB (220 thousand lines) a second for the combined format on one core of a 2-core VM, a tenth of
    a bare read-every-line loop, in about 11 MB above the interpreter for a 1 GiB log (C(bench/log_scan_bench.py));
    a JSON line costs about twice a combined one. A last-hour window over a day-long plain file costs about a second
    (O(time_ordered))."
"""

EXAMPLES = r"""
# Runbook 3.3: who is attacking us, right now?
- name: Scan the last hour of the nginx access logs
  trdrhub.incident.access_log_scan:
    paths:
      - /var/log/nginx/access.log*
    exclude:
      - 10.0.0.0/24          # monitoring and the load balancers
  become: true
  register: scan

- name: Show the worst offenders
  ansible.builtin.debug:
    msg: "{{ item.ip }} score {{ item.score }}: {{ item.reasons | join(', ') }} ({{ item.requests }} requests, {{ item.first_seen }} - {{ item.last_seen }})"
  loop: "{{ scan.suspicious[:10] }}"

- name: Forensics - a fixed window in yesterday's rotated JSON logs, stricter brute-force rule
  trdrhub.incident.access_log_scan:
    paths:
      - /var/log/nginx/access.json.log.1
      - /var/log/nginx/access.json.log.*.gz
    format: json
    since: "2025-01-15T02:00:00Z"
    until: "2025-01-15T04:30:00Z"
    thresholds:
      brute_force:
        count: 10
        window: 120
    missing_ok: true
  become: true
  register: forensics

- name: Hand the addresses to the containment play
  ansible.builtin.set_fact:
    block_candidates: "{{ scan.suspicious | selectattr('score', '>=', 20) | map(attribute='ip') | list }}"
"""

RETURN = r"""
suspicious:
  description:
    - The suspicious addresses, highest score first (then most requests), at most O(max_results).
  returned: always
  type: list
  elements: dict
  contains:
    ip:
      description: The client address as logged.
      type: str
      sample: 203.0.113.17
    score:
      description: The score (see the description), one decimal.
      type: float
      sample: 92.4
    reasons:
      description:
        - The categories found, the strongest first - V(sql_injection), V(path_traversal), V(xss), V(scanner),
          V(brute_force), V(error_burst), V(not_found_burst).
      type: list
      elements: str
      sample: [sql_injection, scanner]
    counts:
      description: Per category in RV(suspicious[].reasons), the matching lines (signatures, scanner) or the responses
        in bursts.
      type: dict
      sample: {sql_injection: 300, scanner: 300}
    requests:
      description: Lines of this address inside the window.
      type: int
      sample: 300
    first_seen:
      description: Time of its first line in the window, ISO 8601 UTC.
      type: str
      sample: "2025-01-15T14:02:11Z"
    last_seen:
      description: Time of its last line in the window, ISO 8601 UTC.
      type: str
      sample: "2025-01-15T14:04:40Z"
    samples:
      description: Up to O(max_samples) lines that were flagged, one per category first, cut at O(sample_length).
      type: list
      elements: str
      sample:
        - '203.0.113.17 - - [15/Jan/2025:14:02:11 +0000] "GET /api/v1/products?id=1%27%20UNION%20SELECT... HTTP/1.1" 200
          151 "-" "sqlmap/1.7.12#stable (https://sqlmap.org)"'
suspicious_ips:
  description: Every suspicious address (also those beyond O(max_results)), in the order of RV(suspicious).
  returned: always
  type: list
  elements: str
  sample: [203.0.113.17, 198.51.100.7]
window:
  description: The time window scanned, ISO 8601 UTC.
  returned: always
  type: dict
  sample: {since: "2025-01-15T13:30:00Z", until: "2025-01-15T14:30:00Z"}
stats:
  description: What was read and how it went.
  returned: always
  type: dict
  contains:
    files_read:
      description: Files opened and read.
      type: int
    files_skipped:
      description: Files not opened because they were last written before the window (O(time_ordered)).
      type: int
    files:
      description: Per file - C(path), C(compressed), C(lines), C(bytes) (uncompressed bytes read), and when they apply
        C(skipped) (why the file was not opened), C(skipped_bytes) (bytes before the window passed over by the binary
        search), C(stopped_early) (reading stopped after the window), C(error) (a damaged compressed file; the lines
        before the damage were scanned).
      type: list
      elements: dict
    lines_read:
      description: Lines read (lines in the window, outside it, unparsed and blank).
      type: int
    lines_in_window:
      description: Parsed lines inside the window (excluded addresses included).
      type: int
    lines_outside_window:
      description: Parsed lines outside the window that were read.
      type: int
    unparsed_lines:
      description: Lines that are neither combined nor JSON with the required fields (or longer than 1 MiB).
      type: int
    unparsed_samples:
      description: The first three unparsed lines, cut at 200 characters - to see what the format really is.
      type: list
      elements: str
    blank_lines:
      description: Empty lines.
      type: int
    excluded_lines:
      description: Lines of addresses in O(exclude).
      type: int
    untracked_lines:
      description: Lines of new addresses not tracked because O(max_tracked_ips) was reached.
      type: int
    bytes_read:
      description: Bytes read, after decompression.
      type: int
    bytes_skipped:
      description: Bytes of uncompressed files passed over by the binary search.
      type: int
    duration:
      description: Seconds the scan took.
      type: float
    ips_seen:
      description: Addresses that were tracked (an evicted address that came back counts again).
      type: int
    ips_tracked:
      description: Addresses tracked at the end.
      type: int
    ips_evicted:
      description: Clean addresses forgotten to stay within O(max_tracked_ips).
      type: int
    suspicious_total:
      description: Suspicious addresses found (the length of RV(suspicious_ips)).
      type: int
    suspicious_listed:
      description: Addresses detailed in RV(suspicious).
      type: int
    flagged_by_category:
      description: Suspicious addresses per category.
      type: dict
    bursts_suppressed:
      description: Per burst category, addresses not flagged because other clients got the same responses as often
        (C(baseline_factor)).
      type: dict
  sample:
    files_read: 3
    files_skipped: 11
    lines_read: 1843211
    lines_in_window: 402113
    unparsed_lines: 2
    bytes_read: 412339871
    duration: 4.81
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log import FORMATS
from ansible_collections.trdrhub.incident.plugins.module_utils._security.access_log_scan import AccessLogScan


def _rule_spec() -> dict[str, t.Any]:
    return {
        'count': bounded({'type': 'int'}, minimum=0),
        'window': bounded({'type': 'int'}, above=0),
        'statuses': {'type': 'list', 'elements': 'raw'},
        'min_ratio': bounded({'type': 'float'}, 0, 1),
        'baseline_factor': bounded({'type': 'float'}, minimum=0),
    }


def argument_spec() -> dict[str, t.Any]:
    return {
        'paths': {'type': 'list', 'elements': 'path', 'required': True},
        'format': {'type': 'str', 'choices': list(FORMATS), 'default': 'auto'},
        'since': {'type': 'str', 'default': '-1h'},
        'until': {'type': 'str', 'default': 'now'},
        'exclude': {'type': 'list', 'elements': 'str', 'default': []},
        'missing_ok': {'type': 'bool', 'default': False},
        'time_ordered': {'type': 'bool', 'default': True},
        'thresholds': {'type': 'dict', 'options': {
            'brute_force': {'type': 'dict', 'options': _rule_spec()},
            'error_burst': {'type': 'dict', 'options': _rule_spec()},
            'not_found_burst': {'type': 'dict', 'options': _rule_spec()},
        }},
        'scanner_user_agents': {'type': 'list', 'elements': 'str', 'default': []},
        'min_score': bounded({'type': 'float', 'default': 1.0}, minimum=0),
        'max_results': bounded({'type': 'int', 'default': 500}, minimum=0),
        'max_samples': bounded({'type': 'int', 'default': 5}, minimum=0),
        'sample_length': bounded({'type': 'int', 'default': 400}, minimum=0),
        'max_tracked_ips': bounded({'type': 'int', 'default': 50000}, minimum=1),
    }


def main() -> None:
    run_module(argument_spec(), lambda module: AccessLogScan(module.params), lambda module, scan: None)


if __name__ == '__main__':
    main()
