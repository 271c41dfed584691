# Keepsake: two commands set everything up on a fresh Debian machine with Swift.
#   make demo   build and run the demo (a generated history, then messaging through a loopback relay)
#   make test   build and run the test suite
SHELL := /bin/bash
APT_PACKAGES := liblmdb-dev libsodium-dev libsqlite3-dev libzstd-dev pkg-config
SWIFT_BUILD_FLAGS ?=

.PHONY: demo test build release deps benchmarks protos migrations clean

# Installs the system libraries that are missing (apt-get as root; otherwise says what to install).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing system packages:$$missing; run: sudo apt-get install$$missing" >&2; exit 1; \
		fi; \
	fi

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

release: deps
	swift build -c release --product keepsake

demo: release
	./.build/release/keepsake demo
	./scripts/demo-messaging.sh ./.build/release/keepsake

test: deps
	swift test $(SWIFT_BUILD_FLAGS)

# Package benchmarks (slow; not part of `make test`). See Benchmarks/README.md.
benchmarks: deps
	cd Benchmarks && swift package --allow-writing-to-package-directory benchmark

# Regenerate committed code from its sources.
protos:
	./scripts/generate-protos.sh
migrations:
	./scripts/embed-migrations.sh

clean:
	rm -rf .build
