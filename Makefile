# trdrhub.incident — developer entry points. Every target bootstraps what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HARNESS := PYTHONPATH=tests/harness $(PY) -m trdrhub_harness run
PYTEST := PYTHONPATH=tests/harness $(PY) -m pytest -p no:cacheprovider -p no:ansible -p no:kmock

.PHONY: help bootstrap bootstrap-dev drill test sanity sanity-2.19 units units-2.19 integration molecule lint build changelog clean

help:
	@echo "make drill   - contain a simulated database incident end to end (throwaway services)"
	@echo "make test    - sanity (2.19 + 2.21), unit, integration, molecule, ansible-lint, build"

bootstrap:
	@scripts/bootstrap.sh

bootstrap-dev:
	@scripts/bootstrap.sh --dev

drill: bootstrap
	@PYTHONPATH=tests/harness $(PY) scripts/drill.py

test: bootstrap-dev
	@$(MAKE) --no-print-directory sanity sanity-2.19 units units-2.19 lint build integration molecule
	@echo "make test: all suites passed"

sanity:
	scripts/sanity.sh $(VENV)

sanity-2.19:
	@if [ -x .venv-2.19/bin/python ]; then scripts/sanity.sh .venv-2.19; \
	else echo "sanity-2.19: no Python 3.11 beside 3.12 on this machine; skipped"; fi

units:
	$(PYTEST) tests/unit -q

units-2.19:
	@if [ -x .venv-2.19/bin/python ]; then \
	  PYTHONPATH=tests/harness .venv-2.19/bin/python -m pytest -p no:cacheprovider tests/unit -q; \
	else echo "units-2.19: skipped (no .venv-2.19)"; fi

integration:
	$(HARNESS) --services postgres -- $(PY) -m pytest -p no:cacheprovider -p no:ansible -p no:kmock tests/integration -q

molecule:
	$(HARNESS) --services postgres -- scripts/molecule.sh

lint:
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/ruff check plugins tests scripts bench

build:
	rm -rf build/dist && mkdir -p build/dist
	$(VENV)/bin/ansible-galaxy collection build --output-path build/dist --force .
	scripts/check_artifact.sh build/dist/trdrhub-incident-*.tar.gz

changelog:
	$(VENV)/bin/antsibull-changelog lint

clean:
	rm -rf build tests/output .pytest_cache
