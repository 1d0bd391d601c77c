# webinspect — line-scan web inspection engine.
#
#   make run     set up, build and run the engine on its built-in default
#                (simulated 2 m woven fabric at 100 m/min, UI on http://127.0.0.1:8080)
#   make test    set up and run the default test suite: every test
#                without the race detector, then the concurrent core under
#                it; under 5 minutes on a quiet 2-core machine
#   make bench   run the benchmarks
#
#   make test-short  the quick suite (go test -short: slow tests skip)
#   make test-long   everything under the race detector with the long cases
#                    (WEBINSPECT_LONG=1: more seeds, materials, taught
#                    models), the real-time tests, noasm kernels, fuzzing
#   make lint        gofmt, go vet and staticcheck (pinned, installed into bin/)
#
# CI (.ci/run) runs make lint, make test and make test-long.
#
# Set-up (make deps) is idempotent: Go modules, Debian packages and the ONNX
# Runtime library (third_party/onnxruntime), each only when missing.

SHELL := /bin/bash
GO    ?= $(shell command -v go || echo /usr/local/go/bin/go)
BIN   := bin/webinspect
export PATH := $(dir $(GO)):$(PATH)

.PHONY: duckdb-check deps build run test test-short test-long lint bench clean

# ONNX Runtime CPU library for model/onnx, taken from the npm registry package
# onnxruntime-node (the only registry here that ships it). The tarball is
# checked against the SHA-256 and the npm integrity (SHA-512) recorded below,
# then only the Linux x64 library is extracted into third_party/ (git-ignored).
# To move to a new version: `npm pack onnxruntime-node@VER --json` in a temp
# dir, then record the tarball's sha256sum, the "integrity" field and the
# library's sha256sum here.
ORT_NPM_PKG        := onnxruntime-node@1.30.0
ORT_NPM_TGZ_SHA256 := 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_NPM_INTEGRITY  := sha512-twhs1C2C/BFkz1yc5OY0KIU2GUq6DURO7hD4bx5Q2Qy3nAMJwRXW8xU3NVczE29VA9lolLOYepoD8fjTGOfIqw==
ORT_NPM_MEMBER     := package/bin/napi-v6/linux/x64/libonnxruntime.so.1
ORT_LIB_SHA256     := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_DIR            := $(CURDIR)/third_party/onnxruntime
ORT_LIB            := $(ORT_DIR)/libonnxruntime.so.1

# Debian packages the tests need: chromium drives the UI tests.
# aravis (GigE Vision fake camera, arv-tool, the Aravis client through
# python3-gi) is the camera tests' peer nobody here wrote; libusb builds the
# USB3 Vision transport (cgo, gousb).
DEB_PKGS := chromium aravis-tools aravis-tools-cli gir1.2-aravis-0.8 python3-gi libusb-1.0-0-dev pkg-config
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
	@set -euo pipefail; \
	if [ -f "$(ORT_LIB)" ] && echo "$(ORT_LIB_SHA256)  $(ORT_LIB)" | sha256sum -c --status 2>/dev/null; then exit 0; fi; \
	command -v npm >/dev/null || { echo "npm is required to fetch ONNX Runtime: apt-get install npm" >&2; exit 1; }; \
	echo "fetching ONNX Runtime ($(ORT_NPM_PKG)) into $(ORT_DIR)"; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	( cd "$$tmp" && npm pack --silent --json $(ORT_NPM_PKG) >pack.json ); \
	tgz=$$(ls "$$tmp"/*.tgz); \
	echo "$(ORT_NPM_TGZ_SHA256)  $$tgz" | sha256sum -c --status 2>/dev/null || \
	  { echo "ONNX Runtime: $$tgz has SHA-256 $$(sha256sum "$$tgz" | cut -d' ' -f1), want $(ORT_NPM_TGZ_SHA256)" >&2; exit 1; }; \
	reported=$$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1]))[0].integrity)' "$$tmp/pack.json"); \
	computed=$$(node -e 'const f=require("fs"),h=require("crypto").createHash("sha512");console.log("sha512-"+h.update(f.readFileSync(process.argv[1])).digest("base64"))' "$$tgz"); \
	[ "$$reported" = "$(ORT_NPM_INTEGRITY)" ] && [ "$$computed" = "$(ORT_NPM_INTEGRITY)" ] || \
	  { echo "ONNX Runtime: npm integrity $$reported, tarball $$computed, want $(ORT_NPM_INTEGRITY)" >&2; exit 1; }; \
	tar -xzf "$$tgz" -C "$$tmp" $(ORT_NPM_MEMBER); \
	echo "$(ORT_LIB_SHA256)  $$tmp/$(ORT_NPM_MEMBER)" | sha256sum -c --status 2>/dev/null || \
	  { echo "ONNX Runtime: extracted library has the wrong SHA-256" >&2; exit 1; }; \
	mkdir -p "$(ORT_DIR)"; \
	install -m 0644 "$$tmp/$(ORT_NPM_MEMBER)" "$(ORT_LIB).tmp"; \
	mv -f "$(ORT_LIB).tmp" "$(ORT_LIB)"; \
	echo "ONNX Runtime library: $(ORT_LIB)"

build: deps
	$(GO) build -o $(BIN) ./cmd/webinspect

run: build
	./$(BIN) run

TEST_ENV := WEBINSPECT_ORT_LIB=$(ORT_LIB) WEBINSPECT_REQUIRE_ORT=1 WEBINSPECT_REQUIRE_ARAVIS=1

# The real-time tests (internal/realtime): they skip themselves under
# -race and run again without it. Found by grep; each name is the
# Test function that calls realtime.Skip.
RT_PKGS     = $(shell ./.ci/realtime-tests pkgs)
RT_RUN      = $(shell ./.ci/realtime-tests run)

# The concurrent core: the packages whose goroutines share memory on the
# line's path (the rings, camera streams, the engine's stages, marking,
# the plant's consumers). make test runs their quick tests (-short) under
# -race as well; make test-long runs every package under -race.
RACE_PKGS := ./acquisition/ring/ ./acquisition/camera/ ./acquisition/u3v/ \
             ./engine/ ./marking/ ./plant/

# The default suite (README, CI): every package without -race, which
# includes the real-time tests; the concurrent core under -race; the
# kernels' plain-Go references. Fuzzing and the rest of -race are in
# test-long, which CI also runs.
test: deps
	$(GO) vet ./...
	$(TEST_ENV) $(GO) test -timeout 20m ./...
	$(TEST_ENV) $(GO) test -race -short -timeout 20m $(RACE_PKGS)
	$(GO) test -tags noasm ./kernels/...

test-short: deps
	$(TEST_ENV) $(GO) test -short -timeout 20m ./...

# Everything under -race with the long cases (internal/long), then the
# real-time tests (which skip under -race) with their long cases, the
# noasm kernels under -race, and every fuzz target (.ci/fuzz).
test-long: deps
	$(TEST_ENV) WEBINSPECT_LONG=1 $(GO) test -race -timeout 60m ./...
	$(TEST_ENV) WEBINSPECT_LONG=1 $(GO) test -timeout 60m -run '$(RT_RUN)' $(RT_PKGS)
	$(GO) test -race -tags noasm ./kernels/...
	FUZZTIME=10000x GO=$(GO) ./.ci/fuzz

# staticcheck is pinned and installed from the module proxy into bin/.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := bin/staticcheck

$(STATICCHECK): Makefile
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

lint: deps $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l:" >&2; echo "$$out" >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags noasm ./kernels/...
	$(STATICCHECK) ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# Cross-check a closed roll's Parquet with DuckDB (not part of the tests:
# DuckDB's Node binding is 24 MB from npm). ROLL is a roll directory.
DUCKDB_NPM_PKG    := @duckdb/node-bindings-linux-x64@1.5.6-r.1
DUCKDB_NPM_SHA256 := 1b9f82478539bb9a1d1df44bd103121a12ae52142c07158dc52b97d2ec1d69ff
duckdb-check: build
	@set -euo pipefail; test -n "$(ROLL)" || { echo "usage: make duckdb-check ROLL=rolls/<id>" >&2; exit 1; }; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	( cd "$$tmp" && npm pack --silent $(DUCKDB_NPM_PKG) >/dev/null ); tgz=$$(ls "$$tmp"/*.tgz); \
	echo "$(DUCKDB_NPM_SHA256)  $$tgz" | sha256sum -c --status || { echo "DuckDB: $$tgz has the wrong SHA-256" >&2; exit 1; }; \
	tar -xzf "$$tgz" -C "$$tmp"; \
	DUCKDB_NODE="$$tmp/package/duckdb.node" node bench/duckdb/check.js "$(ROLL)/defects.parquet" "$$tmp/duck.csv"; \
	echo "DuckDB:"; cat "$$tmp/duck.csv"; \
	echo "webinspect export --format csv:"; ./bin/webinspect export "$(ROLL)" --format csv | \
	  awk -F, 'NR>1 {n++; a+=$$7; if (n==1||$$3<lo) lo=$$3; if ($$4>hi) hi=$$4} END {printf "defects %d md %s..%s area %.3f\n", n, lo, hi, a}'

clean:
	rm -rf bin
