# quanta: set up, build, run and test. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
JOBS ?= $(shell nproc)
MODEL ?=
PROMPT ?= Once upon a time
N ?= 64
DEFAULT_MODEL := $(BUILD_DIR)/default-model.gguf
export QUANTA_SHARED ?= $(abspath ../shared)

# Test binaries also built and run under AddressSanitizer + UndefinedBehaviorSanitizer: the
# parsers of untrusted input (GGUF, tokenizer, HTTP/JSON requests) and the code that manages
# memory and lifetimes (KV blocks, scheduler, speculative rollback, the serving engine).
ASAN_TESTS := gguf_tests tokenizer_tests kv_tests engine_tests api_tests serve_tests
# Whole-file model evaluations and model-level numeric checks that take minutes under ASan;
# the Release run covers them.
ASAN_EXCLUDE := ^(Perplexity\.(Stories260K|QuantizedKv)|SharedModels/KvGolden\.|KeyTransform\.ExactThroughTheModel)

.PHONY: all deps build run test test-release test-asan clean

all: build

deps:
	@bash scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
ifeq ($(strip $(MODEL)),)
	@$(BUILD_DIR)/quanta synth -o $(DEFAULT_MODEL)
	@$(BUILD_DIR)/quanta run -m $(DEFAULT_MODEL) -p "$(PROMPT)" -n $(N) --ignore-eos
else
	@$(BUILD_DIR)/quanta run -m "$(MODEL)" -p "$(PROMPT)" -n $(N)
endif

test: build
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan

test-release:
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_DIR) -G Ninja -DQUANTA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_CXX_FLAGS_DEBUG=-g1 >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS) --target $(ASAN_TESTS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) -L '$(subst $() $(),|,$(ASAN_TESTS))' \
		-E '$(ASAN_EXCLUDE)'

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
