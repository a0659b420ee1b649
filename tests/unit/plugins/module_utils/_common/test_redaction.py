# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Masking has one home: the shared functions, the domains that use them, and no copy of the mask elsewhere."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest
from ansible_collections.trdrhub.incident.plugins.module_utils._common import http_client as _http
from ansible_collections.trdrhub.incident.plugins.module_utils._common import redaction as _redaction
from ansible_collections.trdrhub.incident.plugins.module_utils._k8s import errors as _k8s_errors
from ansible_collections.trdrhub.incident.plugins.module_utils._postgres.sessions import redact_query
from ansible_collections.trdrhub.incident.plugins.module_utils._rotate.rotate import Rotator

MASK = _redaction.MASK
MODULE_UTILS = Path(__file__).resolve().parents[5] / 'plugins' / 'module_utils'


def test_scrub_masks_secrets_passwords_and_url_credentials():
    text = "invalid dsn: host=db password='s3cr3t x' user=ops; see postgresql://ops:hunter2@db/app token abc"
    assert _redaction.scrub(text, ['abc']) == (
        f"invalid dsn: host=db password={MASK} user=ops; see postgresql://ops:{MASK}@db/app token {MASK}")


def test_mask_secrets_longest_first_and_short_ones_left():
    assert _redaction.mask_secrets('pw=abcdef ab', ['ab', 'abcdef']) == f'pw={MASK} ab'
    assert _redaction.mask_secrets('pw=abcdef ab', ['ab', 'abcdef'], min_length=1) == f'pw={MASK} {MASK}'
    assert _redaction.mask_secrets('nothing', [None, '']) == 'nothing'


@pytest.mark.parametrize('text, expected', [
    ('401: Authorization: Bearer eyJhbGciOi.x-y', f'401: Authorization: Bearer {MASK}'),
    ('bearer abc, next', f'bearer {MASK}, next'),
    ('key k1 refused', f'key {MASK} refused'),
])
def test_scrub_token(text, expected):
    assert _redaction.scrub_token(text, ['k1', None]) == expected


def test_the_kubernetes_errors_use_the_shared_scrub():
    assert _k8s_errors.scrub is _redaction.scrub_token
    reason = _k8s_errors.config_reason(ValueError('token tok-123 and Bearer abc rejected'), ['tok-123'])
    assert reason == f'token {MASK} and Bearer {MASK} rejected'


def test_the_rotation_masks_every_form_of_its_secrets_longest_first():
    rotator = Rotator.__new__(Rotator)
    rotator.secrets = ['p@ss', 'p%40ss', 'p@ss-long']
    assert rotator.scrub('set p@ss-long, was p@ss (p%40ss)') == f'set {MASK}, was {MASK} ({MASK})'


def test_an_answer_summary_is_masked_before_it_is_cut():
    resp = types.SimpleNamespace(text='{"echo": "tok-secret-value"}', headers={'Content-Type': 'application/json'})
    summary = _http.answer_summary(resp, limit=20, secrets=['tok-secret-value', None])
    assert 'tok' not in summary and MASK[:4] in summary


@pytest.mark.parametrize('query, expected', [
    ("ALTER ROLE app PASSWORD 'x''y'", f'ALTER ROLE app PASSWORD {MASK}'),
    ("SELECT dblink_connect('host=db password=s3cr3t')", f"SELECT dblink_connect('host=db password={MASK}')"),
])
def test_session_queries_are_masked_with_the_shared_mask(query, expected):
    assert redact_query(query, 0) == expected


def _mask_copies(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text(encoding='utf-8'))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MASK in node.value and id(node) not in docstrings:
            found.append(f'{path.relative_to(MODULE_UTILS)}:{node.lineno}')
    return found


def test_no_module_utils_file_but_redaction_writes_the_mask_itself():
    copies = [hit for path in sorted(MODULE_UTILS.rglob('*.py')) if path.name != 'redaction.py' for hit in _mask_copies(path)]
    assert copies == [], 'use MASK (or a function) from _common/redaction.py'
