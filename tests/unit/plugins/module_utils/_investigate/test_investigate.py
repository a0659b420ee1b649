# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The investigation report: sections, findings and thresholds, redaction, and the Markdown summary."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.trdrhub.incident.plugins.filter.investigate import (
    FilterModule,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._investigate.investigate import (
    InvestigationError,
    build_report,
    section_of,
    thresholds_of,
)

NOW = '2025-01-15T14:30:00+00:00'
PASSWORD = 's3cret-pg-password'


def entry(result, **extra):
    return dict({'result': result, 'collected_at': NOW}, **extra)


def session(pid, duration, state='active', **extra):
    return dict({'pid': pid, 'usename': 'trdrhub_app', 'application_name': 'trdrhub-api', 'state': state,
                 'duration_s': duration, 'query': 'SELECT | `x` FROM lc_documents'}, **extra)


POSTGRES = {
    'changed': False, 'database': 'lcopilot', 'server_version': '15.20', 'ping': {'ok': True, 'latency_ms': 0.4},
    'connections': {'total': 90, 'max_connections': 100, 'saturation': 0.9, 'by_state': {'active': 60, 'idle': 30}},
    'stats': {'xact_commit': 10, 'xact_rollback': 1, 'deadlocks': 0, 'cache_hit_ratio': 0.99},
    'blockers': [{'pid': 12, 'usename': 'trdrhub_app', 'application_name': 'trdrhub-worker', 'state': 'idle in transaction',
                  'duration_s': 611.5, 'query': 'UPDATE lc_sessions', 'blocks': 2, 'blocked_pids': [13, 14]}],
    'long_running': [session(11, 120.0)],
    'idle_in_transaction': [session(12, 611.5, 'idle in transaction'), session(15, 5.0, 'idle in transaction')],
    'invocation': {'module_args': {'login_password': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'}},
}
MIGRATIONS = {'initialized': True, 'up_to_date': False, 'version_table': 'public.alembic_version',
              'revisions': ['7c1f0e2a9b44'], 'pending': 'database lcopilot is at revision 7c1f0e2a9b44, ...',
              'tables': {'secret_rotation_logs': {'exists': True, 'row_estimate': 12, 'size_bytes': 8192}}}
AUDIT = {'is_valid': False, 'total_entries': 30, 'tenants': 3, 'violation_count': 2,
         'violation_counts': {'hash_mismatch': 1, 'broken_link': 1},
         'violations': [{'kind': 'hash_mismatch', 'tenant_id': 't', 'sequence_number': 5, 'message': 'changed'}]}
REDIS = {'ping': {'ok': True}, 'role': 'master',
         'queues': {'celery': {'type': 'list', 'length': 1500},
                    'events': {'type': 'stream', 'length': 10, 'groups': [{'name': 'w', 'backlog': 2000}]},
                    'small': {'type': 'list', 'length': 3}},
         'replication': {'role': 'master', 'replicas': [{'ip': '10.0.0.2', 'port': 6379, 'state': 'online',
                                                         'lag_bytes': 5 * 1048576, 'lag': 1}]},
         'memory': {'usage_ratio': 0.95}, 'clients': {'saturation': 0.1}}
HEALTH = {'healthy': False,
          'endpoints': [{'path': '/healthz', 'status': 200, 'ok': True},
                        {'path': '/health/ready', 'status': 503, 'ok': False, 'failed_checks': ['HTTP status 503, expected 200']}],
          'tls': {'expired': False, 'expiring_soon': True, 'days_to_expiry': 3.2, 'not_after': '2025-01-18T21:00:00+00:00',
                  'verify_error': None}}
K8S = {'namespace': 'trdrhub-system', 'summary': {'deployments': 1, 'deployments_ready': 0},
       'deployments': [{'name': 'trdrhub-api', 'healthy': False, 'problems': ['only 2 of 3 replicas available'],
                        'progress_deadline_exceeded': False, 'revision': 12, 'replicas': 3, 'available_replicas': 2,
                        'history': [{'revision': 12, 'current': True, 'created': '2025-01-15T14:01:40Z',
                                     'change_cause': 'deploy 2025.01.15', 'images': {'api': 'api:2025.01.15'}},
                                    {'revision': 11, 'current': False, 'created': '2025-01-10T09:00:00Z'}]}]}


def everything():
    return {'postgres': entry(POSTGRES), 'migrations': entry(MIGRATIONS), 'audit_chain': entry(AUDIT),
            'redis': entry(REDIS), 'health': entry(HEALTH), 'kubernetes': entry(K8S)}


def test_every_kind_of_finding_most_severe_first():
    report = build_report(everything(), 'INC-1', NOW)
    titles = [(f['severity'], f['collector'], f['title']) for f in report['findings']]
    assert titles == [
        ('critical', 'audit_chain', 'Audit chain violations: 2'),
        ('critical', 'health', 'Health check failing: /health/ready answered 503'),
        ('warning', 'postgres', 'Connection saturation 90%'),
        ('warning', 'postgres', '1 session(s) blocking 2 other(s)'),
        ('warning', 'postgres', '1 long-running statement(s)'),
        ('warning', 'postgres', '1 long transaction(s) idle for 60s or more'),
        ('warning', 'migrations', 'Database migration not up to date'),
        ('warning', 'redis', 'Queue backlog: celery holds 1500 item(s)'),
        ('warning', 'redis', 'Queue backlog: events holds 2000 item(s)'),
        ('warning', 'redis', 'Replica lag: 10.0.0.2:6379 is 5242880 bytes behind'),
        ('warning', 'redis', 'Redis memory at 95% of maxmemory'),
        ('warning', 'health', 'TLS certificate expires soon: 3.2 days left'),
        ('warning', 'kubernetes', 'Deployment trdrhub-api is not healthy'),
        ('info', 'kubernetes', 'Recent rollout: trdrhub-api revision 12 at 2025-01-15T14:01:40Z'),
    ]
    assert report['headline'][0] == 'CRITICAL audit_chain: Audit chain violations: 2 - broken_link 1, hash_mismatch 1; ' \
                                    'preserve the evidence before anyone repairs the table'
    assert report['statuses'] == dict.fromkeys(['postgres', 'migrations', 'audit_chain', 'redis', 'health', 'kubernetes'], 'ok')


def test_nothing_wrong_means_no_finding():
    healthy = {'postgres': entry({'ping': {'ok': True}, 'connections': {'saturation': 0.1}}),
               'migrations': entry({'initialized': True, 'up_to_date': True}),
               'audit_chain': entry({'is_valid': True}),
               'health': entry({'endpoints': [{'path': '/healthz', 'ok': True}], 'tls': {'expiring_soon': False}})}
    report = build_report(healthy, 'INC-1', NOW)
    assert report['findings'] == [] and report['headline'] == []
    assert '- No finding crossed a threshold.' in report['summary']


@pytest.mark.parametrize('result, title', [
    ({'ping': {'ok': False}}, 'PostgreSQL does not answer SELECT 1'),
    ({'connections': {'saturation': 0.97, 'total': 97, 'max_connections': 100}}, 'Connection saturation 97%'),
])
def test_postgres_critical(result, title):
    (finding,) = build_report({'postgres': entry(result)}, 'INC-1', NOW)['findings']
    assert (finding['severity'], finding['title']) == ('critical', title)


def test_thresholds_change_the_findings():
    report = build_report(everything(), 'INC-1', NOW, thresholds={'queue_backlog': 3, 'connection_saturation': 0.95,
                                                                  'recent_rollout_s': 60})
    titles = [f['title'] for f in report['findings']]
    assert 'Queue backlog: small holds 3 item(s)' in titles
    assert not any(t.startswith('Connection saturation') for t in titles)
    assert not any(t.startswith('Recent rollout') for t in titles)


@pytest.mark.parametrize('given, message', [
    ({'nope': 1}, "thresholds: unknown key 'nope'"),
    ({'queue_backlog': -1}, 'thresholds: queue_backlog must be a number of at least 0, got -1'),
    ({'queue_backlog': 'many'}, "thresholds: queue_backlog must be a number of at least 0, got 'many'"),
])
def test_bad_thresholds(given, message):
    with pytest.raises(InvestigationError, match='^' + message.replace('(', r'\(')):
        thresholds_of(given)


def test_sections_error_skipped_and_bookkeeping_dropped():
    failed = section_of('redis', entry({'failed': True, 'msg': 'Cannot connect to Redis at 127.0.0.1:1', 'exception': 'x',
                                        'invocation': {}}))
    assert failed['status'] == 'error' and failed['error'] == 'Cannot connect to Redis at 127.0.0.1:1'
    assert failed['result'] == {}
    skipped = section_of('audit_chain', entry({'skipped': True, 'changed': False}, skip_reason='table x does not exist'))
    assert (skipped['status'], skipped['skip_reason'], skipped['result']) == ('skipped', 'table x does not exist', {})
    empty = section_of('health', {})
    assert empty['status'] == 'error' and empty['error'] == 'the collector returned nothing'
    ok = section_of('postgres', entry(POSTGRES))
    assert 'invocation' not in ok['result'] and 'changed' not in ok['result'] and ok['collected_at'] == NOW


def test_a_failed_collector_is_a_finding_and_a_section():
    report = build_report({'redis': entry({'failed': True, 'msg': 'unreachable'}),
                           'audit_chain': entry({'skipped': True}, skip_reason='table audit_log_entries does not exist')},
                          'INC-1', NOW)
    assert report['headline'] == ['WARNING redis: Collector redis failed - unreachable']
    assert report['statuses'] == {'audit_chain': 'skipped', 'redis': 'error'}
    assert 'Collector failed: unreachable' in report['summary']
    assert 'Skipped: table audit_log_entries does not exist.' in report['summary']


def test_secrets_are_masked_everywhere_but_evidence_keys_are_kept():
    collected = everything()
    collected['postgres']['result'] = dict(POSTGRES, long_running=[session(11, 120.0, query=f"ALTER ROLE x PASSWORD '{PASSWORD}'")],
                                           note=f'dsn postgresql://ops:{PASSWORD}@db/lcopilot', password=PASSWORD)
    collected['redis']['result'] = dict(REDIS, error=f'AUTH failed for {PASSWORD}')
    report = build_report(collected, 'INC-1', NOW, secrets=[PASSWORD, None, ''])
    text = json.dumps(report['bundle']) + report['summary']
    assert PASSWORD not in text
    assert report['bundle']['collectors']['postgres']['result']['password'] == '<redacted>'
    tables = report['bundle']['collectors']['migrations']['result']['tables']
    assert tables['secret_rotation_logs']['row_estimate'] == 12   # a secret-looking name is not a secret


def test_bundle_shape():
    bundle = build_report(everything(), 'INC-1', NOW, check_mode=True, bundle_dir='/srv/incidents/INC-1/diagnostics/x')['bundle']
    assert set(bundle) == {'version', 'incident_id', 'generated_at', 'check_mode', 'bundle_dir', 'thresholds', 'findings',
                           'collectors'}
    assert bundle['check_mode'] is True and bundle['thresholds']['queue_backlog'] == 1000
    assert list(bundle['collectors']) == ['postgres', 'migrations', 'audit_chain', 'redis', 'health', 'kubernetes']
    json.dumps(bundle)


def test_summary_layout():
    summary = build_report(everything(), 'INC-1', NOW)['summary']
    headline, rest = summary.split('## Collectors')
    assert headline.startswith('# Investigation of INC-1\n')
    assert '- **CRITICAL** (audit_chain) Audit chain violations: 2' in headline
    sections = [line for line in rest.splitlines() if line.startswith('## ')]
    assert sections == ['## PostgreSQL activity', '## Migrations', '## Audit chain', '## Redis', '## Health and TLS',
                        '## Kubernetes rollouts']
    assert "`SELECT \\| 'x' FROM lc_documents`" in summary   # no backtick ends the span, no pipe splits the cell
    assert '| 12 | trdrhub_app | trdrhub-worker | idle in transaction | 13, 14 | `UPDATE lc_sessions` |' in summary
    assert '| trdrhub-api | 12 | 2/3 |' in summary and 'deploy 2025.01.15' in summary
    assert summary.endswith('\n') and not summary.endswith('\n\n')


def test_unknown_collector_is_rendered_generically():
    report = build_report({'extra': entry({'summary': {'a': 1}, 'items': [{'name': 'x'}, {'name': 'y'}]})}, 'INC-1', NOW)
    assert '## extra' in report['summary'] and '- a: 1' in report['summary'] and '- items: 2 (x, y)' in report['summary']


def test_filter_maps_errors():
    report_filter = FilterModule().filters()['investigation_report']
    assert report_filter({'postgres': entry(POSTGRES)}, 'INC-1', NOW)['statuses'] == {'postgres': 'ok'}
    with pytest.raises(AnsibleFilterError, match='^investigation_report: thresholds: unknown key'):
        report_filter({}, 'INC-1', NOW, thresholds={'x': 1})
    with pytest.raises(AnsibleFilterError, match='must be a dictionary'):
        report_filter(['not', 'a', 'dict'], 'INC-1', NOW)
