#!/usr/bin/env bash
# The patchability study (docs/patch-builder.md, "Patchability study"): `atlas build-patch` over
# every upstream memcached commit after FROM that changes the server's top-level C sources, each
# against a running build of its parent.
#
#   bench/servers/memcached-study.sh [OUT_DIR]            (default build/servers/study)
#   bench/servers/memcached-study.sh --summary [OUT_DIR]  (the table of the results so far)
#
# For each commit, oldest first: the parent's tree (git archive, configure generated with
# autoconf/automake) is built as a patchable program (Debian's configure options,
# `-O2 $(atlas build-patch --print-flags)`) and started under the preload library; the commit's
# diff of the top-level .c/.h files (testapp.c left out; with Makefile.am and configure.ac) goes
# through `atlas build-patch`
# against that binary; a written patch is applied to the running server (`atlas apply --mode
# global`) and a subset of memcached's own test suite (STUDY_TESTS, t/*.t of the parent's tree)
# runs against the patched server (T_MEMD_USE_DAEMON); then the patch is reverted.
#
# Results: OUT_DIR/results.tsv, one line per commit, appended as each commit finishes; a rerun
# skips the commits already there (delete a line to redo it). OUT_DIR/logs/<commit>/ keeps the
# builder's JSON and log, the apply and the tests' output.
#
# Outcomes: applied (patch written, applied, tests pass), applied-tests-fail, apply-refused
# (the runtime refused the apply: the detail says why), refused (the builder's reasons, exit 3),
# no-change (exit 4: the code is not in this build, e.g. the proxy, or only moved lines),
# mismatch (exit 5), builder-failed (exit 1: a build failed or an internal error; a bug to look
# at), parent-failed (the parent does not build or start: not the builder's fault).
#
# Environment: MEMCACHED_GIT (a memcached git directory; default the history under /work/.mirror
# as bench/servers/memcached-fix.sh finds it), STUDY_FROM (default 1.6.18), STUDY_TO (default the
# newest tag), STUDY_LIMIT (at most this many commits in this run; default all), STUDY_TESTS
# (default below), BUILD (the user-space build; default build/user), STUDY_FROM_SOURCE (1: the
# builder builds the parent's clean tree itself, `--src` with `--configure`, as for a tree at
# hand without its build; default: `--original-build` on the parent's build, which is built
# anyway to run it, so only the patched objects are compiled). Builds use ccache when it is
# installed (CCACHE_DIR defaults to OUT_DIR/ccache) and the builder's cache
# (OUT_DIR/build-patch-cache, used with STUDY_FROM_SOURCE=1). Needs autoconf, automake, libevent-dev, libsasl2-dev, libssl-dev,
# perl.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
die() { echo "bench/servers/memcached-study.sh: $*" >&2; exit 1; }
case ${1:-} in -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac
summary=false
[ "${1:-}" = --summary ] && { summary=true; shift; }
out=$(mkdir -p "${1:-$root/build/servers/study}" && cd "${1:-$root/build/servers/study}" && pwd)
if $summary; then
	[ -s "$out/results.tsv" ] || die "$out/results.tsv missing: run the study first"
	# Outcomes, and refusals by their first reason's kind (the builder's wording,
	# docs/patch-builder.md "What is refused, and why").
	awk -F'\t' 'NR > 1 {
		o = $5
		if (o == "refused") {
			d = $6
			if (d ~ /changed its layout/) k = "a type changed its layout"
			else if (d ~ /vtable/) k = "a vtable changed"
			else if (d ~ /thread-local/) k = "new or changed thread-local data"
			else if (d ~ /init_array/) k = "new or changed static initialisation"
			else if (d ~ /read-only global/) k = "a read-only global changed"
			else if (d ~ /initial value changed|size changed/) k = "initial value or size of existing data"
			else if (d ~ /new translation unit/) k = "a new translation unit"
			else if (d ~ /shorter than the 5-byte/) k = "a function too short to redirect"
			else k = "other"
			o = o ": " k
		}
		n[o]++; total++
	} END {
		print "| outcome | commits | share |"
		print "|---|---|---|"
		for (o in n) printf "| %s | %d | %.1f %% |\n", o, n[o], 100 * n[o] / total | "sort"
		close("sort")
		printf "| total | %d | |\n", total
	}' "$out/results.tsv"
	exit 0
fi
build=$(cd "${BUILD:-$root/build/user}" && pwd)
builder=$build/tools/build-patch/atlas-build-patch
atlas=$build/tools/atlas/atlas
preload=$build/lib/preload/libatlas-preload.so
for f in "$builder" "$atlas" "$preload"; do [ -e "$f" ] || die "$f missing: build user space first (make, or BUILD=DIR)"; done
for t in autoconf automake perl; do command -v $t >/dev/null || die "$t missing: apt-get install autoconf automake perl"; done
# memcached's test suite: the tests of 1.6.18's t/ that pass against a server started by someone
# else (T_MEMD_USE_DAEMON), in any order, on an unpatched server (checked by hand: the others
# need server options, a fresh server's statistics, or extstore: binary.t fails 1 of 5447 on
# statistics, metaget.t waits for extstore). About 25 s.
tests=${STUDY_TESTS:-t/getset.t t/incrdecr.t t/cas.t t/flags.t t/noreply.t t/multiversioning.t t/touch.t t/getandtouch.t t/issue_3.t t/issue_41.t t/issue_70.t t/issue_152.t t/bogus-commands.t t/quit.t}

git_dir=${MEMCACHED_GIT:-}
if [ -z "$git_dir" ]; then
	for d in /work/.mirror/*memcached*/repo /work/.mirror/*memcached*; do
		if [ -d "$d" ] && git --git-dir="$d" rev-parse --verify -q "1.6.18^{commit}" >/dev/null 2>&1; then
			git_dir=$d
			break
		fi
	done
	[ -n "$git_dir" ] || die "no memcached history: set MEMCACHED_GIT (git clone --bare https://github.com/memcached/memcached DIR)"
fi
g() { git --git-dir="$git_dir" "$@"; }
from=${STUDY_FROM:-1.6.18}
to=${STUDY_TO:-$(g describe --tags --abbrev=0 "$(g rev-list --tags --max-count=1)")}
g rev-parse --verify -q "$from^{commit}" >/dev/null || die "$from is not in $git_dir"
g rev-parse --verify -q "$to^{commit}" >/dev/null || die "$to is not in $git_dir"
paths=(':(glob)*.c' ':(glob)*.h' ':!testapp.c')

results=$out/results.tsv
[ -s "$results" ] || printf 'commit\tdate\tsubject\tfiles\toutcome\tdetail\tseconds\n' >"$results"
mapfile -t commits < <(g rev-list --reverse --no-merges "$from..$to" -- "${paths[@]}")
echo "memcached study: ${#commits[@]} commits in $from..$to change the server's C sources; $(($(wc -l <"$results") - 1)) done in $results"

if command -v ccache >/dev/null && [ -d /usr/lib/ccache ]; then
	export PATH=/usr/lib/ccache:$PATH CCACHE_DIR=${CCACHE_DIR:-$out/ccache}
fi
export ATLAS_BUILD_PATCH_CACHE=${ATLAS_BUILD_PATCH_CACHE:-$out/build-patch-cache}
flags=$("$builder" --print-flags)
configure_opts="--enable-sasl --enable-tls"
src=$out/src       # the parent's tree, clean: the builder's --src
parent=$out/parent # the parent's build: the running binary
work=$out/work
mkdir -p "$out/logs" "$out/patches" "$out/autogen"

# configure and Makefile.in for a tree, generated once per configure.ac/Makefile.am/m4 (the
# history has no generated files; version.m4 is fixed so that config.h stays the same).
autogen() {
	echo 'm4_define([VERSION_NUMBER], [1.6.study])' >"$1/version.m4"
	local key
	key=$(cd "$1" && cat configure.ac Makefile.am version.m4 $(ls m4/* 2>/dev/null) | sha256sum | cut -c1-16)
	if [ ! -f "$out/autogen/$key.tar" ]; then
		# automake links its auxiliary files (config.sub, install-sh, ...) into the tree, as
		# it does in a user's bootstrapped tree: the builder copies the links as they are.
		(cd "$1" && find . \( -type f -o -type l \) | sort >../.before &&
			aclocal && autoheader && { automake --foreign --add-missing || automake --gnu --add-missing; } && autoconf &&
			rm -rf autom4te.cache &&
			find . \( -type f -o -type l \) | sort | comm -13 ../.before - | tar -cf "$out/autogen/$key.tar.tmp" -T -) >"$out/autogen/$key.log" 2>&1 ||
			return 1
		rm -f "$1/../.before"
		mv "$out/autogen/$key.tar.tmp" "$out/autogen/$key.tar"
	fi
	tar -xf "$out/autogen/$key.tar" -C "$1"
}

server_pid=
stop_server() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}
trap stop_server EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

limit=${STUDY_LIMIT:-0}
done_now=0
for c in "${commits[@]}"; do
	grep -q "^$c	" "$results" && continue
	[ "$limit" -gt 0 ] && [ "$done_now" -ge "$limit" ] && break
	done_now=$((done_now + 1))
	start=$(date +%s)
	short=${c:0:12}
	log=$out/logs/$short
	rm -rf "$log" && mkdir -p "$log"
	subject=$(g log -1 --format=%s "$c" | tr '\t' ' ')
	date=$(g log -1 --format=%cs "$c")
	files=$(g show --format= --name-only "$c" -- "${paths[@]}" | paste -sd,)
	echo "memcached study: $short $date $subject ($files)"
	outcome= detail=
	record() {
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$date" "$subject" "$files" "$outcome" \
			"$(printf '%s' "$detail" | tr '\t\n' '  ' | cut -c1-400)" "$(($(date +%s) - start))" >>"$results"
		echo "memcached study: $short: $outcome${detail:+: $detail} ($(($(date +%s) - start)) s)"
	}

	# The parent's tree and its build.
	rm -rf "$src" "$parent" "$work"
	mkdir -p "$src"
	g archive "$c^" | tar -x -C "$src"
	if ! autogen "$src"; then
		outcome=parent-failed detail="autoconf/automake failed on the parent's tree"
		record
		continue
	fi
	cp -a "$src" "$parent"
	ln -s memcached "$parent/memcached-debug" # the test suite looks for it; it talks to our server
	cflags="-O2 $flags -fno-omit-frame-pointer"
	# One configure cache for every build: most commits change no check, and configure's
	# link tests are most of a build's uncacheable compiler runs.
	configure="./configure --cache-file=$out/config.cache $configure_opts CFLAGS='$cflags' LDFLAGS='-pie -Wl,--build-id'"
	if ! (cd "$parent" && nice -n 19 sh -c "$configure" && nice -n 19 make -j2 memcached) >"$log/parent-build.log" 2>&1; then
		outcome=parent-failed detail="the parent does not build: $(grep -m1 -i 'error' "$log/parent-build.log" || tail -n1 "$log/parent-build.log")"
		record
		continue
	fi

	# The builder.
	# With the build files: a commit adding a source adds it to Makefile.am too (make then
	# reruns automake and configure, and the builder sees the new unit).
	g show --format= --no-color --no-ext-diff "$c" -- "${paths[@]}" Makefile.am configure.ac >"$log/fix.diff"
	rc=0
	if [ "${STUDY_FROM_SOURCE:-0}" = 1 ]; then
		source_args=(--src "$src" --configure "$configure >/dev/null")
	else
		source_args=(--original-build "$parent")
	fi
	nice -n 19 "$builder" "${source_args[@]}" --diff "$log/fix.diff" --target "$parent/memcached" \
		--build "make -j2 memcached" --work "$work" \
		--name "c-$short" -o "$out/patches/$short.patch.o" --json >"$log/builder.json" 2>"$log/builder.log" || rc=$?
	msg=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("; ".join(x["reason"] for x in r.get("refusals") or []) or r.get("message",""))' "$log/builder.json" 2>/dev/null || tail -n1 "$log/builder.log")
	case $rc in
	3) outcome=refused detail=$msg ;;
	4) outcome=no-change detail=$msg ;;
	5) outcome=mismatch detail=$msg ;;
	0) ;;
	*) outcome=builder-failed detail="exit $rc: $msg" ;;
	esac
	rm -rf "$work"
	if [ "$rc" != 0 ]; then
		record
		continue
	fi

	# Apply to the running parent, run the tests, revert.
	port=$(free_port)
	user=()
	[ "$(id -u)" = 0 ] && user=(-u nobody)
	LD_PRELOAD=$preload "$parent/memcached" -l 127.0.0.1 -p "$port" -U 0 -t 4 -m 64 "${user[@]}" >"$log/server.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 50); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
		sleep 0.1
	done
	if ! "$atlas" apply "$server_pid" "$out/patches/$short.patch.o" --mode global >"$log/apply.log" 2>&1; then
		outcome=apply-refused detail=$(tail -n1 "$log/apply.log")
		stop_server
		record
		continue
	fi
	failed=()
	for t in $tests; do
		[ -f "$parent/$t" ] || continue
		(cd "$parent" && T_MEMD_USE_DAEMON=127.0.0.1:$port timeout 120 perl "$t") >"$log/$(basename "$t").log" 2>&1 ||
			failed+=("$t")
	done
	"$atlas" revert "$server_pid" "c-$short" >"$log/revert.log" 2>&1 || failed+=(revert)
	kill -0 "$server_pid" 2>/dev/null || failed+=("server died")
	stop_server
	if [ ${#failed[@]} = 0 ]; then
		outcome=applied detail=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join(x["target"] for x in r.get("redirects") or []))' "$log/builder.json" 2>/dev/null)
	else
		outcome=applied-tests-fail detail="${failed[*]}"
	fi
	record
done
echo "memcached study: $(($(wc -l <"$results") - 1)) of ${#commits[@]} commits in $results"
awk -F'\t' 'NR > 1 { n[$5]++ } END { for (o in n) print "  " o ": " n[o] }' "$results"
