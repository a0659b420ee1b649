"""The sandbox page: what the playbooks "sent", as people would look at it.

One page at ``http://127.0.0.1:<port>/``: the public status page as a customer sees it
(components and incidents with their updates, from the Statuspage contract server), the
Slack channel, the emails (SMTP), the PagerDuty incidents and each incident's ledger
timeline (the incidents home). ``/api/state`` returns the same as JSON. The page reloads
itself every five seconds.

The ledger timeline shows the entries people read an incident by: playbook starts and ends,
the first task of each phase, incident record changes, decisions, findings, approvals (the
gates), verifications, communications and failed tasks; ``/?ledger=all`` lists every entry.

``POST /api/fault`` with ``{"fault": NAME}`` and the header ``X-Sandbox-Token`` (the
``TRDRHUB_SANDBOX_TOKEN`` of the env file) injects a fault (``sandbox.FAULTS``); this is what
``python -m trdrhub_harness fault NAME`` calls.
"""
from __future__ import annotations

import datetime
import hmac
import html
import json
from pathlib import Path
from typing import Any, Dict, List

from ._common import HarnessError
from ._inproc import InProcessHTTPServer, json_answer

_COMPONENT_WORDS = {"operational": "Operational", "degraded_performance": "Degraded performance",
                    "partial_outage": "Partial outage", "major_outage": "Major outage",
                    "under_maintenance": "Under maintenance"}
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;color:#172b4d}
header{background:#172b4d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
main{display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px 24px}
section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.15)}
section.wide{grid-column:1 / span 2}h2{font-size:16px;margin:4px 0 10px}
.banner{padding:12px;border-radius:4px;font-weight:600;margin-bottom:10px;color:#fff}
.ok{background:#36b37e}.minor{background:#ffab00}.major{background:#ff5630}.critical{background:#bf2600}
.none{background:#36b37e}.comp{display:flex;justify-content:space-between;border-bottom:1px solid #eee;padding:6px 0}
.st-operational{color:#36b37e}.st-degraded_performance{color:#ffab00}.st-partial_outage{color:#ff8b00}
.st-major_outage{color:#de350b}.st-under_maintenance{color:#0065ff}
.incident{border-left:4px solid #de350b;padding:4px 10px;margin:10px 0}.incident.resolved{border-color:#36b37e}
.upd{margin:6px 0 6px 8px;font-size:14px}.upd b{text-transform:capitalize}.muted{color:#6b778c;font-size:12px}
.msg{border-bottom:1px solid #eee;padding:6px 0;font-size:14px;white-space:pre-wrap}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
code{font-size:12px}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _text_of(message) -> str:
    body = message.get_body(preferencelist=("plain", "html")) if hasattr(message, "get_body") else None
    try:
        return body.get_content() if body is not None else ""
    except (KeyError, LookupError):
        return ""


def read_ledger(path: Path) -> List[dict]:
    entries = []
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    entries.append({"event": "UNREADABLE LINE", "data": {"line": line[:200]}})
    except OSError:
        pass
    return entries


def _entry_what(entry: dict) -> str:
    data = entry.get("data") or {}
    parts = [str(entry["task"])] if entry.get("task") else []
    for key in ("task", "action", "approval", "approver", "decision", "channel", "summary", "msg", "message", "status",
                "playbook"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, (str, int, float)) and str(value) and str(value) not in parts:
            parts.append(str(value))
    return " - ".join(parts)[:300]


def key_entries(entries: List[dict]) -> List[dict]:
    """The entries of a timeline people read: everything but routine tasks, plus each phase's first task."""
    out, phase = [], None
    for entry in entries:
        event = entry.get("event")
        if event != "task":
            out.append(entry)
            continue
        if entry.get("phase") and entry.get("phase") != phase:
            phase = entry.get("phase")
            out.append(dict(entry, event=f"phase {phase}"))
        elif entry.get("failed"):
            out.append(entry)
    return out


class Dashboard(InProcessHTTPServer):
    name = "sandbox-page"

    def __init__(self, sandbox) -> None:
        super().__init__()
        self.sandbox = sandbox

    # -- state ---------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        box = self.sandbox
        page_id = box.page.id
        incidents = box.statuspage.incidents(page_id)
        components = box.statuspage.components(page_id)
        slack = box.slack.messages(box.webhook)
        with box.smtp.lock:
            mails = [{"from": m["mail_from"], "to": m["rcpt_tos"], "subject": str(m["message"]["subject"] or ""),
                      "date": str(m["message"]["date"] or ""), "text": _text_of(m["message"])[:4000]}
                     for m in box.smtp.messages]
        with box.pagerduty.lock:
            pd = [{"dedup_key": dedup, "status": inc["status"], "summary": inc["payload"].get("summary"),
                   "severity": inc["payload"].get("severity"), "history": list(inc["history"])}
                  for (key, dedup), inc in box.pagerduty.incidents.items() if key == box.routing_key]
        ledgers = {}
        if box.incidents_dir.is_dir():
            for ledger in sorted(box.incidents_dir.glob("*/ledger.jsonl")):
                ledgers[ledger.parent.name] = read_ledger(ledger)
        return {"statuspage": {"page_id": page_id, "components": components, "incidents": incidents},
                "slack": slack, "emails": mails, "pagerduty": pd, "ledgers": ledgers}

    # -- HTTP ----------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        path, _q, query = path.partition("?")
        if path == "/api/fault":
            return self.fault(method, headers, body)
        if method != "GET":
            return json_answer(405, {"error": "GET only"})
        if path == "/api/state":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.state(), default=str, indent=1).encode()
        if path in ("/", "/index.html"):
            full = "ledger=all" in query.split("&")
            return 200, {"Content-Type": "text/html; charset=utf-8"}, self.render(full_ledger=full).encode("utf-8")
        return json_answer(404, {"error": "not found"})

    def fault(self, method: str, headers: Dict[str, str], body: bytes):
        from .sandbox import FAULTS

        if method == "GET":
            return json_answer(200, {"faults": FAULTS})
        if method != "POST":
            return json_answer(405, {"error": "GET or POST"})
        token = headers.get("x-sandbox-token", "")
        if not hmac.compare_digest(token.encode(), self.sandbox.control_token.encode()):
            return json_answer(403, {"error": "X-Sandbox-Token is missing or wrong (TRDRHUB_SANDBOX_TOKEN in the env file)"})
        try:
            name = json.loads(body or b"{}").get("fault")
        except (ValueError, AttributeError):
            return json_answer(400, {"error": "the body must be a JSON object like {\"fault\": \"db-down\"}"})
        if name not in FAULTS:
            return json_answer(400, {"error": f"fault must be one of {', '.join(FAULTS)}, not {name!r}"})
        try:
            done = self.sandbox.inject_from_thread(name)
        except HarnessError as exc:
            return json_answer(409, {"fault": name, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the answer says what failed instead of dropping the connection
            return json_answer(500, {"fault": name, "error": f"{type(exc).__name__}: {str(exc).strip()}"})
        return json_answer(200, {"fault": name, "done": done})

    def render(self, full_ledger: bool = False) -> str:
        st = self.state()
        sp = st["statuspage"]
        open_incidents = [i for i in sp["incidents"] if i["status"] != "resolved"]
        worst = max((i.get("impact") or "none" for i in open_incidents),
                    key=["none", "minor", "major", "critical"].index, default="none")
        banner = ("All Systems Operational" if not open_incidents else
                  {"none": "Service notice", "minor": "Minor Service Outage", "major": "Partial System Outage",
                   "critical": "Major System Outage"}[worst])
        out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
               "<meta http-equiv='refresh' content='5'><title>TRDR Hub sandbox</title>",
               f"<style>{_STYLE}</style></head><body>",
               "<header><h1>TRDR Hub sandbox - what the incident procedures sent</h1>",
               f"<div class='muted' style='color:#c1c7d0'>updated {_esc(datetime.datetime.now().strftime('%H:%M:%S'))}"
               " - reloads every 5 s</div></header><main>"]
        # Public status page
        out.append("<section id='statuspage'><h2>Public status page - status.trdrhub.example</h2>")
        out.append(f"<div class='banner {'ok' if not open_incidents else worst}' id='status-banner'>{_esc(banner)}</div>")
        for name, status in sp["components"].items():
            out.append(f"<div class='comp'><span>{_esc(name)}</span>"
                       f"<span class='st-{_esc(status)}'>{_esc(_COMPONENT_WORDS.get(status, status))}</span></div>")
        if not sp["incidents"]:
            out.append("<p class='muted'>No incidents reported.</p>")
        for inc in sp["incidents"]:
            resolved = inc["status"] == "resolved"
            out.append(f"<div class='incident{' resolved' if resolved else ''}'><h3 class='incident-name'>"
                       f"{_esc(inc['name'])}</h3><div class='muted'>impact {_esc(inc.get('impact'))}"
                       f" - {_esc(inc['status'])}</div>")
            for upd in inc.get("incident_updates", []):
                out.append(f"<div class='upd'><b>{_esc(upd['status'])}</b> - {_esc(upd['body'])}"
                           f" <span class='muted'>{_esc(upd['display_at'])}</span></div>")
            out.append("</div>")
        out.append("</section>")
        # Slack
        out.append(f"<section id='slack'><h2>Slack - #incidents ({len(st['slack'])} messages)</h2>")
        for msg in st["slack"]:
            text = msg.get("text") or ""
            if not text:
                blocks = msg.get("blocks") or []
                text = "\n".join(str(((b.get("text") or {}).get("text")) or "") for b in blocks if isinstance(b, dict))
            out.append(f"<div class='msg'><b>trdrhub-incident</b> {_esc(text)}</div>")
        if not st["slack"]:
            out.append("<p class='muted'>No messages.</p>")
        out.append("</section>")
        # Emails
        out.append(f"<section id='emails'><h2>Emails ({len(st['emails'])})</h2>")
        for mail in st["emails"]:
            out.append(f"<div class='msg'><b>{_esc(mail['subject'])}</b><div class='muted'>from {_esc(mail['from'])}"
                       f" to {_esc(', '.join(mail['to']))} - {_esc(mail['date'])}</div>{_esc(mail['text'][:1200])}</div>")
        if not st["emails"]:
            out.append("<p class='muted'>No emails.</p>")
        out.append("</section>")
        # PagerDuty
        out.append(f"<section id='pagerduty'><h2>PagerDuty incidents ({len(st['pagerduty'])})</h2><table>"
                   "<tr><th>status</th><th>severity</th><th>summary</th><th>events</th></tr>")
        for inc in st["pagerduty"]:
            out.append(f"<tr><td>{_esc(inc['status'])}</td><td>{_esc(inc['severity'])}</td><td>{_esc(inc['summary'])}"
                       f"<div class='muted'>{_esc(inc['dedup_key'])}</div></td><td>{_esc(' > '.join(inc['history']))}</td></tr>")
        out.append("</table></section>")
        # Ledger
        out.append("<section id='ledger' class='wide'><h2>Incident ledger timeline</h2>")
        if not st["ledgers"]:
            out.append("<p class='muted'>No incident yet.</p>")
        if st["ledgers"]:
            out.append("<p class='muted'>" + (
                "Every entry. <a href='/#ledger' id='ledger-toggle'>Key entries only</a>" if full_ledger else
                "Phases, decisions, gates, verifications and communications. "
                "<a href='/?ledger=all#ledger' id='ledger-toggle'>Show every entry</a>") + "</p>")
        for incident, entries in st["ledgers"].items():
            head = entries[-1] if entries else {}
            shown = entries[-500:] if full_ledger else key_entries(entries)[-200:]
            out.append(f"<h3>{_esc(incident)} <span class='muted'>{len(entries)} entries ({len(shown)} shown), head seq "
                       f"{_esc(head.get('seq'))} hash {_esc(str(head.get('hash', ''))[:16])}</span></h3><table>"
                       "<tr><th>seq</th><th>time</th><th>event</th><th>actor</th><th>what</th></tr>")
            for entry in shown:
                out.append(f"<tr><td>{_esc(entry.get('seq'))}</td><td>{_esc(entry.get('ts') or entry.get('time'))}</td>"
                           f"<td>{_esc(entry.get('event'))}</td><td>{_esc(entry.get('actor'))}</td>"
                           f"<td>{_esc(_entry_what(entry))}</td></tr>")
            out.append("</table>")
        out.append("</section></main></body></html>")
        return "".join(out)
