# casedrop: `make run` runs the server on its embedded default (local disk,
# generated certificate and keys); `make test` installs what the tests need
# and runs them all. See README.md.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
BIN       := bin/casedrop
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFILES   := $(shell find . -name '*.go' -not -path './node_modules/*')
# Every package but e2e and bench runs under the race detector; e2e drives
# the built binary with real clients and multi-GB transfers, so it runs
# without, and bench runs only with `make bench`.
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v -e /e2e -e /bench)
# The pages' sources; their bundle lands in web/ui/dist, which the binary
# embeds; dist/case.html stands for the whole bundle (each build rewrites it).
UI_SRC    := $(shell find web/ui/src -type f 2>/dev/null) web/ui/build.mjs
UI_BUNDLE := web/ui/dist/case.html

.PHONY: all build ui run test test-deps lint unit fuzz-smoke fuzz e2e bench clean

all: build

build: ui $(BIN)

# ui bundles the pages with esbuild (npm ci first when node_modules does
# not match the lock file).
ui: $(UI_BUNDLE)

$(UI_BUNDLE): $(UI_SRC) node_modules/.package-lock.json
	npm run build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(BIN): $(GOFILES) go.mod go.sum $(UI_BUNDLE)
	$(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN) ./cmd/casedrop

run: build
	./$(BIN) serve

test-deps:
	./scripts/test-deps.sh

lint:
	@unformatted=$$(gofmt -l $(GOFILES)); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# Every fuzz test a few seconds in `make test`; `make fuzz` for a long run
# (FUZZTIME=30m make fuzz for longer still).
fuzz-smoke:
	FUZZTIME=$${FUZZTIME:-5s} ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-5m} FUZZMINIMIZETIME=60s ./scripts/fuzz.sh

e2e: build
	$(GO) test -count=1 -timeout 20m ./e2e/...

test: test-deps lint unit fuzz-smoke e2e

# bench is not part of test: it installs the peers it measures casedrop
# against (scripts/bench-deps.sh) and prints figures (README.md,
# Performance); BENCH_ROUNDS (3) and BENCH_CONCURRENT_MIB (32,320) size it.
bench: build
	./scripts/bench-deps.sh
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/...

clean:
	rm -rf bin
