#!/usr/bin/env bash
# Tests of guest/run's contract (docs/guest-runner.md), one case per invocation:
#   runner_test.sh CASE GUEST_RUN KERNEL
set -uo pipefail
case_name=$1 run=$2 kernel=$3
out=$(mktemp) log=$(mktemp)
trap 'rm -f "$out" "$log"' EXIT

# expect STATUS PATTERN ARGS...: run the runner, require exit STATUS and PATTERN in its output.
expect() {
	local want=$1 pattern=$2
	shift 2
	"$run" --kernel "$kernel" --quiet --log "$log" "$@" >"$out" 2>&1
	local got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: expected exit status $want, got $got from: guest/run $*"
		cat "$out"
		exit 1
	fi
	if [ -n "$pattern" ] && ! grep -Eq -e "$pattern" "$out" "$log"; then
		echo "FAIL: output lacks /$pattern/ for: guest/run $*"
		cat "$out"
		exit 1
	fi
	echo "ok: exit status $got${pattern:+, output matches /$pattern/}"
}

case "$case_name" in
exit_status)
	expect 0 "" -- true
	expect 7 "command exited with status 7" -- 'echo hello; exit 7'
	;;
time_limit)
	# The marker proves the guest booted and the command was running when the limit hit.
	expect 253 "time limit of 60s expired" --timeout 60 -- 'echo atlas-sleeping-now; sleep 100000'
	grep -q atlas-sleeping-now "$log" || { echo "FAIL: the command never started"; exit 1; }
	;;
splat_fails_run)
	# LKDTM makes the kernel print a real WARNING; the command itself succeeds.
	expect 252 "the kernel log shows a report" -- 'echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT; exit 0'
	grep -q '\] WARNING: CPU: .*lkdtm' "$log" || { echo "FAIL: LKDTM's WARNING is not in the log"; exit 1; }
	;;
test_output_is_not_a_splat)
	expect 0 "" -- 'echo "WARNING: a test printed this"; echo "BUG: so what"; exit 0'
	;;
directories)
	dir=$(mktemp -d)
	mkdir -p "$dir/sub"
	echo 'echo from-a-script; seq 1 50000 >/out/sub/numbers; exit 3' >"$dir/sub/script.sh"
	# --out brings /out back (also from a failing command), kept apart from the console.
	expect 3 "from-a-script" --add "$dir:/atlas/data" --out "$dir/back" -- \
		'mkdir /out/sub && echo hi >/out/top && sh /atlas/data/sub/script.sh'
	[ "$(cat "$dir/back/top" 2>/dev/null)" = hi ] && seq 1 50000 | cmp -s - "$dir/back/sub/numbers" ||
		{ echo "FAIL: --out did not bring back /out"; ls -lR "$dir/back"; exit 1; }
	! grep -q '^ATLAS-GUEST-OUT ' "$out" || { echo "FAIL: the /out archive was shown"; exit 1; }
	rm -rf "$dir"
	;;
numa)
	# Two nodes, one vCPU and half the memory each; bad values fail before any boot.
	expect 0 "" --cpus 2 --numa 2 -- 'test "$(cat /sys/devices/system/node/online)" = 0-1 &&
		test "$(cat /sys/devices/system/node/node1/cpulist)" = 1 &&
		grep -Eq "Node 1 MemTotal: +[0-9]{6,} kB" /sys/devices/system/node/node1/meminfo'
	expect 250 "--numa must be a positive number" --numa 0 -- true
	expect 250 "needs at least 2 vCPUs" --cpus 1 --numa 2 -- true
	expect 250 "needs --mem in whole megabytes" --numa 2 --mem 1.5G -- true
	;;
*)
	echo "unknown case $case_name"
	exit 2
	;;
esac
