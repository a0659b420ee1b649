# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Verified rotation of a PostgreSQL role password, with rollback (runbook 3.3).

Steps: read the old secret from the store -> generate -> write old and new to the store's
pending slot -> ``ALTER ROLE`` with a client-side SCRAM verifier -> write the store ->
restart consumers -> verify (log in as the role, optional health URL) -> record the
rotation log row -> clear the pending slot. Any failure after the role changed rolls
everything back to the old secret. A run that finds a pending slot asks the server which
secret it accepts and finishes (new) or undoes (old) the interrupted rotation first.

Secrets never leave this object: results, messages and the log carry fingerprints only.
"""

from __future__ import annotations

import os
import re
import time
import typing as t
import uuid
from urllib.parse import quote, quote_plus

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    InputError,
    PgIncidentError,
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import mask_secrets
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import utc_now
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s.client import (
    DEFAULT_NAMESPACE,
    K8S_AUTH_ARGS,
    K8sError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.crypto import (
    CLASSES,
    MAX_LENGTH,
    MIN_LENGTH,
    SecretPolicyError,
    check_policy,
    fingerprint,
    generate,
    scram_verifier,
    short_fingerprint,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.restart import (
    RestartError,
    probe_health,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.stores import (
    FILE_FORMATS,
    VALUE_FORMATS,
    StoreError,
)

STORES = ('file', 'k8s_secret')
# Test-only: the name of a step after which the process exits at once (os._exit), to prove that
# an interrupted rotation is recoverable. Unset in normal use, where it has no effect.
CRASH_ENV = 'TRDRHUB_ROTATE_TEST_CRASH_AFTER'
CRASH_CODE = 86
# Test-only as well: the name of a step after which the process waits, so that a test can kill it
# (and ansible-playbook with it) from outside at that point.
PAUSE_ENV = 'TRDRHUB_ROTATE_TEST_PAUSE_AFTER'
PAUSE_SECONDS = 120
_AGE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$')
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}

ROTATE_ARGS: dict[str, dict[str, t.Any]] = {
    'role': {'type': 'str', 'required': True},
    'secret_type': {'type': 'str', 'default': 'db_password'},
    'environment': {'type': 'str', 'default': 'production'},
    'rotation_method': {'type': 'str'},
    'rotated_by': {'type': 'str'},
    'length': bounded({'type': 'int', 'default': 32}, MIN_LENGTH, MAX_LENGTH),
    'alphabet': {'type': 'list', 'elements': 'str', 'default': ['letters', 'digits'], 'choices': list(CLASSES)},
    'store': {'type': 'str', 'choices': list(STORES), 'default': 'file'},
    'path': {'type': 'path'},
    'file_format': {'type': 'str', 'choices': list(FILE_FORMATS), 'default': 'env'},
    'key': {'type': 'str', 'no_log': False},
    'value_format': {'type': 'str', 'choices': list(VALUE_FORMATS), 'default': 'password'},
    'k8s_namespace': {'type': 'str', 'default': DEFAULT_NAMESPACE},
    'k8s_secret': {'type': 'str', 'no_log': False},
    'k8s_auth': {'type': 'dict', 'options': dict(K8S_AUTH_ARGS)},
    'restart_deployments': {'type': 'list', 'elements': 'str', 'default': []},
    'restart_command': {'type': 'list', 'elements': 'str'},
    'restart_timeout': bounded({'type': 'float', 'default': 300}, above=0),
    'verify_login_host': {'type': 'str'},
    'verify_login_port': bounded({'type': 'int'}, 1, 65535),
    'health_url': {'type': 'str'},
    'health_timeout': bounded({'type': 'float', 'default': 10}, above=0),
    'log_table': {'type': 'str', 'default': 'secret_rotation_logs'},
    'log_rotation': {'type': 'bool', 'default': True},
    'min_age': {'type': 'str', 'default': '0'},
    'force': {'type': 'bool', 'default': False},
}


class RotationError(TrdrhubError):
    """The rotation stopped; ``result`` is the module result to fail with (status, steps, fingerprints)."""

    def __init__(self, msg: str, result: dict[str, t.Any]) -> None:
        super().__init__(msg)
        self.result = result


class RotationInputError(InputError):
    """An option of the rotation refused before anything runs (the store, the restart, the timeouts, min_age)."""


class CheckFailed(TrdrhubError):
    """The secret did not work after a step: the role's log-in with it, or the health check, failed."""


# What a step of the rotation or of its rollback can fail with (the step is then recorded as failed).
STEP_ERRORS = (StoreError, K8sError, RestartError, CheckFailed, PgIncidentError)


class _StepFailed(TrdrhubError):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step


def parse_age(text: str | None) -> float:
    """Seconds of ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a plain number of seconds."""
    match = _AGE.match(str(text if text is not None else '0'))
    if not match:
        raise RotationInputError(f'min_age {text!r} is not a duration: use a number with s, m, h, d or w, for example 30d')
    return float(match.group(1)) * _UNITS[match.group(2)]


def validate(params: t.Mapping[str, t.Any]) -> None:
    """Every input problem argument_spec cannot see, as one clear message before anything runs."""
    try:
        check_policy(params.get('length') or 0, params.get('alphabet') or [])
    except SecretPolicyError as exc:
        raise RotationInputError(str(exc)) from None
    parse_age(params.get('min_age'))
    if params.get('store', 'file') == 'file' and not params.get('path'):
        raise RotationInputError('path is required with store=file (the env, JSON or raw file that holds the secret)')
    if params.get('store') == 'k8s_secret' and not (params.get('k8s_secret') and params.get('key')):
        raise RotationInputError('k8s_secret and key are required with store=k8s_secret')
    if params.get('restart_command') is not None and not params['restart_command']:
        raise RotationInputError('restart_command must name a command (a list: program, then arguments)')
    if params.get('restart_deployments') and params.get('restart_command'):
        raise RotationInputError('restart_deployments and restart_command are mutually exclusive')
    for name in ('restart_timeout', 'health_timeout'):
        if (params.get(name) or 0) <= 0:
            raise RotationInputError(f'{name} must be more than 0 seconds')


def crash_point(step: str, environ: t.Mapping[str, str] | None = None) -> None:
    """Test-only hook (see CRASH_ENV, PAUSE_ENV): exit at once, or wait to be killed, after ``step``; else nothing."""
    environ = os.environ if environ is None else environ
    if environ.get(CRASH_ENV) == step:
        os._exit(CRASH_CODE)
    if environ.get(PAUSE_ENV) == step:
        time.sleep(PAUSE_SECONDS)


class Rotator(Worker):
    """One rotation of one role's password. ``role`` is a _rotate_pg.PgRole, ``log`` a RotationLog or None."""

    def __init__(self, params: t.Mapping[str, t.Any], role: t.Any, store: t.Any, restarter: t.Any, log: t.Any,
                 check_mode: bool = False, actor: str = 'unknown', crash: t.Callable[[str], None] = crash_point,
                 probe: t.Callable[[str, float], tuple[bool, str]] = probe_health,
                 on_secret: t.Callable[[str], None] = lambda secret: None) -> None:
        super().__init__(params, check_mode)
        self.role = role
        self.store = store
        self.restarter = restarter
        self.log = log
        self.crash = crash
        self.probe = probe
        self.on_secret = on_secret
        self.started = utc_now()
        self.clock = time.monotonic()
        self.rotated_by = params.get('rotated_by') or actor
        self.method = params.get('rotation_method') or ('k8s' if store.kind == 'k8s_secret' else 'local')
        self.rotation_id = f"rot-{self.started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
        self.secrets: list[str] = []
        self.steps: list[dict[str, t.Any]] = []
        self.restarted: list[str] = []
        self.downtime_from: float | None = None
        self.restart_attempted = False

    # -- bookkeeping ----------------------------------------------------------------------
    def learn(self, *values: str | None) -> None:
        for value in values:
            if value:
                for form in sorted({value, quote(value, safe=''), quote_plus(value)}):
                    self.secrets.append(form)
                    self.on_secret(form)

    def scrub(self, text: t.Any) -> str:
        return mask_secrets(str(text), self.secrets, min_length=1)

    def step(self, name: str, status: str, detail: str = '') -> None:
        self.steps.append({'step': name, 'status': status, 'detail': self.scrub(detail)})

    def result(self, status: str, old: str | None, new: str | None, **extra: t.Any) -> dict[str, t.Any]:
        done = utc_now()
        out = {'changed': status in ('completed', 'rolled_back') or bool(extra.pop('changed', False)), 'status': status,
               'rotation_id': self.rotation_id, 'secret_type': self.params.get('secret_type'),
               'environment': self.params.get('environment'), 'role': self.role.role, 'store': self.store.describe(),
               'rotation_method': self.method, 'rotated_by': self.rotated_by,
               'old_fingerprint': short_fingerprint(old), 'new_fingerprint': short_fingerprint(new),
               'services_restarted': list(self.restarted), 'steps': self.steps,
               'downtime_seconds': round(time.monotonic() - self.downtime_from, 3) if self.downtime_from else 0.0,
               'started_at': self.started.isoformat(), 'completed_at': done.isoformat(),
               'duration_seconds': round(time.monotonic() - self.clock, 3),
               'log': {'table': self.params.get('log_table'), 'recorded': False}}
        out.update(extra)
        return out

    def record(self, result: dict[str, t.Any], old: str | None, new: str | None, error: str | None = None) -> None:
        if self.log is None or not self.log.present:
            return
        try:
            self.log.insert({'secret_type': result['secret_type'], 'environment': result['environment'],
                             'rotation_method': self.method, 'rotated_by': self.rotated_by,
                             'old_fingerprint': fingerprint(old), 'new_fingerprint': fingerprint(new),
                             'services_restarted': result['services_restarted'],
                             'downtime_seconds': result['downtime_seconds'], 'status': result['status'],
                             'error_message': self.scrub(error) if error else None, 'rotation_id': self.rotation_id,
                             'started_at': self.started, 'completed_at': utc_now()})
            result['log']['recorded'] = True
        except PgIncidentError as exc:
            self.warnings.append(self.scrub(f'The rotation could not be recorded in {self.log.table}: {exc}'))

    # -- entry point ----------------------------------------------------------------------
    def run(self) -> dict[str, t.Any]:
        self.role.check()
        if self.params.get('log_rotation') and self.log is not None and not self.log.present:
            self.warnings.append(f"Table {self.params.get('log_table')} does not exist: the rotation is not recorded there")
        recovery = None
        pending = self.store.read_pending()
        if pending:
            self.learn(pending.get('old'), pending.get('new'))
            outcome = self.recover(pending)
            if outcome is not None:
                return outcome
            recovery = {'found': True, 'database_accepts': 'old', 'action': 'rolled_back'}
        old = self.store.read()
        self.learn(old)
        last = self.log.last_completed(self.params['secret_type'], self.params['environment']) if self.log and self.log.present else None
        last = last or self.store.last_rotated()
        min_age = parse_age(self.params.get('min_age'))
        age = (utc_now() - last).total_seconds() if last else None
        extra = {'last_rotated_at': last.isoformat() if last else None, 'recovery': recovery or {'found': False}}
        if min_age and age is not None and age < min_age and not self.params.get('force'):
            self.step('min_age', 'skipped', f'last rotated {age / 86400:.1f} days ago, min_age is {min_age / 86400:g} days')
            return self.result('skipped', old, None, changed=bool(recovery), **extra)
        if self.check_mode:
            return self.plan(old, extra)
        new = generate(self.params['length'], self.params['alphabet'])
        self.learn(new)
        pending = {'version': 1, 'rotation_id': self.rotation_id, 'started_at': self.started.isoformat(),
                   'role': self.role.role, 'secret_type': self.params['secret_type'], 'old': old, 'new': new,
                   'old_verifier': self.role.verifier()}
        try:
            self.store.write_pending(pending)
        except (StoreError, K8sError) as exc:
            self.step('pending', 'failed', str(exc))
            raise RotationError(self.scrub(f'Rotation failed before anything changed: {exc}'),
                                self.result('failed', old, None, failed_step='pending', **extra)) from None
        self.step('pending', 'ok', f"old and new secret saved in {self.store.describe()['pending']}")
        self.crash('pending')
        return self.apply(pending, extra)

    def plan(self, old: str, extra: dict[str, t.Any]) -> dict[str, t.Any]:
        where = self.store.describe()
        targets = {'role': self.role.role, 'store': where, 'restart': self.restarter.targets(),
                   'health_url': self.params.get('health_url')}
        for name, detail in (('generate', f"{self.params['length']} characters from {', '.join(self.params['alphabet'])}"),
                             ('pending', f"save old and new secret in {where['pending']}"),
                             ('alter_role', f'ALTER ROLE {self.role.role} PASSWORD with a SCRAM-SHA-256 verifier'),
                             ('store', f"write {where['location']} key {where.get('key')}"),
                             ('restart', ', '.join(targets['restart']) or 'nothing to restart'),
                             ('verify', f'log in as {self.role.role} and SELECT 1' + (' and probe the health URL' if targets['health_url'] else '')),
                             ('log', f"insert into {self.params.get('log_table')}" if self.log and self.log.present else 'no log table')):
            self.step(name, 'planned', detail)
        return self.result('planned', old, None, plan={'steps': [s['step'] for s in self.steps], 'targets': targets},
                           **extra)

    # -- apply and roll back ---------------------------------------------------------------
    def apply(self, pending: dict[str, t.Any], extra: dict[str, t.Any], from_db: bool = False) -> dict[str, t.Any]:
        """From the pending record to a completed rotation; any failure after ALTER ROLE rolls back."""
        old, new = pending['old'], pending['new']
        role_changed = from_db
        try:
            if not from_db:
                try:
                    self.role.set_verifier(scram_verifier(new))
                except PgIncidentError as exc:
                    raise _StepFailed('alter_role', str(exc)) from None
                self.downtime_from = time.monotonic()
                role_changed = True
                self.step('alter_role', 'ok', f'password of role {self.role.role} set (SCRAM-SHA-256 verifier)')
                self.crash('alter_role')
            self._apply_rest(old, new)
        except _StepFailed as exc:
            self.step(exc.step, 'failed', str(exc))
            if not role_changed:
                self.store.clear_pending()
                result = self.result('failed', old, None, failed_step=exc.step, **extra)
                self.record(result, old, None, str(exc))
                raise RotationError(self.scrub(f'Rotation failed at {exc.step}, nothing was changed: {exc}'), result) from None
            return self.rollback(pending, exc, extra)
        self.store.clear_pending()
        result = self.result('completed', old, new, **extra)
        self.record(result, old, new)
        return result

    def _apply_rest(self, old: str, new: str) -> None:
        for name, action in (('store', lambda: self._write_store(new)), ('restart', self._restart),
                             ('verify', lambda: self._verify(new))):
            try:
                detail = action()
            except STEP_ERRORS as exc:
                raise _StepFailed(name, str(exc)) from None
            self.step(name, 'ok', detail)
            self.crash(name)

    def _write_store(self, secret: str) -> str:
        if self.store.read() == secret:
            return f"{self.store.where} already holds this secret"
        self.store.write(secret)
        return f"{self.store.where} updated"

    def _restart(self) -> str:
        self.restart_attempted = True
        if self.downtime_from is None:
            self.downtime_from = time.monotonic()
        restarted = self.restarter.restart()
        self.restarted = sorted(set(self.restarted) | set(restarted))
        return ', '.join(restarted) or 'nothing to restart'

    def _verify(self, secret: str) -> str:
        ok, reason = self.role.login(secret)
        if not ok:
            raise CheckFailed(f'log-in as {self.role.role} with the new password failed: {reason}')
        url = self.params.get('health_url')
        if url:
            ok, said = self.probe(url, self.params.get('health_timeout') or 10)
            if not ok:
                raise CheckFailed(f'health check failed: {said}')
            reason += f'; {said}'
        return f'log-in as {self.role.role}: {reason}'

    def rollback(self, pending: dict[str, t.Any], cause: _StepFailed, extra: dict[str, t.Any]) -> dict[str, t.Any]:
        old, new = pending['old'], pending['new']
        verifier = pending.get('old_verifier') or scram_verifier(old)
        actions = (('rollback_role', lambda: self.role.set_verifier(verifier) or f'password of role {self.role.role} restored'),
                   ('rollback_store', lambda: self._write_store(old)),
                   ('rollback_restart', lambda: self._restart() if self.restart_attempted else 'consumers were not restarted'),
                   ('rollback_verify', lambda: self._verify_old(old)))
        for name, action in actions:
            try:
                detail = action()
            except STEP_ERRORS as exc:
                self.step(name, 'failed', str(exc))
                if name == 'rollback_restart' and cause.step == 'restart':
                    # The restart never worked: the consumers were not restarted onto the new secret.
                    self.warnings.append(self.scrub(f'The consumers could not be restarted after the rollback either: {exc}'))
                    continue
                result = self.result('failed', old, new, failed_step=cause.step, rollback_failed_step=name, **extra)
                self.record(result, old, new, f'{cause.step}: {cause}; rollback failed at {name}: {exc}')
                raise RotationError(self.scrub(
                    f'Rotation failed at {cause.step} ({cause}) and the rollback failed at {name} ({exc}). Old and new secret '
                    f"are kept in {self.store.describe()['pending']}: fix the cause and run again to recover."), result) from None
            self.step(name, 'ok', detail)
        self.store.clear_pending()
        result = self.result('rolled_back', old, new, failed_step=cause.step, **extra)
        self.record(result, old, new, f'{cause.step}: {cause}')
        raise RotationError(self.scrub(f'Rotation failed at {cause.step} and was rolled back to the old secret: {cause}'), result)

    def _verify_old(self, old: str) -> str:
        ok, reason = self.role.login(old)
        if not ok:
            raise CheckFailed(f'log-in as {self.role.role} with the old password failed: {reason}')
        return f'log-in as {self.role.role} with the old password: {reason}'

    # -- recovery of an interrupted rotation ----------------------------------------------
    def recover(self, pending: dict[str, t.Any]) -> dict[str, t.Any] | None:
        """Finish (server has the new secret) or undo (server has the old one) an interrupted rotation.

        Returns the final result when the interrupted rotation was finished; None when it was
        undone and a fresh rotation may follow.
        """
        old, new = pending.get('old'), pending['new']
        self.rotation_id = pending.get('rotation_id') or self.rotation_id
        verifier = self.role.verifier()
        new_ok, new_how = self.role.accepts(new, verifier)
        old_ok, old_how = (False, 'not checked') if new_ok else self.role.accepts(old, verifier) if old else (False, 'unknown')
        extra = {'recovery': {'found': True, 'database_accepts': 'new' if new_ok else 'old' if old_ok else 'neither',
                              'action': 'complete' if new_ok else 'roll_back' if old_ok else 'none'}}
        if not new_ok and not old_ok:
            self.step('recover', 'failed', f'new: {new_how}; old: {old_how}')
            raise RotationError(f"An interrupted rotation is pending in {self.store.describe()['pending']}, but the server "
                                f'accepts neither its old nor its new password for role {self.role.role}; set the password '
                                'by hand, then remove the pending slot', self.result('failed', old, new, **extra))
        if self.check_mode:
            self.step('recover', 'planned', f"the server accepts the {extra['recovery']['database_accepts']} password "
                      f"({new_how if new_ok else old_how}): the interrupted rotation would be "
                      f"{'completed' if new_ok else 'rolled back, then a new rotation made'}")
            return self.result('planned', old, new, **extra)
        if new_ok:
            self.step('recover', 'ok', f'the server accepts the new password ({new_how}): completing the interrupted rotation')
            extra['recovery']['action'] = 'completed'
            return self.apply(pending, extra, from_db=True)
        self.step('recover', 'ok', f'the server accepts the old password ({old_how}): undoing the interrupted rotation')
        try:
            self.step('rollback_store', 'ok', self._write_store(old))
        except (StoreError, K8sError) as exc:
            self.step('rollback_store', 'failed', str(exc))
            raise RotationError(self.scrub(f'Cannot restore the store of an interrupted rotation: {exc}'),
                                self.result('failed', old, new, **extra)) from None
        self.store.clear_pending()
        self.rotation_id = f"rot-{self.started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
        return None
