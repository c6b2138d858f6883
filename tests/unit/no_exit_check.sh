#!/bin/bash
# Safety (docs/live-patching.md, "Testing"): the code that runs inside the patched process never
# exits or aborts it.
# Fails if an object of the in-process libraries imports a function that ends the process:
# exit, _exit, _Exit, quick_exit, abort, __assert_fail (assert() compiled in), err/errx.
# std::terminate is not listed: the compiler references it from every noexcept function
# (an exception escaping one); the runtime's entry points catch everything before that.
# Usage: no_exit_check.sh LIBRARY...   (static archives or shared objects)
set -u
forbidden='^(exit|_exit|_Exit|quick_exit|abort|__assert_fail|err|errx|verr|verrx)(@.*)?$'
status=0
for lib in "$@"; do
	if [ ! -f "$lib" ]; then
		echo "missing: $lib"
		status=1
		continue
	fi
	case "$lib" in
	*.so) syms=$(nm -D --undefined-only "$lib" | awk '{print $2}') ;;
	*) syms=$(nm --undefined-only "$lib" 2>/dev/null | awk 'NF >= 2 {print $2}') ;;
	esac
	if [ -z "$(nm -A "$lib" 2>/dev/null | head -1)" ] && [ -z "$syms" ]; then
		echo "no symbols read from $lib"
		status=1
		continue
	fi
	bad=$(printf '%s\n' "$syms" | grep -E "$forbidden" | sort -u)
	if [ -n "$bad" ]; then
		echo "FAIL $lib imports: $(echo $bad)"
		status=1
	else
		echo "ok $lib"
	fi
done
exit $status
