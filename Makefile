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

.PHONY: all build run test test-deps lint unit e2e bench clean

all: build

build: $(BIN)

$(BIN): $(GOFILES) go.mod go.sum
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

e2e: build
	$(GO) test -count=1 -timeout 20m ./e2e/...

test: test-deps lint unit e2e

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/...

clean:
	rm -rf bin
