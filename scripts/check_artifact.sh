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
# The file list: only these top-level entries, and nothing that works only from a checkout
# (the project's ansible.cfg, the EE/DE definitions that build from build/ee, the harness-bound
# sandbox inventory, the test tree, developer docs and pins).
top=$(sed 's#/.*##' <<<"$listing" | sort -u | tr '\n' ' ')
allowed=" CHANGELOG.md CHANGELOG.rst COPYING FILES.json MANIFEST.json README.md bindep.txt changelogs docs extensions inventories meta playbooks plugins requirements.txt roles "
for entry in $top; do
  [[ "$allowed" == *" $entry "* ]] || { echo "artifact has an unexpected top-level entry: $entry" >&2; exit 1; }
done
for forbidden in '^ansible\.cfg$' '^execution-environment\.yml$' '^decision-environment\.yml$' '^constraints\.txt$' \
                 '^importer_result\.json$' '^inventories/sandbox' '^docs/development\.md$' '^tests(/|$)' '^Makefile$'; do
  if grep -qE "$forbidden" <<<"$listing"; then
    echo "artifact contains $(grep -E "$forbidden" <<<"$listing" | head -1), which works only from a checkout" >&2
    exit 1
  fi
done
for required in README.md COPYING requirements.txt bindep.txt changelogs/changelog.yaml docs/docsite/extra-docs.yml \
                inventories/production/hosts.yml inventories/production/group_vars/all/main.yml \
                extensions/awx/trdrhub.json extensions/rundeck/trdrhub-incident-jobs.yml; do
  grep -qx "$required" <<<"$listing" || { echo "artifact lacks $required" >&2; exit 1; }
done
for role in "$root"/roles/*/; do
  grep -qx "roles/$(basename "$role")/README.md" <<<"$listing" || { echo "artifact lacks roles/$(basename "$role")/README.md" >&2; exit 1; }
done
for doc in "$root"/docs/*.md; do
  name=docs/$(basename "$doc")
  [ "$name" = docs/development.md ] && continue
  grep -qx "$name" <<<"$listing" || { echo "artifact lacks $name" >&2; exit 1; }
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
