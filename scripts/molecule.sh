#!/usr/bin/env bash
# Run the molecule scenarios from the collection root. PostgreSQL comes from the
# TRDRHUB_PG_* variables (make molecule wraps this in the service harness).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -n "${TRDRHUB_PG_PORT:-}" ] || { echo "TRDRHUB_PG_PORT is not set: run through 'make molecule'" >&2; exit 2; }
export PATH="$root/.venv/bin:$PATH" PYTHONPATH="$root/tests/harness${PYTHONPATH:+:$PYTHONPATH}"
molecule test -s contain_db
