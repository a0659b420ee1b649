#!/usr/bin/env python
# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotate TRDR Hub secrets with the interface of the application's ``scripts/secrets/rotate_secrets.py``.

    rotate_secrets.py --backend=local|k8s|vault [--dry-run] [--force] [--output-json] [--list] [--config FILE]

Runs the ``trdrhub.incident.rotate_secrets`` logic (generate, pending slot, ALTER ROLE with a SCRAM
verifier, store, restart, verify, rollback) once per configured secret. The configuration file
(``--config`` or ``TRDRHUB_ROTATE_CONFIG``, JSON or YAML) names the connection and the secrets:

    connection: {login_host: db-primary, login_user: postgres, login_db: trdrhub}   # else libpq's PG* variables
    environment: production
    min_age: 30d
    secrets:
      db_password:
        role: trdrhub_app
        local: {path: /etc/trdrhub/api.env, key: DATABASE_URL, value_format: dsn, restart_command: [systemctl, restart, trdrhub-api]}
        k8s: {k8s_secret: trdrhub-db, key: DATABASE_PASSWORD, restart_deployments: [trdrhub-api, trdrhub-worker]}

The JSON answer has the fields the application reads: rotation_id, status, backend, started_at,
completed_at, duration_seconds, secrets{}, restart_result{}, dry_run. Secrets appear as SHA-256
fingerprints only. Exit code 0 when every secret completed, was skipped or (dry run) planned.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ('local', 'k8s', 'vault')
STORE_OF = {'local': 'file', 'k8s': 'k8s_secret'}


def _import_collection() -> None:
    """Make ``ansible_collections.trdrhub.incident`` importable from this checkout or installation."""
    if REPO.parent.name == 'trdrhub' and REPO.parent.parent.name == 'ansible_collections':
        sys.path.insert(0, str(REPO.parent.parent.parent))
        return
    linked = REPO / '.collections'
    if (linked / 'ansible_collections' / 'trdrhub' / 'incident').exists():
        sys.path.insert(0, str(linked))
        return
    root = Path(tempfile.mkdtemp(prefix='trdrhub-collections-'))
    (root / 'ansible_collections' / 'trdrhub').mkdir(parents=True)
    (root / 'ansible_collections' / 'trdrhub' / 'incident').symlink_to(REPO, target_is_directory=True)
    sys.path.insert(0, str(root))


def run_argv(argv: list[str]) -> tuple[int, str, str]:
    """Run a restart command of the configuration (the module uses Ansible's run_command instead)."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


def load_config(path: str | None) -> dict:
    if not path:
        raise SystemExit(_fail('no configuration: pass --config FILE or set TRDRHUB_ROTATE_CONFIG'))
    try:
        text = Path(path).read_text(encoding='utf-8')
    except OSError as exc:
        raise SystemExit(_fail(f'cannot read the configuration {path}: {exc.strerror}')) from None
    try:
        import yaml  # pylint: disable=import-outside-toplevel
        data = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - YAML is a superset of JSON; any parse error is one message
        raise SystemExit(_fail(f'the configuration {path} is not valid YAML or JSON')) from None
    if not isinstance(data, dict) or not isinstance(data.get('secrets'), dict) or not data['secrets']:
        raise SystemExit(_fail(f'the configuration {path} has no "secrets" mapping'))
    return data


def _fail(msg: str) -> str:
    return f'rotate_secrets: {msg}'


def params_for(config: dict, name: str, backend: str, force: bool) -> dict:
    """Module options for one secret: defaults of the argument spec, then connection, then the secret's backend section."""
    from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.client import POSTGRES_COMMON_ARGS  # pylint: disable=import-outside-toplevel
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import ROTATE_ARGS  # pylint: disable=import-outside-toplevel
    params = {key: spec.get('default') for key, spec in {**POSTGRES_COMMON_ARGS, **ROTATE_ARGS}.items()}
    params.update(config.get('connection') or {})
    for key in ('environment', 'min_age', 'log_table', 'rotated_by', 'length', 'alphabet', 'k8s_auth', 'k8s_namespace'):
        if key in config:
            params[key] = config[key]
    entry = dict(config['secrets'][name] or {})
    section = entry.pop(backend, None)
    if not isinstance(section, dict):
        raise ValueError(f'secret {name} has no "{backend}" section in the configuration')
    entry.pop('local' if backend == 'k8s' else 'k8s', None)
    params.update(entry)
    params.update(section)
    params.setdefault('secret_type', name)
    params['secret_type'] = entry.get('secret_type', name)
    params['store'] = STORE_OF[backend]
    params['rotation_method'] = params.get('rotation_method') or backend
    if params.get('k8s_auth'):
        params['k8s_auth'] = {'request_timeout': 10, **params['k8s_auth']}
    params['force'] = force or bool(params.get('force'))
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Rotate TRDR Hub secrets (trdrhub.incident.rotate_secrets).')
    parser.add_argument('--backend', choices=BACKENDS, required=True)
    parser.add_argument('--dry-run', action='store_true', help='show the plan; change nothing')
    parser.add_argument('--force', action='store_true', help='rotate even when younger than min_age')
    parser.add_argument('--output-json', action='store_true', help='print the result as JSON')
    parser.add_argument('--list', action='store_true', help='list the configured secrets and their current fingerprints')
    parser.add_argument('--config', default=os.environ.get('TRDRHUB_ROTATE_CONFIG'))
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    answer = {'rotation_id': f"rot-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}", 'status': 'completed',
              'backend': args.backend, 'started_at': started.isoformat(), 'completed_at': None, 'duration_seconds': 0.0,
              'secrets': {}, 'restart_result': {'status': 'not_needed', 'services_restarted': []},
              'dry_run': bool(args.dry_run or args.list)}
    if args.backend == 'vault':
        answer.update(status='failed', error='backend vault is not supported by this collection: use local (a file) or '
                      'k8s (a Kubernetes Secret)')
        return _emit(answer, clock, args.output_json, 2)
    _import_collection()
    from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.run import (  # pylint: disable=import-outside-toplevel
        RotationFailed,
        rotate,
    )
    config = load_config(args.config)
    warnings: list[str] = []
    for name in config['secrets']:
        try:
            result = rotate(params_for(config, name, args.backend, args.force), run_argv, check_mode=answer['dry_run'],
                            warn=warnings.append)
        except ValueError as exc:
            result = {'status': 'failed', 'msg': str(exc)}
        except RotationFailed as exc:
            result = dict(exc.result, msg=str(exc))
        entry = {key: result.get(key) for key in ('status', 'rotation_id', 'role', 'old_fingerprint', 'new_fingerprint',
                                                  'failed_step', 'last_rotated_at', 'downtime_seconds', 'recovery')}
        entry['store'] = (result.get('store') or {}).get('location')
        if result.get('msg'):
            entry['error'] = result['msg']
        answer['secrets'][name] = entry
        restarted = result.get('services_restarted') or []
        answer['restart_result']['services_restarted'] += [s for s in restarted if s not in answer['restart_result']['services_restarted']]
    statuses = {s['status'] for s in answer['secrets'].values()}
    ok = {'completed', 'skipped', 'planned'}
    answer['status'] = ('planned' if answer['dry_run'] else 'completed') if statuses <= ok else (
        'rolled_back' if statuses <= ok | {'rolled_back'} else 'failed')
    if answer['restart_result']['services_restarted']:
        answer['restart_result']['status'] = 'restarted'
    if warnings:
        answer['warnings'] = warnings
    return _emit(answer, clock, args.output_json, 0 if statuses <= ok else 1)


def _emit(answer: dict, clock: float, as_json: bool, code: int) -> int:
    answer['completed_at'] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    answer['duration_seconds'] = round(time.monotonic() - clock, 3)
    if as_json:
        print(json.dumps(answer, indent=2, default=str))
    else:
        print(f"rotation {answer['rotation_id']} ({answer['backend']}{', dry run' if answer['dry_run'] else ''}): {answer['status']}")
        if answer.get('error'):
            print(f"  {answer['error']}")
        for name, entry in answer['secrets'].items():
            line = f"  {name}: {entry['status']} old={entry['old_fingerprint']} new={entry['new_fingerprint']}"
            print(line + (f" - {entry['error']}" if entry.get('error') else ''))
    return code


if __name__ == '__main__':
    sys.exit(main())
