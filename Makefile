# docker-volume-backup: common tasks. `make help` lists them.

CARGO ?= cargo
BIN   := target/release/docker-volume-backup

.DEFAULT_GOAL := all
.PHONY: all build install uninstall test test-deps fmt fmt-check clippy lint bench bench-quick bench-migrate bomb fuzz \
        busybox-image clean help

all: build ## release build (default)

build: ## cargo build --release
	$(CARGO) build --release

install: ## build, install to $PREFIX/bin (~/.local) and as the Docker plugin `docker volumebackup`
	./install.sh

uninstall: ## remove the installed binary and the plugin link
	./install.sh --uninstall

test: test-deps fmt-check clippy ## everything CI runs: deps, format check, clippy, all tests
	$(CARGO) test --all-targets --features failpoints

test-deps: ## install what the tests need (busybox-static, zstd, time, curl, ...); idempotent
	scripts/test-deps.sh

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

clippy: ## clippy, warnings are errors
	$(CARGO) clippy --all-targets --features failpoints -- -D warnings

lint: fmt-check clippy ## fmt-check + clippy, plus shellcheck on the scripts when installed
	@if command -v shellcheck >/dev/null 2>&1; then \
		echo "shellcheck install.sh .ci/run scripts/*.sh"; \
		shellcheck install.sh .ci/run scripts/*.sh; \
	else \
		echo "shellcheck not installed: skipped (apt-get install shellcheck)"; \
	fi

bench: ## benchmark save/restore against the seed recipe and a curl|zstd pipeline (~1 GiB)
	scripts/bench.sh

bench-quick: ## the same on a tenth of the data
	BENCH_SCALE=0.1 scripts/bench.sh

bench-migrate: ## only migrate over a loopback sshd vs save | ssh | restore, on a tenth of the data
	BENCH_SCALE=0.1 BENCH_MIGRATE_ONLY=1 scripts/bench.sh

bomb: ## metadata bomb: peak memory of inspect, verify and restore on a crafted archive (not a test)
	scripts/bomb.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := archive_reader restore_rewrite
fuzz: ## fuzz the archive reader and the restore rewrite, FUZZ_SECONDS (60) each; installs cargo-fuzz if missing
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	# cargo-fuzz needs nightly flags (-Z sanitizer); RUSTC_BOOTSTRAP lets the stable toolchain take them.
	# Each target's corpus grows in a scratch copy; the committed one stays the small crafted set.
	set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/target/corpus/$$t && cp fuzz/corpus/$$t/* fuzz/target/corpus/$$t/; \
		(cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t target/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=20 -print_final_stats=1); \
	done

busybox-image: ## import the local test image dvb-test-busybox:latest (no registry needed)
	scripts/busybox-image.sh

clean: ## cargo clean (the benchmark's cached data set in /var/tmp/dvb-bench stays)
	$(CARGO) clean

help: ## this list
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-14s %s\n", $$1, $$2}'
