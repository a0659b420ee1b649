"""Command line: run a command with throwaway services, or hold them open.

    python -m trdrhub_harness run [--services postgres,redis,alertmanager] -- CMD ...
    python -m trdrhub_harness env [--services ...]     # print exports, hold until Ctrl-C
    python -m trdrhub_harness sandbox [--dir build/sandbox]   # every service the playbooks use, until Ctrl-C
    python -m trdrhub_harness fault db-down|db-up|bad-deploy|attack|tamper|alert|clear   # into the running sandbox
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from . import ALL_SERVICES, HarnessError, Services


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trdrhub_harness")
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("run", "env"):
        p = sub.add_parser(action)
        p.add_argument("--services", default=",".join(ALL_SERVICES))
        if action == "run":
            p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("sandbox", help="start every service the playbooks talk to and hold them until Ctrl-C")
    p.add_argument("--dir", default="build/sandbox", help="state directory: env file, backups, logs, incidents")
    p.add_argument("--no-kubernetes", action="store_true", help="without the Kubernetes API double")
    from .sandbox import FAULTS

    p = sub.add_parser("fault", help="inject a fault into the running sandbox (make sandbox)",
                       description="Inject a fault into the running sandbox, as the drills do: "
                       + "; ".join(f"{name}: {what}" for name, what in FAULTS.items()) + ".")
    p.add_argument("fault", choices=list(FAULTS))
    p.add_argument("--dir", default=None,
                   help="the sandbox's state directory, read when TRDRHUB_SANDBOX_URL is not set "
                        "(default: build/sandbox of this repository)")
    args = parser.parse_args(argv)
    if args.action == "sandbox":
        return sandbox(Path(args.dir), kubernetes=not args.no_kubernetes)
    if args.action == "fault":
        return fault(args.fault, args.dir)
    names = [n.strip() for n in args.services.split(",") if n.strip()]
    signal.signal(signal.SIGTERM, _raise_exit)
    try:
        with Services(names) as svc:
            env = svc.env()
            if args.action == "env":
                for key, value in env.items():
                    print(f"export {key}={value}")
                sys.stdout.flush()
                signal.pause()
                return 0
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("run needs a command after --")
            print(f"harness: started {', '.join(names)}", file=sys.stderr)
            return subprocess.call(command, env={**os.environ, **env})
    except HarnessError as exc:
        print(f"harness: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


REPO_SANDBOX = Path(__file__).resolve().parents[3] / "build" / "sandbox"


def _sandbox_control(state_dir) -> tuple:
    """(page URL, token) of the running sandbox: the environment (source build/sandbox/env), else its env file."""
    url, token = os.environ.get("TRDRHUB_SANDBOX_URL"), os.environ.get("TRDRHUB_SANDBOX_TOKEN")
    if url and token and state_dir is None:
        return url, token
    env_file = Path(state_dir or os.environ.get("TRDRHUB_SANDBOX_DIR") or REPO_SANDBOX) / "env"
    found = {}
    try:
        for line in env_file.read_text().splitlines():
            if line.startswith("export "):
                key, _eq, value = line[len("export "):].partition("=")
                found[key] = value.strip("'")
    except OSError:
        raise HarnessError(f"no running sandbox: {env_file} does not exist (start one with make sandbox)") from None
    if not found.get("TRDRHUB_SANDBOX_URL") or not found.get("TRDRHUB_SANDBOX_TOKEN"):
        raise HarnessError(f"{env_file} names no sandbox page (TRDRHUB_SANDBOX_URL, TRDRHUB_SANDBOX_TOKEN)")
    return found["TRDRHUB_SANDBOX_URL"], found["TRDRHUB_SANDBOX_TOKEN"]


def fault(name: str, state_dir=None) -> int:
    """POST the fault to the running sandbox's page server; print what it did."""
    import urllib.error
    import urllib.request

    try:
        url, token = _sandbox_control(state_dir)
    except HarnessError as exc:
        print(f"fault: {exc}", file=sys.stderr)
        return 3
    request = urllib.request.Request(url + "/api/fault", data=json.dumps({"fault": name}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Sandbox-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=90) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("error")
        except ValueError:
            detail = err.reason
        print(f"fault {name}: the sandbox refused: {detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fault {name}: the sandbox at {url} does not answer ({exc}); is it running? (make sandbox)",
              file=sys.stderr)
        return 3
    print(f"fault {name}: {answer['done']}")
    return 0


def sandbox(state_dir: Path, kubernetes: bool = True) -> int:
    """Run the sandbox in the foreground; ``ready`` and ``env`` appear in ``state_dir`` once it serves."""
    from .sandbox import Sandbox

    signal.signal(signal.SIGTERM, _raise_exit)
    # Under nohup (make sandbox) a closed terminal must not stop it: an ignored SIGHUP stays ignored.
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _raise_exit)
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready"
    for stale in (ready, state_dir / "env"):
        stale.unlink(missing_ok=True)
    try:
        with Sandbox(state_dir, kubernetes=kubernetes) as box:
            env_file = box.write_env_file()
            width = max(len(what) for what, _where in box.describe())
            lines = ["TRDR Hub sandbox: every service on 127.0.0.1, stopped by `make sandbox-down` or Ctrl-C", ""]
            lines += [f"  {what:<{width}}  {where}" for what, where in box.describe()]
            lines += ["", "Use it from a shell:", f"  source {env_file}",
                      "  ansible-playbook playbooks/triage.yml -i inventories/sandbox -e trdrhub_incident_id=INC-SANDBOX-1",
                      "Inject a fault (docs/sandbox.md): python -m trdrhub_harness fault db-down|bad-deploy|attack|tamper"
                      "|alert|clear"]
            summary = "\n".join(lines) + "\n"
            (state_dir / "summary.txt").write_text(summary)
            print(summary, flush=True)
            ready.write_text(f"{os.getpid()}\n")
            try:
                while True:
                    signal.pause()
            finally:
                for path in (ready, env_file):
                    path.unlink(missing_ok=True)
                print("sandbox: stopping every service", flush=True)
    except HarnessError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 3
    except (KeyboardInterrupt, SystemExit):
        return 0


if __name__ == "__main__":
    sys.exit(main())
