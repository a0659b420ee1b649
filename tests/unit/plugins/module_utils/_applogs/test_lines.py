# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A log excerpt: the last lines, secrets masked, long lines cut."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._applogs.lines import excerpt
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import Redactor


def test_last_lines_redacted_and_cut():
    text = ('first\r\n'
            'ERROR could not connect to postgresql://app:pg-pass-1@db:5432/lcopilot\n'
            'DEBUG headers {"Authorization": "Bearer abcdefghijklmnop"}\n'
            'INFO known secret hunter2-known inside\n'
            + 'x' * 500 + '\n')
    out = excerpt(text, Redactor(['hunter2-known']), tail=4, max_line=100)
    assert out['line_count'] == 4
    assert out['lines'][0] == 'ERROR could not connect to postgresql://app:********@db:5432/lcopilot'
    assert 'abcdefghijklmnop' not in out['lines'][1]
    assert out['lines'][2] == 'INFO known secret ******** inside'
    assert out['lines'][3] == 'x' * 97 + '...'


def test_fewer_lines_than_asked_and_empty_logs():
    assert excerpt('one\ntwo\n', Redactor(), tail=100, max_line=100) == {'lines': ['one', 'two'], 'line_count': 2}
    assert excerpt('', Redactor(), tail=100, max_line=100) == {'lines': [], 'line_count': 0}
