#!/usr/bin/env bash
# The evaluation (docs/evaluation.md): memcached 1.6.18 as Debian 12 builds it, run the way
# Debian runs it, under open-loop load in a QEMU guest on the views kernel, patched and
# reverted every few seconds in global and in wait-free mode, side by side with no patching.
#
#   bench/eval/run.sh [OUT_DIR]      (default: build/eval/<date>)
#
# Settings (environment, passed to bench/eval/guest.sh): EVAL_THREADS ("1 2 4"), EVAL_REPS (3),
# EVAL_SECONDS (20), EVAL_RATE (400), EVAL_CONNECTIONS (8), EVAL_INTERVAL (2), EVAL_DEADLINE_MS
# (2000), EVAL_LONG (0.01), EVAL_MODES ("none preload global wait-free": no preload library, the
# library without patching, patching in global mode, in wait-free mode); EVAL_CPUS (guest vCPUs, 2),
# EVAL_FIX (a real upstream fix of bench/servers/memcached-fixes.tsv, e.g. read-oom-crash, made
# into a patch by atlas build-patch through bench/servers/memcached-fix-patch.sh; needs a
# memcached history, MEMCACHED_GIT), or EVAL_PATCH and EVAL_PATCH_NAME (any patch of the 1.6.18-1
# binary and its name); default: the harness's own bench/eval/patches/stats-settings.
# EVAL_MEMCACHED: another build of 1.6.18-1 to run (with EVAL_PATCH made for it; default
# Debian's, from bench/servers/memcached.sh). BUILD (build/user) and KERNEL
# (build/kernel/bzImage) name what it runs; both must be built (make, make kernel).
#
# EVAL_SERVER=slapd runs OpenLDAP's slapd 2.5.13 instead (bench/servers/slapd.sh, run by
# bench/servers/slapd-run.sh as Debian's package runs it; docs/evaluation.md, "slapd"): the
# load is LDAP searches, EVAL_THREADS defaults to "2 4" (slapd's minimum is 2), EVAL_RATE to 150,
# and the patch is
# a real fix of bench/servers/slapd-fixes.tsv, EVAL_FIX (default utf8-validate, on the path of
# every equality search), made by bench/servers/slapd-fix-patch.sh from an OpenLDAP history
# (OPENLDAP_GIT), or EVAL_PATCH and EVAL_PATCH_NAME.
#
# OUT_DIR/raw/ holds what the guest measured (bench/eval/guest.sh), OUT_DIR/report.md the
# tables, OUT_DIR/latency.{png,svg} the plot (bench/eval/report.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-$root/build/user}
kernel=${KERNEL:-$root/build/kernel/bzImage}
out=${1:-$root/build/eval/$(date +%Y%m%d-%H%M%S)}
die() { echo "bench/eval/run.sh: $*" >&2; exit 1; }

for f in tools/atlas/atlas tools/mkpatch/atlas-mkpatch bench/loadgen/atlas-loadgen \
	lib/preload/libatlas-preload.so; do
	[ -x "$build/$f" ] || [ -r "$build/$f" ] || die "$build/$f is missing: build user space first (make)"
done
[ -r "$kernel" ] || die "$kernel is missing: build the views kernel first (make kernel)"
server=${EVAL_SERVER:-memcached}
server_files=()
case $server in
memcached)
	"$root/bench/servers/memcached.sh" "$root/build/servers" >/dev/null ||
		die "building memcached failed (bench/servers/memcached.sh)"
	server_bin=${EVAL_MEMCACHED:-$root/build/servers/memcached-1.6.18-1/memcached}
	[ -x "$server_bin" ] || die "$server_bin (EVAL_MEMCACHED) is not an executable"
	;;
slapd)
	"$root/bench/servers/slapd.sh" "$root/build/servers" >/dev/null ||
		die "building slapd failed (bench/servers/slapd.sh)"
	server_bin=$root/build/servers/slapd-2.5.13+dfsg-5/slapd
	# What the guest needs besides the binary: its tool name for slapadd, the schema, the run
	# script and the shared libraries slapd links (libldap, liblber and liblmdb are static).
	server_files+=(--add "$server_bin:/atlas/bin/slapadd"
		--add "$root/bench/servers/slapd-run.sh:/atlas/eval/slapd-run.sh")
	for f in "$(dirname "$server_bin")"/schema/*.schema; do
		server_files+=(--add "$f:/atlas/bin/schema/$(basename "$f")")
	done
	for lib in libsasl2.so.2 libuuid.so.1; do
		path=$(readlink -f "/usr/lib/x86_64-linux-gnu/$lib") || die "$lib missing: run 'make deps'"
		server_files+=(--add "$path:/usr/lib/x86_64-linux-gnu/$lib")
	done
	: "${EVAL_THREADS:=2 4}"
	# slapd needs 3.6-3.9 ms of guest CPU per request of this mix (the smoke run of
	# docs/evaluation.md), 4 times memcached's: 400/s saturated the 2 vCPUs (median 101 ms).
	: "${EVAL_RATE:=150}"
	[ -n "${EVAL_PATCH:-}" ] || : "${EVAL_FIX:=utf8-validate}"
	;;
*) die "EVAL_SERVER=$server: the servers are memcached and slapd" ;;
esac
libunwind=$(readlink -f /usr/lib/x86_64-linux-gnu/libunwind.so.8) ||
	die "libunwind.so.8 missing: run 'make deps'"

mkdir -p "$out"
# The guest's vCPUs are host threads: anything else on the host delays them, and the figures
# with them. Say so when the host is not idle (docs/evaluation.md, "Where things run").
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
	echo "bench/eval/run.sh: warning: the host's load average is $load; other work on the host distorts the guest's latencies (run it on an idle host, or run the other work under nice -n 19 with /proc/sys/kernel/sched_autogroup_enabled at 0)" >&2
fi
patch=${EVAL_PATCH:-}
name=${EVAL_PATCH_NAME:-}
if [ -n "${EVAL_FIX:-}" ] && [ "$server" = slapd ]; then
	BUILD=$build "$root/bench/servers/slapd-fix-patch.sh" "$EVAL_FIX" "$root/build/servers" \
		>"$out/build-patch.log" 2>&1 ||
		die "building the patch of fix $EVAL_FIX failed: see $out/build-patch.log"
	patch=$root/build/servers/patches/slapd-$EVAL_FIX.patch.o
	name=$EVAL_FIX
elif [ -n "${EVAL_FIX:-}" ]; then
	BUILD=$build "$root/bench/servers/memcached-fix-patch.sh" "$EVAL_FIX" "$root/build/servers" \
		>"$out/build-patch.log" 2>&1 ||
		die "building the patch of fix $EVAL_FIX failed: see $out/build-patch.log"
	patch=$root/build/servers/patches/$EVAL_FIX.patch.o
	name=$EVAL_FIX
elif [ -z "$patch" ]; then
	patch=$out/stats-settings.patch.o
	name=stats-settings
	"$build/tools/mkpatch/atlas-mkpatch" -m "$root/bench/eval/patches/stats-settings.json" \
		--target "$server_bin" -o "$patch" >/dev/null ||
		die "building the harness patch failed"
fi
[ -n "$name" ] || die "EVAL_PATCH needs EVAL_PATCH_NAME (the name its manifest gives)"

threads=${EVAL_THREADS:-1 2 4}
reps=${EVAL_REPS:-3}
seconds=${EVAL_SECONDS:-20}
modes=${EVAL_MODES:-none preload global wait-free}
runs=$(($(wc -w <<<"$threads") * reps * $(wc -w <<<"$modes")))
timeout=$((runs * (seconds + 45) + 300))
echo "eval: $server, patch $name ($(basename "$patch"))"
echo "eval: $runs runs of ${seconds}s (threads: $threads; $reps repetitions; modes: $modes) in a guest with ${EVAL_CPUS:-2} vCPUs; results in $out"
env_line=""
for v in EVAL_THREADS EVAL_REPS EVAL_MODES EVAL_SECONDS EVAL_RATE EVAL_CONNECTIONS \
	EVAL_INTERVAL EVAL_DEADLINE_MS EVAL_LONG EVAL_ENTRIES; do
	[ -z "${!v:-}" ] || env_line+="$v='${!v}' "
done
status=0
"$root/guest/run" --kernel "$kernel" --cpus "${EVAL_CPUS:-2}" --mem 2G --timeout "$timeout" \
	--quiet --log "$out/console.log" --out "$out/raw" \
	--add "$root/bench/eval/guest.sh:/atlas/eval/guest.sh" \
	--add "$server_bin:/atlas/bin/$server" "${server_files[@]}" \
	--add "$build/lib/preload/libatlas-preload.so:/atlas/lib/libatlas-preload.so" \
	--add "$libunwind:/usr/lib/x86_64-linux-gnu/libunwind.so.8" \
	--add "$build/tools/atlas/atlas:/atlas/bin/atlas" \
	--add "$build/bench/loadgen/atlas-loadgen:/atlas/bin/atlas-loadgen" \
	--add "$patch:/atlas/eval/patch.o" \
	-- "${env_line}EVAL_SERVER=$server SLAPD_RUN=/atlas/eval/slapd-run.sh sh /atlas/eval/guest.sh /atlas/bin/$server /atlas/lib/libatlas-preload.so /atlas/bin/atlas /atlas/bin/atlas-loadgen /atlas/eval/patch.o $name" ||
	status=$?
grep -E '^eval: ' "$out/console.log" | tr -d '\r' || true
[ $status = 0 ] || echo "bench/eval/run.sh: the guest run failed (status $status); console log: $out/console.log" >&2
[ -d "$out/raw" ] && [ -n "$(ls -A "$out/raw")" ] || die "no results came back from the guest"
"$root/bench/eval/report.sh" "$out" "$build" || status=$?
exit $status
