#!/usr/bin/env bash
# CTest entry guest.mm_selftests: build the upstream mm selftests, run them in a guest on the
# debug kernel, and require every outcome to equal the one recorded in expected.txt (a test
# that passed must pass; a known failure must still fail the same way, so that a change in
# behaviour, better or worse, is noticed and the baseline updated on purpose). Every test runs
# twice: as is, and inside a non-base view (guest-run.sh, in_view.c).
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

declare -A got=() got_view=()
while read -r pass name outcome rest; do
	if [ "$pass" = MMTEST ]; then got[$name]=$outcome; else got_view[$name]=$outcome; fi
	echo "$pass $name: $outcome ($rest)"
done < <(tr -d '\r' <"$log" | grep -E '^MM(VIEW)?TEST ')

# Each test must give its recorded outcome, and inside a view the outcome recorded for views
# (view=OUTCOME in expected.txt, where a refusal of docs/kernel.md "Refusals" changes it; else
# the same one).
mismatches=0 passed=0
set -f
while read -r name expected rest; do
	case "$name" in '#'* | '') continue ;; esac
	case "$expected" in unbuildable | excluded) continue ;; esac
	expected_view=$expected
	for word in $rest; do
		case "$word" in '#'*) break ;; view=*) expected_view=${word#view=} ;; esac
	done
	for where in outside view; do
		if [ $where = outside ]; then
			want=$expected have=${got[$name]:-}
		else
			want=$expected_view have=${got_view[$name]:-}
		fi
		if [ "${have:-missing}" != "$want" ]; then
			echo "MISMATCH: $name ($where a view) expected $want, got ${have:-no result}"
			mismatches=$((mismatches + 1))
		else
			passed=$((passed + 1))
		fi
	done
done <"$here/expected.txt"
echo "mm-selftests: $passed outcomes as expected (each test outside and inside a view), $mismatches different"
[ $mismatches = 0 ]
