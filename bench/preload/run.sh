#!/usr/bin/env bash
# The preload library's cost on a real server (bench/README.md): memcached with and without
# libatlas-preload.so, runs alternating, the same offered load from atlas-loadgen each time.
# Reports per run the latency percentiles and memcached's CPU time per request (its user +
# system time from /proc over the requests answered: the cost the wrappers add, independent
# of whether the machine had cores to spare), then the medians and their ratios.
#
#   bench/preload/run.sh BUILD_DIR [ROUNDS] [RATE] [SECONDS]
#
# BUILD_DIR is a user-space build (build/user): its libatlas-preload.so and atlas-loadgen are
# used (PRELOAD=<path> names another preload library). MEMCACHED names the server binary (default: memcached on the PATH); it runs with 4
# worker threads, on the loopback, as the user `nobody` when started as root (-u), the way
# Debian runs it.
set -euo pipefail
build=$(cd "${1:?usage: bench/preload/run.sh BUILD_DIR [ROUNDS] [RATE] [SECONDS]}" && pwd)
rounds=${2:-3}
rate=${3:-20000}
seconds=${4:-20}
memcached=${MEMCACHED:-$(command -v memcached || true)}
preload=${PRELOAD:-$build/lib/preload/libatlas-preload.so}
loadgen=$build/bench/loadgen/atlas-loadgen
die() { echo "bench/preload/run.sh: $*" >&2; exit 1; }
[ -x "$memcached" ] || die "no memcached: install it (apt-get install memcached) or set MEMCACHED"
[ -r "$preload" ] || die "$preload missing: build user space first (make)"
[ -x "$loadgen" ] || die "$loadgen missing: build user space first (make)"
command -v jq >/dev/null || die "jq missing: run 'make deps'"
port=$((20000 + RANDOM % 20000))
user_opt=()
[ "$(id -u)" != 0 ] || user_opt=(-u nobody)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)

# run MODE ROUND: one memcached, one load run; appends a line to $work/results.
run() {
	local mode=$1 round=$2 env=()
	[ "$mode" = none ] || env=(env "LD_PRELOAD=$preload" "ATLAS_CONTROL_SOCKET=$work/ctl.$round.sock")
	"${env[@]}" "$memcached" "${user_opt[@]}" -t 4 -p "$port" -l 127.0.0.1 -U 0 -m 256 &
	local pid=$!
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
	"$loadgen" memcached --server "127.0.0.1:$port" --rate "$rate" --duration 2 \
		--json >/dev/null || die "warm-up run failed ($mode)"
	local before after
	before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	"$loadgen" memcached --no-setup --server "127.0.0.1:$port" --rate "$rate" \
		--duration "$seconds" --connections 8 --json >"$work/$mode.$round.json" ||
		die "$mode round $round: the load run reported lost or wrong replies: $(jq -c .messages "$work/$mode.$round.json")"
	after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	jq -r --arg mode "$mode" --arg cpu "$((after - before))" --arg ticks "$ticks" \
		'[$mode, .answered, (.answered / .elapsed_s), .latency.p50_us, .latency.p99_us,
		  .latency.p999_us, .latency.max_us,
		  (($cpu | tonumber) / ($ticks | tonumber) * 1e6 / .answered)] | @tsv' \
		"$work/$mode.$round.json" >>"$work/results"
	port=$((port + 1))
}

echo "memcached $("$memcached" -V | cut -d' ' -f2), 4 threads; $rate req/s offered for $seconds s, 8 connections; $rounds rounds, alternating"
for round in $(seq "$rounds"); do
	run none "$round"
	run preload "$round"
done
printf '%-8s %9s %9s %8s %8s %8s %9s %12s\n' mode answered "req/s" p50_us p99_us p999_us max_us cpu_us/req
while IFS=$'\t' read -r mode answered tput p50 p99 p999 max cpu; do
	printf '%-8s %9d %9.0f %8.1f %8.1f %8.1f %9.1f %12.2f\n' "$mode" "$answered" "$tput" \
		"$p50" "$p99" "$p999" "$max" "$cpu"
done <"$work/results"
# Medians per mode, and preload / none.
awk -F'\t' '
function median(arr, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
	return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{ n[$1]++; p99[$1, n[$1]] = $5; p999[$1, n[$1]] = $6; cpu[$1, n[$1]] = $8 }
END {
	for (m in n) {
		for (i = 1; i <= n[m]; i++) { a[i] = p99[m, i]; b[i] = p999[m, i]; c[i] = cpu[m, i] }
		mp99[m] = median(a, n[m]); mp999[m] = median(b, n[m]); mcpu[m] = median(c, n[m])
	}
	printf "median   p99 %.1f / %.1f us, p99.9 %.1f / %.1f us, cpu %.2f / %.2f us per request (none / preload)\n", mp99["none"], mp99["preload"], mp999["none"], mp999["preload"], mcpu["none"], mcpu["preload"]
	printf "preload: p99 x%.3f, p99.9 x%.3f, cpu per request x%.3f\n", mp99["preload"] / mp99["none"], mp999["preload"] / mp999["none"], mcpu["preload"] / mcpu["none"]
}' "$work/results"
