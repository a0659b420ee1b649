# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rendered review: the runbook's sections in order, in Markdown and HTML, everything escaped."""

from __future__ import annotations

import re

from _pir_entries import incident, ledger, rec, task
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.pir import build_review
from ansible_collections.trdrhub.incident.plugins.module_utils._pir.render import render

EVIL = '<img src=x onerror=alert(1)> | [x](javascript:y)'
SECTIONS = ['Summary', 'Impact', 'Response-time compliance', 'Key events', 'Root cause', 'Resolution', 'What went well',
            'What could be improved', 'Action items', 'Compliance', 'PIR meeting checklist', 'Appendix: full timeline']


def _review(content=None, **record):
    found = rec(status='identified', root_cause=f'Stuck consumer {EVIL}', impact=['security'], priority='P1', **record)
    resolved = dict(found, state='resolved', status='resolved', resolution='Consumer restarted',
                    resolved_at='2025-01-17T10:50:00Z', resolved_by='awx:maria')
    entries = ledger(
        ('10:05:00', incident('open', rec())),
        ('10:11:00', {'event': 'finding', 'phase': 'investigate', 'data': {
            'run': 'i', 'message': f'Diagnostics collected {EVIL}', 'bundle_dir': '/x', 'bundle_sha256': 'a' * 64}}),
        ('10:14:00', task('Terminate sessions', 'trdrhub.incident.pg_terminate_sessions', 'contain', run='c')),
        ('10:20:00', incident('update', found, {'root_cause': {'before': None, 'after': found['root_cause']}})),
        ('10:50:00', incident('resolve', resolved)),
    )
    verification = {'is_valid': True, 'total_entries': 5, 'violation_count': 0, 'verified_at': '2025-01-17T11:00:00Z',
                    'chains': {'INC-9': {'head': {'sequence_number': 5, 'entry_hash': entries[-1]['hash']}}}}
    return build_review(entries, 'INC-9', verification=verification, content=content, now='2025-01-17T12:00:00Z',
                        meeting={'holidays': ['2025-01-20']}), entries


def _section(text, title):
    return text.split(f'## {title}\n', 1)[1].split('\n## ', 1)[0]


def test_markdown_has_the_runbook_sections_in_order():
    review, entries = _review()
    out = render(review)['markdown']
    assert re.findall(r'^## (.+)$', out, re.M) == SECTIONS
    summary = _section(out, 'Summary')
    assert '| Impact | security |' in summary and '| Resolution | Consumer restarted |' in summary
    assert '| Root cause | Stuck consumer &lt;img src=x onerror=alert(1)&gt; \\| \\[x\\](javascript:y) |' in summary
    assert '| Duration |' in summary and '| Detected | 2025-01-15 10:00:00 UTC |' in summary
    events = _section(out, 'Key events')
    assert [line.split(' | ')[1] for line in events.splitlines() if line.startswith('| 2025')] == [
        'Detected: Queue stuck, P1 (record opened at 10:05:00)',
        'Investigation started: Diagnostics collected &lt;img src=x onerror=alert(1)&gt; \\| \\[x\\](javascript:y)',
        'Containment: Terminate sessions on db-1',
        'Root cause identified: Stuck consumer &lt;img src=x onerror=alert(1)&gt; \\| \\[x\\](javascript:y)',
        'Resolved: Consumer restarted']
    assert 'The full timeline (5 rows, the ledger collapsed) is in the appendix.' in events
    assert len([line for line in _section(out, 'Appendix: full timeline').splitlines() if line.startswith('| 2025')]) == 5
    compliance = _section(out, 'Compliance')
    assert '3 obligation(s): 0 met, 0 met late, 0 missed, 3 still open.' in compliance
    assert '| Regulator (data protection supervisory authority) | 2025-01-18 10:00:00 UTC | OPEN |' in compliance
    assert '| 2025-01-15 10:11:00 UTC | Diagnostics bundle | /x: Diagnostics collected &lt;img' in compliance
    assert f"| Incident ledger head | seq 5 hash {entries[-1]['hash']} (verified at 2025-01-17T11:00:00Z, 5 entries) |" in compliance
    checklist = _section(out, 'PIR meeting checklist').strip().splitlines()
    # resolved Friday; Monday 2025-01-20 is a listed holiday
    assert checklist[0].startswith('- [ ] PIR meeting held by Wednesday 2025-01-22 (2 business days after the resolution '
                                   'on Friday 2025-01-17, weekends and the listed holidays skipped)')
    assert checklist[-1].startswith('- [ ] Follow-up review scheduled on Friday 2025-02-21 (30 days after the meeting)')
    # the record's root cause, unless the review says otherwise - then both are shown
    assert _section(out, 'Root cause').strip().startswith('Stuck consumer &lt;img')
    out = render(_review(content={'root_cause': 'Pool too small for the burst'})[0])['markdown']
    cause = _section(out, 'Root cause')
    assert cause.strip().startswith('Pool too small for the burst') and 'Recorded in the incident record: Stuck consumer' in cause


def test_html_has_the_same_sections_and_escapes():
    review, _entries = _review()
    page = render(review)['html']
    assert re.findall(r'<h2>([^<]+)</h2>', page) == [s.replace('&', '&amp;') for s in SECTIONS]
    assert re.findall(r'<h3>([^<]+)</h3>', page) == ['Notification obligations', 'Data accessed during the response',
                                                     'Evidence preserved']
    assert '<img' not in page and '<th>Person</th>' in page and '&#9744; PIR meeting held by Wednesday 2025-01-22' in page


def test_no_data_accessed_and_no_obligation():
    review, _entries = _review()
    review.update(data_accessed=[], obligations={'items': [], 'counts': {}, 'line': 'No notification obligation applies.'})
    out = render(review)
    assert 'No data access is recorded in the ledger' in out['markdown'] and 'No data access is recorded' in out['html']
    assert '| Obligation |' not in out['markdown'] and '<th>Obligation</th>' not in out['html']
