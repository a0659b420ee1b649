#!/usr/bin/env python
# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Write the collection's docs site pages (docs/docsite/) from the Markdown guides in docs/.

    .venv/bin/python scripts/docsite.py            # docs/docsite/rst/*.rst and docs/docsite/extra-docs.yml
    .venv/bin/antsibull-docs lint-collection-docs --plugin-docs <collection path>

The guides stay Markdown (they are read on the repository host and in the installed collection's
docs/); antsibull-docs' sites take extra docs as reStructuredText only, so each guide is converted
with pandoc (the pypandoc-binary wheel) into docs/docsite/rst/<guide>.rst, labelled
``ansible_collections.trdrhub.incident.docsite.<guide>``, and listed in extra-docs.yml. A link
from one guide to another becomes a reference to the other page. The output is generated for each
build (make docs, make build) and not kept in git. docs/development.md describes the source
repository, not the collection, and is left out.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCSITE = DOCS / "docsite"
LABEL = "ansible_collections.trdrhub.incident.docsite."
SOURCE_ONLY = {"development"}
# The order of the site's table of contents: the response procedure first, then by topic.
ORDER = ["respond", "triage", "investigate", "contain_db", "security", "ip_blocking", "rotate_secrets",
         "database_recovery", "kubernetes", "communicate", "escalation", "pir", "approvals", "ledger",
         "audit_chain", "incident", "output", "targets", "pooler", "detect", "awx", "eda", "rundeck",
         "execution_environment", "sandbox", "installed"]
# Tools of the source checkout only: a page that names one says so at its top.
CHECKOUT_ONLY = re.compile(r"(`make [a-z]|\bmake (?:drill|sandbox|test|check|help|bootstrap)\b"
                           r"|\bscripts/(?:approve|drill|rotate_secrets|bootstrap|sandbox)|tests/harness|trdrhub_harness)")
GUIDE_LINK = re.compile(r"`([^`<]+?)\s*<([\w-]+)\.md(#[\w-]*)?>`__")
ANCHOR_LINK = re.compile(r"`([^`<]+?)\s*<#[\w-]*>`__")


def guides() -> list[Path]:
    found = sorted(p for p in DOCS.glob("*.md") if p.stem not in SOURCE_ONLY)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.stem, len(ORDER)), p.stem))


def convert(path: Path, known: set[str]) -> str:
    import pypandoc  # the docs toolchain (requirements-dev.txt); imported here so --help works without it

    rst = pypandoc.convert_text(path.read_text(encoding="utf-8"), "rst", format="gfm-gfm_auto_identifiers",
                                extra_args=["--wrap=preserve"])

    def guide_link(match: re.Match[str]) -> str:
        text, target = match.group(1).strip(), match.group(2)
        if target not in known:
            raise SystemExit(f"{path.relative_to(ROOT)}: link to {target}.md, which is not a guide of the site")
        return f":ref:`{text} <{LABEL}{target}>`"

    def anchor_link(match: re.Match[str]) -> str:
        # Anchors inside a page: the site has no per-heading labels; keep the text, padded so
        # that a grid table's columns stay aligned.
        return match.group(1).strip().ljust(len(match.group(0)))

    lines = []
    for line in rst.split("\n"):
        line = ANCHOR_LINK.sub(anchor_link, line)
        if line.startswith("|") and GUIDE_LINK.search(line):
            line = GUIDE_LINK.sub(lambda m: m.group(1).strip().ljust(len(m.group(0))), line)
        lines.append(GUIDE_LINK.sub(guide_link, line))
    rst = plain_invalid_code("\n".join(lines))
    header = (f".. Generated from docs/{path.name} by scripts/docsite.py: edit the Markdown guide.\n\n"
              f".. _{LABEL}{path.stem}:\n\n")
    if path.stem != "installed" and CHECKOUT_ONLY.search(path.read_text(encoding="utf-8")):
        title, underline, rest = rst.split("\n", 2)
        note = (".. note::\n\n   Some steps on this page use ``make``, ``scripts/`` or the test harness, which exist only in a\n"
                "   source checkout of the collection. :ref:`Installed collection or source checkout "
                f"<{LABEL}installed>` gives the equivalent for an installed collection.\n\n")
        rst = f"{title}\n{underline}\n\n{note}{rest.lstrip()}"
    return header + rst


CODE_BLOCK = re.compile(r"^\.\. code:: (json|bash|sh|shell)\n\n((?:   .*\n|\n)+)", re.MULTILINE)


def _valid(language: str, code: str) -> bool:
    if language == "json":
        try:
            json.loads(code)
        except ValueError:
            try:
                for line in code.splitlines():
                    if line.strip():
                        json.loads(line)
            except ValueError:
                return False
        return True
    return subprocess.run(["bash", "-n"], input=code, text=True, capture_output=True, check=False).returncode == 0


def plain_invalid_code(rst: str) -> str:
    """Code blocks that are excerpts (a JSON fragment, a command with <placeholders>) become plain text.

    The site's checker parses JSON and shell blocks; the guides show excerpts in them on purpose.
    """
    def block(match: re.Match[str]) -> str:
        code = "\n".join(line[3:] for line in match.group(2).split("\n"))
        language = match.group(1) if _valid(match.group(1), code) else "text"
        return f".. code:: {language}\n\n{match.group(2)}"

    return CODE_BLOCK.sub(block, rst)


def render() -> dict[Path, str]:
    pages = guides()
    known = {p.stem for p in pages}
    out = {DOCSITE / "rst" / f"{p.stem}.rst": convert(p, known) for p in pages}
    extra = {"sections": [{"title": "Guides", "toctree": [p.stem for p in pages]}]}
    out[DOCSITE / "extra-docs.yml"] = ("---\n# Generated by scripts/docsite.py from docs/*.md.\n"
                                       + yaml.safe_dump(extra, sort_keys=False))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.parse_args(argv)
    pages = render()
    rst_dir = DOCSITE / "rst"
    rst_dir.mkdir(parents=True, exist_ok=True)
    for stale in rst_dir.glob("*.rst"):
        if stale not in pages:
            stale.unlink()
    for path, text in pages.items():
        path.write_text(text, encoding="utf-8")
    print(f"docs site: {len(pages) - 1} guides in {rst_dir.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
