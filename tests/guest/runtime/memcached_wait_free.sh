#!/usr/bin/env bash
# memcached in wait-free mode on the views kernel (docs/live-patching.md, "On the views kernel"): 1.6.18-1 as Debian
# builds it, daemonized as nobody under the preload with 4 workers, under atlas-loadgen's
# steady load (300 requests/s: the debug kernel under emulation is slow), patched and reverted
# every 2 s in wait-free mode for 12 s by the evaluation's own script (bench/eval/guest.sh,
# EVAL_STRICT=1). Fails unless every apply and revert finishes (memcached's idle threads,
# mc-log, mc-lrumaint and the others, sleep through them in the old view), at least one apply
# and one revert ran, `stats settings` answers from the patched function exactly while it is
# applied, and no reply is lost or wrong. KEEP=1 keeps the work directory (console log, /out).
#
#   memcached_wait_free.sh GUEST_RUN KERNEL BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
run=$1 kernel=$2 build=$3
"$root/bench/servers/memcached.sh" "$root/build/servers" >/dev/null ||
	{ echo "FAIL: building memcached from Debian's source failed"; exit 1; }
memcached=$root/build/servers/memcached-1.6.18-1/memcached
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
"$build/tools/mkpatch/atlas-mkpatch" -m "$root/bench/eval/patches/stats-settings.json" \
	--target "$memcached" -o "$work/patch.o" >/dev/null
libunwind=$(readlink -f /usr/lib/x86_64-linux-gnu/libunwind.so.8)
status=0
"$run" --kernel "$kernel" --cpus 2 --quiet --timeout 600 --log "$work/console.log" \
	--out "$work/out" \
	--add "$root/bench/eval/guest.sh:/atlas/eval/guest.sh" \
	--add "$memcached:/atlas/bin/memcached" \
	--add "$build/lib/preload/libatlas-preload.so:/atlas/lib/libatlas-preload.so" \
	--add "$libunwind:/usr/lib/x86_64-linux-gnu/libunwind.so.8" \
	--add "$build/tools/atlas/atlas:/atlas/bin/atlas" \
	--add "$build/bench/loadgen/atlas-loadgen:/atlas/bin/atlas-loadgen" \
	--add "$work/patch.o:/atlas/eval/patch.o" \
	-- "EVAL_MODES=wait-free EVAL_THREADS=4 EVAL_REPS=1 EVAL_SECONDS=12 EVAL_RATE=300" \
	"EVAL_DEADLINE_MS=10000 EVAL_STRICT=1 EVAL_PROBE='stats settings' EVAL_PROBE_APPLIED='STAT atlas_patched yes'" \
	"sh /atlas/eval/guest.sh /atlas/bin/memcached /atlas/lib/libatlas-preload.so" \
	"/atlas/bin/atlas /atlas/bin/atlas-loadgen /atlas/eval/patch.o stats-settings" || status=$?
tr -d '\r' <"$work/console.log" | grep -E '^eval: ' || true
calls=$(cat "$work"/out/4t/1/wait-free/patch.log 2>/dev/null | grep -c . || true)
sleepers=$(grep -c '"migrate_on_wake":\[{' "$work"/out/4t/1/wait-free/events.jsonl 2>/dev/null || true)
echo "patch calls: ${calls:-0}; finished transitions with threads asleep in retired views: ${sleepers:-0}"
if [ $status != 0 ]; then
	echo "FAIL: the guest run failed (status $status)"
	tr -d '\r' <"$work/console.log" | tail -40
	exit 1
fi
[ "${calls:-0}" -ge 2 ] || { echo "FAIL: only ${calls:-0} patch calls were made"; exit 1; }
[ "${sleepers:-0}" -ge 1 ] || { echo "FAIL: no transition finished with sleepers (did the idle threads hold it up?)"; exit 1; }
echo "ok"
