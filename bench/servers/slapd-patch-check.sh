#!/usr/bin/env bash
# Checks a fix of bench/servers/slapd-fixes.tsv as a live patch, natively (global mode: any
# kernel): builds the patch (slapd-fix-patch.sh), runs the unfixed slapd under the preload
# library as Debian's package runs it (slapd-run.sh), and while atlas-loadgen offers LDAP
# searches applies and reverts the patch ROUNDS times; every reply must be right. Then, when the
# fix has a reproducer, a fresh unfixed slapd patched by the reproducer's hook must behave as
# fixed (repro/slapd.sh).
#
#   bench/servers/slapd-patch-check.sh NAME [ROUNDS]     (3 rounds; needs root)
#
# BUILD names the user-space build (default build/user): atlas, atlas-loadgen, the preload
# library, atlas-build-patch. SLAPD_CHECK_RATE (requests/s, 500). Exit 0 when everything held.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:?usage: bench/servers/slapd-patch-check.sh NAME [ROUNDS]}
rounds=${2:-3}
build=${BUILD:-$root/build/user}
out=$root/build/servers
atlas=$build/tools/atlas/atlas
loadgen=$build/bench/loadgen/atlas-loadgen
preload=$build/lib/preload/libatlas-preload.so
slapd=$out/slapd-2.5.13+dfsg-5/slapd
patch=$out/patches/slapd-$name.patch.o
die() { echo "bench/servers/slapd-patch-check.sh: $*" >&2; exit 1; }
for f in "$atlas" "$loadgen" "$preload"; do [ -e "$f" ] || die "$f missing: build user space (make) or set BUILD"; done
# The patch, unless one newer than the binary is there (the builder takes 4-6 minutes here).
if [ ! -s "$patch" ] || [ "$slapd" -nt "$patch" ]; then
	mkdir -p "$out/patches"
	BUILD=$build "$here/slapd-fix-patch.sh" "$name" "$out" >"$out/patches/slapd-$name.log" 2>&1 ||
		die "building the patch failed: $(tail -n 3 "$out/patches/slapd-$name.log")"
fi
echo "slapd-patch-check: $name: $patch"

dir=$(mktemp -d /tmp/slapd-check.XXXXXX)
chmod 755 "$dir"
trap '"$here/slapd-run.sh" stop "$dir/run"; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=$(SLAPD_PORT=$port SLAPD_THREADS=4 SLAPD_PREFIX="env LD_PRELOAD=$preload" \
	"$here/slapd-run.sh" start "$dir/run" "$slapd" "$loadgen") || die "slapd did not start"
seconds=$((rounds * 2 + 3))
"$loadgen" ldap --server "127.0.0.1:$port" --rate "${SLAPD_CHECK_RATE:-500}" --duration "$seconds" \
	--connections 8 --long 0.05 --json >"$dir/load.json" 2>"$dir/load.err" &
load=$!
sleep 1
status=0
for ((i = 1; i <= rounds; i++)); do
	"$atlas" apply "$pid" "$patch" --mode global --deadline 2000 >"$dir/apply.log" 2>&1 ||
		{ echo "slapd-patch-check: apply $i failed: $(cat "$dir/apply.log")"; status=1; }
	sleep 0.5
	"$atlas" revert "$pid" "$name" --mode global --deadline 2000 >"$dir/revert.log" 2>&1 ||
		{ echo "slapd-patch-check: revert $i failed: $(cat "$dir/revert.log")"; status=1; }
	sleep 0.5
done
wait "$load"
load_status=$?
summary=$(jq -r '"\(.sent) sent, \(.answered) answered, \(.wrong) wrong, \(.errors) lost, \(.unanswered) unanswered"' "$dir/load.json" 2>/dev/null)
echo "slapd-patch-check: $name: $rounds applies and reverts under load: ${summary:-no result ($(cat "$dir/load.err"))}"
[ "$load_status" = 0 ] || status=1
"$atlas" status "$pid" | grep -q 'applied patches (0)' ||
	{ echo "slapd-patch-check: the patch is still applied after the last revert"; status=1; }
"$here/slapd-run.sh" stop "$dir/run"

repro=$(awk -F'\t' -v n="$name" 'NR > 1 && $1 == n { print $8 }' "$here/slapd-fixes.tsv")
case $repro in
repro/*)
	BUILD=$build SLAPD_REPRO_PREFIX="env LD_PRELOAD=$preload" \
		SLAPD_REPRO_HOOK="$atlas apply \$SLAPD_PID $patch --mode global --deadline 2000 >/dev/null" \
		"$here/repro/slapd.sh" "$name" "$slapd"
	code=$?
	echo "slapd-patch-check: $name: reproducer on the unfixed slapd patched live: exit $code (0: behaves as fixed)"
	[ $code = 0 ] || status=1
	;;
*) echo "slapd-patch-check: $name: no reproducer ($repro)" ;;
esac
exit $status
