# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The shared notification helpers: the incident tag on a message and secrets masked longest first."""

from __future__ import annotations

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._notify.notify import MASK, mask_secrets, tag_incident


@pytest.mark.parametrize('text,incident,expected', [
    ('lag', 'INC-1', '[INC-1] lag'), ('INC-1 lag', 'INC-1', 'INC-1 lag'), ('lag', None, 'lag'), (None, 'INC-1', '[INC-1]'),
])
def test_tag_incident(text, incident, expected):
    assert tag_incident(text, incident) == expected


def test_mask_secrets_longest_first():
    assert mask_secrets('a secret-long and secret', ['secret', 'secret-long', None, 'ab']) == f'a {MASK} and {MASK}'
