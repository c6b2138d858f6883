#!/bin/sh
# The evaluation's experiment, inside the guest (busybox sh; bench/eval/run.sh boots it and reads
# the results back from /out). For each number of worker threads, each repetition and each mode
# (their order rotates between repetitions), a fresh server runs the way Debian runs it
# (memcached daemonized as user nobody; slapd daemonized as user openldap with its mdb database
# loaded by slapadd, bench/servers/slapd-run.sh) while atlas-loadgen offers the same open-loop
# load in the server's protocol. Modes: none (the server as Debian runs it, no preload library), preload (under the
# preload library, nothing applied: the library's own cost), global and wait-free (under the
# preload library, the patch applied and reverted every INTERVAL seconds with
# `atlas apply/revert --mode MODE` for the length of the run).
#
#   guest.sh SERVER PRELOAD ATLAS LOADGEN PATCH NAME
#
# EVAL_SERVER says which server SERVER is: memcached (default) or slapd (then SERVER's
# directory has schema/ and slapadd, SLAPD_RUN names bench/servers/slapd-run.sh, EVAL_LONG is
# the fraction of substring searches, EVAL_ENTRIES the directory's size (5000), and a thread
# count is slapd's `threads` directive, at least 2).
# Settings (environment): EVAL_THREADS ("1 2 4"), EVAL_REPS (3), EVAL_MODES ("none preload
# global wait-free"), EVAL_SECONDS (20), EVAL_RATE (requests/s, 400), EVAL_CONNECTIONS (8),
# EVAL_INTERVAL (patch every S seconds, 2), EVAL_DEADLINE_MS (2000), EVAL_LONG (fraction of
# 100-key gets, 0.01). EVAL_STRICT=1 (a test): every apply and revert must finish, and when
# EVAL_PROBE (a request line) is set, its first reply line must be EVAL_PROBE_APPLIED exactly
# while the patch is applied and something else after each revert.
#
# /out/<threads>t/<rep>/<mode>/: load.json (the loadgen's result), load.hlog (its interval log),
# events.jsonl (the runtime's event log), patch.log (one JSON object per CLI call, with its
# CLOCK_MONOTONIC start and end), server.log, cpu (the server's user and system time over the
# measured run, in clock ticks of 1/100 s). /out/settings records the settings.
set -u
server_bin=$1 preload=$2 atlas=$3 loadgen=$4 patch=$5 name=$6
server=${EVAL_SERVER:-memcached}
threads_list=${EVAL_THREADS:-1 2 4}
reps=${EVAL_REPS:-3}
modes=${EVAL_MODES:-none preload global wait-free}
seconds=${EVAL_SECONDS:-20}
rate=${EVAL_RATE:-400}
connections=${EVAL_CONNECTIONS:-8}
interval=${EVAL_INTERVAL:-2}
deadline=${EVAL_DEADLINE_MS:-2000}
long=${EVAL_LONG:-0.01}
entries=${EVAL_ENTRIES:-5000}
case $server in
memcached)
	port=11211
	protocol=memcached
	;;
slapd)
	port=389
	protocol="ldap --entries $entries"
	;;
*)
	echo "eval: FAILED: EVAL_SERVER=$server: not memcached or slapd"
	exit 1
	;;
esac

say() { echo "eval: $*"; }
fail() { # also from the background patch loop: counted through a file
	echo "eval: FAILED: $*"
	echo "$*" >>/out/failures
}
mono_ns() { # CLOCK_MONOTONIC in ns (the event log's and the loadgen's clock)
	awk '{ printf "%.0f\n", $1 * 1e9 }' /proc/uptime
}

cat >/out/settings <<EOF
threads=$threads_list reps=$reps modes=$modes seconds=$seconds rate=$rate
connections=$connections interval=$interval deadline_ms=$deadline long=$long
vcpus=$(nproc) kernel=$(uname -r) patch=$name server=$server
EOF

# start_memcached DIR THREADS PRELOADED: daemonized as user nobody, like Debian's service; the
# pid (of the daemon) in $pid.
start_memcached() {
	dir=$1 threads=$2 preloaded=$3
	rm -f /run/memcached.pid
	if [ "$preloaded" = yes ]; then
		env LD_PRELOAD="$preload" ATLAS_EVENT_LOG="$dir/events.jsonl" \
			"$server_bin" -d -u nobody -P /run/memcached.pid -t "$threads" -p $port \
			-l 127.0.0.1 -U 0 -m 256 -c 1024 2>"$dir/server.log"
	else
		"$server_bin" -d -u nobody -P /run/memcached.pid -t "$threads" -p $port \
			-l 127.0.0.1 -U 0 -m 256 -c 1024 2>"$dir/server.log"
	fi
	i=0
	while [ ! -s /run/memcached.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	pid=$(cat /run/memcached.pid 2>/dev/null)
	[ -n "$pid" ] || return 1
	# Until it answers (and, preloaded, its control socket too).
	i=0
	while [ $i -lt 100 ]; do
		if echo version | nc -w 1 127.0.0.1 $port 2>/dev/null | grep -q VERSION; then
			[ "$preloaded" = no ] && return 0
			"$atlas" status "$pid" >/dev/null 2>&1 && return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# start_slapd DIR THREADS PRELOADED: as Debian's package runs it (slapd-run.sh: user openldap,
# daemonized, the directory loaded by slapadd, ready when it answers a bind and a search); the
# pid in $pid.
start_slapd() {
	dir=$1 threads=$2 preloaded=$3
	prefix=
	[ "$preloaded" = yes ] && prefix="env LD_PRELOAD=$preload ATLAS_EVENT_LOG=$dir/events.jsonl"
	pid=$(SLAPD_PORT=$port SLAPD_THREADS=$threads SLAPD_ENTRIES=$entries SLAPD_PREFIX=$prefix \
		sh "$SLAPD_RUN" start /run/slapd-eval "$server_bin" "$loadgen" 2>"$dir/server.log") ||
		return 1
	[ "$preloaded" = no ] && return 0
	i=0
	while [ $i -lt 100 ]; do
		"$atlas" status "$pid" >/dev/null 2>&1 && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

start_server() {
	case $server in
	memcached) start_memcached "$@" ;;
	slapd) start_slapd "$@" ;;
	esac
}

cpu_ticks() { # the server's user + system time, every thread (clock ticks)
	awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

stop_server() {
	kill "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$pid" 2>/dev/null
}

# patch_loop DIR MODE END_NS: apply, wait, revert, wait, ... until END_NS; one line per call.
patch_loop() {
	dir=$1 mode=$2 end=$3
	while [ "$(mono_ns)" -lt "$end" ]; do
		for verb in apply revert; do
			[ "$(mono_ns)" -lt "$end" ] || break
			arg=$patch
			[ $verb = apply ] || arg=$name
			t0=$(mono_ns)
			out=$("$atlas" --json "$verb" "$pid" "$arg" --mode "$mode" \
				--deadline "$deadline" 2>&1)
			code=$?
			t1=$(mono_ns)
			if [ "${EVAL_STRICT:-0}" = 1 ]; then
				[ $code = 0 ] || fail "$mode $verb did not finish (exit $code): $out"
				if [ -n "${EVAL_PROBE:-}" ]; then
					seen=$(printf '%s\r\nquit\r\n' "$EVAL_PROBE" |
						nc -w 2 127.0.0.1 $port | head -n1 | tr -d '\r')
					if [ $verb = apply ] && [ "$seen" != "$EVAL_PROBE_APPLIED" ]; then
						fail "$mode: after apply, '$EVAL_PROBE' answered '$seen'"
					elif [ $verb = revert ] && [ "$seen" = "$EVAL_PROBE_APPLIED" ]; then
						fail "$mode: after revert, '$EVAL_PROBE' still answered '$seen'"
					fi
				fi
			fi
			printf '{"verb":"%s","mode":"%s","exit":%s,"start_ns":%s,"end_ns":%s,"response":%s}\n' \
				"$verb" "$mode" "$code" "$t0" "$t1" \
				"$(echo "$out" | grep -q '^{' && echo "$out" || echo null)" >>"$dir/patch.log"
			sleep "$interval"
		done
	done
	# Leave it unpatched for the next run (a pending transition is undone).
	"$atlas" revert-pending "$pid" --deadline 5000 >/dev/null 2>&1
	"$atlas" revert "$pid" "$name" --mode "$mode" --deadline 5000 >/dev/null 2>&1
}

rep=1
while [ $rep -le "$reps" ]; do
	# Rotate the order of the modes: each mode runs first, second and third once in 3 reps.
	set -- $modes
	shift $(((rep - 1) % $#))
	order="$*"
	set -- $modes
	for m in $modes; do
		case " $order " in *" $m "*) ;; *) order="$order $m" ;; esac
	done
	for threads in $threads_list; do
		for mode in $order; do
			dir=/out/${threads}t/$rep/$mode
			mkdir -p "$dir"
			chmod 777 "$dir" # the daemon, as nobody, writes its event log here
			preloaded=yes
			[ "$mode" = none ] && preloaded=no
			if ! start_server "$dir" "$threads" $preloaded; then
				fail "$threads threads, rep $rep, $mode: $server did not start ($(cat "$dir/server.log"))"
				continue
			fi
			say "$threads threads, rep $rep, $mode: $server $pid, $seconds s at $rate/s"
			# Warm-up, not recorded: stores the key space and runs 2 s of the same load
			# (first faults, allocations, caches).
			"$loadgen" $protocol --server 127.0.0.1:$port --rate "$rate" --duration 2 \
				--connections "$connections" --long "$long" --json >/dev/null 2>&1 ||
				fail "$threads threads, rep $rep, $mode: the warm-up run failed"
			start=$(mono_ns)
			end=$((start + seconds * 1000000000 + 3000000000))
			cpu0=$(cpu_ticks)
			patching=yes
			case $mode in none | preload) patching=no ;; esac
			if [ $patching = yes ]; then
				(sleep 3 && patch_loop "$dir" "$mode" "$end") &
				looper=$!
			fi
			"$loadgen" $protocol --no-setup --server 127.0.0.1:$port --rate "$rate" \
				--duration "$seconds" --connections "$connections" --long "$long" \
				--interval 0.1 --log "$dir/load.hlog" --json >"$dir/load.json" 2>"$dir/load.err"
			code=$?
			echo $(($(cpu_ticks) - cpu0)) >"$dir/cpu"
			[ $patching = no ] || wait "$looper"
			[ $code = 0 ] || fail "$threads threads, rep $rep, $mode: the load run exit $code: $(cat "$dir/load.err")"
			"$atlas" --json status "$pid" >"$dir/status.json" 2>/dev/null
			stop_server
			calls=$(grep -c . "$dir/patch.log" 2>/dev/null)
			bad=$(grep -vc '"exit":0' "$dir/patch.log" 2>/dev/null)
			say "  done: load exit $code; ${calls:-0} patch calls, ${bad:-0} not finished"
		done
	done
	rep=$((rep + 1))
done
failures=$(grep -c . /out/failures 2>/dev/null)
echo "eval: ${failures:-0} failures"
[ "${failures:-0}" = 0 ]
