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
# The patch comes from Debian's security update for memcached, made by atlas build-patch (below);
# if that fails, the harness's own patch, said so.
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
# The patch: Debian's security update for memcached, made into live patches by atlas
# build-patch (bench/servers/memcached-security-update.sh). Its fixes change no code of Debian's
# own build (the builder says so for each); the SASL password-file fix (CVE-2026-47783/47784)
# changes the build configured with --enable-sasl-pwdb, so that build runs and is patched.
# EVAL_FIX=read-oom-crash (an upstream fix on every request's path; needs a memcached history,
# MEMCACHED_GIT) or EVAL_PATCH choose another.
if [ -z "${EVAL_FIX:-}${EVAL_PATCH:-}" ]; then
	echo "== Debian's memcached security update (1.6.18-1+deb12u1) patch by patch, with atlas build-patch"
	if "$root/bench/servers/memcached-security-update.sh" "$BUILD" >"$root/build/demo-security-update.log" 2>&1; then
		grep -E '^(Debian|with|  [0-9A-Z])' "$root/build/demo-security-update.log" | sed 's/^/   /' || true
		su=$root/build/servers/security-update
		sasl=$(ls "$su"/pwdb.*.patch.o | head -n1)
		export EVAL_MEMCACHED=$root/build/servers/memcached-1.6.18-1-sasl-sasl-pwdb-tls/memcached
		export EVAL_PATCH=$sasl
		name=${sasl##*/pwdb.}
		export EVAL_PATCH_NAME=${name%.patch.patch.o}
		echo "== the demo runs the --enable-sasl-pwdb build and patches it with $EVAL_PATCH_NAME"
	else
		echo "== $(tail -n1 "$root/build/demo-security-update.log")"
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
