#!/usr/bin/env bash
# Tables and a plot from an evaluation run (bench/eval/run.sh; docs/evaluation.md):
#
#   bench/eval/report.sh OUT_DIR [BUILD_DIR]
#
# Reads OUT_DIR/raw/<threads>t/<rep>/<mode>/ (bench/eval/guest.sh) and writes OUT_DIR/report.md
# (per thread count and mode: the latency percentiles of every repetition's requests merged,
# their ratio to no patching, the server's CPU time per request, errors, transitions and their
# times, per-thread migration latency, the longest view call that held the mmap lock for
# writing) and OUT_DIR/latency.{png,svg} (p99.9 per 100 ms over time, patch moments marked).
# The last line printed is the summary over all thread counts:
#   eval: wait-free p99.9/none = A, global p99.9/none = B, errors = E
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:?usage: bench/eval/report.sh OUT_DIR [BUILD_DIR]}
build=${2:-$root/build/user}
loadgen=$build/bench/loadgen/atlas-loadgen
raw=$out/raw
die() { echo "bench/eval/report.sh: $*" >&2; exit 1; }
[ -x "$loadgen" ] || die "$loadgen missing: build user space (make)"
[ -d "$raw" ] || die "$raw missing: run bench/eval/run.sh first"
command -v jq >/dev/null || die "jq missing: run 'make deps'"

modes=(none preload global wait-free)
# The server the guest ran (bench/eval/guest.sh records it; runs before slapd were memcached).
server=$(grep -o 'server=[a-z]*' "$raw/settings" 2>/dev/null | cut -d= -f2)
server=${server:-memcached}
# merged MODE DIR_GLOB...: the JSON summary of the merged histograms (empty if no run).
merged() {
	local logs=()
	for d in "$@"; do [ -s "$d/load.hlog" ] && logs+=("$d/load.hlog"); done
	[ ${#logs[@]} -gt 0 ] || return 0
	"$loadgen" merge "${logs[@]}"
}
# errors DIR...: wrong + lost + unanswered replies over the runs (a run without a result counts 1).
errors() {
	local n=0 d e
	for d in "$@"; do
		e=$(jq '.wrong + .errors + .unanswered' "$d/load.json" 2>/dev/null) || e=1
		n=$((n + ${e:-1}))
	done
	echo $n
}
# cpu_per_request DIR...: the server's user + system time per answered request, in us (ticks of
# 1/100 s, bench/eval/guest.sh), over the runs; "-" without a record.
cpu_per_request() {
	local ticks=0 reqs=0 d t r
	for d in "$@"; do
		t=$(cat "$d/cpu" 2>/dev/null) || { echo -; return; }
		r=$(jq '.answered // 0' "$d/load.json" 2>/dev/null) || r=0
		ticks=$((ticks + t)) reqs=$((reqs + r))
	done
	[ "$reqs" -gt 0 ] || { echo -; return; }
	awk -v t="$ticks" -v r="$reqs" 'BEGIN { printf "%.1f", t * 10000 / r }'
}
# window_maxima DIR...: for each 100 ms interval of the runs' interval logs, its largest
# latency (us), one per line; in a patching mode only the intervals that overlap a transition
# (from the runtime's "request" to its "finished", "reverted", "refused" or "failed": both on
# the loadgen's CLOCK_MONOTONIC). What a transition costs the requests due while it runs,
# compared with what any 100 ms of the unpatched server shows.
window_maxima() {
	local d start
	for d in "$@"; do
		[ -s "$d/load.hlog" ] || continue
		start=$(jq '.start_monotonic_ns' "$d/load.json" 2>/dev/null) || continue
		{
			# Transition boundaries (none in the modes without patching: every interval).
			[ ! -s "$d/events.jsonl" ] ||
				jq -r --argjson s "$start" 'select(.event == "request" or .event == "finished" or
						.event == "reverted" or .event == "refused" or .event == "failed") |
					"\(.event) \((.mono_ns - $s) / 1e9)"' "$d/events.jsonl"
			echo intervals
			"$loadgen" intervals "$d/load.hlog"
		} | awk -v patching="$([ "$(basename "$d")" = global ] || [ "$(basename "$d")" = wait-free ] && echo 1 || echo 0)" '
			$1 == "request" { open = $2; next }
			$1 == "finished" || $1 == "reverted" || $1 == "refused" || $1 == "failed" {
				if (open != "") { from[n] = open; to[n] = $2; n++; open = "" }
				next
			}
			$1 == "intervals" { data = 1; next }
			data && $1 !~ /^#/ && $3 > 0 {
				if (!patching) { print $7; next }
				for (i = 0; i < n; i++)
					if ($1 < to[i] && $2 > from[i]) { print $7; break }
			}'
	done
}
# quantiles: median / p90 / max of the numbers on stdin, formatted; "-" if none.
quantiles() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.9 + 0.999)]; x = v[NR]
		printf "%.1f / %.1f / %.1f ms (%d)\n", m / 1000, p / 1000, x / 1000, NR }'
}
ms() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e6 }'; }
fmt_us() { awk -v us="$1" 'BEGIN { if (us >= 10000) printf "%.1f ms", us / 1000; else printf "%.0f us", us }'; }

report=$out/report.md
{
	echo "# Evaluation run $(basename "$out")"
	echo
	sed 's/^/    /' "$raw/settings" 2>/dev/null || true
	echo
} >"$report"

declare -A total_p999=() total_errors=() total_cpu=()
all_dirs=()
for tdir in $(ls -d "$raw"/*t 2>/dev/null | sort -V); do
	threads=$(basename "$tdir")
	threads=${threads%t}
	{
		echo "## $threads worker thread(s)"
		echo
		echo "| mode | requests | p50 | p99 | p99.5 | p99.9 | max | p99.9 / none | cpu per request | errors | transitions finished / other | transition time mean / max | migration latency p50 / max | longest CREATE / SWITCH_BASE / DELETE | largest latency per 100 ms: median / p90 / max (intervals) |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	} >>"$report"
	none_p999=
	for mode in "${modes[@]}"; do
		dirs=("$tdir"/*/"$mode")
		[ -d "${dirs[0]}" ] || continue
		all_dirs+=("${dirs[@]}")
		m=$(merged "${dirs[@]}")
		[ -n "$m" ] || { echo "| $mode | no result |" >>"$report"; continue; }
		p999=$(jq '.p999_us' <<<"$m")
		[ "$mode" != none ] || none_p999=$p999
		ratio=-
		[ -z "$none_p999" ] || ratio=$(awk -v a="$p999" -v b="$none_p999" 'BEGIN { printf "%.2f", a / b }')
		errs=$(errors "${dirs[@]}")
		trans=- ttime=- mig=- hold=-
		cpu=$(cpu_per_request "${dirs[@]}")
		[ "$cpu" = - ] || cpu="$cpu us"
		if [ "$mode" = global ] || [ "$mode" = wait-free ]; then
			calls=$(cat "${dirs[@]/%//patch.log}" 2>/dev/null || true)
			fin=$(jq -s '[.[] | select(.response.outcome == "finished")] | length' <<<"$calls")
			other=$(jq -s '[.[] | select(.response.outcome != "finished")] | length' <<<"$calls")
			trans="$fin / $other"
			ttime=$(jq -rs '[.[] | select(.response.outcome == "finished") | .response.report.duration_ns] |
				if length == 0 then "-" else "\((add / length / 1e6 * 100 | round) / 100) / \((max / 1e6 * 100 | round) / 100) ms" end' <<<"$calls")
			if [ "$mode" = wait-free ]; then
				mig=$(cat "${dirs[@]/%//events.jsonl}" 2>/dev/null |
					jq -rs '[.[] | select(.event == "thread_migrated") | .latency_ns] | sort |
						if length == 0 then "-" else "\((.[length / 2 | floor] / 1e3 | round)) us / \((max / 1e3 | round)) us" end')
				# The kernel holds the views' mmap lock for writing through these
				# calls: their longest durations bound the longest hold.
				hold=$(cat "${dirs[@]/%//events.jsonl}" 2>/dev/null |
					jq -rs 'def longest(e): [.[] | select(.event == e) | .call_ns // empty] |
							if length == 0 then "-" else "\((max / 1e3 | round))" end;
						"\(longest("view_created")) / \(longest("base_switched")) / \(longest("view_deleted")) us"')
			fi
		fi
		echo "| $mode | $(jq '.count' <<<"$m") | $(fmt_us "$(jq '.p50_us' <<<"$m")") | $(fmt_us "$(jq '.p99_us' <<<"$m")") | $(fmt_us "$(jq '.p995_us' <<<"$m")") | $(fmt_us "$p999") | $(fmt_us "$(jq '.max_us' <<<"$m")") | $ratio | $cpu | $errs | $trans | $ttime | $mig | $hold | $(window_maxima "${dirs[@]}" | quantiles) |" >>"$report"
	done
	echo >>"$report"
done

# Over every thread count: one merged histogram per mode.
for mode in "${modes[@]}"; do
	dirs=()
	for d in "${all_dirs[@]}"; do [ "$(basename "$d")" = "$mode" ] && dirs+=("$d"); done
	[ ${#dirs[@]} -gt 0 ] || continue
	m=$(merged "${dirs[@]}")
	total_p999[$mode]=$([ -n "$m" ] && jq '.p999_us' <<<"$m" || echo 0)
	total_errors[$mode]=$(errors "${dirs[@]}")
	total_cpu[$mode]=$(cpu_per_request "${dirs[@]}")
done
ratio_of() {
	[ -n "${total_p999[$1]:-}" ] && [ -n "${total_p999[none]:-}" ] || { echo -; return; }
	awk -v a="${total_p999[$1]}" -v b="${total_p999[none]}" 'BEGIN { printf "%.2f", a / b }'
}
errors_all=$((${total_errors[none]:-0} + ${total_errors[preload]:-0} + ${total_errors[global]:-0} + ${total_errors[wait-free]:-0}))
preload_line=
if [ -n "${total_p999[preload]:-}" ]; then
	cpu_ratio=-
	case "${total_cpu[preload]:--}${total_cpu[none]:--}" in
	*-*) ;;
	*) cpu_ratio=$(awk -v a="${total_cpu[preload]}" -v b="${total_cpu[none]}" 'BEGIN { printf "%.3f", a / b }') ;;
	esac
	preload_line="eval: preload p99.9/none = $(ratio_of preload), cpu per request preload/none = $cpu_ratio"
fi
summary="eval: wait-free p99.9/none = $(ratio_of wait-free), global p99.9/none = $(ratio_of global), errors = $errors_all"

# The plot: the largest thread count, first repetition, p99.9 per interval; patch moments.
plot_dir=$(ls -d "$raw"/*t 2>/dev/null | sort -V | tail -n1)/1
if command -v gnuplot >/dev/null && [ -d "$plot_dir" ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	plots=() arrows=""
	for mode in "${modes[@]}"; do
		d=$plot_dir/$mode
		[ -s "$d/load.hlog" ] || continue
		"$loadgen" intervals "$d/load.hlog" >"$work/$mode.dat"
		case $mode in none) lc="#000000" ;; preload) lc="#777777" ;; global) lc="#cc0000" ;; *) lc="#008800" ;; esac
		plots+=("'$work/$mode.dat' using 1:(\$6/1000) with lines lc rgb '$lc' title '$mode'")
		if [ -s "$d/events.jsonl" ]; then
			# The runtime's own record of each request, on the loadgen's clock
			# (both CLOCK_MONOTONIC).
			start=$(jq '.start_monotonic_ns' "$d/load.json")
			color=$([ "$mode" = global ] && echo "#cc0000" || echo "#008800")
			while read -r t; do
				arrows+="set arrow from $t, graph 0 to $t, graph 1 nohead lc rgb '$color' dt 3"$'\n'
			done < <(jq -r --argjson s "$start" 'select(.event == "request") | (.mono_ns - $s) / 1e9' "$d/events.jsonl")
		fi
	done
	if [ ${#plots[@]} -gt 0 ]; then
		for term in "pngcairo size 1200,600" "svg size 1200,600"; do
			ext=${term%% *}
			ext=${ext#png}
			[ "$ext" = cairo ] && ext=png
			gnuplot <<EOF
set terminal $term
set output '$out/latency.$ext'
set title "$server, $(basename "$(dirname "$plot_dir")") workers: p99.9 latency per 100 ms (dotted: patch applied or reverted; red global, green wait-free)"
set xlabel 'seconds'
set ylabel 'p99.9 latency (ms)'
set logscale y
set key top left
$arrows
plot $(IFS=,; echo "${plots[*]}")
EOF
		done
		echo "Plot: latency.png, latency.svg (p99.9 per 100 ms, $(basename "$(dirname "$plot_dir")") workers, repetition 1)." >>"$report"
		echo >>"$report"
	fi
fi
[ -z "$preload_line" ] || echo "$preload_line" >>"$report"
echo >>"$report"
echo "$summary" >>"$report"
cat "$report"
echo "plot: $out/latency.png"
echo "$summary"
