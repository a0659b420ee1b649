# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""The approval gate and the vote: one request, its votes and its outcome, each in the incident ledger.

``Gate.run`` makes the request, collects votes by the mode asked for (an answer at the
terminal, votes in the store, an AWX workflow approval node that came first, or the policy
alone) and returns the outcome. ``cast_vote`` is one approver's vote, shared by the
``approval_vote`` module and ``scripts/approve.py``. Terminal input, output, time and sleep
are passed in, so unit tests drive the gate without a terminal or a clock.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import time
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._approval.approval import (
    DECISIONS,
    MODES,
    PRIORITIES,
    ApprovalError,
    authenticated_identity,
    awx_evidence,
    build_request,
    build_vote,
    check_action,
    check_priority,
    check_vote,
    clean_evidence,
    effective_policy,
    identity,
    iso,
    require_awx,
    rule,
    tally,
    trusts_claimed_names,
    utc_now,
    verify_request,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import (
    DEFAULT_TABLE as DEFAULT_STORE_TABLE,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._approval.store import (
    STORE_ARGS,
    no_such_request,
    open_store,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import bounded
from ansible_collections.trdrhub.incident.plugins.module_utils._ledger.ledger import (
    PHASES,
    detect_actor,
    record_event,
    resolve_root,
    validate_incident_id,
)

GATE_ARGS: dict[str, dict[str, t.Any]] = {
    'incident_id': {'type': 'str', 'required': True},
    'action': {'type': 'str', 'required': True},
    'priority': {'type': 'str', 'required': True, 'choices': list(PRIORITIES)},
    'evidence': {'type': 'raw'},
    'summary': {'type': 'str'},
    'policy': {'type': 'dict'},
    'mode': {'type': 'str', 'default': 'store', 'choices': list(MODES)},
    'timeout': bounded({'type': 'float'}, above=0),
    'poll_interval': bounded({'type': 'float', 'default': 5}, above=0),
    'requester': {'type': 'str'},
    'preapproved_by': {'type': 'str'},
    'fail_on_denied': {'type': 'bool', 'default': True},
    'phase': {'type': 'str', 'choices': list(PHASES)},
    **STORE_ARGS,
}
VOTE_ARGS: dict[str, dict[str, t.Any]] = {
    'request_id': {'type': 'str', 'required': True, 'aliases': ['request']},
    'decision': {'type': 'str', 'required': True, 'choices': list(DECISIONS)},
    'approver': {'type': 'str'},
    'comment': {'type': 'str'},
    'evidence_hash': {'type': 'str'},
    'incident_id': {'type': 'str'},
    **STORE_ARGS,
}
_YES = ('y', 'yes', 'approve', 'approved')
EVIDENCE_SHOWN = 3000   # characters of evidence printed at the terminal; the store keeps all of it


def evidence_text(request: t.Mapping[str, t.Any], limit: int = EVIDENCE_SHOWN) -> str:
    text = json.dumps(request.get('evidence'), indent=1, sort_keys=True, ensure_ascii=False)
    if len(text) > limit:
        text = text[:limit] + f'\n... ({len(text) - limit} more characters in the stored request)'
    return text


class Recorder:
    """Appends ``approval`` events to the incident's ledger, where the ledger callback writes."""

    def __init__(self, params: t.Mapping[str, t.Any], *, base_dir: str | None, context: t.Mapping[str, t.Any],
                 env: t.Mapping[str, str], variables: t.Mapping[str, t.Any], secrets: t.Iterable[str]) -> None:
        self.params, self.base_dir, self.context, self.env = params, base_dir, context, env
        self.variables, self.secrets = variables, list(secrets)
        self.entries: list[dict[str, t.Any]] = []

    def __call__(self, kind: str, incident_id: str, msg: str, data: t.Mapping[str, t.Any], actor: str | None = None,
                 phase: str | None = None) -> dict[str, t.Any]:
        params = dict(self.params, incident_id=incident_id, event='approval', phase=phase, msg=msg,
                      data=dict(data, approval=kind), actor=actor)
        out = record_event(params, base_dir=self.base_dir, context=self.context, env=self.env, variables=self.variables,
                           secrets=self.secrets)
        self.entries.append({'kind': kind, 'seq': out['seq'], 'hash': out['hash']})
        return out


def plain_vote_command(extra_vars: t.Mapping[str, t.Any]) -> str:
    """The vote as an approve-playbook command line (the action plugin gives a complete one)."""
    return 'ansible-playbook trdrhub.incident.approve ' + ' '.join(
        f'-e {shlex.quote(f"{key}={value}")}' for key, value in extra_vars.items())


class Gate:
    """One approval request from start to outcome."""

    def __init__(self, params: t.Mapping[str, t.Any], *, record: Recorder, env: t.Mapping[str, str],
                 variables: t.Mapping[str, t.Any], context: t.Mapping[str, t.Any], base_dir: str | None = None,
                 secrets: t.Iterable[str] = (), ask: t.Callable[[str], str] | None = None,
                 say: t.Callable[[str], None] = lambda text: None, now: t.Callable[[], datetime.datetime] = utc_now,
                 sleep: t.Callable[[float], None] = time.sleep,
                 vote_command: t.Callable[[dict[str, t.Any]], str] | None = None) -> None:
        self.params, self.record, self.env, self.variables = params, record, env, variables
        self.vote_command = vote_command or plain_vote_command
        self.context, self.base_dir, self.secrets = context, base_dir, list(secrets)
        self.ask, self.say, self.now, self.sleep = ask, say, now, sleep
        self.incident_id = validate_incident_id(params['incident_id'])
        self.action = check_action(params['action'])
        self.priority = check_priority(params['priority'])
        self.phase = params.get('phase') or (variables.get('trdrhub_phase') if variables.get('trdrhub_phase') in PHASES else None)
        policy = effective_policy(params.get('policy'))
        self.required, self.rule_source = rule(policy, self.priority, self.action)
        self.timeout = float(params.get('timeout') or policy[self.priority]['timeout'])
        if self.timeout <= 0 or float(params.get('poll_interval') or 0) <= 0:
            raise ApprovalError('timeout and poll_interval must be positive numbers of seconds')
        detected, self.provenance = detect_actor(env, variables)
        self.requester = params.get('requester') or detected
        identity(self.requester)
        self.principal = authenticated_identity(detected, self.provenance, env)
        self.trust_claimed_names = trusts_claimed_names(policy, self.priority)
        self.mode = params.get('mode') or 'store'

    def run(self, check_mode: bool = False) -> dict[str, t.Any]:
        evidence = clean_evidence(self.params.get('evidence'), self.secrets)
        request = build_request(incident_id=self.incident_id, action=self.action, priority=self.priority,
                                summary=self.params.get('summary'), evidence=evidence, requester=self.requester,
                                requester_data=self.provenance, required=self.required, rule_source=self.rule_source,
                                mode='automatic' if self.required == 0 else self.mode, timeout=self.timeout,
                                context=self.context, now=self.now(), requester_principal=self.principal,
                                trust_claimed_names=self.trust_claimed_names)
        head = (f"{request['summary']} - {self.action}, {self.priority}, incident {self.incident_id}: "
                f"{self._needs()} ({self.rule_source}), requested by {self.requester}")
        if check_mode:
            self.say(f'Check mode: would ask for approval - {head}. Evidence sha256 {request["evidence_hash"]}.')
            return self._result(request, 'check_mode', {'approvers': [], 'deniers': [], 'ignored': []},
                                f'Check mode: would ask for approval - {head}. Nothing was requested or recorded.')
        if self.required == 0:
            self._record_request(request)
            return self._finish(request, None, 'approved', {'approvers': [], 'deniers': [], 'ignored': []},
                                f'Approved automatically by policy - {head}')
        if self.mode == 'auto':
            self._record_request(request)
            return self._finish(request, None, 'denied', {'approvers': [], 'deniers': [], 'ignored': []},
                                f'Not approved: {head}. Mode auto approves only what the policy marks automatic; '
                                'use mode store or prompt to collect the approvals.')
        if self.mode == 'preapproved':
            return self._preapproved(request, head)
        if self.mode == 'prompt':
            return self._prompt(request, head)
        return self._store(request, head)

    def _needs(self) -> str:
        return 'automatic' if self.required == 0 else f'{self.required} approver(s) other than the requester'

    def _record_request(self, request: t.Mapping[str, t.Any], **extra: t.Any) -> None:
        data = {k: request[k] for k in ('request_id', 'action', 'priority', 'summary', 'evidence', 'evidence_hash',
                                        'required', 'rule', 'mode', 'timeout', 'expires_at', 'requester_principal',
                                        'trust_claimed_names')}
        self.record('request', self.incident_id, f"Approval requested ({request['mode']}): {request['summary']}",
                    dict(data, **extra), phase=self.phase)

    def _finish(self, request: t.Mapping[str, t.Any], keeper: t.Any, status: str, counts: t.Mapping[str, t.Any],
                msg: str, **extra: t.Any) -> dict[str, t.Any]:
        outcome = {'status': status, 'approvers': counts['approvers'], 'deniers': counts['deniers'],
                   'ignored': counts['ignored'], 'decided_at': iso(self.now()), 'reason': msg, **extra}
        if keeper is not None:
            keeper.finish(request, status, outcome)
        self.record('outcome', self.incident_id, msg, dict(outcome, request_id=request['request_id'],
                                                           evidence_hash=request['evidence_hash'], required=self.required),
                    phase=self.phase)
        return self._result(request, status, counts, msg, **extra)

    def _result(self, request: t.Mapping[str, t.Any], status: str, counts: t.Mapping[str, t.Any], msg: str,
                **extra: t.Any) -> dict[str, t.Any]:
        approved = status == 'approved'
        out = {'changed': status != 'check_mode', 'approved': approved, 'status': status, 'msg': msg,
               'request_id': request['request_id'], 'request': request, 'evidence_hash': request['evidence_hash'],
               'required': self.required, 'rule': self.rule_source, 'mode': request['mode'], 'requester': self.requester,
               'approvers': counts['approvers'], 'deniers': counts['deniers'], 'ignored_votes': counts['ignored'],
               'ledger_entries': self.record.entries, **extra}
        if not approved and status != 'check_mode' and self.params.get('fail_on_denied', True):
            out['failed'] = True
        return out

    # -- modes -------------------------------------------------------------------------------------
    def _preapproved(self, request: dict[str, t.Any], head: str) -> dict[str, t.Any]:
        found = awx_evidence(self.variables, self.env)
        by = self.params.get('preapproved_by')
        if not (found['job_id'] or found['workflow_job_id']) and by:
            request['preapproval'] = {'by': by, 'asserted_by': self.requester}
            self._record_request(request, preapproval=request['preapproval'])
            return self._finish(request, None, 'approved', {'approvers': [by], 'deniers': [], 'ignored': []},
                                f'Pre-approved by {by} (asserted by {self.requester}) - {head}', preapproval=request['preapproval'])
        request['preapproval'] = {'awx': found}
        self._record_request(request, preapproval=request['preapproval'])
        try:
            require_awx(found)
        except ApprovalError as exc:
            return self._finish(request, None, 'denied', {'approvers': [], 'deniers': [], 'ignored': []}, str(exc))
        who = f"awx workflow job {found['workflow_job_id']}"
        return self._finish(request, None, 'approved', {'approvers': [who], 'deniers': [], 'ignored': []},
                            f"Pre-approved by the approval node of AWX workflow job {found['workflow_job_id']} "
                            f"(job {found['job_id']}) - {head}", preapproval=request['preapproval'])

    def _prompt(self, request: dict[str, t.Any], head: str) -> dict[str, t.Any]:
        if self.ask is None:
            raise ApprovalError('mode prompt needs an interactive terminal, and this run has none (AWX, cron, CI, '
                                'or stdin is not a terminal). Use mode store: approvers then vote with '
                                'ansible-playbook trdrhub.incident.approve -e request=<id> -e decision=approve.')
        self.say(f"APPROVAL NEEDED {request['request_id']}: {head}\nEvidence (sha256 {request['evidence_hash']}):\n"
                 f'{evidence_text(request)}')
        votes: list[dict[str, t.Any]] = []
        counts = tally(request, votes, self.now())
        recorded = False
        while counts['status'] == 'pending':
            name = self.ask(f"Approver {len(counts['approvers']) + 1} of {self.required}: your name (not {self.requester}; "
                            'empty to stop)').strip()
            if not recorded:   # the first answer proves there is a terminal; only then is the request made
                self._record_request(request)
                recorded = True
            if not name:
                break
            try:
                check_vote(request, approver=name, decision='approve', now=self.now())
                if identity(name) in {identity(v['approver']) for v in votes}:
                    raise ApprovalError(f'{name} has voted already; another person has to approve.')
            except ApprovalError as exc:
                self.say(f'Refused: {exc}')
                if 'expired' in str(exc):
                    break
                continue
            answer = self.ask(f"{name}: approve {self.action} for incident {self.incident_id}? (yes/no)").strip().lower()
            vote = build_vote(request, approver=name, decision='approve' if answer in _YES else 'deny', comment=None,
                              recorded_by=self.requester, source='prompt', now=self.now())
            votes.append(vote)
            self._record_vote(request, vote)
            counts = tally(request, votes, self.now())
        if counts['status'] == 'pending':
            counts = dict(counts, status='denied')
        return self._finish(request, None, counts['status'], counts, self._verdict(request, counts))

    def _store(self, request: dict[str, t.Any], head: str) -> dict[str, t.Any]:
        with open_store(self.params, self.base_dir, self.env) as store:
            store.create(request)
            where = store.location(self.incident_id)
            try:
                self._record_request(request, store=where)
            except TrdrhubError as exc:   # the ledger or its database refused the entry
                store.finish(request, 'denied', {'status': 'denied', 'reason': f'the request could not be recorded: {exc}'})
                raise
            rid = request['request_id']
            self.say(f'APPROVAL NEEDED {rid}: {head}\nEvidence (sha256 {request["evidence_hash"]}):\n{evidence_text(request)}\n'
                     f"Waiting until {request['expires_at']} for {self._needs()}. Vote from any shell - to approve:\n"
                     f"  {self.vote_command(self._vote_vars(rid, 'approve'))}\n"
                     f"to deny:\n  {self.vote_command(self._vote_vars(rid, 'deny'))}")
            started = time.monotonic()
            told: set[str] = set()
            while True:
                stored = store.get(rid, self.incident_id)
                if stored is None or stored.get('evidence_hash') != request['evidence_hash']:
                    raise ApprovalError(f'Approval request {rid} disappeared from {where} or names other evidence now; '
                                        'nothing was approved.')
                verify_request(stored)
                counts = tally(request, store.votes(request), self.now())
                for item in counts['ignored']:
                    line = f"Vote of {item['approver']} on {rid} does NOT count: {item['reason']}."
                    if line not in told:
                        told.add(line)
                        self.say(line)
                if counts['status'] != 'pending':
                    break
                self.sleep(float(self.params.get('poll_interval') or 5))
            return self._finish(request, store, counts['status'], counts, self._verdict(request, counts),
                                store=where, waited=round(time.monotonic() - started, 1))

    def _vote_vars(self, request_id: str, decision: str) -> dict[str, t.Any]:
        """The approve playbook's variables for a vote on this request in this gate's store."""
        out: dict[str, t.Any] = {'request': request_id, 'decision': decision, 'incident': self.incident_id}
        if (self.params.get('store_backend') or 'dir') != 'dir':
            out.update(store_backend=self.params['store_backend'], store_table=self.params.get('store_table') or DEFAULT_STORE_TABLE)
        elif self.params.get('store_dir'):
            out['store_dir'] = resolve_root(self.params['store_dir'], self.base_dir)
        return out

    def _record_vote(self, request: t.Mapping[str, t.Any], vote: t.Mapping[str, t.Any]) -> None:
        self.record('vote', self.incident_id, f"{vote['approver']} voted {vote['decision']} on {request['request_id']}",
                    dict(vote), actor=vote['approver'], phase=self.phase)

    def _verdict(self, request: t.Mapping[str, t.Any], counts: t.Mapping[str, t.Any]) -> str:
        text = self._decision(request, counts)
        if counts['ignored']:
            ignored = '; '.join(f"{item['approver']} ({item['reason']})" for item in counts['ignored'])
            text += ' Votes that did not count: ' + ignored + '.'
        return text

    def _decision(self, request: t.Mapping[str, t.Any], counts: t.Mapping[str, t.Any]) -> str:
        rid, status = request['request_id'], counts['status']
        if status == 'approved':
            return f"Approved {rid} by {', '.join(counts['approvers'])}: {request['summary']}"
        if status == 'expired':
            return (f"NOT approved: {rid} timed out after {self.timeout:g}s with {len(counts['approvers'])} of "
                    f"{self.required} approval(s); a timeout is a denial, nothing after the gate runs.")
        if counts['deniers']:
            return f"DENIED {rid} by {', '.join(counts['deniers'])}: {request['summary']}; nothing after the gate runs."
        return (f"NOT approved: {rid} got {len(counts['approvers'])} of {self.required} approval(s) at the terminal; "
                'nothing after the gate runs.')


def cast_vote(params: t.Mapping[str, t.Any], *, check_mode: bool = False, base_dir: str | None = None,
              env: t.Mapping[str, str] | None = None, variables: t.Mapping[str, t.Any] | None = None,
              context: t.Mapping[str, t.Any] | None = None, secrets: t.Iterable[str] = ()) -> dict[str, t.Any]:
    """One approver's vote: checked against the request, stored once, recorded in the incident ledger."""
    env = os.environ if env is None else env
    variables = variables or {}
    runner, provenance = detect_actor(env, variables)
    approver = params.get('approver') or runner
    incident = validate_incident_id(params['incident_id']) if params.get('incident_id') else None
    with open_store(params, base_dir, env) as store:
        request = store.get(params['request_id'], incident)
        if request is None:
            raise no_such_request(params['request_id'], store, incident)
        principal = authenticated_identity(runner, provenance, env)
        check_vote(request, approver=approver, runner=runner, runner_source=provenance.get('actor_source'),
                   decision=params['decision'], given_hash=params.get('evidence_hash'), principal=principal,
                   votes=store.votes(request))
        recorded_by = runner if params.get('approver') else None
        vote = build_vote(request, approver=approver, decision=params['decision'], comment=params.get('comment'),
                          recorded_by=recorded_by, source=provenance.get('actor_source'), principal=principal)
        result = {'changed': not check_mode, 'request_id': request['request_id'], 'incident_id': request['incident_id'],
                  'vote': vote, 'request': request, 'evidence_hash': request['evidence_hash'], 'store': store.location(request['incident_id'])}
        if check_mode:
            return dict(result, msg=f"Check mode: {approver} would vote {params['decision']} on {request['request_id']}.")
        # The ledger entry comes first: a gate polling the store may count the vote and record its outcome the
        # moment the vote is stored, and the ledger must show the vote before the outcome it led to.
        record = Recorder(params, base_dir=base_dir, context=context or {}, env=env, variables=variables, secrets=secrets)
        msg = f"{approver} voted {params['decision']} on {request['request_id']} ({request['summary']})"
        try:
            record('vote', request['incident_id'], msg, dict(vote, required=request['required']), actor=approver)
        except TrdrhubError as exc:   # the ledger or its database refused the entry
            raise ApprovalError(f'The vote was NOT cast: the incident ledger refused its entry ({exc}); nothing was stored.') from None
        try:
            store.add_vote(request, vote)
        except TrdrhubError as exc:   # a vote of the same person got there first, or the store refused the write
            void = f"The vote of {approver} on {request['request_id']} was not stored and does not count: {exc}"
            try:
                record('void', request['incident_id'], void, {'request_id': request['request_id'], 'identity': vote['identity']},
                       actor=approver)
            except TrdrhubError as ledger_exc:
                raise ApprovalError(f'{void} The ledger shows the vote; recording that it does not count failed too: '
                                    f'{ledger_exc}') from None
            raise
        counts = tally(request, store.votes(request))
    return dict(result, msg=msg, approvals=len(counts['approvers']), required=request['required'],
                quorum=counts['status'] == 'approved', ledger_entries=record.entries)
