# trdrhub.incident — developer entry points. Every target bootstraps what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HARNESS := PYTHONPATH=tests/harness $(PY) -m trdrhub_harness run
PYTEST := PYTHONPATH=tests/harness $(PY) -m pytest -p no:cacheprovider -p no:ansible -p no:kmock

# Compiled bytecode of every Python process goes to build/pycache, never beside the sources. An inherited
# PYTHONDONTWRITEBYTECODE=1 (set on some CI machines) would leave no cache at all: every ansible-playbook and
# module process would compile the collection (and, with a cache prefix, ansible-core) from source again.
export PYTHONPYCACHEPREFIX := $(CURDIR)/build/pycache
unexport PYTHONDONTWRITEBYTECODE

# Integration tests in two pytest-xdist workers, one test file per worker at a time.
XDIST ?= -n 2 --dist loadfile

.PHONY: help bootstrap bootstrap-dev drill drills doc-commands sandbox sandbox-down test check bench smoke sanity sanity-2.19 units units-2.19 integration integration-main integration-lane3 molecule lint build galaxy-import docs changelog clean

help:
	@echo "make drill   - contain a simulated database incident end to end (throwaway services), scored"
	@echo "               SCENARIO=db-runaway|db-down|bad-deploy|attack|data-corruption|full-p1|all"
	@echo "make drills  - every drill scenario, unattended, one table; fails when any scenario fails (CI lane)"
	@echo "make sandbox - start every service the playbooks talk to in the background (make sandbox-down)"
	@echo "make check   - the inner loop: ruff, unit tests, playbook syntax and the smoke tests (~2 min)"
	@echo "make bench   - every benchmark in bench/, one table: workload, this project, reference, ratio, goal"
	@echo "               (quick sizes, a few minutes; BENCH_FULL=1 for the full sizes, BENCH_ONLY=chain,log_scan)"
	@echo "make test    - sanity (2.19 + 2.21), unit, integration, molecule, ansible-lint, build, docs, every drill,"
	@echo "               the command blocks of README and docs/ (make doc-commands)"
	@echo "               in three parallel lanes; per-suite logs and timings in build/test-logs/"
	@echo ""
	@echo "Playbooks (ansible-playbook playbooks/<name>.yml -i inventories/sandbox -e trdrhub_incident_id=INC-1; -v for detail):"
	@echo "  respond.yml           - the response procedure of the priority triage assesses (P1-P4), start to end"
	@echo "  respond_p1.yml        - the P1 procedure: triage, investigate, contain, recover, verify, communicate, review"
	@echo "  respond_p2.yml        - the P2 procedure (1 h target), the same phases as P1"
	@echo "  respond_p3.yml        - the P3 procedure (4 h target): contain, recover and review only when asked"
	@echo "  respond_p4.yml        - the P4 procedure (1 business day): contain, recover and review only when asked"
	@echo "  status.yml            - where an incident stands: record, pending approvals and vote commands, what is due next"
	@echo "  triage.yml            - phase 1: health, alerts, priority and deadline, open the record, acknowledge the alerts"
	@echo "  assign_commander.yml  - phase 1.3.5: record the incident commander (-e commander=ic:maria), on the ticket too"
	@echo "  resolve.yml           - resolve: resolution and root cause in the record, the ticket and the status page"
	@echo "  notified.yml          - close a notification obligation: who notified whom and when (-e obligation=regulator)"
	@echo "  investigate.yml       - phase 2: PostgreSQL, migrations, audit chain, Redis, HTTP, TLS into one diagnostics bundle"
	@echo "  verify_audit.yml      - phase 2.3: verify the application's audit log and the incident ledger"
	@echo "  contain_db.yml        - phase 3.2: terminate runaway PostgreSQL sessions behind the approval gate"
	@echo "  use_pooler.yml        - phase 3.2: point DATABASE_URL at PgBouncer behind the gate, verified; -e use_pooler_rollback=true undoes"
	@echo "  contain_app.yml       - phase 3.1: more replicas and/or read-only mode, behind the approval gate"
	@echo "  contain_security.yml  - phase 3.3: scan access logs, review the audit log, block addresses, rotate a secret"
	@echo "  block_ips.yml         - phase 3.3: block suspicious IP addresses on the web/edge hosts, behind the gate"
	@echo "  unblock_ips.yml       - lift the blocks of block_ips.yml (one incident, given addresses, or expired)"
	@echo "  rotate_secrets.yml    - phase 3.3: rotate a PostgreSQL role password with verification and rollback"
	@echo "  recover_db.yml        - phase 4.1: restore a backup into a new recovery database, behind the gate"
	@echo "                          (-e recover_db_restore=false: only restart a PostgreSQL that is down)"
	@echo "  recover_app.yml       - phase 4.1: restart the application and wait for the rollout, behind the gate"
	@echo "  rollback.yml          - phase 4.1: roll the application back to the previous (or a given) revision"
	@echo "  config_rollback.yml   - phase 4.1: git revert and push the configuration repository's last commit, behind the gate"
	@echo "  maintain_db.yml       - phase 4.1: VACUUM ANALYZE the production database (tables over a dead-tuple threshold), gated"
	@echo "  verify.yml            - phase 4.2: health, key functionality, database, queue and audit chain checks"
	@echo "  communicate.yml       - phase 5: Slack, PagerDuty, Statuspage and email at the priority's update cadence"
	@echo "  escalate.yml          - escalate by time and priority (levels 2-4) and to external parties"
	@echo "  pir.yml               - the post-incident review: verify the ledger, render Markdown, HTML and a timeline"
	@echo "  approve.yml           - vote on a pending approval request (-e request=<id> -e decision=approve|deny)"

bootstrap:
	@scripts/bootstrap.sh

bootstrap-dev:
	@scripts/bootstrap.sh --dev

SCENARIO ?= db-runaway
drill: bootstrap
	@$(PY) scripts/drill.py --scenario $(SCENARIO)

# Every scenario with no terminal attached (gates answered by the simulated second person); the exit
# status is non-zero when one scenario failed. Scorecards and logs stay under build/drills/.
drills: bootstrap
	@rm -f build/drills/cards.json
	@$(PY) scripts/drill.py --scenario all --cards build/drills/cards.json < /dev/null

sandbox: bootstrap
	@PY=$(PY) scripts/sandbox.sh up

sandbox-down:
	@PY=$(PY) scripts/sandbox.sh down

test: bootstrap-dev
	@DRILL_CARDS=$(CURDIR)/build/drills/cards.json scripts/run_suites.sh "integration-main" \
	  "units lint build docs molecule sanity units-2.19 sanity-2.19" "drills integration-lane3 doc-commands"
	@echo "make test: all suites passed"

check: bootstrap
	$(VENV)/bin/ruff check plugins tests scripts bench
	$(PYTEST) tests/unit -q -n 2
	@$(MAKE) --no-print-directory smoke

# Benchmarks print figures and never fail on them (bench/README.md).
BENCH_FULL ?=
BENCH_ONLY ?=
bench: bootstrap-dev
	@PYTHONPATH=tests/harness $(PY) bench/run_all.py $(if $(BENCH_FULL),--full) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

smoke:
	ANSIBLE_CONFIG=ansible.cfg $(VENV)/bin/ansible-playbook --syntax-check playbooks/*.yml > /dev/null
	$(PYTEST) tests/integration tests/harness/tests -q -m smoke

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

# tests/integration (the cross-cutting files, plugins/ and playbooks/) and the harness's own tests
# (tests/harness/tests). The doc-command test starts a whole sandbox of its own: it runs as its own
# target (doc-commands), in a lane of its own in make test, instead of holding one integration worker for minutes.
INTEGRATION := tests/integration tests/harness/tests --ignore=tests/integration/test_doc_commands.py
# make test runs the whole-procedure integration files one after another in its third lane, after the drills
# (test_drill.py then reads the db-down scorecard the drills just wrote, DRILL_CARDS, instead of running that
# drill again), and the rest in two workers in the first lane; `make integration` runs them all. The run is
# CPU-bound: more processes competing for the two cores cost CPU of their own, so the third lane adds one
# process, not two workers.
LANE3_TESTS := tests/integration/playbooks/test_respond_p1.py tests/integration/playbooks/test_respond.py \
  tests/integration/playbooks/test_respond_p2.py tests/integration/playbooks/test_respond_p1_output.py \
  tests/integration/test_drill.py
DRILL_CARDS ?=

integration:
	$(HARNESS) --services postgres -- $(PY) -m pytest -p no:cacheprovider -p no:ansible -p no:kmock $(INTEGRATION) -q $(XDIST) --durations=25

integration-main:
	$(HARNESS) --services postgres -- $(PY) -m pytest -p no:cacheprovider -p no:ansible -p no:kmock $(INTEGRATION) \
	  $(addprefix --ignore=,$(LANE3_TESTS)) -q $(XDIST) --durations=25

integration-lane3:
	$(HARNESS) --services postgres -- env $(if $(DRILL_CARDS),TRDRHUB_DRILL_CARDS=$(DRILL_CARDS)) $(PY) -m pytest \
	  -p no:cacheprovider -p no:ansible -p no:kmock $(LANE3_TESTS) -q --durations=10

doc-commands: bootstrap-dev
	$(PYTEST) tests/integration/test_doc_commands.py -q --durations=10

molecule:
	$(HARNESS) --services postgres -- scripts/molecule.sh

lint:
	$(VENV)/bin/ansible-lint --profile production
	$(VENV)/bin/ruff check plugins tests scripts bench

build:
	rm -rf build/dist && mkdir -p build/dist
	$(PY) scripts/docsite.py
	$(VENV)/bin/ansible-galaxy collection build --output-path build/dist --force .
	scripts/check_artifact.sh build/dist/trdrhub-incident-*.tar.gz
	@$(MAKE) --no-print-directory galaxy-import

# Galaxy / Automation Hub's import of the built artifact (tests/galaxy-importer.cfg: the hub's checks).
# It writes importer_result.json into its working directory: build/dist, beside the tarball.
galaxy-import:
	cd build/dist && GALAXY_IMPORTER_CONFIG=$(CURDIR)/tests/galaxy-importer.cfg PATH="$(CURDIR)/$(VENV)/bin:$$PATH" \
	  $(CURDIR)/$(PY) -m galaxy_importer.main trdrhub-incident-*.tar.gz > galaxy-importer.log 2>&1 \
	  || { tail -n 40 galaxy-importer.log; exit 1; }
	@grep -q 'Importer processing completed successfully' build/dist/galaxy-importer.log
	@echo "galaxy-importer: $$(ls build/dist/trdrhub-incident-*.tar.gz) imports (log: build/dist/galaxy-importer.log)"

changelog:
	$(VENV)/bin/antsibull-changelog lint

# The docs site: the guides as extra docs (scripts/docsite.py), checked with the plugin docs.
docs:
	$(PY) scripts/docsite.py
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ANSIBLE_COLLECTIONS_PATH="$(CURDIR)/.collections" \
	  $(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs .collections/ansible_collections/trdrhub/incident

clean:
	rm -rf build tests/output .pytest_cache
