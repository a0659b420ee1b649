"""scripts/approve.py finds the incidents home by the collection's one rule and says when nothing is pending."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run(*args, env, cwd):
    return subprocess.run([sys.executable, str(REPO / 'scripts' / 'approve.py'), *args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def base_env(tmp_path):
    return {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path / 'home'), 'XDG_STATE_HOME': str(tmp_path / 'state')}


def test_list_says_where_it_looked_when_nothing_is_pending(tmp_path):
    done = run('list', env=base_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f'No pending approval request in {tmp_path}/state/trdrhub-incident/incidents/*/approvals.'


def test_environment_then_inventory_variable(tmp_path):
    inventory = tmp_path / 'inv.json'
    inventory.write_text(json.dumps({'all': {'vars': {'trdrhub_incidents_dir': 'team-incidents'}}}))
    by_inventory = run('-i', str(inventory), 'list', env=base_env(tmp_path), cwd='/')
    assert by_inventory.stdout.strip() == f'No pending approval request in {tmp_path}/team-incidents/*/approvals.', by_inventory.stderr
    by_env = run('-i', str(inventory), 'list', env=dict(base_env(tmp_path), TRDRHUB_LEDGER_DIR='/srv/x'), cwd='/')
    assert by_env.stdout.strip() == 'No pending approval request in /srv/x/*/approvals.'
