# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""audit_review_info refuses a bad window or threshold with one sentence naming the option, before connecting.

The review itself is tested in module_utils/_audit/test_review.py and against PostgreSQL in tests/integration.
"""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres import client as _pg_client
from ansible_collections.trdrhub.incident.plugins.modules import audit_review_info


@pytest.mark.parametrize('args, message', [
    ({'since': 'yesterday-ish', 'login_host': '127.0.0.1'},
     "since: 'yesterday-ish' is neither a duration (30m, 24h, 7d, 1h30m) nor an ISO 8601 time"),
    ({'spike_ratio': -1, 'login_host': '127.0.0.1'}, 'spike_ratio must be greater than 0, got -1'),
])
def test_bad_input_is_one_sentence_before_connecting(run_module, monkeypatch, args, message):
    def refuse(*_args, **_kwargs):
        raise AssertionError('no connection may be attempted')
    monkeypatch.setattr(_pg_client.PgClient, '__init__', refuse)
    result = run_module(audit_review_info, args)
    assert result['failed'] and result['msg'] == message
