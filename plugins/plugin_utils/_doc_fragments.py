# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""``compose()``: one doc fragment made of several pieces.

A module family's fragment (``trdrhub.incident.postgres``: the connection options, the attributes
every module shares and the module-defaults group) is the merge of pieces that each have one home,
so that a module names one fragment. The pieces are merged the way ansible-core merges the fragments
a module lists (``ansible.utils.plugin_docs.add_fragments``), so naming the composed fragment
documents a module exactly as naming its pieces one by one did: notes and seealso entries are
appended in order, options and attributes are merged by name (of an entry two pieces describe, the
earlier piece's keys win), other lists (requirements) are joined, sorted and without repeats.

In a fragment class the pieces stay string literals and a composed attribute is annotated
(``DOCUMENTATION: str = compose(...)``) or unpacked (``A, B = family(...)``): ansible-test's yamllint
reads every plain ``NAME = ...`` of a fragment class as a literal, so it still lints every piece and
skips only the composed text, which is generated JSON.
"""

from __future__ import annotations

import json
import typing as t

import yaml


def compose(*pieces: str) -> str:
    """The fragment text (JSON, which is YAML) of ``pieces`` merged in order."""
    doc: dict[str, t.Any] = {}
    for piece in pieces:
        for key, value in (yaml.safe_load(piece) or {}).items():
            if key in ('notes', 'seealso'):
                doc.setdefault(key, []).extend(value)
            elif key in ('options', 'attributes'):
                merged = doc.setdefault(key, {})
                for name, entry in value.items():
                    merged[name] = {**entry, **merged[name]} if isinstance(merged.get(name), dict) else entry
            elif isinstance(value, list):
                doc[key] = sorted(set(doc.get(key, [])) | set(value))
            else:
                doc[key] = value
    return json.dumps(doc, indent=1)
