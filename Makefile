# riskflow — the README's two commands are `make run` and `make test`.
GO ?= go
INTEGRATION_TIMEOUT ?= 40m

.PHONY: run test unit integration services services-down bench fmt vet

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
	  $(GO) test -count=1 -p 1 -tags integration -timeout $(INTEGRATION_TIMEOUT) $(INTEGRATION_PKGS)

services: ## install (first run) and start Kafka + ClickHouse on loopback
	deploy/local/up

services-down:
	deploy/local/down

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...

bench: ## scoring vs decoding, one run, same machine
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./schemas ./scoring ./rules ./scoring/features
