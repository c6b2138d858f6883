#!/usr/bin/env bash
# What a refused global apply costs a server (docs/benchmarks.md): memcached
# under the preload and open-loop load; 3 s into the run, a global apply that can never finish
# (patches/held-by-lru-maintainer: its function is on a thread's stack for good) is tried for
# its whole deadline (3 s) and refused. Run once with the park bound (RuntimeOptions::park_bound,
# ATLAS_PARK_BOUND_MS, default 50 ms: parked threads are released when the barrier is not
# complete within it, and the patcher tries again) and once with a bound longer than the
# deadline (what the runtime did before the bound existed: every thread parked until the
# deadline). Reports each run's largest latency (the longest a request waited: the largest gap
# in service) and p99.9, and the apply's outcome.
#
#   bench/preload/park_bound.sh BUILD_DIR [RATE] [ROUNDS]
#
# Native (global mode works on any kernel); MEMCACHED as in run.sh (default: the 1.6.18-1 build
# of bench/servers/memcached.sh), 4 workers, as nobody when started as root.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: bench/preload/park_bound.sh BUILD_DIR [RATE] [ROUNDS]}" && pwd)
rate=${2:-2000}
rounds=${3:-3}
memcached=${MEMCACHED:-$root/build/servers/memcached-1.6.18-1/memcached}
preload=$build/lib/preload/libatlas-preload.so
atlas=$build/tools/atlas/atlas
loadgen=$build/bench/loadgen/atlas-loadgen
die() { echo "bench/preload/park_bound.sh: $*" >&2; exit 1; }
[ -x "$memcached" ] || die "$memcached missing: run bench/servers/memcached.sh (or set MEMCACHED)"
for f in "$preload" "$atlas" "$loadgen" "$build/tools/mkpatch/atlas-mkpatch"; do
	[ -e "$f" ] || die "$f missing: build user space first (make)"
done
command -v jq >/dev/null || die "jq missing: run 'make deps'"
work=$(mktemp -d)
chmod 777 "$work" # the daemon writes its pid file as nobody
trap 'kill $(jobs -p) 2>/dev/null; [ -z "${pid:-}" ] || kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
"$build/tools/mkpatch/atlas-mkpatch" -m "$root/bench/preload/patches/held-by-lru-maintainer.json" \
	--target "$memcached" -o "$work/held.patch.o" >/dev/null || die "building the patch failed"
user_opt=()
[ "$(id -u)" != 0 ] || user_opt=(-u nobody)
port=$((20000 + RANDOM % 20000))

# run BOUND_MS ROUND: one server, one load run with the refused apply in it.
run() {
	local bound=$1 round=$2
	rm -f "$work/pid"
	env LD_PRELOAD="$preload" ATLAS_PARK_BOUND_MS="$bound" "$memcached" -d "${user_opt[@]}" \
		-P "$work/pid" -t 4 -p "$port" -l 127.0.0.1 -U 0 -m 256
	for _ in $(seq 50); do [ -s "$work/pid" ] && "$atlas" status "$(cat "$work/pid")" >/dev/null 2>&1 && break; sleep 0.1; done
	pid=$(cat "$work/pid")
	"$loadgen" memcached --server "127.0.0.1:$port" --rate "$rate" --duration 2 --json >/dev/null ||
		die "warm-up run failed"
	"$loadgen" memcached --no-setup --server "127.0.0.1:$port" --rate "$rate" --duration 10 \
		--connections 8 --json >"$work/load.$bound.$round.json" &
	local load=$!
	sleep 3
	"$atlas" --json apply "$pid" "$work/held.patch.o" --mode global --deadline 3000 \
		>"$work/apply.$bound.$round.json" || true
	wait "$load" || die "bound $bound ms: the load run reported lost or wrong replies"
	kill "$pid"
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	pid=
	port=$((port + 1))
	jq -r --arg bound "$bound" --slurpfile a "$work/apply.$bound.$round.json" \
		'[$bound, .latency.p999_us, .latency.max_us, ($a[0].outcome // "?"),
		  (($a[0].report.duration_ns // 0) / 1e6)] | @tsv' \
		"$work/load.$bound.$round.json" >>"$work/results"
}

echo "memcached, 4 workers, $rate req/s for 10 s; a global apply refused after its 3 s deadline, 3 s in; $rounds rounds"
for round in $(seq "$rounds"); do
	run 50 "$round"
	run 5000 "$round"
done
printf '%-14s %10s %12s %-10s %10s\n' park_bound p999_us max_us outcome apply_ms
while IFS=$'\t' read -r bound p999 max outcome ms; do
	printf '%-14s %10.1f %12.1f %-10s %10.0f\n' "$bound ms" "$p999" "$max" "$outcome" "$ms"
done <"$work/results"
