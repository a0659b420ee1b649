# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""email_notify refuses bad option values with one sentence naming the option, before any connection."""
from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.modules import email_notify

EMAIL = {'host': 'smtp.example', 'sender': 'ops@trdrhub.example', 'to': ['ops@customer.example'],
         'subject': 'Delayed processing', 'body': 'Document processing is delayed.'}


@pytest.mark.parametrize('args, message', [
    ({'timeout': -1}, 'timeout must be greater than 0 and at most 86400, got -1'),
    ({'timeout': 0}, 'timeout must be greater than 0 and at most 86400, got 0'),
    ({'timeout': 1e20}, 'timeout must be greater than 0 and at most 86400, got 1e+20'),
    ({'port': 70000}, 'port must be between 1 and 65535, got 70000'),
    ({'port': 0}, 'port must be between 1 and 65535, got 0'),
    ({'subject': {'text': 'x'}}, 'subject must be a string, got a mapping'),
    ({'to': [{'address': 'a@b.example'}]}, 'each item of to must be a string, got a mapping'),
])
def test_email_notify_refuses_before_connecting(run_module, monkeypatch, args, message):
    def refuse(*_args, **_kwargs):
        raise AssertionError('no connection may be attempted')
    monkeypatch.setattr(email_notify.SmtpSender, 'send', refuse)
    result = run_module(email_notify, dict(EMAIL, **args))
    assert result['failed'] is True and result['msg'] == message
