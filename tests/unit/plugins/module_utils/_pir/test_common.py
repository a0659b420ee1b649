# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._pir.common import (
    clip,
    dry,
    entry_time,
    playbook_name,
    short_module,
)


def test_helpers():
    assert entry_time({'ts': 't1', 'data': {'observed_at': 't0'}}) == 't0' and entry_time({'ts': 't1', 'data': 'x'}) == 't1'
    assert clip(' a\n b ') == 'a b' and clip('abcdef', 4) == 'abc\u2026' and clip(None) == ''
    assert dry({'data': {'check_mode': True}}) and dry({'data': {'dry_run': True}}) and not dry({'data': {}})
    assert short_module({'module': 'trdrhub.incident.app_logs_info'}) == 'app_logs_info'
    assert short_module({'module': 'ansible.builtin.command'}) == 'ansible.builtin.command'
    assert playbook_name({'data': {'playbook': '/ops/playbooks/triage.yml'}}) == 'triage.yml'
    assert playbook_name({'play': 'Contain'}) == 'Contain'
