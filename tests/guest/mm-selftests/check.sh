#!/usr/bin/env bash
# CTest entry guest.mm_selftests: build the upstream mm selftests, run them in a guest on the
# debug kernel, and require every outcome to equal the one recorded in expected.txt (a test
# that passed must pass; a known failure must still fail the same way, so that a change in
# behaviour, better or worse, is noticed and the baseline updated on purpose).
#   check.sh GUEST_RUN KERNEL BUILD_DIR
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=$1 kernel=$2 out=$3
# The uapi headers exported next to the kernel image by kernel/build.sh.
"$here/build.sh" "$out" "$(dirname "$kernel")/headers" || exit 1
cp "$here/expected.txt" "$out/expected.txt"
log=$out/console.log
"$run" --kernel "$kernel" --quiet --timeout 3000 --mem 3G --log "$log" \
	--add "$out:/atlas/mm" --add "$here/guest-run.sh:/atlas/guest-run.sh" -- /atlas/guest-run.sh
status=$?
[ $status = 0 ] || { echo "mm-selftests: the guest run failed (status $status, log $log)"; exit 1; }
grep -q '^MMTEST-DONE' <(tr -d '\r' <"$log") || { echo "mm-selftests: the run did not finish (log $log)"; exit 1; }

declare -A got=()
while read -r _ name outcome rest; do
	got[$name]=$outcome
	echo "$name: $outcome ($rest)"
done < <(tr -d '\r' <"$log" | grep '^MMTEST ')

mismatches=0 passed=0
while read -r name expected _; do
	case "$name" in '#'* | '') continue ;; esac
	case "$expected" in unbuildable | excluded) continue ;; esac
	if [ "${got[$name]:-missing}" != "$expected" ]; then
		echo "MISMATCH: $name expected $expected, got ${got[$name]:-no result}"
		mismatches=$((mismatches + 1))
	else
		passed=$((passed + 1))
	fi
done <"$here/expected.txt"
echo "mm-selftests: $passed as expected, $mismatches different"
[ $mismatches = 0 ]
