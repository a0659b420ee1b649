# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alertmanager_silence
short_description: Acknowledge Prometheus Alertmanager alerts with a silence, idempotently, or expire it
version_added: 1.0.0
description:
  - Acknowledging an alert in Alertmanager means silencing it. With O(state=present) the module makes sure a silence
    with the given matchers covers the requested time window; with O(state=absent) it expires it.
  - "Idempotent: an active or pending silence with exactly the same matchers (in any order) and the same creator
    (O(created_by)) is reused when it already covers the window (within O(tolerance)) and has the same comment.
    Otherwise it is updated - Alertmanager either updates it in place or expires it and creates a replacement with a
    new id; both ids are returned (RV(previous_id), RV(silence_id))."
  - With O(incident_id) the comment is prefixed with C([<incident_id>]) and the creator defaults to
    C(trdrhub.incident/<incident_id>), so the silences of one incident can be found, re-run and expired together.
  - Speaks Alertmanager API v2 only (C(/api/v2/silences)).
author:
  - TRDR Hub SRE (@trdrhub)
options:
  url:
    description:
      - Base URL of Alertmanager, for example V(http://alertmanager:9093); may include a path prefix.
      - Must not contain credentials; use O(url_username) and O(url_password) or O(bearer_token).
    type: str
    required: true
  state:
    description:
      - V(present) creates, reuses or updates the silence; V(absent) expires it.
    type: str
    choices: [present, absent]
    default: present
  matchers:
    description:
      - Label matchers of the silence. Each is either a string in Alertmanager's syntax, for example
        V(alertname="QueueLagCritical") or V(severity=~"P1|P2"), or a dict with C(name), C(value), C(isRegex) (default
        V(false)) and C(isEqual) (default V(true)).
      - Required with O(state=present) unless O(silence_id) names an existing silence whose matchers are kept.
      - With O(state=absent) and no O(silence_id), every active or pending silence with exactly these matchers and
        created by O(created_by) is expired.
    type: list
    elements: raw
  duration:
    description:
      - How long the silence lasts from O(starts_at), for example V(30m), V(2h), V(1h30m) or V(1d); a bare number is
        seconds.
      - An existing silence is reused while its end is no earlier than the requested end minus O(tolerance), so
        re-running the task within O(tolerance) changes nothing and a later run extends the silence.
      - One of O(duration) and O(ends_at) is required with O(state=present).
    type: str
  ends_at:
    description:
      - End of the silence, ISO 8601 (V(2025-01-15T18:00:00Z)); a time without offset is UTC.
      - Unlike O(duration) this is an exact end - an existing silence ending more than O(tolerance) later is updated
        (shortened) too.
    type: str
  starts_at:
    description:
      - Start of the silence, ISO 8601; a time without offset is UTC. Defaults to now.
      - When an active silence is updated and O(starts_at) is not set, its original start is kept.
    type: str
  created_by:
    description:
      - Creator recorded in the silence (C(createdBy)); part of the identity used to find an existing silence.
      - Defaults to V(trdrhub.incident/<incident_id>) with O(incident_id), else V(trdrhub.incident); when O(silence_id)
        names a silence and this is not set, that silence's creator is kept.
    type: str
  comment:
    description:
      - Comment of the silence. Prefixed with C([<incident_id>]) when O(incident_id) is set (unless it already starts
        with it).
      - Defaults to V(Acknowledged with trdrhub.incident).
    type: str
  incident_id:
    description:
      - Incident this silence belongs to, for example V(INC-2025-0042). Goes into the comment and the default creator.
    type: str
  silence_id:
    description:
      - Target this silence instead of searching by matchers and creator.
      - With O(state=present) the silence must exist; an expired one is replaced by a new silence.
      - With O(state=absent) an unknown or already expired id changes nothing.
    type: str
  tolerance:
    description:
      - Seconds by which an existing silence's start and end may differ from the requested ones and still be reused.
    type: float
    default: 60
extends_documentation_fragment:
  - trdrhub.incident.http_api.alertmanager
attributes:
  check_mode:
    details:
      - Reads the silences and reports what would happen (RV(action) V(would_create), V(would_update) or
        V(would_expire)); creates, updates and expires nothing.
  diff_mode:
    support: full
    details:
      - Shows the silence (matchers, start, end, creator, comment) before and after.
seealso:
  - module: trdrhub.incident.alertmanager_alerts_info
  - name: Alertmanager silences
    description: How silences mute alerts.
    link: https://prometheus.io/docs/alerting/latest/alertmanager/#silences
"""

EXAMPLES = r"""
- name: Acknowledge the queue lag P1 for two hours
  trdrhub.incident.alertmanager_silence:
    url: http://alertmanager.monitoring:9093
    matchers:
      - alertname="QueueLagCritical"
      - service="lcpilot"
    duration: 2h
    incident_id: INC-2025-0042
    comment: Workers scaled up, watching the backlog drain
  register: ack

- name: Acknowledge every P1 of the notifications component until a fixed time
  trdrhub.incident.alertmanager_silence:
    url: http://alertmanager.monitoring:9093
    matchers:
      - {name: severity, value: P1}
      - {name: component, value: "notifications|queue", isRegex: true}
    ends_at: "2025-01-15T18:00:00Z"
    incident_id: INC-2025-0042

- name: Incident resolved - lift the acknowledgement
  trdrhub.incident.alertmanager_silence:
    url: http://alertmanager.monitoring:9093
    state: absent
    silence_id: "{{ ack.silence_id }}"
"""

RETURN = r"""
action:
  description:
    - What was done - V(created), V(updated), V(reused) (already as requested), V(expired) or V(none) (nothing to
      expire).
    - In check mode V(would_create), V(would_update), V(would_expire), V(reused) or V(none).
  returned: always
  type: str
  sample: created
silence_id:
  description:
    - Id of the resulting silence (the replacement after an update), or of the silence expired.
    - Null when nothing matched, and in check mode for a silence that would be created.
  returned: always
  type: str
  sample: 9f2b8a5c-8c1e-4a56-9a3e-3b0c3f2a6a11
previous_id:
  description: Id of the silence that was updated; differs from RV(silence_id) when Alertmanager replaced it.
  returned: when RV(action) is V(updated) or V(would_update)
  type: str
  sample: 3c0f6b7e-1d2a-4c1b-8d7a-5e9c2b1a0f44
expired_ids:
  description: Ids of the silences expired (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
silence:
  description:
    - The silence as Alertmanager now has it (after an update, the replacement; after expiring, the expired silence);
      in check mode the silence as it would be. Null when nothing matched.
  returned: always
  type: dict
  contains:
    id:
      description: Silence id.
      type: str
      sample: 9f2b8a5c-8c1e-4a56-9a3e-3b0c3f2a6a11
    matchers:
      description: The matchers, sorted by name.
      type: list
      elements: dict
      sample: [{"name": "alertname", "value": "QueueLagCritical", "isRegex": false, "isEqual": true}]
    startsAt:
      description: Start (RFC 3339, UTC).
      type: str
      sample: "2025-01-15T14:30:00.000Z"
    endsAt:
      description: End (RFC 3339, UTC).
      type: str
      sample: "2025-01-15T16:30:00.000Z"
    createdBy:
      description: Creator.
      type: str
      sample: trdrhub.incident/INC-2025-0042
    comment:
      description: Comment.
      type: str
      sample: "[INC-2025-0042] Workers scaled up, watching the backlog drain"
    updatedAt:
      description: When Alertmanager last changed the silence; null in check mode.
      type: str
      sample: "2025-01-15T14:30:00.120Z"
    status:
      description: C(state) is V(active), V(pending) (starts later) or V(expired).
      type: dict
      sample: {"state": "active"}
requests:
  description: HTTP requests the module made, as C(METHOD /path).
  returned: always
  type: list
  elements: str
  sample: ["GET /api/v2/silences", "POST /api/v2/silences", "GET /api/v2/silence/9f2b8a5c-8c1e-4a56-9a3e-3b0c3f2a6a11"]
"""

import datetime
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._alertmanager import (
    UTC,
    AlertmanagerClient,
    format_time,
    matcher_text,
    normalize_matcher,
    parse_duration,
    parse_time,
    same_matchers,
    silence_state,
    silence_view,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.http_client import (
    HTTP_API_ARGS,
    HTTP_API_MUTUALLY_EXCLUSIVE,
    HTTP_API_REQUIRED_BY,
    HTTP_API_REQUIRED_TOGETHER,
    REQUESTS,
    HttpApiError,
    HttpInputError,
    HttpNotFoundError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.runner import Worker, request_log, run_module
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded

DEFAULT_COMMENT = 'Acknowledged with trdrhub.incident'
DEFAULT_CREATOR = 'trdrhub.incident'
LIVE = ('active', 'pending')


def argument_spec() -> dict[str, t.Any]:
    spec = dict(HTTP_API_ARGS)
    spec.update(
        url={'type': 'str', 'required': True},
        state={'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
        matchers={'type': 'list', 'elements': 'raw'},
        duration={'type': 'str'},
        ends_at={'type': 'str'},
        starts_at={'type': 'str'},
        created_by={'type': 'str'},
        comment={'type': 'str'},
        incident_id={'type': 'str'},
        silence_id={'type': 'str'},
        tolerance=bounded({'type': 'float', 'default': 60}, minimum=0),
    )
    return spec


def compose_comment(comment: str | None, incident_id: str | None) -> str:
    text = comment if comment else DEFAULT_COMMENT
    if incident_id and not text.startswith(f'[{incident_id}]'):
        text = f'[{incident_id}] {text}'
    return text


def live(silence: dict[str, t.Any] | None) -> bool:
    return silence is not None and silence_state(silence) in LIVE


def candidates(silences: list[dict[str, t.Any]], matchers: list[dict[str, t.Any]], created_by: str) -> list[dict[str, t.Any]]:
    """Live silences with exactly these matchers and this creator, the latest-ending first."""
    found = [s for s in silences if live(s) and s.get('createdBy') == created_by
             and same_matchers(s.get('matchers') or [], matchers)]
    return sorted(found, key=lambda s: parse_time(s.get('endsAt'), 'endsAt'), reverse=True)


def decide(existing: dict[str, t.Any] | None, desired: dict[str, t.Any], start: datetime.datetime,
           end: datetime.datetime, tolerance: float, exact_end: bool) -> str:
    """create, reuse or update: reuse only when the silence already is what was asked for."""
    if existing is None or not live(existing):
        return 'create'
    if not same_matchers(existing.get('matchers') or [], desired['matchers']):
        return 'update'
    if existing.get('createdBy') != desired['createdBy'] or existing.get('comment') != desired['comment']:
        return 'update'
    slack = datetime.timedelta(seconds=tolerance)
    has_start, has_end = parse_time(existing['startsAt'], 'startsAt'), parse_time(existing['endsAt'], 'endsAt')
    covers = has_start <= start + slack and has_end >= end - slack
    if exact_end:
        covers = covers and has_end <= end + slack
    return 'reuse' if covers else 'update'


def diff_view(silence: dict[str, t.Any] | None) -> dict[str, t.Any]:
    if not silence:
        return {}
    return {
        'matchers': sorted(matcher_text(m) for m in silence.get('matchers') or []),
        'startsAt': silence.get('startsAt'), 'endsAt': silence.get('endsAt'),
        'createdBy': silence.get('createdBy'), 'comment': silence.get('comment'),
    }


class SilenceManager(Worker):
    """Plans and applies one silence change; the plan alone is what check mode reports."""

    def __init__(self, params: dict[str, t.Any], check_mode: bool = False, diff: bool = False,
                 now: datetime.datetime | None = None) -> None:
        super().__init__(params, check_mode, diff)
        self.now = (now or datetime.datetime.now(UTC)).astimezone(UTC)
        if params.get('matchers') is not None and not params['matchers']:
            raise HttpInputError('matchers must not be empty')
        self.matchers = [normalize_matcher(m) for m in params.get('matchers') or []]
        self.creator = params.get('created_by') or (
            f"{DEFAULT_CREATOR}/{params['incident_id']}" if params.get('incident_id') else None)
        self.comment = compose_comment(params.get('comment'), params.get('incident_id'))
        if params.get('state', 'present') == 'present':
            self.start, self.end = self.window()

    def window(self) -> tuple[datetime.datetime, datetime.datetime]:
        start = parse_time(self.params['starts_at'], 'starts_at') if self.params.get('starts_at') else self.now
        if self.params.get('ends_at'):
            end = parse_time(self.params['ends_at'], 'ends_at')
        else:
            end = start + datetime.timedelta(seconds=parse_duration(self.params.get('duration')))
        if end <= self.now:
            raise HttpInputError(f'the silence would already be over: it ends at {format_time(end)}, '
                                 f'before now ({format_time(self.now)})')
        if end <= start:
            raise HttpInputError(f'the silence would end before it starts: ends_at {format_time(end)} is not after '
                                 f'starts_at {format_time(start)}')
        return start, end

    def run(self, client: AlertmanagerClient) -> dict[str, t.Any]:
        if self.params.get('state', 'present') == 'absent':
            result = self.expire(client)
        else:
            result = self.ensure(client)
        result['requests'] = client.requests
        return result

    def find(self, client: AlertmanagerClient) -> dict[str, t.Any] | None:
        """The silence to work on: the one named by silence_id, else the best live match."""
        silence_id = self.params.get('silence_id')
        if silence_id:
            target = client.silence(silence_id)
            if target is None:
                raise HttpNotFoundError(f'{client.where()} has no silence with silence_id {silence_id}')
            return target
        found = candidates(client.silences(), self.matchers, self.creator or DEFAULT_CREATOR)
        if len(found) > 1:
            self.warnings.append(f'{len(found)} live silences have these matchers and creator; using the one ending '
                                 f'last ({found[0]["id"]}), the others are left alone: '
                                 + ', '.join(s['id'] for s in found[1:]))
        return found[0] if found else None

    def ensure(self, client: AlertmanagerClient) -> dict[str, t.Any]:
        target = self.find(client)
        matchers = self.matchers or [normalize_matcher(m) for m in (target or {}).get('matchers') or []]
        if not matchers:
            raise HttpInputError('matchers are required to create a silence')
        creator = self.creator or ((target or {}).get('createdBy') if self.params.get('silence_id') else None)
        desired = {'matchers': matchers, 'createdBy': creator or DEFAULT_CREATOR, 'comment': self.comment}
        decision = decide(target, desired, self.start, self.end, self.params.get('tolerance', 60),
                          exact_end=bool(self.params.get('ends_at')))
        before = diff_view(target) if live(target) else {}
        if decision == 'reuse' and target is not None:
            return self.result('reused', False, silence_view(target), target['id'], before, before)
        keep_start = decision == 'update' and not self.params.get('starts_at') and silence_state(target or {}) == 'active'
        body = dict(desired, startsAt=(target or {}).get('startsAt') if keep_start else format_time(self.start),
                    endsAt=format_time(self.end))
        previous = target['id'] if decision == 'update' and target else None
        if decision == 'update':
            body['id'] = previous
        if self.check_mode:
            would = silence_view(dict(body, id=previous, status={'state': 'pending' if self.start > self.now else 'active'}))
            return self.result(f'would_{decision}', True, would, previous, before, diff_view(body), previous)
        new_id = client.create(body)
        stored = client.silence(new_id) or dict(body, id=new_id, status={'state': 'active'})
        action = 'created' if decision == 'create' else 'updated'
        return self.result(action, True, silence_view(stored), new_id, before, diff_view(stored), previous)

    def expire(self, client: AlertmanagerClient) -> dict[str, t.Any]:
        silence_id = self.params.get('silence_id')
        if silence_id:
            found = client.silence(silence_id)
            targets = [found] if live(found) else []
        else:
            if not self.matchers:
                raise HttpInputError('state=absent needs silence_id or matchers')
            targets = candidates(client.silences(), self.matchers, self.creator or DEFAULT_CREATOR)
        if not targets:
            return self.result('none', False, None, silence_id, {}, {})
        views = []
        for silence in targets:
            if not self.check_mode:
                client.expire(silence['id'])
                silence = client.silence(silence['id']) or dict(silence, status={'state': 'expired'})
            views.append(silence_view(silence))
        before = {'silences': [diff_view(s) for s in targets]}
        result = self.result('would_expire' if self.check_mode else 'expired', True, views[0], views[0]['id'],
                             before, {'silences': []})
        result['expired_ids'] = [s['id'] for s in targets]
        return result

    def result(self, action: str, changed: bool, silence: dict[str, t.Any] | None, silence_id: str | None,
               before: dict[str, t.Any], after: dict[str, t.Any], previous: str | None = None) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'changed': changed, 'action': action, 'silence': silence, 'silence_id': silence_id,
                                 'expired_ids': []}
        if previous:
            out['previous_id'] = previous
        if self.diff:
            out['diff'] = {'before': before, 'after': after}
        return out


def main() -> None:
    run_module(argument_spec(), lambda module: SilenceManager(module.params, check_mode=module.check_mode, diff=module._diff),
               lambda module, manager: AlertmanagerClient(module.params), requires=[REQUESTS], errors=(HttpApiError,),
               error_extra=request_log, mutually_exclusive=HTTP_API_MUTUALLY_EXCLUSIVE + [['duration', 'ends_at']],
               required_together=HTTP_API_REQUIRED_TOGETHER, required_by=HTTP_API_REQUIRED_BY,
               required_if=[('state', 'present', ('duration', 'ends_at'), True), ('state', 'present', ('matchers', 'silence_id'), True),
                            ('state', 'absent', ('matchers', 'silence_id'), True)])


if __name__ == '__main__':
    main()
