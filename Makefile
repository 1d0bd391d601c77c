# webinspect — line-scan web inspection engine.
#
#   make run     set up, build and run the engine on its built-in default
#                (simulated 2 m woven fabric at 100 m/min, UI on http://127.0.0.1:8080)
#   make test    set up and run every test (with the race detector)
#   make bench   run the benchmarks
#
# Set-up (make deps) is idempotent: Go modules now; later the ONNX Runtime
# library and Debian packages, each only when missing.

SHELL := /bin/bash
GO    ?= $(shell command -v go || echo /usr/local/go/bin/go)
BIN   := bin/webinspect
export PATH := $(dir $(GO)):$(PATH)

.PHONY: deps build run test bench clean

# Debian packages the tests need: chromium drives the UI tests.
DEB_PKGS := chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

deps:
	@$(GO) version >/dev/null || { echo "Go is required: install Go 1.26 into /usr/local/go" >&2; exit 1; }
	$(GO) mod download
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update >/dev/null && $(SUDO) apt-get install -y --no-install-recommends $$missing; }; \
	fi

build: deps
	$(GO) build -o $(BIN) ./cmd/webinspect

run: build
	./$(BIN) run

test: deps
	$(GO) vet ./...
	$(GO) test -race -timeout 30m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

clean:
	rm -rf bin
