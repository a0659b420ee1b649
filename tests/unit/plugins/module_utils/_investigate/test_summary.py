# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The investigation's summary.md: headline findings, the collector table, and a section per collector
(skipped, failed, or its result), with table cells that cannot break the Markdown."""

from __future__ import annotations

from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.summary import number, render_summary


def section(status='ok', result=None, error=None, skip_reason=None):
    return {'status': status, 'collected_at': '2025-01-15T14:31:00Z', 'error': error, 'skip_reason': skip_reason,
            'result': result or {}}


BUNDLE = {
    'incident_id': 'INC-2025-0042', 'generated_at': '2025-01-15T14:31:05Z',
    'findings': [{'severity': 'high', 'collector': 'postgres', 'title': '3 sessions idle in transaction', 'detail': 'oldest 12 min'}],
    'collectors': {
        'redis': section('skipped', skip_reason='trdrhub_redis_host is not set'),
        'health': section('error', error='https://api.example/health: connection refused'),
        'custom': section(result={'summary': {'checked': 4}, 'items': [{'name': 'a|b'}, {'name': 'c'}]}),
    },
}


def test_the_summary_starts_with_the_incident_and_its_findings():
    text = render_summary(BUNDLE)
    assert text.startswith('# Investigation of INC-2025-0042\n')
    assert '- **HIGH** (postgres) 3 sessions idle in transaction - oldest 12 min' in text
    assert text.endswith('\n') and not text.endswith('\n\n')


def test_each_collector_is_a_table_row_and_a_section_in_its_state():
    text = render_summary(BUNDLE)
    assert '| Redis | skipped | 2025-01-15T14:31:00Z | trdrhub_redis_host is not set |' in text
    assert '| Health and TLS | error | 2025-01-15T14:31:00Z | https://api.example/health: connection refused |' in text
    assert '## Redis\n\nSkipped: trdrhub_redis_host is not set.' in text
    assert '## Health and TLS\n\nCollector failed: https://api.example/health: connection refused' in text
    assert '## custom\n\n- checked: 4\n- items: 2 (a|b, c)' in text


def test_no_finding_says_so():
    assert '- No finding crossed a threshold.' in render_summary(dict(BUNDLE, findings=[], collectors={}))


def test_number_reads_numbers_and_refuses_the_rest():
    assert number('12.5') == 12.5 and number(3) == 3.0
    assert number(None) is None and number(True) is None and number('n/a') is None
