#!/usr/bin/env bash
# The driver of `make check` (docs/testing.md). Tiers, in order:
#   format   clang-format on every user-space C/C++ file
#   native   user-space tests (CTest, label != guest) built plain, with ASan+UBSan, with TSan
#   guest    the debug kernel, then the in-guest tests (CTest, label guest) booting it
#   all      every tier above
# Prints one closing line "check: N passed, M failed" over all tests; exits non-zero on any
# failure. A missing tool or kernel is a failure, never a skip.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tier=${1:-all}

passed=0 failed=0 failures=()

record() { # record NAME STATUS [PASSED FAILED]
	local name=$1 status=$2 p=${3:-} f=${4:-}
	if [ -z "$p" ]; then
		if [ "$status" = 0 ]; then p=1 f=0; else p=0 f=1; fi
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$status" != 0 ]; then
		[ "$f" -gt 0 ] || failed=$((failed + 1))
		failures+=("$name")
	fi
}

section() { printf '\n=== %s ===\n' "$*"; }

format_files() {
	git ls-files -- '*.c' '*.h' '*.cpp' '*.hpp' ':!:kernel/**' 2>/dev/null
}

run_format() {
	section "format: clang-format --dry-run"
	mapfile -t files < <(format_files)
	clang-format --dry-run -Werror "${files[@]}"
	record format $?
}

# run_ctest NAME BUILD_DIR CMAKE_ARGS... -- CTEST_ARGS...
run_ctest() {
	local name=$1 dir=$2
	shift 2
	local cmake_args=() ctest_args=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do cmake_args+=("$1"); shift; done
	[ $# -eq 0 ] || shift
	ctest_args=("$@")
	section "$name: build ($dir)"
	if ! cmake -S . -B "$dir" -G Ninja "${cmake_args[@]}" >/dev/null || ! cmake --build "$dir"; then
		record "$name (build)" 1
		return
	fi
	section "$name: ctest"
	local log
	log=$(mktemp)
	ctest --test-dir "$dir" --output-on-failure "${ctest_args[@]}" 2>&1 | tee "$log"
	local status=${PIPESTATUS[0]}
	# "100% tests passed, 0 tests failed out of 12"
	local total fails
	total=$(sed -nE 's/.*tests failed out of ([0-9]+).*/\1/p' "$log" | tail -n1)
	fails=$(sed -nE 's/.* ([0-9]+) tests failed out of.*/\1/p' "$log" | tail -n1)
	rm -f "$log"
	if [ -z "$total" ] || [ "$total" = 0 ]; then
		echo "check: $name ran no test" >&2
		record "$name (no tests)" 1
	else
		record "$name" "$status" $((total - fails)) "$fails"
	fi
}

run_native() {
	run_ctest native build/user -DCMAKE_BUILD_TYPE=RelWithDebInfo -- -LE guest -j2
	run_ctest asan-ubsan build/user-asan -DCMAKE_BUILD_TYPE=Debug '-DATLAS_SANITIZE=address,undefined' -- -LE guest -j2
	run_ctest tsan build/user-tsan -DCMAKE_BUILD_TYPE=Debug -DATLAS_SANITIZE=thread -- -LE guest -j2
}

run_guest() {
	# Only the debug kernel: every guest test boots it. The release kernel (same series, fewer
	# options) is built by `make demo` and `make bench`; building it here would add ten cold
	# minutes for no test (docs/testing.md, "Durations").
	section "guest: kernel"
	kernel/build.sh debug
	local kstatus=$?
	record "kernel build (debug)" $kstatus
	[ $kstatus = 0 ] || return
	run_ctest guest build/user -DCMAKE_BUILD_TYPE=RelWithDebInfo -- -L guest
}

start=$SECONDS
case "$tier" in
format) run_format ;;
format-fix)
	mapfile -t files < <(format_files)
	exec clang-format -i "${files[@]}"
	;;
native) run_native ;;
guest) run_guest ;;
all) run_format; run_native; run_guest ;;
*) echo "usage: tests/check.sh all|format|native|guest|format-fix" >&2; exit 2 ;;
esac

section "summary ($((SECONDS - start)) s)"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "check: $passed passed, $failed failed"
[ ${#failures[@]} = 0 ]
