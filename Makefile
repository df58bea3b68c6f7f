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

# Test binaries also built and run under AddressSanitizer + UndefinedBehaviorSanitizer.
ASAN_TESTS := gguf_tests quant_tests tokenizer_tests core_tests kv_tests models_tests engine_tests kernels_tests api_tests serve_tests

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
	@cmake -S . -B $(ASAN_DIR) -G Ninja -DQUANTA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS) --target $(ASAN_TESTS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) -L '$(subst $() $(),|,$(ASAN_TESTS))'

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
