"""Command line: run a command with throwaway services, or hold them open.

    python -m trdrhub_harness run [--services postgres,redis,alertmanager] -- CMD ...
    python -m trdrhub_harness env [--services ...]     # print exports, hold until Ctrl-C
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
