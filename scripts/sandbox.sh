#!/usr/bin/env bash
# Start or stop the sandbox in the background (make sandbox / make sandbox-down).
#
#   scripts/sandbox.sh up      start it (or show it when it already runs); prints what runs where
#   scripts/sandbox.sh down    stop it and everything it started, remove its credentials (env, kubeconfig, secret)
#   scripts/sandbox.sh status  what runs where, or "not running"
#
# State, the env file to `source`, the log and the pid file live in build/sandbox/
# (TRDRHUB_SANDBOX_DIR overrides it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dir=${TRDRHUB_SANDBOX_DIR:-build/sandbox}
py=${PY:-.venv/bin/python}
pidfile="$dir/sandbox.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-up}" in
  up)
    if running; then
      echo "sandbox already running (pid $(cat "$pidfile")); make sandbox-down stops it"
      cat "$dir/summary.txt"
      exit 0
    fi
    mkdir -p "$dir"
    rm -f "$dir/ready" "$dir/env"
    nohup "$py" -m trdrhub_harness sandbox --dir "$dir" > "$dir/sandbox.log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 1 240); do
      if [ -f "$dir/ready" ]; then
        cat "$dir/summary.txt"
        echo "Running in the background (pid $(cat "$pidfile"), log $dir/sandbox.log); make sandbox-down stops it."
        exit 0
      fi
      if ! running; then
        echo "sandbox failed to start:" >&2
        tail -n 30 "$dir/sandbox.log" >&2
        rm -f "$pidfile"
        exit 1
      fi
      sleep 0.5
    done
    echo "sandbox not ready after 120s; see $dir/sandbox.log" >&2
    exit 1
    ;;
  down)
    if ! running; then
      rm -f "$pidfile"
      echo "sandbox not running"
      exit 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "sandbox (pid $pid) still running after 60s; sending SIGKILL" >&2
      kill -KILL "$pid"
    fi
    rm -f "$pidfile"
    echo "sandbox stopped: its processes, env file, kubeconfig and secret are gone; incidents, backups and logs stay in $dir"
    ;;
  status)
    if running; then cat "$dir/summary.txt"; else echo "sandbox not running"; fi
    ;;
  *)
    echo "usage: scripts/sandbox.sh up|down|status" >&2
    exit 2
    ;;
esac
