#!/usr/bin/env bash
# Debian's security update of memcached (1.6.18-1+deb12u1), patch by patch, as live patches of
# the running 1.6.18-1 build, made by `atlas build-patch` (docs/patch-builder.md, "Debian's
# security update"). The patches are the ones the update's debian/patches
# adds over 1.6.18-1's (read from the two source packages, `apt-get source`).
#
#   bench/servers/memcached-security-update.sh BUILD_DIR [OUT_DIR]    (default build/servers)
#
# BUILD_DIR is a user-space build (atlas-build-patch, atlas, the preload library). Asserts:
#  1. against Debian's build (--enable-sasl --enable-tls), every patch of the update is "no
#     change to this binary" (exit 4, outcome no_change): its code is not built;
#  2. against the same source configured with --enable-sasl-pwdb as well (the SASL password
#     file, where the update's SASL fix is), that fix comes out as a patch of
#     sasl_server_userdb_checkpass and the proxy fixes as no change; the patch is applied to
#     the running server under load through the preload library in global mode, reverted
#     and applied again: a password file that lists a user twice authenticates the second
#     line only while the patch is applied (the fix scans the whole file), and no request
#     of the load (SASL authentications, binary SET and GET) is lost or answered wrong;
#  3. with MEMCACHED_SECURITY_PROXY=1 (long: builds the proxy and its Lua), against a build
#     with --enable-proxy as well: the proxy fix CVE-2023-46852 comes out as a patch, and
#     CVE-2023-46853, which adds a member to struct mcp_parser_s, is refused naming it.
# The results go to OUT_DIR/security-update/results.tsv (one line per build and patch) and to
# stdout. The original builds are cached in OUT_DIR/build-patch-cache (ATLAS_BUILD_PATCH_CACHE).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: bench/servers/memcached-security-update.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=$(mkdir -p "${2:-$root/build/servers}" && cd "${2:-$root/build/servers}" && pwd)
builder=$build/tools/build-patch/atlas-build-patch
atlas=$build/tools/atlas/atlas
preload=$build/lib/preload/libatlas-preload.so
client=$root/bench/servers/repro/sasl_client.py
die() { echo "FAIL: bench/servers/memcached-security-update.sh: $*" >&2; exit 1; }
for f in "$builder" "$atlas" "$preload"; do
	[ -e "$f" ] || die "$f missing: build user space into $build first"
done
command -v jq >/dev/null || die "jq missing: run 'make deps'"
# The SASL PLAIN mechanism the live part authenticates with (Cyrus SASL's plugin).
compgen -G "/usr/lib/*/sasl2/libplain.so*" >/dev/null || compgen -G "/usr/lib/sasl2/libplain.so*" >/dev/null ||
	die "Cyrus SASL's PLAIN mechanism is missing: apt-get install libsasl2-modules"
export ATLAS_BUILD_PATCH_CACHE=${ATLAS_BUILD_PATCH_CACHE:-$out/build-patch-cache}

"$root/bench/servers/memcached.sh" "$out" >/dev/null ||
	die "building memcached 1.6.18-1 from Debian's source failed (bench/servers/memcached.sh)"

# The patches the update adds: in its debian/patches/series, not in 1.6.18-1's.
su=$out/security-update
rm -rf "$su/debian-old" "$su/debian-new" "$su/runs"
mkdir -p "$su/debian-old" "$su/debian-new" "$su/runs"
tar -C "$su/debian-old" -xf "$out/fetch/1.6.18-1/memcached_1.6.18-1.debian.tar.xz"
tar -C "$su/debian-new" -xf "$out/fetch/1.6.18-1+deb12u1/memcached_1.6.18-1+deb12u1.debian.tar.xz"
series() { grep -v '^\s*\(#.*\)\?$' "$1/debian/patches/series" | sed 's/\s.*//'; }
mapfile -t added < <(comm -13 <(series "$su/debian-old" | sort) <(series "$su/debian-new" | sort))
[ "${#added[@]}" -gt 0 ] || die "the update adds no patch to debian/patches/series"
for p in $(series "$su/debian-old"); do
	cmp -s "$su/debian-old/debian/patches/$p" "$su/debian-new/debian/patches/$p" ||
		die "the update changes $p, which 1.6.18-1 has already: this script only handles added patches"
done
echo "the update adds ${#added[@]} patch(es) to debian/patches: ${added[*]}"

# A pristine 1.6.18-1 tree (debian/patches applied), at a fixed path: the builder copies it,
# and its cache of original builds is keyed by the tree's path and content.
pristine=$out/src/1.6.18-1-pristine
if [ ! -f "$pristine/.extracted" ] || [ "$out/fetch/1.6.18-1/memcached_1.6.18-1.dsc" -nt "$pristine/.extracted" ]; then
	rm -rf "$pristine"
	dpkg-source --no-check -x "$out/fetch/1.6.18-1/memcached_1.6.18-1.dsc" "$pristine" >/dev/null
	touch "$pristine/.extracted"
fi

# configure_line SRC: the configure options of memcached.sh's build in SRC, without the prefix
# map of its own directory (the builder maps its copies itself).
configure_line() {
	sed -n "s/^ac_cs_config='\(.*\)'$/\1/p" "$1/config.status" |
		sed -e "s/'\\\\''/'/g" -e 's/ -ffile-prefix-map=[^ ]*=\.//'
}

results=$su/results.tsv
printf 'build\tpatch\toutcome\tfunctions\tseconds\toriginal_build\tmessage\n' >"$results"
# build_patch LABEL BINARY SRC_CONFIG MAKE PATCH [PREPARE]: runs the builder (configure with
# SRC_CONFIG, then PREPARE, once; MAKE for each build), appends the result, sets $outcome and
# $json.
build_patch() {
	local label=$1 binary=$2 config=$3 make=$4 patch=$5 prepare=${6:+ && $6} start rc=0
	json=$su/runs/$label.$patch.json
	start=$(date +%s.%N)
	"$builder" --src "$pristine" --diff "$su/debian-new/debian/patches/$patch" \
		--target "$binary" --configure "./configure $config >/dev/null$prepare" --build "$make" \
		-o "$su/$label.$patch.patch.o" --name "${patch%.patch}" --json \
		>"$json" 2>"$su/runs/$label.$patch.log" || rc=$?
	outcome=$(jq -r .outcome "$json" 2>/dev/null) ||
		die "atlas build-patch gave no result for $patch (exit $rc): $(tail -n 5 "$su/runs/$label.$patch.log")"
	local functions seconds
	functions=$(jq -r '[.objects[].functions[].name] | join(",")' "$json")
	seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
	printf '%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n' "$label" "$patch" "$outcome" "${functions:--}" \
		"$seconds" "$(jq -r .original_build "$json")" "$(jq -r '.message | split("\n") | join(" ")' "$json")" >>"$results"
	printf '  %-40s %-10s %5.1f s  %s\n' "$patch" "$outcome" "$seconds" \
		"$(jq -r 'if .outcome == "written" then "patch of " + ([.redirects[].target] | join(", ")) else (.message | split("\n") | join(" ")) end' "$json" | cut -c1-160)"
	case $outcome in
	written) [ "$rc" = 0 ] ;;
	refused) [ "$rc" = 3 ] ;;
	no_change) [ "$rc" = 4 ] ;;
	*) die "$patch against $binary: $(jq -r .message "$json") (see $su/runs/$label.$patch.log)" ;;
	esac || die "$patch: outcome $outcome with exit status $rc"
}

# expect PATCH OUTCOME [FUNCTION]: the last build_patch's outcome (and a function it patches).
expect() {
	[ "$outcome" = "$2" ] || die "$1: expected $2, got $outcome: $(jq -r .message "$json")"
	[ -z "${3:-}" ] || jq -e --arg f "$3" '[.redirects[].target] | index($f)' "$json" >/dev/null ||
		die "$1: the patch does not redirect $3: $(jq -c '[.redirects[].target]' "$json")"
}

# 1. Debian's build.
debian_bin=$out/memcached-1.6.18-1/memcached
echo "Debian's build ($(configure_line "$out/src/1.6.18-1" | cut -d"'" -f1)): $debian_bin"
for p in "${added[@]}"; do
	build_patch debian "$debian_bin" "$(configure_line "$out/src/1.6.18-1")" \
		"make -j$(nproc) memcached" "$p"
	expect "$p" no_change
done

# 2. The same with the SASL password file (--enable-sasl-pwdb).
pwdb_opts="--enable-sasl --enable-sasl-pwdb --enable-tls"
MEMCACHED_VERSIONS=1.6.18-1 MEMCACHED_CONFIGURE=$pwdb_opts "$root/bench/servers/memcached.sh" "$out" >/dev/null ||
	die "building memcached 1.6.18-1 with $pwdb_opts failed (bench/servers/memcached.sh)"
pwdb_bin=$out/memcached-1.6.18-1-sasl-sasl-pwdb-tls/memcached
pwdb_config=$(configure_line "$out/src/1.6.18-1-sasl-sasl-pwdb-tls")
echo "with $pwdb_opts: $pwdb_bin"
sasl_patch=
for p in "${added[@]}"; do
	build_patch pwdb "$pwdb_bin" "$pwdb_config" "make -j$(nproc) memcached" "$p"
	if grep -q '^+++ .*sasl_defs\.c' "$su/debian-new/debian/patches/$p"; then
		expect "$p" written sasl_server_userdb_checkpass
		sasl_patch=$p
	else
		expect "$p" no_change
	fi
done
[ -n "$sasl_patch" ] || die "no patch of the update changes sasl_defs.c"

# The SASL fix applied live. alice is listed twice (the first line with another password):
# 1.6.18-1 stops at the first line of a user and refuses alice's second password; the fix
# scans the whole file and accepts it. bob authenticates either way (the load's user).
run=$(mktemp -d)
chmod 755 "$run"
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT
# Cyrus SASL names users user@realm, the realm being the host name.
realm=$(hostname)
printf 'alice@%s:old-secret\nbob@%s:bobs-secret\nalice@%s:new-secret\n' "$realm" "$realm" "$realm" >"$run/pwdb"
printf 'mech_list: plain\nsasldb_path: %s/no-sasldb\n' "$run" >"$run/memcached.conf"
chmod 644 "$run/pwdb" "$run/memcached.conf"
user=()
[ "$(id -u)" != 0 ] || user=(-u nobody)
port=$((20000 + RANDOM % 20000))
env LD_PRELOAD="$preload" MEMCACHED_SASL_PWDB="$run/pwdb" SASL_CONF_PATH="$run" \
	"$pwdb_bin" "${user[@]}" -S -t 4 -p "$port" -l 127.0.0.1 -U 0 -m 64 >"$run/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	"$atlas" status "$pid" >/dev/null 2>&1 && python3 "$client" auth "$port" bob bobs-secret >/dev/null 2>&1 && break
	sleep 0.1
done
"$atlas" status "$pid" >/dev/null || die "memcached with the preload library did not start: $(cat "$run/server.log")"
alice() { python3 "$client" auth "$port" alice new-secret || true; }
[ "$(alice)" = refused ] || die "unpatched 1.6.18-1 accepted alice's second line (expected: refused)"
python3 "$client" load "$port" bob bobs-secret 14 4 >"$run/load.json" &
load=$!
name=${sasl_patch%.patch}
transition() {
	"$atlas" "$@" --mode global --deadline 5000 >"$run/transition.out" 2>&1 ||
		die "atlas $* failed: $(cat "$run/transition.out")"
	grep -o 'took [0-9.]* ms' "$run/transition.out" | head -1
}
sleep 3
t1=$(transition apply "$pid" "$su/pwdb.$sasl_patch.patch.o")
a1=$(alice)
sleep 2
t2=$(transition revert "$pid" "$name")
a2=$(alice)
sleep 2
t3=$(transition apply "$pid" "$su/pwdb.$sasl_patch.patch.o")
a3=$(alice)
wait "$load" || die "the load lost or got wrong replies: $(cat "$run/load.json")"
[ "$a1" = ok ] || die "applied: alice's second line answered '$a1' (expected ok)"
[ "$a2" = refused ] || die "reverted: alice's second line answered '$a2' (expected refused)"
[ "$a3" = ok ] || die "applied again: alice's second line answered '$a3' (expected ok)"
kill -0 "$pid" || die "memcached died"
echo "  $sasl_patch applied live under load (apply $t1, revert $t2, apply $t3):" \
	"alice's second line refused/ok/refused/ok as expected;" \
	"$(jq -r '"\(.requests) requests and \(.authentications) authentications, \(.errors) lost or wrong, largest gap \(.max_gap_ms) ms"' "$run/load.json")"
printf 'pwdb\t%s\tapplied-live\t-\t-\t-\tapply %s, revert %s, apply %s; load: %s\n' "$sasl_patch" \
	"$t1" "$t2" "$t3" "$(jq -c . "$run/load.json")" >>"$results"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

# 3. The proxy (long).
if [ "${MEMCACHED_SECURITY_PROXY:-0}" = 1 ]; then
	proxy_opts="--enable-sasl --enable-tls --enable-proxy"
	MEMCACHED_VERSIONS=1.6.18-1 MEMCACHED_CONFIGURE=$proxy_opts MEMCACHED_MAKE="make -j$(nproc)" \
		"$root/bench/servers/memcached.sh" "$out" >/dev/null ||
		die "building memcached 1.6.18-1 with $proxy_opts failed (bench/servers/memcached.sh)"
	proxy_bin=$out/memcached-1.6.18-1-sasl-tls-proxy/memcached
	echo "with $proxy_opts: $proxy_bin"
	for p in "${added[@]}"; do
		# The vendored Lua once, then only the server: a plain make also builds
		# memcached-debug, whose objects the builder would count (the server's link takes
		# an archive, liblua.a, so the builder cannot tell which objects are the server's).
		build_patch proxy "$proxy_bin" "$(configure_line "$out/src/1.6.18-1-sasl-tls-proxy")" \
			"make -j$(nproc) memcached" "$p" "make -C vendor >/dev/null"
		case $p in
		*46852*) expect "$p" written proxy_process_command ;;
		*46853*)
			expect "$p" refused
			jq -e '[.refusals[].reason] | any(test("mcp_parser"))' "$json" >/dev/null ||
				die "$p: the refusal does not name struct mcp_parser_s: $(jq -c .refusals "$json")"
			;;
		*) expect "$p" no_change ;;
		esac
	done
fi
echo "ok: every patch of Debian's security update handled as expected ($results)"
