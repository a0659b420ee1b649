# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""`make help` names every playbook of the collection, each on one line with what it does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_make_help_lists_every_playbook_once_with_a_description():
    out = subprocess.run(['make', '-s', '-C', str(REPO), 'help'], capture_output=True, text=True, check=True).stdout
    listed = re.findall(r'^  (\w+\.yml) +- (.+)$', out, flags=re.M)
    names = [name for name, dummy in listed]
    assert sorted(names) == sorted(p.name for p in (REPO / 'playbooks').glob('*.yml'))
    assert len(names) == len(set(names)) and all(len(what) > 20 for dummy, what in listed)
