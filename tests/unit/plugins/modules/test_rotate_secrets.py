# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""rotate_secrets: the module's own name, the redirect of its old name, and its answer to bad input.

The rotation itself is tested in module_utils/_rotate (test_rotate.py and the store, crypto, PostgreSQL
and restart tests beside it) and, through real ansible-playbook, in tests/integration/plugins/modules/test_rotate_secrets*.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ansible_collections.trdrhub.incident.plugins.modules import rotate_secrets

REPO = Path(__file__).resolve().parents[4]

# Ask ansible-core's own plugin loader, in a fresh interpreter (it installs a collection finder
# process-wide), what the old name resolves to.
RESOLVE = '''
import sys
from ansible.plugins.loader import init_plugin_loader, module_loader
init_plugin_loader([sys.argv[1]])
ctx = module_loader.find_plugin_with_context(sys.argv[2])
print(ctx.resolved_fqcn)
print(ctx.plugin_resolved_path)
print(ctx.removal_version)
'''


def resolve(name: str, tmp_path: Path) -> list[str]:
    root = tmp_path / 'collections' / 'ansible_collections' / 'trdrhub'
    root.mkdir(parents=True)
    (root / 'incident').symlink_to(REPO)
    done = subprocess.run([sys.executable, '-c', RESOLVE, str(tmp_path / 'collections'), name],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_old_name_secret_rotate_is_redirected_to_rotate_secrets(tmp_path):
    fqcn, path, removal = resolve('trdrhub.incident.secret_rotate', tmp_path)
    assert fqcn == 'trdrhub.incident.rotate_secrets'
    assert Path(path).name == 'rotate_secrets.py'
    assert removal == '2.0.0'


def test_new_name_resolves_to_itself(tmp_path):
    fqcn, path, removal = resolve('trdrhub.incident.rotate_secrets', tmp_path)
    assert fqcn == 'trdrhub.incident.rotate_secrets' and Path(path).name == 'rotate_secrets.py'
    assert removal == 'None'


def test_documentation_names_the_module_and_its_old_name():
    assert 'module: rotate_secrets\n' in rotate_secrets.DOCUMENTATION
    assert 'trdrhub.incident.secret_rotate' in rotate_secrets.DOCUMENTATION
    assert 'secret_rotate:' not in rotate_secrets.EXAMPLES
