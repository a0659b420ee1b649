# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rotate_secrets
short_description: Rotate a PostgreSQL role password with verification and automatic rollback
version_added: 1.1.0
description:
  - Runbook step 3.3. Generates a new password, sets it on a PostgreSQL role, writes it to the secret store the
    application reads (a local env/JSON/raw file or a Kubernetes Secret), restarts the consumers, verifies that the
    role can log in with it (and optionally that a health URL answers), and records the rotation in TRDR Hub's
    C(secret_rotation_logs) table.
  - "C(ALTER ROLE ... PASSWORD) receives a SCRAM-SHA-256 verifier computed on the host that runs the module
    (RFC 5802/7677, 4096 iterations, random 16-byte salt): the plaintext never reaches the server, its statement
    log (C(log_statement)) or C(pg_stat_activity)."
  - Any failure after the role changed rolls everything back to the old password (the old verifier from
    C(pg_authid) when the login role may read it, else one computed from the old password in the store), restores
    the store, restarts the consumers again, and fails with RV(status=rolled_back) and RV(failed_step).
  - Before the role changes, old and new password are written to the store's pending slot (C(<path>.pending), mode
    0600, or the Secret C(<k8s_secret>-rotation-pending)). A run that finds a pending slot asks the server which
    password it accepts and completes (new) or undoes (old) the interrupted rotation; after an undo it rotates anew.
  - The old password is always read from the store. Results, warnings, errors and the rotation log carry SHA-256
    fingerprints only, never a password.
  - Called C(trdrhub.incident.secret_rotate) before 1.1.0, the name the role, the playbook and the AWX and Rundeck
    jobs already used for it. The old name still works (C(meta/runtime.yml) redirects it here) and is deprecated;
    it will be removed in 2.0.0.
author:
  - TRDR Hub SRE (@trdrhub)
options:
  role:
    description: PostgreSQL role whose password is rotated.
    type: str
    required: true
  secret_type:
    description: Kind of secret, as recorded in the rotation log and used by O(min_age), for example V(db_password).
    type: str
    default: db_password
  environment:
    description: Environment recorded in the rotation log and used by O(min_age).
    type: str
    default: production
  rotation_method:
    description: Value of the log's C(rotation_method) column. Default V(local) for a file store, V(k8s) for a Secret.
    type: str
  rotated_by:
    description: Value of the log's C(rotated_by) column. Default the AWX/Rundeck user or C(local:<os user>).
    type: str
  length:
    description: Length of the new password, 16 to 1024 characters.
    type: int
    default: 32
  alphabet:
    description:
      - Character classes of the new password; it contains at least one character of each. Generated with Python's
        C(secrets) module.
      - V(symbols) are C(!%*+,-./:=?@^_~), which need no quoting in env files, JSON or URLs (they are percent-encoded
        in a DSN). V(urlsafe) (letters, digits, C(-), C(_)) is a complete alphabet and must be used alone.
    type: list
    elements: str
    choices: [letters, digits, symbols, urlsafe]
    default: [letters, digits]
  store:
    description: Where the application reads the secret.
    type: str
    choices: [file, k8s_secret]
    default: file
  path:
    description: The store file, with O(store=file). Rewritten atomically (temporary file, fsync, rename), mode 0600.
    type: path
  file_format:
    description:
      - V(env) - C(KEY=value) lines (C(export) and quotes kept); only the line of O(key) changes.
      - V(json) - a JSON object; O(key) is a top-level key.
      - V(raw) - the whole file is the value (a Docker or Kubernetes secret file); O(key) is not used.
    type: str
    choices: [env, json, raw]
    default: env
  key:
    description: Env variable, JSON key or Secret data key that holds the value, for example V(DATABASE_PASSWORD).
    type: str
  value_format:
    description:
      - V(password) - the value is the password.
      - V(dsn) - the value is a PostgreSQL URL (C(postgresql://user:password@host:5432/db), for example
        C(DATABASE_URL)); only its password part is replaced (percent-encoded).
    type: str
    choices: [password, dsn]
    default: password
  k8s_namespace:
    description: Namespace of O(k8s_secret) and of O(restart_deployments).
    type: str
    default: trdrhub-system
  k8s_secret:
    description: Name of the Kubernetes Secret, with O(store=k8s_secret). Replaced with its C(resourceVersion) as precondition.
    type: str
  k8s_auth:
    description:
      - Kubernetes connection, for O(store=k8s_secret) and O(restart_deployments). Same keys and E(K8S_AUTH_*)
        fallbacks as the C(trdrhub.incident.k8s) options (see C(docs/kubernetes.md) in this collection).
  restart_deployments:
    description:
      - Deployments of O(k8s_namespace) restarted after the store changed (like C(kubectl rollout restart)), then waited
        for until their rollout is complete (O(restart_timeout)).
    type: list
    elements: str
    default: []
  restart_command:
    description:
      - A command (program and arguments, no shell) that restarts the consumers of a file store, for example
        V([docker, compose, restart, api]). Exit code 0 means restarted. Mutually exclusive with O(restart_deployments).
    type: list
    elements: str
  restart_timeout:
    description: Seconds to wait for each restarted Deployment's rollout.
    type: float
    default: 300
  verify_login_host:
    description:
      - Host used to log in as O(role) with the new password. Default the connection's own host.
      - Verification must go through password authentication; a unix socket with C(trust) accepts any password.
    type: str
  verify_login_port:
    description: Port used to log in as O(role) with the new password. Default the connection's own port.
    type: int
  health_url:
    description: URL probed with GET after the log-in succeeded; any answer other than 2xx/3xx fails the verification.
    type: str
  health_timeout:
    description: Seconds to wait for O(health_url).
    type: float
    default: 10
  log_table:
    description:
      - Rotation log table (C(name) or C(schema.name)) in the connected database. When it does not exist, the rotation
        is not recorded and a warning says so.
      - Its columns are looked up; fingerprints are full SHA-256 hex digests of old and new password.
    type: str
    default: secret_rotation_logs
  log_rotation:
    description: Record the rotation (and read the last one for O(min_age)) in O(log_table).
    type: bool
    default: true
  min_age:
    description:
      - Skip the rotation (RV(status=skipped)) when the last completed rotation of this O(secret_type) and O(environment)
        in O(log_table) - or, without a log, the store's modification time - is younger than this.
      - A number with C(s), C(m), C(h), C(d) or C(w), for example V(30d); V(0) disables the check.
    type: str
    default: '0'
  force:
    description: Rotate even when the last rotation is younger than O(min_age).
    type: bool
    default: false
extends_documentation_fragment:
  - trdrhub.incident.k8s.auth_option
  - trdrhub.incident.postgres
attributes:
  check_mode:
    details:
      - Reads the store, the role and the rotation log and returns the plan (RV(plan), RV(steps)) with the fingerprint
        of the current password; generates nothing and changes nothing.
notes:
  - The connection (C(login_*) or O(dsn)) needs the right to C(ALTER ROLE) O(role) (superuser or C(CREATEROLE) with
    admin option on it). Connect to the PostgreSQL server, not to PgBouncer.
  - The old verifier is read from C(pg_authid) only by a superuser; otherwise a rollback sets a fresh verifier of the
    old password, which works just as well.
  - "Test-only: when the environment variable E(TRDRHUB_ROTATE_TEST_CRASH_AFTER) names a step (V(pending),
    V(alter_role), V(store), V(restart), V(verify)), the module process exits at once after that step. The
    integration tests use it to prove that an interrupted rotation is recoverable; it has no effect when unset."
seealso:
  - module: trdrhub.incident.k8s_rollout
  - name: Secret rotation
    description: docs/rotate_secrets.md in this collection.
    link: https://github.com/trdrhub/trdrhub.incident/blob/main/docs/rotate_secrets.md
"""

EXAMPLES = r"""
- name: Rotate the API's database password in its env file, restart it, verify
  trdrhub.incident.rotate_secrets:
    login_host: db-primary.trdrhub.internal
    login_user: postgres
    login_password: "{{ vault_pg_admin_password }}"
    login_db: trdrhub
    role: trdrhub_app
    path: /etc/trdrhub/api.env
    key: DATABASE_URL
    value_format: dsn
    restart_command: [docker, compose, --project-directory, /srv/trdrhub, restart, api]
    health_url: http://127.0.0.1:8000/health/ready
    min_age: 30d
  register: rotation

- name: Rotate the password held in a Kubernetes Secret and restart the Deployments that use it
  trdrhub.incident.rotate_secrets:
    dsn: "{{ vault_pg_admin_dsn }}"
    role: trdrhub_app
    store: k8s_secret
    k8s_namespace: trdrhub-system
    k8s_secret: trdrhub-db
    key: DATABASE_PASSWORD
    k8s_auth:
      kubeconfig: ~/.kube/trdrhub-prod.yaml
    restart_deployments: [trdrhub-api, trdrhub-worker]
    alphabet: [letters, digits, symbols]
    length: 40

- name: Show the plan only
  trdrhub.incident.rotate_secrets:
    login_host: db-primary.trdrhub.internal
    login_user: postgres
    login_db: trdrhub
    role: trdrhub_app
    path: /etc/trdrhub/api.env
    key: DATABASE_PASSWORD
  check_mode: true
"""

RETURN = r"""
status:
  description:
    - V(completed), V(rolled_back) (the task fails; everything is back on the old password), V(failed) (the task fails;
      see RV(failed_step) and RV(steps)), V(skipped) (younger than O(min_age)) or V(planned) (check mode).
  returned: always
  type: str
  sample: completed
rotation_id:
  description: Id of this rotation (of the interrupted one, when it was completed by this run).
  returned: success
  type: str
  sample: rot-20250115T143000Z-3f9a1c
secret_type:
  description: O(secret_type).
  returned: success
  type: str
  sample: db_password
environment:
  description: O(environment).
  returned: success
  type: str
  sample: production
role:
  description: O(role).
  returned: success
  type: str
  sample: trdrhub_app
store:
  description: The store - C(type), C(location), C(key), C(value_format) and the C(pending) slot.
  returned: success
  type: dict
  sample: {"type": "file", "location": "/etc/trdrhub/api.env", "key": "DATABASE_URL", "pending": "/etc/trdrhub/api.env.pending"}
rotation_method:
  description: The log's C(rotation_method).
  returned: success
  type: str
  sample: local
rotated_by:
  description: The log's C(rotated_by).
  returned: success
  type: str
  sample: awx:alice
old_fingerprint:
  description: C(sha256:) and the first 12 hex digits of the SHA-256 of the old password.
  returned: success
  type: str
  sample: "sha256:5e884898da28"
new_fingerprint:
  description: The same for the new password; null when none was set.
  returned: success
  type: str
  sample: "sha256:a665a45920422"
services_restarted:
  description: Deployments or commands that were restarted.
  returned: success
  type: list
  elements: str
  sample: [trdrhub-api, trdrhub-worker]
downtime_seconds:
  description: Seconds from the password change until the consumers were restarted and verified (or rolled back).
  returned: success
  type: float
  sample: 12.4
steps:
  description: Every step with C(step), C(status) (ok, failed, planned, skipped) and C(detail).
  returned: always
  type: list
  elements: dict
  sample: [{"step": "alter_role", "status": "ok", "detail": "password of role trdrhub_app set (SCRAM-SHA-256 verifier)"}]
failed_step:
  description: The step whose failure stopped the rotation.
  returned: when status is rolled_back or failed
  type: str
  sample: verify
rollback_failed_step:
  description: The rollback step that failed too; the pending slot is kept for the next run.
  returned: when the rollback failed
  type: str
  sample: rollback_store
plan:
  description: In check mode, the C(steps) that would run and the C(targets) (role, store, restart, health_url).
  returned: check mode
  type: dict
recovery:
  description:
    - Whether an interrupted rotation was C(found), which password the server accepts (C(database_accepts) new, old or
      neither) and the C(action) taken (completed, rolled_back).
  returned: success
  type: dict
  sample: {"found": true, "database_accepts": "new", "action": "completed"}
last_rotated_at:
  description: Last completed rotation from the log (or the store's modification time), ISO 8601.
  returned: success
  type: str
log:
  description: C(table) and whether the rotation was C(recorded) there.
  returned: success
  type: dict
  sample: {"table": "secret_rotation_logs", "recorded": true}
started_at:
  description: Start, ISO 8601 UTC.
  returned: success
  type: str
completed_at:
  description: End, ISO 8601 UTC.
  returned: success
  type: str
duration_seconds:
  description: Seconds the module spent.
  returned: success
  type: float
queries:
  description: SQL statements run, without values (the verifier never appears).
  returned: always
  type: list
  elements: str
requests:
  description: Kubernetes API requests made.
  returned: always
  type: list
  elements: str
"""

import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Call, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_MUTUALLY_EXCLUSIVE, PSYCOPG2, postgres_spec
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import ROTATE_ARGS
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.run import RotationFailed, rotate


def argument_spec() -> dict[str, t.Any]:
    return postgres_spec(ROTATE_ARGS)


def main() -> None:
    run_module(argument_spec(), lambda module: Call(rotate, module.params, module.run_command, check_mode=module.check_mode, warn=module.warn,
                                                    on_secret=module.no_log_values.add),
               requires=[PSYCOPG2], errors=(RotationFailed,),
               mutually_exclusive=POSTGRES_MUTUALLY_EXCLUSIVE + [['restart_deployments', 'restart_command']])


if __name__ == '__main__':
    main()
