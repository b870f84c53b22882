# Shared by the embedding samples' Makefiles (examples/rust, examples/go): where the library and
# the test assets are, and the test every sample passes: one streamed answer about the tiny test
# model's photo (the sample itself also checks an error status), written to ask.out.
LLAVAUHD_PREFIX ?= $(abspath ../../build)
ASSETS  ?= $(abspath ../../.build-assets)
REPO    := $(abspath ../..)

# $(call run-sample,PROGRAM,NAME): runs PROGRAM on the tiny model; the answer must not be empty.
define run-sample
	$(1) $(ASSETS)/models/small-noslice $(REPO)/Tests/Fixtures/upstream/small-noslice/input.png \
		"What animal is this?" 8 > ask.out
	test -s ask.out
	@echo "examples/$(2): streamed an answer and handled an error status"
endef
