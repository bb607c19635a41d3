# riskflow — the README's two commands are `make run` and `make test`.
GO ?= go
# A test binary's limit: pipeline/e2e alone runs about 23 minutes on this 2-core machine.
INTEGRATION_TIMEOUT ?= 60m

.PHONY: run test unit integration services services-down bench bench-baseline fmt vet fuzz chdb browser console-screenshots console-bench

run: ## riskflow dev: every role in one process, embedded broker, sample stream and a printed verdict
	$(GO) run ./cmd/riskflow dev

test: services vet unit integration ## everything, against real Kafka and ClickHouse (installed and started here)

unit:
	$(GO) test -race -count=1 ./...

# Packages with integration tests, run one at a time (-p 1): pipeline/e2e stops and restarts the
# shared ClickHouse server, which must not happen under another package's feet.
INTEGRATION_PKGS = $(shell grep -rl --include='*_test.go' '^//go:build integration' . | grep -v '^./.local' | xargs -n1 dirname | sort -u)

integration: services
	RISKFLOW_GEO_CITY="$$(deploy/local/geo.sh path 2>/dev/null || true)" \
	  RISKFLOW_GEO_ASN="$$(deploy/local/geo.sh asn-path 2>/dev/null || true)" \
	  $(GO) test -count=1 -p 1 -tags integration -timeout $(INTEGRATION_TIMEOUT) $(INTEGRATION_PKGS)

services: ## install (first run) and start Kafka + ClickHouse on loopback
	deploy/local/up

services-down:
	deploy/local/down

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration,chdb ./...
	$(GO) vet -tags browser ./cmd/riskflow/ ./scoring/console/

# Every SQL statement riskflow ships or sends (migrations, inserts, backfill, reads, rules report,
# analyst queries, dashboard panels) on the ClickHouse 18.16 server and on current ClickHouse
# embedded by chDB (PyPI chdb, installed into a virtualenv in the cache by deploy/local/chdb.sh),
# over one fixture: both must succeed and give the same results (pipeline/chsink,
# TestSQLOnBothClickHouses), and every read again over empty tables (TestSQLOnBothClickHousesOtherData;
# RISKFLOW_CROSS_DATABASE=NAME runs it on a database riskflow filled instead), over a database
# with re-deliveries merged on 18.16 (…Redelivered) and over odd data (…OddData). CI runs it after
# `make test`; every test with the chdb build tag must match the -run pattern (TestMakeChdbRunsEveryChdbTest).
chdb:
	deploy/local/clickhouse.sh start
	deploy/local/chdb.sh install
	$(GO) test -count=1 -tags integration,chdb -run '^TestSQLOnBothClickHouses' -v ./pipeline/chsink/

# The risk team's console in headless Chromium (Debian package chromium, installed by
# deploy/local/chromium.sh; chromedp drives it) against two riskflow nodes on the local Kafka and
# ClickHouse: login, every page, lint/test/backtest/promote/rollback, lists. CI runs it after
# `make test`. `make console-screenshots` refreshes docs/console/*.png with the same run. The
# console's own browser tests (scoring/console, on fakes: pages fit the window, a backtest page
# leaves an ended session) run with it.
BROWSER_TEST = $(GO) test -count=1 -tags browser -timeout 10m -run '^(TestConsoleInBrowser|TestLongIDsFitTheWindow|TestBacktestPageLeavesAnEndedSession)$$' -v ./cmd/riskflow/ ./scoring/console/

browser: services
	deploy/local/chromium.sh install
	RISKFLOW_CHROMIUM="$$(deploy/local/chromium.sh path)" $(BROWSER_TEST)

console-screenshots: services
	deploy/local/chromium.sh install
	RISKFLOW_CHROMIUM="$$(deploy/local/chromium.sh path)" RISKFLOW_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(BROWSER_TEST)

bench: ## scoring vs decoding, one run, same machine
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./schemas ./scoring ./rules ./scoring/features

# The scoring benchmarks against the build issue #10's speed targets were written from, in
# alternating pairs, as ratios: `make bench-baseline`, or PAIRS=10 / BASE=<commit> to change them.
PAIRS ?= 6
BASE ?= 94cb452
bench-baseline: ## scoring benchmarks as ratios to the build issue #10's targets came from
	deploy/local/bench-baseline.sh $(BASE) $(PAIRS)

# Native fuzz targets (package:target), each fuzzed for FUZZTIME, one at a time: `make fuzz`
# (CI runs it after `make test`), `make fuzz FUZZTIME=10m` to dig. A target `go test -list` does
# not find is skipped, with a message. A failure fails the step; go test has written the failing
# input under <package>/testdata/fuzz/<target>/ (commit it with the fix: it becomes a regression
# seed), and its path and first bytes are printed here. A run that ends with Go 1.26's own
# "context deadline exceeded" at the -fuzztime deadline, after the seeds passed and without a
# failing input, is not counted (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 15s
# Minimizing a newly interesting input is not what CI's few seconds are for: with a 15 KB seed
# (a snapshot, a GeoLite2 file) each attempt re-runs the target thousands of times, and 10 s of
# a 15 s run went to it (6 executions in all). A failing input is still written, less minimized.
FUZZMINIMIZETIME ?= 2s
FUZZ_TARGETS = schemas:FuzzDecodeEvent schemas:FuzzMaskPhones schemas:FuzzDecodeCheckRequest schemas:FuzzEventSchemaAgreement schemas:FuzzDecodeMatchesReference rules:FuzzCompilePack pipeline:FuzzDecodeScoreRecord \
	scoring:FuzzParseLists pipeline:FuzzListsMessage cmd/riskflow:FuzzLoadConfig cmd/riskflow:FuzzReadLabelFile \
	schemas:FuzzDecodeDecision cmd/riskflow:FuzzAPI \
	scoring/features:FuzzLoadSnapshot scoring/geo:FuzzOpenDamagedDatabase scoring/console:FuzzSafeNext cmd/riskflow:FuzzTimeArgs

fuzz:
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t#*:}; dir=$$pkg/testdata/fuzz/$$fn; \
	  list=$$($(GO) test -list "^$$fn\$$" ./$$pkg 2>&1) || { printf '%s\n' "$$list"; echo "fuzz: ./$$pkg does not build"; exit 1; }; \
	  if ! printf '%s\n' "$$list" | grep -qx "$$fn"; then echo "== fuzz: SKIPPED $$fn: ./$$pkg has no such fuzz target"; continue; fi; \
	  before=$$(ls "$$dir" 2>/dev/null); \
	  echo "== fuzz $$fn (./$$pkg, $(FUZZTIME))"; \
	  out=$$(mktemp); \
	  { $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg; echo $$? >"$$out.rc"; } 2>&1 | tee "$$out"; \
	  if [ "$$(cat "$$out.rc")" != 0 ]; then \
	    new=""; \
	    for f in $$(ls "$$dir" 2>/dev/null); do \
	      printf '%s\n' "$$before" | grep -qxF "$$f" && continue; new=1; \
	      echo "fuzz: $$fn failing input: $$dir/$$f (re-run: go test -run '^$$fn/$$f\$$' ./$$pkg)"; head -c 2048 "$$dir/$$f"; echo; \
	    done; \
	    if [ -z "$$new" ] && grep -q 'now fuzzing with' "$$out" && tail -n 6 "$$out" | grep -qx '    context deadline exceeded'; then \
	      echo "fuzz: $$fn: Go's fuzzing coordinator reported its own -fuzztime deadline as a failure (golang/go#75804, fixed in Go 1.27) after the seeds passed; no failing input was written: not counted as a failure"; \
	    else \
	      failed="$$failed $$fn"; \
	      test -n "$$new" || echo "fuzz: $$fn failed on its seed corpus or did not run (no new input under $$dir): see the output above"; \
	    fi; \
	  fi; \
	  rm -f "$$out" "$$out.rc"; \
	done; \
	test -z "$$failed" || { echo "fuzz: FAILED:$$failed"; exit 1; }

# The console's pages rendered on a 1M-row history filled in ClickHouse (README, Console: speed):
# p50/p99 per page, and investigate's reads before and now alternated. Needs the local services.
console-bench: services
	$(GO) test -count=1 -tags integration -run '^$$' -bench ConsolePages -benchtime 20x -timeout 20m ./cmd/riskflow/
