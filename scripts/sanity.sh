#!/usr/bin/env bash
# ansible-test sanity for one virtualenv: scripts/sanity.sh <venv-dir> [ansible-test args...]
# ansible-test needs the collection at a real ansible_collections/trdrhub/incident path
# (symlinks are rejected), so the checkout is copied under build/.
set -euo pipefail
venv=$(cd "$1" && pwd); shift
root=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core=$("$py" -c 'import ansible.release as r; print(r.__version__)')
# A private copy per run, so that concurrent runs cannot clobber each other.
mkdir -p "$root/build"
work=$(mktemp -d "$root/build/sanity-$core.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/trdrhub/incident"

# ansible-test fetches get-pip.py from the internet; seed its cache with the offline stand-in.
pipver=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$("$py" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -n1)
mkdir -p "$HOME/.ansible/test/cache"
cp "$root/scripts/get_pip_standin.py" "$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py"

# What ansible-test checks is the collection and its unit tests. The integration tests and the test
# harness (tests/integration, tests/harness: pytest code that drives real servers, never part of the
# collection artifact - galaxy.yml build_ignore) are linted by ruff in make lint instead; left in,
# they would be a third of what pylint reads on both ansible-core lines.
mkdir -p "$dest"
rsync -a --exclude /tests/integration --exclude /tests/harness --exclude .git --exclude .collections --exclude '.venv*' --exclude build \
  --exclude tests/output --exclude incidents --exclude .pytest_cache --exclude __pycache__ \
  --exclude .ansible --exclude .cache --exclude .ruff_cache "$root/" "$dest/"
cd "$dest"
git init -q . 2>/dev/null || true
git add -A >/dev/null 2>&1 || true
echo "== ansible-test sanity: ansible-core $core on Python $pyver =="
"$venv/bin/ansible-test" sanity --color no --venv --python "$pyver" "$@"
