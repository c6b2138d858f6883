# atlas top-level targets. `make help` lists them; docs/building.md explains them.
SHELL := /bin/bash
.DEFAULT_GOAL := all

BUILD      := build
USER_BUILD := $(BUILD)/user
CMAKE_GEN  := -G Ninja

.PHONY: all deps user kernel kernel-debug kernel-stock check check-native check-guest guest-shell demo \
        bench format format-check clean distclean help

help:
	@echo "make deps          install build and test dependencies (apt, Debian 12)"
	@echo "make / make all    build user space into $(USER_BUILD)"
	@echo "make kernel        build the views kernel: $(BUILD)/kernel/bzImage"
	@echo "make kernel-debug  build the debug kernel (lockdep, KASAN, DEBUG_VM): $(BUILD)/kernel-debug/bzImage"
	@echo "make kernel-stock  the release configuration without the series (benchmark baseline)"
	@echo "make check         all tests: format, native (plain, ASan+UBSan, TSan), in-guest"
	@echo "make guest-shell   interactive shell in a guest running the debug kernel"
	@echo "make demo          wait-free live patching of a running program on the views kernel"
	@echo "make bench         views kernel benchmarks (release kernel, 4 GiB guest)"
	@echo "make format        reformat user-space sources with clang-format"

deps:
	@scripts/deps.sh

# Builds only: the packages come from `make deps` (apt), which this target never runs.
all user:
	@cmake -S . -B $(USER_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(USER_BUILD)

kernel: deps
	@kernel/build.sh release

kernel-debug: deps
	@kernel/build.sh debug

kernel-stock: deps
	@kernel/build.sh stock

check: deps
	@tests/check.sh all

check-native: deps
	@tests/check.sh native

check-guest: deps
	@tests/check.sh guest

guest-shell: kernel-debug
	@guest/run --kernel $(BUILD)/kernel-debug/bzImage --shell

demo: deps all kernel
	@scripts/demo.sh $(USER_BUILD) $(BUILD)/kernel/bzImage

bench: deps all kernel kernel-stock
	@bench/kernel/run.sh $(USER_BUILD) $(BUILD)/kernel/bzImage $(BUILD)/kernel-stock/bzImage

format:
	@tests/check.sh format-fix

format-check: deps
	@tests/check.sh format

clean:
	rm -rf $(BUILD)/user $(BUILD)/user-*

distclean:
	rm -rf $(BUILD)
