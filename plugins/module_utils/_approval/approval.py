# Copyright: (c) 2025, TRDR Hub SRE <sre@trdrhub.example>
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# This module_utils file is private to this collection; its API may change without notice.

"""Approvals before a destructive step: policy, identities, evidence hashes, votes and quorum.

Pure logic on plain data, shared by the ``approval`` gate, the ``approval_vote`` module and
``scripts/approve.py``. The two-person rule lives here once: the requester never approves,
approvers are counted once each (compared without case and without their ``awx:``,
``rundeck:`` or ``local:`` prefix), one denial denies, and a vote must name the evidence
hash of the request, so what was approved is what runs.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import pwd
import re
import secrets as _secrets
import typing as t

from ansible_collections.trdrhub.incident.plugins.module_utils._common.errors import (
    TrdrhubError,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.redaction import (
    Redactor,
    jsonable,
)
from ansible_collections.trdrhub.incident.plugins.module_utils._common.spec import kind_of
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import iso_seconds as iso  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.trdrhub.incident.plugins.module_utils._common.time import parse_time, utc_now

PRIORITIES = ('P1', 'P2', 'P3', 'P4')
ACTIONS = ('terminate_sessions', 'rotate_secrets', 'rollback', 'block_ips', 'restore_db', 'contain_app', 'restart_app',
           'unblock_ips')
MODES = ('prompt', 'store', 'preapproved', 'auto')
DECISIONS = ('approve', 'deny')
LEVELS = {'automatic': 0, 'one': 1, 'two': 2}
LEVEL_NAMES = {0: 'automatic', 1: 'one approver', 2: 'two approvers'}
REQUEST_VERSION = 1
_RESERVED = ('timeout', 'default', 'trust_claimed_names')
NO_LOGINUID = 4294967295   # /proc/self/loginuid of a process outside any login session
_ACTION = re.compile(r'[a-z][a-z0-9_]{0,63}')
_REQUEST_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,127}')
_ACTOR_PREFIX = re.compile(r'^(?:awx|tower|rundeck|local):', re.IGNORECASE)

# Approvers needed per priority and action; 'default' for actions not listed; 'timeout' in seconds.
# P1/P2: speed matters, so reversible steps need one approver and irreversible ones
# (secrets rotated, a database restored) two. P3: only the quick, reversible steps with one.
# P4: nothing is urgent, every destructive step gets the full two-person rule.
DEFAULT_POLICY: dict[str, dict[str, t.Any]] = {
    'P1': {'timeout': 900, 'default': 'one', 'terminate_sessions': 'one', 'block_ips': 'one', 'rollback': 'one',
           'rotate_secrets': 'two', 'restore_db': 'two'},
    'P2': {'timeout': 1800, 'default': 'one', 'terminate_sessions': 'one', 'block_ips': 'one', 'rollback': 'one',
           'rotate_secrets': 'two', 'restore_db': 'two'},
    'P3': {'timeout': 3600, 'default': 'two', 'terminate_sessions': 'one', 'block_ips': 'one', 'rollback': 'two',
           'rotate_secrets': 'two', 'restore_db': 'two'},
    'P4': {'timeout': 14400, 'default': 'two', 'terminate_sessions': 'two', 'block_ips': 'two', 'rollback': 'two',
           'rotate_secrets': 'two', 'restore_db': 'two'},
}
MAX_APPROVERS = 5


class ApprovalError(TrdrhubError):
    """A request, a vote or a policy the gate cannot accept; ``str(exc)`` is the user's message."""


class DuplicateVote(ApprovalError):
    """This approver has already voted on this request."""


def parse_iso(text: t.Any) -> datetime.datetime:
    """A stored time of a request or vote (``_common/time.parse_time``); a bad one is an ApprovalError."""
    try:
        return parse_time(str(text), required=True)
    except ValueError:
        raise ApprovalError(f'{text!r} is not an ISO 8601 time') from None


# -- policy ----------------------------------------------------------------------------------------
def _level(value: t.Any, where: str) -> int:
    if isinstance(value, bool):
        raise ApprovalError(f'{where} must be automatic, one, two or a number of approvers, got {value!r}')
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
    elif str(value).strip().lower() in LEVELS:
        number = LEVELS[str(value).strip().lower()]
    else:
        raise ApprovalError(f'{where} must be automatic, one, two or a number of approvers, got {value!r}')
    if not 0 <= number <= MAX_APPROVERS:
        raise ApprovalError(f'{where} must be between 0 (automatic) and {MAX_APPROVERS} approvers, got {number}')
    return number


def check_action(action: t.Any) -> str:
    text = str(action or '').strip()
    if not _ACTION.fullmatch(text):
        raise ApprovalError(f'action {action!r} is not an action name: lower-case letters, digits and "_", '
                            f'for example {", ".join(ACTIONS)}')
    return text


def check_priority(priority: t.Any) -> str:
    text = str(priority or '').strip().upper()
    if text not in PRIORITIES:
        raise ApprovalError(f'priority must be one of {", ".join(PRIORITIES)}, got {priority!r}')
    return text


def effective_policy(override: t.Any = None) -> dict[str, dict[str, t.Any]]:
    """DEFAULT_POLICY with ``override`` merged per priority, every value checked and made a number."""
    merged = copy.deepcopy(DEFAULT_POLICY)
    if override in (None, ''):
        override = {}
    if not isinstance(override, t.Mapping):
        raise ApprovalError(f'policy must be a mapping of priorities (P1..P4), got {kind_of(override)}')
    for prio, rules in override.items():
        key = check_priority(prio)
        if not isinstance(rules, t.Mapping):
            raise ApprovalError(f'policy.{prio} must be a mapping of actions (and timeout, default) to approvers, got {kind_of(rules)}')
        for name, value in rules.items():
            merged[key][name if name in _RESERVED else check_action(name)] = value
    for prio, rules in merged.items():
        for name, value in list(rules.items()):
            if name == 'trust_claimed_names':
                if not isinstance(value, bool):
                    raise ApprovalError(f'policy.{prio}.trust_claimed_names must be true or false, got {value!r}')
            elif name == 'timeout':
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ApprovalError(f'policy.{prio}.timeout must be a positive number of seconds, got {value!r}')
            else:
                rules[name] = _level(value, f'policy.{prio}.{name}')
    return merged


def rule(policy: t.Mapping[str, t.Any], priority: str, action: str) -> tuple[int, str]:
    """(approvers required, where the rule comes from) for one priority and action."""
    rules = policy[priority]
    if action in rules:
        return rules[action], f'policy.{priority}.{action}'
    return rules['default'], f'policy.{priority}.default'


def trusts_claimed_names(policy: t.Mapping[str, t.Any], priority: str) -> bool:
    """Whether a priority counts claimed approver names (``-e approver=...``) as persons: weaker, off by default."""
    return bool(policy[priority].get('trust_claimed_names', False))


# -- identities ------------------------------------------------------------------------------------
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f'uid-{uid}'


def os_login(env: t.Mapping[str, str], loginuid_path: str = '/proc/self/loginuid') -> str:
    """The OS account of the person at the keyboard, from what the kernel says rather than $USER.

    The audit login uid survives ``su`` and ``sudo``; without one (containers, cron), root's
    ``SUDO_USER`` names who ran sudo; otherwise the effective uid.
    """
    try:
        with open(loginuid_path, encoding='ascii') as handle:
            login = int(handle.read().strip())
    except (OSError, ValueError):
        login = NO_LOGINUID
    if login not in (NO_LOGINUID, -1):
        return _user_name(login)
    uid = os.geteuid()
    if uid == 0 and env.get('SUDO_USER'):
        return str(env['SUDO_USER'])
    return _user_name(uid)


def authenticated_identity(actor: str, provenance: t.Mapping[str, t.Any], env: t.Mapping[str, str],
                           login: t.Callable[[t.Mapping[str, str]], str] = os_login) -> str:
    """Who really runs this: the AWX or Rundeck user the scheduler reports, else the OS login (``os:<name>``).

    This, not a name given with ``approver``, is what the two-person rule counts.
    """
    if provenance.get('actor_source') in ('awx', 'rundeck'):
        return str(actor).strip().lower()
    return f'os:{login(env)}'.lower()


def identity(name: t.Any) -> str:
    """The person behind a name: ``awx:Alice``, ``local:alice`` and ``alice`` are one person."""
    text = _ACTOR_PREFIX.sub('', str(name or '').strip()).strip().lower()
    if not text or text in ('unknown',):
        raise ApprovalError(f'{name!r} does not name a person')
    return text


def slug(name: str) -> str:
    """A file-name-safe, collision-free key for one identity (the vote file name)."""
    ident = identity(name)
    safe = re.sub(r'[^a-z0-9._-]', '_', ident)[:48]
    if safe != ident:
        safe += '-' + hashlib.sha256(ident.encode()).hexdigest()[:8]
    return safe


def check_request_id(request_id: t.Any) -> str:
    text = str(request_id or '').strip()
    if not _REQUEST_ID.fullmatch(text) or '..' in text:
        raise ApprovalError(f'{request_id!r} is not an approval request id (for example req-3f9a1c2b7d4e)')
    return text


def new_request_id() -> str:
    return 'req-' + _secrets.token_hex(6)


# -- evidence --------------------------------------------------------------------------------------
def canonical(value: t.Any) -> bytes:
    return json.dumps(jsonable(value), sort_keys=True, separators=(',', ':'), ensure_ascii=False, allow_nan=False).encode()


def evidence_hash(evidence: t.Any) -> str:
    """SHA-256 of the (already redacted) evidence as compact JSON with sorted keys."""
    return hashlib.sha256(canonical(evidence)).hexdigest()


def clean_evidence(evidence: t.Any, secrets: t.Iterable[str] = ()) -> t.Any:
    """The evidence as it is stored and shown: every secret removed."""
    return Redactor(secrets).clean(evidence if evidence is not None else {})


def build_request(*, incident_id: str, action: str, priority: str, summary: str | None, evidence: t.Any,
                  requester: str, requester_data: t.Mapping[str, t.Any], required: int, rule_source: str,
                  mode: str, timeout: float, context: t.Mapping[str, t.Any] | None = None,
                  now: datetime.datetime | None = None, request_id: str | None = None,
                  requester_principal: str | None = None, trust_claimed_names: bool = False) -> dict[str, t.Any]:
    now = now or utc_now()
    context = context or {}
    return {
        'v': REQUEST_VERSION, 'request_id': request_id or new_request_id(), 'incident_id': incident_id,
        'action': action, 'priority': priority, 'summary': summary or f'{action} ({priority})',
        'evidence': evidence, 'evidence_hash': evidence_hash(evidence),
        'requester': requester, 'requester_source': requester_data.get('actor_source'),
        'job_id': requester_data.get('job_id'), 'requester_principal': requester_principal,
        'trust_claimed_names': bool(trust_claimed_names), 'required': required, 'rule': rule_source, 'mode': mode,
        'timeout': timeout, 'created_at': iso(now), 'expires_at': iso(now + datetime.timedelta(seconds=timeout)),
        'host': context.get('host'), 'play': context.get('play'), 'task': context.get('task'),
        'status': 'pending', 'outcome': None,
    }


def verify_request(request: t.Mapping[str, t.Any]) -> None:
    """A stored request whose evidence no longer hashes to its evidence_hash was altered: refuse it."""
    if evidence_hash(request.get('evidence')) != request.get('evidence_hash'):
        raise ApprovalError(f"Approval request {request.get('request_id')}: its evidence does not match its evidence hash "
                            f"{str(request.get('evidence_hash'))[:16]}... - the request was altered after it was made. "
                            'Nothing can be approved with it; make a new request.')


# -- votes -----------------------------------------------------------------------------------------
def principal_conflict(request: t.Mapping[str, t.Any], principal: str | None,
                       counted: t.Mapping[str, str]) -> str | None:
    """Why a vote cast from ``principal`` is not another person's, or None when it may count.

    Outside AWX and Rundeck a name given with ``approver`` is only a claim: the account the vote
    came from must differ from the requester's and from every account whose vote already counts.
    Votes typed at the requester's own terminal (mode prompt), requests made before identities were
    recorded, and a policy that trusts claimed names are judged by the names alone.
    """
    mine = request.get('requester_principal')
    if not mine or request.get('trust_claimed_names') or request.get('mode') == 'prompt':
        return None
    if not principal:
        return 'no authenticated identity (OS login, AWX or Rundeck user) was recorded with the vote'
    if principal == mine:
        return (f"cast from {principal}, the requester's own account - a name given with approver= is a claim, "
                'not another person (two-person rule)')
    if principal in counted:
        return f'cast from {principal}, whose vote already counts as {counted[principal]} - one account counts once'
    return None


def check_vote(request: t.Mapping[str, t.Any], *, approver: str, runner: str | None = None,
               runner_source: str | None = None, decision: str, given_hash: str | None = None,
               now: datetime.datetime | None = None, principal: str | None = None,
               votes: t.Iterable[t.Mapping[str, t.Any]] | None = None) -> None:
    """Refuse a vote the gate would not count: the reason names the rule it breaks."""
    now = now or utc_now()
    rid = request.get('request_id')
    if decision not in DECISIONS:
        raise ApprovalError(f'decision must be approve or deny, got {decision!r}')
    verify_request(request)
    if request.get('status') != 'pending':
        raise ApprovalError(f"Approval request {rid} is {request.get('status')}, not pending: votes are closed.")
    if now >= parse_iso(request['expires_at']):
        raise ApprovalError(f"Approval request {rid} expired at {request['expires_at']}: votes are closed.")
    if identity(approver) == identity(request['requester']):
        raise ApprovalError(f"{approver} requested {rid} and cannot approve or deny it (two-person rule): "
                            'another person has to vote.')
    if runner and runner_source in ('awx', 'rundeck') and identity(runner) == identity(request['requester']):
        raise ApprovalError(f'{runner} requested {rid}; voting as {approver} from the requester\'s own job is refused '
                            '(two-person rule).')
    if votes is not None:
        conflict = principal_conflict(request, principal, tally(request, votes, now)['principals'])
        if conflict:
            raise ApprovalError(f'The vote of {approver} on {rid} would not count: {conflict}. Vote from your own '
                                'account (your OS login on the controller, or your AWX or Rundeck user).')
    if given_hash is not None:
        want = str(request['evidence_hash'])
        given = str(given_hash).strip().lower()
        if len(given) < 12 or not want.startswith(given):
            raise ApprovalError(f'Approval request {rid}: the evidence hash given ({given[:16] or "empty"}) is not the '
                                f'request\'s ({want[:16]}...): the evidence changed since it was reviewed. Review it again.')


def build_vote(request: t.Mapping[str, t.Any], *, approver: str, decision: str, comment: str | None,
               recorded_by: str | None, source: str | None, now: datetime.datetime | None = None,
               principal: str | None = None) -> dict[str, t.Any]:
    return {'v': REQUEST_VERSION, 'request_id': request['request_id'], 'approver': approver, 'identity': identity(approver),
            'decision': decision, 'evidence_hash': request['evidence_hash'], 'comment': comment or None,
            'recorded_by': recorded_by, 'actor_source': source, 'principal': principal, 'ts': iso(now or utc_now())}


def tally(request: t.Mapping[str, t.Any], votes: t.Iterable[t.Mapping[str, t.Any]],
          now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """The request's state from its votes: approved, denied, expired or pending.

    Votes are checked again here (a vote file could have been written by hand): the requester's,
    a second one of the same person or from the same account (``principal_conflict``), one on
    other evidence or one cast after expiry do not count.
    """
    now = now or utc_now()
    approvers: list[str] = []
    deniers: list[str] = []
    ignored: list[dict[str, t.Any]] = []
    seen: set[str] = set()
    principals: dict[str, str] = {}
    requester = identity(request['requester'])
    expires = parse_iso(request['expires_at'])
    for vote in sorted(votes, key=lambda v: str(v.get('ts'))):
        who = str(vote.get('approver') or '')
        reason = None
        try:
            ident = identity(who)
        except ApprovalError:
            ident, reason = '', 'no approver named'
        if reason is None and ident == requester:
            reason = 'the requester cannot vote (two-person rule)'
        elif reason is None and ident in seen:
            reason = 'a second vote of the same person'
        elif reason is None and vote.get('evidence_hash') != request.get('evidence_hash'):
            reason = 'cast on other evidence (evidence hash differs)'
        elif reason is None and vote.get('decision') not in DECISIONS:
            reason = f"unknown decision {vote.get('decision')!r}"
        elif reason is None and parse_iso(vote.get('ts') or iso(now)) > expires:
            reason = 'cast after the request expired'
        if reason is None:
            reason = principal_conflict(request, vote.get('principal'), principals)
        if reason:
            ignored.append({'approver': who, 'reason': reason})
            continue
        seen.add(ident)
        if vote.get('principal'):
            principals[str(vote['principal'])] = who
        (approvers if vote['decision'] == 'approve' else deniers).append(who)
    required = int(request['required'])
    if deniers:
        status = 'denied'
    elif len(approvers) >= required:
        status = 'approved'
    elif now >= expires:
        status = 'expired'
    else:
        status = 'pending'
    return {'status': status, 'approvers': approvers, 'deniers': deniers, 'ignored': ignored,
            'required': required, 'missing': max(0, required - len(approvers)), 'principals': principals}


# -- AWX workflow approval (mode preapproved) ------------------------------------------------------
_AWX_VAR = re.compile(r'^(awx|tower)_')
_AWX_ENV = re.compile(r'^(AWX|TOWER)_')


def awx_evidence(variables: t.Mapping[str, t.Any], env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """What AWX told this job about itself: its job id, its workflow job id, and every awx_/tower_ variable."""
    found_vars = {k: v for k, v in variables.items() if _AWX_VAR.match(str(k))}
    found_env = {k: v for k, v in env.items() if _AWX_ENV.match(str(k))}
    job = (found_vars.get('awx_job_id') or found_vars.get('tower_job_id') or env.get('AWX_JOB_ID') or env.get('JOB_ID'))
    workflow = (found_vars.get('awx_workflow_job_id') or found_vars.get('tower_workflow_job_id')
                or env.get('AWX_WORKFLOW_JOB_ID'))
    return {'job_id': None if job in (None, '') else str(job), 'workflow_job_id': None if workflow in (None, '') else str(workflow),
            'variables': clean_evidence(found_vars), 'environment': clean_evidence(found_env)}


def require_awx(found: t.Mapping[str, t.Any]) -> None:
    missing = [name for name, key in (('awx_job_id', 'job_id'), ('awx_workflow_job_id', 'workflow_job_id')) if not found.get(key)]
    if missing:
        raise ApprovalError(f'mode preapproved needs the AWX workflow that approved this step: {" and ".join(missing)} '
                            'not set. Run the job template as a node of an AWX workflow after an approval node (AWX passes '
                            'awx_job_id and awx_workflow_job_id), or use mode store or prompt.')
