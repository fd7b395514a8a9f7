# mcpgate — developer entry points. `make` alone lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
STATICCHECK := .cache/bin/staticcheck
STATICCHECK_FLAGS ?=
# Go sources to check with gofmt (everything but caches, deps and build output).
GOFILES = $(shell find . \( -path ./.git -o -path ./.cache -o -path ./bin -o -path ./data \
            -o -path ./tools -o -name node_modules -o -name vendor \) -prune -o -name '*.go' -print)

.PHONY: help build run tools lint test conformance bench fuzz clean postgres

help: ## List the targets
	@echo "usage: make TARGET"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build mcpgate, mcpfixture and mcpload into bin/ (and the Go SDK's conformance server, a test upstream)
	$(GO) build -o bin/ ./cmd/...
	$(GO) build -o bin/go-sdk-everything-server github.com/modelcontextprotocol/go-sdk/conformance/everything-server

run: build ## Run the quickstart: demo upstream + gateway on http://127.0.0.1:8080/mcp/demo
	bash scripts/run.sh

tools: ## Install the test tools (Node 22 + npm tools, staticcheck) into .cache/ (cached)
	bash scripts/install-test-tools.sh

lint: tools ## gofmt, go vet and staticcheck
	@unformatted="$$(gofmt -l $(GOFILES) </dev/null)"; \
	if [[ -n "$$unformatted" ]]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) $(STATICCHECK_FLAGS) ./...

# The PostgreSQL store tests run against a throwaway server (scripts/postgres.sh,
# cluster in .cache/postgres): started here, stopped afterwards (even when the tests
# fail) unless it was already running, e.g. from `make postgres`.
test: tools build lint ## Everything CI runs: lint, go test -race (with a throwaway PostgreSQL), MCP conformance
	@pg_was_running=0; bash scripts/postgres.sh status >/dev/null 2>&1 && pg_was_running=1; \
	bash scripts/postgres.sh start; \
	export MCPGATE_TEST_POSTGRES_URL="$$(bash scripts/postgres.sh url)"; \
	echo "MCPGATE_TEST_POSTGRES_URL=$$MCPGATE_TEST_POSTGRES_URL $(GO) test -race -count=1 ./..."; \
	rc=0; $(GO) test -race -count=1 ./... || rc=$$?; \
	if (( ! pg_was_running )); then bash scripts/postgres.sh stop; fi; \
	exit $$rc
	bash scripts/conformance.sh
	bash scripts/conformance-client.sh
	bash scripts/e2e.sh
	bash scripts/examples-smoke.sh

postgres: ## Start the tests' throwaway PostgreSQL (.cache/postgres) and print its URL; stop: bash scripts/postgres.sh stop
	@bash scripts/postgres.sh start
	@bash scripts/postgres.sh url

conformance: tools build ## MCP conformance (stable, 2025-11-25, 2026-07-28) of the fixture and server-everything, directly and through mcpgate (HTTP, stdio)
	bash scripts/conformance.sh

bench: build ## Run the benchmark (scripts/bench.sh; see docs/performance.md)
	@test -f scripts/bench.sh || { echo "scripts/bench.sh is missing"; exit 1; }
	bash scripts/bench.sh

fuzz: ## Run every Go fuzz target for FUZZTIME each (default 30s; FUZZ=regexp picks targets)
	bash scripts/fuzz.sh

clean: ## Remove bin/ and conformance results (keeps the tools cache in .cache/tools and .cache/bin, and data/)
	rm -rf bin/ .cache/conformance
