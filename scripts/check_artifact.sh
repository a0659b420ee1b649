#!/usr/bin/env bash
# Check a built collection tarball: nothing from the development tree leaks into it,
# it installs, and its playbooks and modules resolve under their installed names.
set -euo pipefail
tarball=$1
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/bin"
listing=$(tar -tzf "$tarball")
for forbidden in '^\.ruff_cache' '^\.pytest_cache' '^\.venv' '^\.collections' '^build/' '^incidents/' '^tests/harness' '^\.git/' '__pycache__' '^tests/output'; do
  if grep -qE "$forbidden" <<<"$listing"; then
    echo "artifact contains files matching $forbidden:" >&2
    grep -E "$forbidden" <<<"$listing" | head >&2
    exit 1
  fi
done
for required in MANIFEST.json meta/runtime.yml plugins/modules/pg_terminate_sessions.py \
                playbooks/contain_db.yml roles/contain_db/tasks/main.yml \
                extensions/eda/plugins/event_source/alertmanager.py extensions/eda/rulebooks/trdrhub_alerts.yml \
                extensions/eda/rulebooks/trdrhub_alerts_controller.yml; do
  grep -qx "$required" <<<"$listing" || { echo "artifact lacks $required" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "${KEEP_TMP:-}" ] && trap - EXIT
"$venv/ansible-galaxy" collection install --offline --force -p "$tmp" "$tarball" >/dev/null
: > "$tmp/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$tmp" ANSIBLE_CONFIG="$tmp/ansible.cfg"
(cd / && "$venv/ansible-doc" trdrhub.incident.pg_terminate_sessions >/dev/null)
(cd / && "$venv/ansible-playbook" trdrhub.incident.contain_db --syntax-check -i localhost, >/dev/null)
echo "artifact OK: $(basename "$tarball") ($(wc -l <<<"$listing") entries), installs and resolves"
