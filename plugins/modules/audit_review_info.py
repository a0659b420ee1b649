# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_review_info
short_description: Review recent TRDR Hub audit log entries by actor and flag anomalous actors
version_added: 1.0.0
description:
  - Reads the application's audit log (C(audit_log_entries)) for a time window, groups the entries by actor
    (C(actor_id)) and returns, for each actor, the counts by action, the roles, tenants and IP addresses seen, first and
    last activity and a few sample entries.
  - Flags actors that look anomalous, each flag with a reason a responder can read out in the incident channel
    (RV(actors[].flags)). C(volume_spike) - many more entries than the actor's own baseline predicts (O(spike_ratio),
    O(spike_min_count)); C(new_actor) - no entry in the baseline at all; C(off_hours) - activity outside
    O(business_hours) on O(business_days) in O(timezone); C(sensitive_action) - any of O(sensitive_actions);
    C(new_action) - actions the actor never did in the baseline; C(many_ips) - more than O(max_ips) distinct
    addresses; C(failed_logins) - at least O(failed_login_threshold) failed logins.
  - The baseline is the period of length O(baseline) that ends where the window starts. The actor's expected count in
    the window is its baseline count scaled to the window length.
  - Every count is computed by PostgreSQL (C(GROUP BY) over the window and the baseline), so the module transfers a
    few rows per actor, not the entries themselves, also on a table with millions of rows.
  - Read-only; never changes anything.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  table:
    description:
      - The audit table, V(table) or V(schema.table); names are case-sensitive and an unqualified name is looked up in
        the C(search_path). It must have the application's columns (C(actor_id), C(actor_role), C(actor_ip),
        C(tenant_id), C(action), C(created_at), C(event_metadata), ...).
    type: str
    default: audit_log_entries
  since:
    description:
      - Start of the window. A duration back from O(until) (V(90m), V(24h), V(7d), V(1h30m), a bare number is seconds)
        or an ISO 8601 time (V(2025-01-15T14:30:00Z); a time without an offset is UTC).
      - Relative times are taken from the database server's clock, the clock that wrote C(created_at).
    type: str
    default: 24h
  until:
    description:
      - End of the window (exclusive), an ISO 8601 time or a duration back from now. Omitted or V(now) means now.
    type: str
  baseline:
    description:
      - Length of the baseline period that precedes the window, a duration like V(7d) or V(30d).
      - A longer baseline makes C(volume_spike) and C(new_action) less sensitive to weekly rhythms; it also reads
        more rows (still aggregated by the server).
    type: str
    default: 7d
  tenant_id:
    description:
      - Only entries of these tenants (window and baseline). Omitted means every tenant.
    type: list
    elements: str
  actor_id:
    description:
      - Only these actors (UUIDs). Omitted means every actor.
    type: list
    elements: str
  include_no_actor:
    description:
      - Include entries without an actor (C(actor_id) null - system jobs, anonymous requests such as failed logins)
        as one pseudo-actor C((no actor)).
    type: bool
    default: true
  spike_ratio:
    description:
      - C(volume_spike) when the window count is at least this many times the count the baseline predicts.
    type: float
    default: 3.0
  spike_min_count:
    description:
      - C(volume_spike) only for actors with at least this many entries in the window, so a quiet actor going from 1 to
        4 entries is not a spike.
    type: int
    default: 50
  timezone:
    description:
      - Time zone of O(business_hours) and O(business_days), a name PostgreSQL knows (C(pg_timezone_names)), for
        example V(Europe/Berlin).
    type: str
    default: UTC
  business_hours:
    description:
      - Local business hours, V(HH:MM-HH:MM). An end before the start spans midnight; equal start and end mean the
        whole day.
    type: str
    default: 07:00-20:00
  business_days:
    description:
      - Business days; every entry on another day is off hours.
    type: list
    elements: str
    choices: [mon, tue, wed, thu, fri, sat, sun]
    default: [mon, tue, wed, thu, fri]
  off_hours_min_count:
    description:
      - C(off_hours) when the actor has at least this many entries outside business hours in the window.
    type: int
    default: 3
  sensitive_actions:
    description:
      - Actions flagged as C(sensitive_action) whenever an actor performed them in the window.
      - V([]) disables the flag.
    type: list
    elements: str
    default: [export, rotate, delete, restore, backup, approve]
  flag_new_actions:
    description:
      - Flag C(new_action) when an actor that has baseline activity performs an action it never performed in the
        baseline.
    type: bool
    default: true
  max_ips:
    description:
      - C(many_ips) when an actor used more than this many distinct C(actor_ip) values in the window.
    type: int
    default: 3
  failed_login_actions:
    description:
      - Actions that record a failed login. The application's vocabulary has none today (only C(login) and
        C(logout)); list the action your version writes, if any.
    type: list
    elements: str
    default: [login_failed, failed_login, login_failure]
  failed_login_metadata:
    description:
      - A C(login) entry also counts as a failed login when its C(event_metadata) has one of these keys with one of
        the listed values (compared in lower case).
      - V({}) counts only O(failed_login_actions).
    type: dict
    default: {success: ['false'], outcome: [failure, failed, denied], status: [failure, failed, denied]}
  failed_login_threshold:
    description:
      - C(failed_logins) when an actor (or the C((no actor)) group) has at least this many failed logins in the window.
        V(0) disables the flag.
    type: int
    default: 5
  email_keys:
    description:
      - C(event_metadata) keys that may hold the actor's e-mail address, first present wins. The table has no e-mail
        column; V([]) returns RV(actors[].email) as null.
    type: list
    elements: str
    default: [actor_email, email, user_email]
  weights:
    description:
      - Risk weight per flag; the actor's RV(actors[].risk) is the sum of the weights of its flags. Only the flags given
        change.
      - "Defaults: C(volume_spike=3), C(failed_logins=3), C(off_hours=2), C(sensitive_action=2), C(new_action=2),
        C(many_ips=2), C(new_actor=1)."
    type: dict
    default: {}
  max_actors:
    description:
      - Return at most this many actors in RV(actors), the riskiest first; V(0) returns all. RV(summary) and
        RV(flagged_actors) always cover every actor.
    type: int
    default: 100
  sample_size:
    description:
      - Sample entries per returned actor, sensitive actions first, then the most recent. V(0) returns none.
    type: int
    default: 5
extends_documentation_fragment:
  - trdrhub.incident.postgres
notes:
  - The login role needs C(SELECT) on the audit table. A table or column it cannot read fails the module with the
    statement and the server's reason.
  - On a large table an index on C(created_at) keeps the window and baseline scans short; without one every run reads
    the whole table once per query.
  - The chain hash does not cover C(actor_role), C(actor_ip), C(event_metadata) or C(action_description); whoever can
    write the table can change them unnoticed. Verify the chain with M(trdrhub.incident.audit_chain_verify) before
    relying on them as evidence.
  - Works through PgBouncer (port C(6543)) too; it signals no session.
seealso:
  - module: trdrhub.incident.audit_chain_verify
  - module: trdrhub.incident.pg_activity_info
"""

EXAMPLES = r"""
- name: Who did what in the last 24 hours, and who looks wrong
  trdrhub.incident.audit_review_info:
    login_host: db-primary.trdrhub.internal
    login_user: trdrhub_ops
    login_password: "{{ vault_pg_ops_password }}"
    login_db: lcopilot
  register: review

- name: Show the flagged actors and why
  ansible.builtin.debug:
    msg: "{{ item.actor }} (risk {{ item.risk }}): {{ item.flags | map(attribute='reason') | join('; ') }}"
  loop: "{{ review.actors | selectattr('flags') | list }}"
  loop_control:
    label: "{{ item.actor }}"

- name: One tenant since the suspected breach, Berlin office hours, 30-day baseline
  trdrhub.incident.audit_review_info:
    dsn: "{{ vault_pg_ops_dsn }}"
    tenant_id: [tenant-42]
    since: "2025-01-15T06:00:00Z"
    baseline: 30d
    timezone: Europe/Berlin
    business_hours: "08:00-18:30"
    sensitive_actions: [export, delete, rotate, restore]
    spike_min_count: 20

- name: One actor's last week
  trdrhub.incident.audit_review_info:
    login_unix_socket: /var/run/postgresql
    login_db: lcopilot
    actor_id: [3f2c9a4e-8d1b-4c55-9e0f-6a7b8c9d0e1f]
    since: 7d
    baseline: 28d
"""

RETURN = r"""
actors:
  description:
    - The actors active in the window, the highest RV(actors[].risk) first (then the most entries), at most
      O(max_actors).
  returned: always
  type: list
  elements: dict
  contains:
    actor:
      description: The actor id, or C((no actor)) for entries without one.
      type: str
      sample: 3f2c9a4e-8d1b-4c55-9e0f-6a7b8c9d0e1f
    actor_id:
      description: The actor's UUID; null for the C((no actor)) group.
      type: str
      sample: 3f2c9a4e-8d1b-4c55-9e0f-6a7b8c9d0e1f
    email:
      description: The actor's e-mail address from C(event_metadata) (O(email_keys)); null when no entry carries one.
      type: str
      sample: ops@tenant-42.example
    role:
      description: The actor's most frequent C(actor_role) in the window.
      type: str
      sample: admin
    roles:
      description: Every C(actor_role) seen in the window.
      type: list
      elements: str
    tenants:
      description: The tenants the actor's entries belong to.
      type: list
      elements: str
    ips:
      description: Distinct C(actor_ip) values in the window, sorted, at most 50 (see RV(actors[].ip_count)).
      type: list
      elements: str
    ip_count:
      description: Number of distinct C(actor_ip) values in the window.
      type: int
    count:
      description: Entries in the window.
      type: int
    counts:
      description: Entries in the window by action.
      type: dict
      sample: {read: 120, export: 14}
    baseline_count:
      description: Entries in the baseline period.
      type: int
    baseline_counts:
      description: Entries in the baseline period by action.
      type: dict
    expected_count:
      description: The window count the baseline predicts (baseline count scaled to the window length).
      type: float
    ratio:
      description: RV(actors[].count) divided by RV(actors[].expected_count); null without baseline activity.
      type: float
    off_hours_count:
      description: Entries outside business hours.
      type: int
    failed_logins:
      description: Failed logins in the window (O(failed_login_actions), O(failed_login_metadata)).
      type: int
    first_seen:
      description: Time of the actor's first entry in the window (ISO 8601, UTC).
      type: str
    last_seen:
      description: Time of the actor's last entry in the window (ISO 8601, UTC).
      type: str
    flags:
      description: The anomaly flags, each C(flag) (name), C(reason) (one sentence) and C(weight).
      type: list
      elements: dict
      sample: [{flag: sensitive_action, reason: "sensitive actions: export x14", weight: 2}]
    risk:
      description: Sum of the flags' weights; V(0) means not flagged.
      type: int
    samples:
      description:
        - Up to O(sample_size) entries, sensitive actions first then the most recent, with C(id), C(sequence_number),
          C(tenant_id), C(action), C(resource_type), C(resource_id), C(actor_ip), C(severity) and C(created_at).
      type: list
      elements: dict
flagged_actors:
  description: The actor ids of every flagged actor (also beyond O(max_actors)), riskiest first; null stands for C((no actor)).
  returned: always
  type: list
  elements: str
  sample: [3f2c9a4e-8d1b-4c55-9e0f-6a7b8c9d0e1f]
summary:
  description: Totals over every actor in the window.
  returned: always
  type: dict
  contains:
    entries:
      description: Entries in the window.
      type: int
    actors:
      description: Actors in the window.
      type: int
    flagged:
      description: Flagged actors.
      type: int
    shown:
      description: Actors returned in RV(actors).
      type: int
    baseline_entries:
      description: Baseline entries of the actors in the window.
      type: int
    by_flag:
      description: Number of actors per flag.
      type: dict
    by_action:
      description: Entries per action.
      type: dict
    max_risk:
      description: The highest risk of any actor.
      type: int
    tenants:
      description: Tenants with entries in the window.
      type: list
      elements: str
window:
  description: The periods read and the business-hours settings used.
  returned: always
  type: dict
  sample: {since: "2025-01-14T14:30:00+00:00", until: "2025-01-15T14:30:00+00:00", seconds: 86400,
           baseline_since: "2025-01-07T14:30:00+00:00", baseline_until: "2025-01-14T14:30:00+00:00",
           baseline_seconds: 604800, table: public.audit_log_entries, timezone: UTC, business_hours: "07:00-20:00",
           business_days: [mon, tue, wed, thu, fri]}
queries:
  description: SQL statements the module ran, in order, without parameter values.
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._audit.review import AUDIT_REVIEW_ARGS, AuditReview
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_CONSTRAINTS, PSYCOPG2, PgClient, postgres_spec


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(AUDIT_REVIEW_ARGS)


def main() -> None:
    run_module(argument_spec(), lambda mod: AuditReview(mod.params), lambda mod, _: PgClient(mod.params), requires=[PSYCOPG2], **POSTGRES_CONSTRAINTS)


if __name__ == '__main__':
    main()
