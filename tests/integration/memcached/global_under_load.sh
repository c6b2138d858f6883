#!/usr/bin/env bash
# memcached, a server nobody here wrote, as Debian builds and runs it (1.6.18-1 from Debian's
# source package, daemonized, as user nobody), under the preload library and a steady request
# stream, patched and reverted in global mode through the atlas CLI (docs/live-patching.md, "Testing"). Asserts:
# each transition finishes on the first try within its deadline, `stats settings` answers from
# the patched function while the patch is applied and from the original after the revert, no
# reply is lost or wrong; prints the largest latency of the run (the largest reply gap).
#
#   global_under_load.sh BUILD_DIR
#
# The memcached build is bench/servers/memcached.sh's (build/servers; apt-get source, about a
# minute the first time).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=$(cd "${1:?usage: global_under_load.sh BUILD_DIR}" && pwd)
atlas=$build/tools/atlas/atlas
loadgen=$build/bench/loadgen/atlas-loadgen
preload=$build/lib/preload/libatlas-preload.so
fail() { echo "FAIL: $*" >&2; exit 1; }
"$root/bench/servers/memcached.sh" "$root/build/servers" >/dev/null ||
	fail "building memcached 1.6.18-1 from Debian's source failed (bench/servers/memcached.sh)"
memcached=$root/build/servers/memcached-1.6.18-1/memcached
work=$(mktemp -d)
chmod 777 "$work" # the daemon writes its pid file as nobody
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
"$build/tools/mkpatch/atlas-mkpatch" -m "$root/bench/eval/patches/stats-settings.json" \
	--target "$memcached" -o "$work/fix.patch.o" >/dev/null || fail "atlas-mkpatch failed"
user=()
[ "$(id -u)" != 0 ] || user=(-u nobody)
port=$((20000 + RANDOM % 20000))
env LD_PRELOAD="$preload" "$memcached" -d "${user[@]}" -P "$work/pid" -t 4 -p "$port" \
	-l 127.0.0.1 -U 0 -m 64
for _ in $(seq 100); do
	[ -s "$work/pid" ] && "$atlas" status "$(cat "$work/pid")" >/dev/null 2>&1 && break
	sleep 0.1
done
pid=$(cat "$work/pid" 2>/dev/null) || fail "memcached did not start"
"$atlas" status "$pid" >/dev/null || fail "no atlas runtime in memcached $pid"

# settings_line: the first line `stats settings` answers.
settings_line() {
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf 'stats settings\r\n' >&3
	local line
	IFS= read -r -t 5 line <&3 || line="(no answer)"
	exec 3>&-
	echo "${line%$'\r'}"
}
[ "$(settings_line)" != "STAT atlas_patched yes" ] || fail "patched before any apply"

"$loadgen" memcached --server "127.0.0.1:$port" --rate 1500 --duration 10 --connections 8 \
	--json >"$work/load.json" &
load=$!
sleep 3
"$atlas" apply "$pid" "$work/fix.patch.o" --mode global --deadline 5000 >"$work/apply.out" ||
	fail "apply did not finish on the first try: $(cat "$work/apply.out")"
patched=$(settings_line)
sleep 2
"$atlas" revert "$pid" stats-settings --mode global --deadline 5000 >"$work/revert.out" ||
	fail "revert did not finish: $(cat "$work/revert.out")"
unpatched=$(settings_line)
wait "$load" || fail "the load run lost or got wrong replies: $(jq -c '.messages' "$work/load.json")"
[ "$patched" = "STAT atlas_patched yes" ] || fail "while applied, stats settings answered '$patched'"
[ "$unpatched" != "STAT atlas_patched yes" ] || fail "after the revert, still patched"
grep -q "done in global mode" "$work/apply.out" || fail "apply: $(cat "$work/apply.out")"
echo "ok: memcached $pid (nobody, daemonized) patched and reverted in global mode under load:" \
	"$(jq -r '"\(.answered) replies, none lost or wrong; p99.9 \(.latency.p999_us) us, largest reply gap \(.latency.max_us) us"' "$work/load.json");" \
	"$(grep -o 'took [0-9.]* ms' "$work/apply.out" | head -1) to apply"
