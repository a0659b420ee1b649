#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine for the collection: Debian packages for the
# throwaway services, the virtualenv(s) with the pinned requirements (constraints.txt), and the
# .collections link that lets ansible resolve trdrhub.incident.* from this checkout.
#
#   scripts/bootstrap.sh            .venv (Python 3.12 when present, else 3.11) with the pinned tools
#   scripts/bootstrap.sh --dev      + .venv-2.19 (ansible-core 2.19 on Python 3.11) for the second test line
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dev=0
[ "${1:-}" = "--dev" ] && dev=1

say() { printf '==> %s\n' "$*"; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ---------------------------------------------------------------
need=()
# iptables/iproute2: IP blocking (tested in network namespaces); pgbouncer: the connection pooler the
# harness and the sandbox start in front of PostgreSQL; Java 17: ansible-rulebook (--dev).
pkgs=(postgresql pgbouncer redis-server prometheus-alertmanager rsync git iptables iproute2)
# chromium (--dev): the browser test of the sandbox page.
[ $dev -eq 1 ] && pkgs+=(openjdk-17-jre-headless chromium)
# kubectl (Debian's kubernetes-client) drives the Kubernetes API double in the tests (--dev), unless one is installed.
[ $dev -eq 1 ] && ! command -v kubectl >/dev/null 2>&1 && pkgs+=(kubernetes-client)
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Python interpreters (real paths: pyenv shims break ansible-test) -----------------
real_python() {  # prints the real executable of the first interpreter that runs
  local cand
  for cand in "$@"; do
    if command -v "$cand" >/dev/null 2>&1 || [ -x "$cand" ]; then
      "$cand" -c 'import sys, venv; print(sys.executable)' 2>/dev/null && return 0
    fi
  done
  return 1
}
pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
py312=$(real_python python3.12 $(ls -d "$pyenv_root"/versions/3.12.*/bin/python3.12 2>/dev/null | sort -V | tail -n1) || true)
py311=$(real_python python3.11 $(ls -d "$pyenv_root"/versions/3.11.*/bin/python3.11 2>/dev/null | sort -V | tail -n1) /usr/bin/python3.11 || true)
main_py=${py312:-${py311:-}}
[ -n "$main_py" ] || { echo "no Python 3.12 or 3.11 found" >&2; exit 1; }

# Every environment installs the exact versions of constraints.txt (requirements.txt names ranges).
make_venv() {  # make_venv DIR PYTHON REQUIREMENTS...
  local dir=$1 py=$2; shift 2
  local stamp="$dir/.trdrhub-stamp" want
  want=$("$py" -c 'import sys; print(sys.version)'; cat "$@" constraints.txt | sha256sum)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  say "creating $dir with $py"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  local args=()
  for req in "$@"; do args+=(-r "$req"); done
  args+=(-c constraints.txt)
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "${args[@]}"
  printf '%s' "$want" > "$stamp"
}

# The environments are independent: they are built side by side (pip spends much of its time
# unpacking and writing files, so two or three builds share the cores well), and the first
# failure is reported with its own log.
builds=()
build_venv() {  # build_venv DIR PYTHON REQUIREMENTS... (in the background; the log goes to build/bootstrap-DIR.log)
  local log="build/bootstrap-${1#.}.log"
  ( make_venv "$@" > "$log" 2>&1 ) &
  builds+=("$!:$1:$log")
}
mkdir -p build
build_venv .venv "$main_py" requirements-dev.txt
if [ $dev -eq 1 ] && [ -n "$py311" ] && [ -n "$py312" ]; then
  build_venv .venv-2.19 "$py311" requirements.txt tests/requirements-2.19.txt
fi
# Event-Driven Ansible: ansible-rulebook and its Java bridge in their own environment.
if [ $dev -eq 1 ] && [ -n "$py312" ]; then
  build_venv .venv-eda "$py312" requirements.txt tests/requirements-eda.txt
fi
failed=0
for build in "${builds[@]}"; do
  IFS=: read -r pid dir log <<< "$build"
  if wait "$pid"; then
    grep -v '^WARNING: Location' "$log" || true
  else
    failed=1
    echo "bootstrap: building $dir failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
  fi
done
[ $failed -eq 0 ] || exit 1

# --- the test harness on every venv's path ----------------------------------------------
# A .pth file (not part of the stamp, so no rebuild): `python -m trdrhub_harness ...` and
# `import trdrhub_harness` work from any directory without PYTHONPATH.
harness_pth() {  # harness_pth VENV
  local site
  site=$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 0
  local want="$root/tests/harness"
  if [ "$(cat "$site/trdrhub_harness.pth" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" > "$site/trdrhub_harness.pth"
  fi
}
for venv in .venv .venv-2.19 .venv-eda; do
  if [ -x "$venv/bin/python" ]; then harness_pth "$venv"; fi
done

# --- run-from-checkout link ------------------------------------------------------------
mkdir -p .collections/ansible_collections/trdrhub
ln -sfn ../../.. .collections/ansible_collections/trdrhub/incident
say "ready: $(.venv/bin/python --version), $(.venv/bin/ansible --version 2>/dev/null | sed -n 1p)"
