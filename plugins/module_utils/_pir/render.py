# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The post-incident review as Markdown, HTML and an SVG timeline chart (no extra dependencies).

Everything in a review that comes from the ledger or the inventory is text someone typed:
it is escaped for the format it lands in - HTML entities in HTML and SVG, and in Markdown
too (Markdown renderers pass raw HTML through), plus the Markdown table and link syntax.
"""

from __future__ import annotations

import html
import re
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._incident.priority import (
    parse_time,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.common import (
    clip,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.pir import (
    PLACEHOLDER,
    draft_line,
    human,
)

LANES = ('incident', 'decision', 'communication', 'change', 'failure')
LANE_OF = {'approval': 'decision', 'escalation': 'decision', 'finding': 'decision', 'verification': 'decision',
           'note': 'decision', 'handover': 'decision', 'run': 'change'}
COLOURS = {'incident': '#1f6feb', 'decision': '#8250df', 'communication': '#1a7f37', 'change': '#9a6700',
           'failure': '#cf222e'}
VERDICT = {'met': 'MET', 'missed': 'MISSED', 'pending': 'PENDING', 'unknown': 'UNKNOWN'}
PLACEHOLDERS = (PLACEHOLDER, '_To be agreed in the PIR meeting._')
_MD_SPECIAL = re.compile(r'([\\`*_\[\]|#])')


def esc(value: t.Any) -> str:
    """HTML/XML text and attribute escaping."""
    return html.escape('' if value is None else str(value), quote=True)


def md(value: t.Any) -> str:
    """Markdown-safe inline text: no raw HTML, no table breaks, no links or emphasis from the data."""
    text = ' '.join(('' if value is None else str(value)).split())
    return _MD_SPECIAL.sub(r'\\\1', html.escape(text, quote=False))


def mdp(value: t.Any) -> str:
    """Like md, but the review's own placeholders keep their emphasis."""
    text = '' if value is None else str(value)
    return text if text in PLACEHOLDERS else md(text)


def _when(value: t.Any) -> str:
    return parse_time(value).strftime('%Y-%m-%d %H:%M:%S UTC') if value else 'n/a'


def verification_line(review: dict[str, t.Any]) -> str:
    ver = review['verification']
    if not ver['checked']:
        return 'NOT VERIFIED - the ledger chain was not checked.'
    head = ver.get('head') or {}
    if ver['is_valid']:
        return (f"VALID - {ver['total_entries']} entries, head seq {head.get('sequence_number')} hash "
                f"{head.get('entry_hash')}, verified at {ver['verified_at']}.")
    return (f"INVALID - {ver['violation_count']} violation(s) in {ver['total_entries']} entries, verified at "
            f"{ver['verified_at']}. This review is built from a ledger that does not verify; do not rely on it.")


def _status(rec: t.Mapping[str, t.Any]) -> str:
    """The status, with the record's state only where it adds something ("monitoring (open)", not "resolved (resolved)")."""
    status, state = rec.get('status'), rec.get('state')
    return str(status) if not state or state == status else f'{status} ({state})'


def facts(review: dict[str, t.Any]) -> list[tuple[str, str]]:
    rec, comp = review['record'], review['compliance']
    return [
        ('Incident', review['incident_id']), ('Priority', str(rec.get('priority') or 'n/a')),
        ('Status', _status(rec)), ('Incident commander', str(rec.get('commander') or 'n/a')),
        ('Detected', _when(rec.get('detected_at'))), ('Opened', _when(rec.get('opened_at'))),
        ('Auto-acknowledged', _when(comp['auto_acknowledged_at'])),
        ('Acknowledged', (f"by {comp['acknowledged_by']} at " if comp['acknowledged_by'] else '')
         + _when(comp['acknowledged_at']) if comp['acknowledged_at'] else 'not by a person'),
        ('Resolved', _when(rec.get('resolved_at'))),
        ('Duration', human(rec.get('duration_seconds'))),
        ('Impact', ', '.join(rec.get('impact') or []) or 'not assessed'),
        ('Root cause', _short(review['root_cause'])), ('Resolution', _short(review['resolution'])),
        ('Ticket', ' '.join(str(v) for v in (_refs(rec).get('ticket'), _refs(rec).get('ticket_url')) if v) or 'none'),
    ]


def _short(text: str) -> str:
    return 'not recorded yet' if text in PLACEHOLDERS else clip(text, 200)


def _refs(rec: t.Mapping[str, t.Any]) -> t.Mapping[str, t.Any]:
    refs = rec.get('references')
    return refs if isinstance(refs, t.Mapping) else {}


def compliance_rows(review: dict[str, t.Any]) -> list[tuple[str, str]]:
    comp = review['compliance']
    target = f"{comp['target_minutes']} min" if comp['target_minutes'] is not None else 'n/a'
    return [
        ('Response target', f"{target} (deadline {_when(comp['response_deadline'])})"),
        ('Time to acknowledge', human(comp['time_to_acknowledge_seconds'])),
        ('Time to first action', human(comp['time_to_first_action_seconds'])),
        ('Time to resolve', human(comp['time_to_resolve_seconds'])),
        ('Verdict', f"{VERDICT[comp['verdict']]} - {comp['text']}"),
    ]


def key_event_rows(review: dict[str, t.Any]) -> list[tuple[str, str, str]]:
    return [(_when(r['ts']), r['action'], r['person']) for r in review['key_events']]


def obligation_rows(review: dict[str, t.Any]) -> list[tuple[str, str, str, str]]:
    return [(o['title'], _when(o['due_at']), o['verdict'], o['detail']) for o in review['obligations']['items']]


def accessed_rows(review: dict[str, t.Any]) -> list[tuple[str, str, str, str]]:
    return [(_when(r['ts']), r['kind'], r['what'], r['person']) for r in review['data_accessed']]


def evidence_rows(review: dict[str, t.Any]) -> list[tuple[str, str]]:
    return [(r['what'], r['detail']) for r in review['evidence']]


NO_ACCESS = 'No data access is recorded in the ledger (no diagnostics bundle, audit review, log read or restore).'
APPENDIX_NOTE = 'The full timeline ({count} rows, the ledger collapsed) is in the appendix.'


def _md_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)] + \
        ['| ' + ' | '.join(md(v) for v in row) + ' |' for row in rows]


# -- Markdown --------------------------------------------------------------------------------------
def markdown(review: dict[str, t.Any], svg_name: str = 'timeline.svg') -> str:
    out = [f"**{md(draft_line(review))}**", ''] if review['draft'] else []
    out += [f"# Post-Incident Review: {md(review['title'])}", '',
            f"Ledger verification: **{md(verification_line(review))}**", '']
    if review['verification']['checked'] and not review['verification']['is_valid']:
        out += ['> **WARNING: the incident ledger does not verify.** Violations:'] + \
               [f'> - {md(v)}' for v in review['verification']['violations']] + ['']
    out += ['## Summary', '', mdp(review['summary']), '', '| | |', '|---|---|']
    out += [f'| {md(k)} | {md(v)} |' for k, v in facts(review)]
    out += ['', '## Impact', '', mdp(review['impact']), '', '## Response-time compliance', '', '| | |', '|---|---|']
    out += [f'| {md(k)} | {md(v)} |' for k, v in compliance_rows(review)]
    out += ['', '## Key events', '', f'![Timeline of {md(review["incident_id"])}]({svg_name})', '']
    out += _md_table(('Time (UTC)', 'Action', 'Person'), key_event_rows(review))
    out += ['', md(APPENDIX_NOTE.format(count=len(review['timeline'])))]
    out += ['', '## Root cause', '', mdp(review['root_cause'])]
    if review['recorded_root_cause']:
        out += ['', f"Recorded in the incident record: {md(review['recorded_root_cause'])}"]
    if review['findings']:
        out += ['', 'Findings recorded during the incident:', ''] + [f'- {md(f)}' for f in review['findings']]
    out += ['', '## Resolution', '', mdp(review['resolution']), '', '## What went well', '']
    out += [f'- {mdp(x)}' for x in review['went_well']]
    out += ['', '## What could be improved', ''] + [f'- {mdp(x)}' for x in review['could_improve']]
    out += ['', '## Action items', '', '| Action | Owner | Due | Ticket |', '|---|---|---|---|']
    items = review['action_items'] or [{'item': '_To be agreed in the PIR meeting._', 'owner': 'TBD', 'due': 'TBD', 'ticket': ''}]
    out += [f"| {mdp(i['item'])} | {md(i['owner'])} | {md(i['due'])} | "
            f"{md(i['ticket'])} |" for i in items]
    out += ['', '## Compliance', '', '### Notification obligations', '', md(review['obligations']['line'])]
    if review['obligations']['items']:
        out += [''] + _md_table(('Obligation', 'Due (UTC)', 'Verdict', 'Detail'), obligation_rows(review))
    out += ['', '### Data accessed during the response', '']
    out += _md_table(('Time (UTC)', 'Data', 'What', 'Person'), accessed_rows(review)) if review['data_accessed'] else [md(NO_ACCESS)]
    out += ['', '### Evidence preserved', ''] + _md_table(('Evidence', 'Detail'), evidence_rows(review))
    out += ['', '## PIR meeting checklist', ''] + [f'- [ ] {md(c)}' for c in review['checklist']]
    out += ['', '## Appendix: full timeline', '']
    out += _md_table(('Time (UTC)', 'Action', 'Actor'), [(_when(r['ts']), r['action'], r['actor']) for r in review['timeline']])
    out += ['', f"_Generated {md(review['generated_at'])} from the incident ledger by trdrhub.incident.pir._", '']
    return '\n'.join(out)


# -- HTML ------------------------------------------------------------------------------------------
_CSS = ('body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1f2328}'
        'table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;'
        'vertical-align:top}.invalid{background:#ffebe9;border:2px solid #cf222e;padding:1em}.valid{color:#1a7f37}'
        '.placeholder{color:#6e7781;font-style:italic}.verdict-missed{color:#cf222e;font-weight:bold}'
        '.verdict-met{color:#1a7f37;font-weight:bold}')


def _p(text: str) -> str:
    cls = ' class="placeholder"' if text in PLACEHOLDERS else ''
    return f'<p{cls}>{esc(text.strip("_") if cls else text)}</p>'


def _ul(items: list[str]) -> str:
    return '<ul>' + ''.join(f'<li>{esc(x.strip("_") if x in PLACEHOLDERS else x)}</li>' for x in items) + '</ul>'


def _table(rows: list[tuple[str, str]]) -> str:
    return '<table>' + ''.join(f'<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows) + '</table>'


def _grid(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    return ('<table><tr>' + ''.join(f'<th>{esc(h)}</th>' for h in head) + '</tr>'
            + ''.join('<tr>' + ''.join(f'<td>{esc(v)}</td>' for v in row) + '</tr>' for row in rows) + '</table>')


def _compliance_html(review: dict[str, t.Any]) -> str:
    obligations = review['obligations']
    return ''.join([
        '<h2>Compliance</h2><h3>Notification obligations</h3>', f"<p>{esc(obligations['line'])}</p>",
        _grid(('Obligation', 'Due (UTC)', 'Verdict', 'Detail'), obligation_rows(review)) if obligations['items'] else '',
        '<h3>Data accessed during the response</h3>',
        _grid(('Time (UTC)', 'Data', 'What', 'Person'), accessed_rows(review)) if review['data_accessed'] else f'<p>{esc(NO_ACCESS)}</p>',
        '<h3>Evidence preserved</h3>', _grid(('Evidence', 'Detail'), evidence_rows(review)),
    ])


def html_page(review: dict[str, t.Any], svg: str) -> str:
    ver = review['verification']
    ok = ver['checked'] and ver['is_valid']
    banner = f'<p class="valid">Ledger verification: {esc(verification_line(review))}</p>' if ok else (
        f'<div class="invalid"><strong>{esc(verification_line(review))}</strong>'
        + (_ul(ver['violations']) if ver['violations'] else '') + '</div>')
    verdict = review['compliance']['verdict']
    timeline = _grid(('Time (UTC)', 'Action', 'Actor'), [(_when(r['ts']), r['action'], r['actor']) for r in review['timeline']])
    recorded = (f"<p>Recorded in the incident record: {esc(review['recorded_root_cause'])}</p>"
                if review['recorded_root_cause'] else '')
    items = review['action_items'] or [{'item': 'To be agreed in the PIR meeting.', 'owner': 'TBD', 'due': 'TBD', 'ticket': ''}]
    actions = ''.join(f"<tr><td>{esc(i['item'])}</td><td>{esc(i['owner'])}</td><td>{esc(i['due'])}</td><td>{esc(i['ticket'])}</td></tr>"
                      for i in items)
    findings = ('<p>Findings recorded during the incident:</p>' + _ul(review['findings'])) if review['findings'] else ''
    return ''.join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        f"<title>{'DRAFT ' if review['draft'] else ''}PIR {esc(review['incident_id'])}: {esc(review['title'])}</title>"
        f"<style>{_CSS}</style></head><body>",
        f'<div class="invalid"><strong>{esc(draft_line(review))}</strong></div>' if review['draft'] else '',
        f"<h1>Post-Incident Review: {esc(review['title'])}</h1>", banner,
        '<h2>Summary</h2>', _p(review['summary']), _table(facts(review)),
        '<h2>Impact</h2>', _p(review['impact']),
        f'<h2>Response-time compliance</h2><p class="verdict-{esc(verdict)}">{esc(VERDICT[verdict])}</p>',
        _table(compliance_rows(review)),
        '<h2>Key events</h2>', svg, _grid(('Time (UTC)', 'Action', 'Person'), key_event_rows(review)),
        f"<p>{esc(APPENDIX_NOTE.format(count=len(review['timeline'])))}</p>",
        '<h2>Root cause</h2>', _p(review['root_cause']), recorded, findings,
        '<h2>Resolution</h2>', _p(review['resolution']),
        '<h2>What went well</h2>', _ul(review['went_well']),
        '<h2>What could be improved</h2>', _ul(review['could_improve']),
        f'<h2>Action items</h2><table><tr><th>Action</th><th>Owner</th><th>Due</th><th>Ticket</th></tr>{actions}</table>',
        _compliance_html(review),
        '<h2>PIR meeting checklist</h2><ul>' + ''.join(f'<li>&#9744; {esc(c)}</li>' for c in review['checklist']) + '</ul>',
        '<h2>Appendix: full timeline</h2>', timeline,
        f"<p class=\"placeholder\">Generated {esc(review['generated_at'])} from the incident ledger by trdrhub.incident.pir.</p>",
        '</body></html>\n',
    ])


# -- SVG -------------------------------------------------------------------------------------------
def svg_timeline(review: dict[str, t.Any], width: int = 960) -> str:
    """Lanes per kind of row, markers at their time, lines at detection, deadline, acknowledgement, resolution."""
    comp, rows = review['compliance'], review['timeline']
    marks = [('detected', comp['detected_at'], '#57606a'), ('deadline', comp['response_deadline'], '#cf222e'),
             ('acknowledged', comp['acknowledged_at'], '#1f6feb'), ('resolved', comp['resolved_at'], '#1a7f37')]
    times = [parse_time(r['ts']) for r in rows if r['ts']] + [parse_time(v) for _n, v, _c in marks if v]
    left, right, top, lane_h = 130, 20, 40, 34
    height = top + lane_h * len(LANES) + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="Timeline of {esc(review["incident_id"])}" font-family="sans-serif" font-size="12">',
           f'<title>Timeline of {esc(review["incident_id"])}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{esc(review["incident_id"])} timeline (UTC)</text>']
    if not times:
        out.append(f'<text x="{left}" y="{top + 20}">no timed entries</text></svg>')
        return '\n'.join(out) + '\n'
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 60.0)
    plot = width - left - right

    def x_of(value: t.Any) -> float:
        return round(left + plot * (parse_time(value) - start).total_seconds() / span, 1)

    for index, lane in enumerate(LANES):
        y = top + lane_h * index + lane_h / 2
        out.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{esc(lane)}</text>')
        out.append(f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" stroke="#d0d7de"/>')
    bottom = top + lane_h * len(LANES)
    for step in range(5):
        x = left + plot * step / 4
        label = (start + (end - start) * step / 4 if end > start else start).strftime('%H:%M')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#57606a">{esc(label)}</text>')
    for name, value, colour in marks:
        if value:
            x = x_of(value)
            out.append(f'<line x1="{x}" y1="{top - 6}" x2="{x}" y2="{bottom}" stroke="{colour}" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{x}" y="{bottom + 32}" text-anchor="middle" fill="{colour}">{esc(name)}</text>')
    for row in rows:
        if not row['ts']:
            continue
        lane = LANE_OF.get(row['category'], row['category'])
        lane = lane if lane in LANES else 'decision'
        y = top + lane_h * LANES.index(lane) + lane_h / 2
        out.append(f'<circle cx="{x_of(row["ts"])}" cy="{y}" r="5" fill="{COLOURS[lane]}">'
                   f'<title>{esc(_when(row["ts"]))} {esc(row["action"])} ({esc(row["actor"])})</title></circle>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def render(review: dict[str, t.Any]) -> dict[str, str]:
    svg = svg_timeline(review)
    return {'markdown': markdown(review), 'html': html_page(review, svg), 'svg': svg}
