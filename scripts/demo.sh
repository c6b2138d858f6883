#!/usr/bin/env bash
# make demo: the main job, short (docs/evaluation.md). memcached 1.6.18-1, built from Debian 12's
# source package and run the way Debian runs it (daemonized, as nobody, 4 workers), serves an
# open-loop request stream in a QEMU guest on the views kernel while a patch is applied and
# reverted every 2 s, once in global mode (every thread stopped at a barrier, what other live
# patchers do) and once in wait-free mode (each thread moves to the patched view on its own),
# side by side with a run without patching. Prints the comparison table, where the plot of
# latency over time is, and last:
#   demo: wait-free p99.9/none = A, global p99.9/none = B, errors = E
#
#   scripts/demo.sh [BUILD_DIR] [KERNEL]
#
# The patch is a real upstream fix on memcached's request path, read-oom-crash (memcached commit
# 8b852b61fc32, in drive_machine()), made by atlas build-patch, when a memcached history is at
# hand (MEMCACHED_GIT, see bench/servers/README.md); otherwise the harness's own patch, said so.
# DEMO_SECONDS (15) sets each run's length; EVAL_* settings of bench/eval/run.sh apply too.
# The synthetic demo of earlier versions (four threads calling one function) is the test
# guest.wait_free.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BUILD=${1:-$root/build/user}
export KERNEL=${2:-$root/build/kernel/bzImage}
export EVAL_THREADS=${EVAL_THREADS:-4} EVAL_REPS=${EVAL_REPS:-1}
export EVAL_MODES=${EVAL_MODES:-none global wait-free}
export EVAL_SECONDS=${DEMO_SECONDS:-${EVAL_SECONDS:-15}}
if [ -z "${EVAL_FIX:-}${EVAL_PATCH:-}" ]; then
	echo "== building the live patch of upstream fix read-oom-crash with atlas build-patch"
	if "$root/bench/servers/memcached-fix-patch.sh" read-oom-crash >"$root/build/demo-patch.log" 2>&1; then
		export EVAL_PATCH=$root/build/servers/patches/read-oom-crash.patch.o
		export EVAL_PATCH_NAME=read-oom-crash
	else
		echo "== $(tail -n1 "$root/build/demo-patch.log")"
		echo "== so the harness's own patch is used instead of a real fix (bench/eval/patches/)"
	fi
fi
out=$root/build/demo/$(date +%Y%m%d-%H%M%S)
mkdir -p "$(dirname "$out")"
echo "== atlas demo: memcached 1.6.18-1 under load in QEMU on the views kernel, patched every 2 s"
echo "== three runs of ${EVAL_SECONDS}s: no patching, global mode, wait-free mode; results in $out"
status=0
"$root/bench/eval/run.sh" "$out" >"$out.log" 2>&1 || status=$?
grep -E '^(eval: [0-9]|\|)' "$out.log" || true
summary=$(grep -E '^eval: wait-free p99.9/none' "$out.log" | tail -n1 || true)
if [ "$status" -ne 0 ] || [ -z "$summary" ]; then
	echo "== demo FAILED (status $status): see $out.log" >&2
	exit 1
fi
echo "plot: $out/latency.png (and .svg)"
echo "demo: ${summary#eval: }"
