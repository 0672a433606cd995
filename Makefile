# cairn's build, tests and demo. Every target calls go or a small script;
# `make help` lists them.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $$($(GO) env GOPATH)/bin/staticcheck)
FUZZTIME ?= 30s

.DEFAULT_GOAL := help
.PHONY: help build deb test lint fuzz bench fleet crashtest demo demo-journal clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# cairn is built without cgo: a static binary that needs nothing of the
# host's libc (nothing in cairn calls C), and that an idle agent keeps
# 1.8 MiB fewer pages of (libc's and the loader's) resident.
build: ## build bin/cairn (static, without cgo)
	CGO_ENABLED=0 $(GO) build -o bin/cairn ./cmd/cairn

# The Debian package, with dpkg-deb from a staged tree (no debhelper, no
# network): VERSION=1.2.3 and ARCH=arm64 override git describe and dpkg's
# architecture; packaging/deb/build.sh says what goes in.
deb: ## build dist/cairn_VERSION_ARCH.deb (VERSION=, ARCH= to override)
	GO=$(GO) packaging/deb/build.sh

# -timeout: steps runs real apt and dpkg in Debian roots besides its crash
# tests; go test's default of 10 minutes a package is tight on 2 cores.
test: ## go vet and every test (the CLI scripts in testdata/script too)
	$(GO) vet ./...
	$(GO) test -timeout 45m ./...

lint: ## gofmt, go vet and staticcheck must be clean
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

fuzz: ## run every fuzz target in the tree for FUZZTIME each (default 30s)
	@set -e; for file in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$(dirname $$file) $$target"; \
			$(GO) test $$(dirname $$file) -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME); \
		done; \
	done

# bench/run.sh's gitload section is the short run of bench/gitload (what a
# poll costs the git server); `make bench GITLOAD_FLAGS=-long` for the long
# one, or `go run ./bench/gitload -long` alone.
bench: ## Go benchmarks, then the whole-process comparisons of bench/run.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "bench/run.sh not found: skipped"; fi

# The simulated fleet of issue 11 (bench/fleet): 100 cairn agents, git
# daemon and Prometheus on this machine, through the canary, promotion,
# rollback and drift scenario; the figures go to bench/results/fleet-DATE.md.
# FLEETFLAGS passes flags: FLEETFLAGS='-web 10 -db 5 -keep'. Runs as root;
# takes about 10 minutes.
fleet: build ## run 100 agents through the fleet scenario and write the figures (FLEETFLAGS=)
	$(GO) run ./bench/fleet -cairn bin/cairn $(FLEETFLAGS)

crashtest: ## kill the applier at random points 2000 times and check recovery
	cd steps && CAIRN_CRASH_TRIALS=2000 $(GO) test -run '^TestCrash' -count=1 -timeout 60m

demo: ## the agent: a canary and a web host follow a signed git repo of examples/fleet
	GO=$(GO) scripts/demo.sh

demo-journal: ## the journal applier by hand on examples/journal under a scratch root
	GO=$(GO) scripts/demo-journal.sh

clean: ## remove bin/ and dist/
	rm -rf bin dist
