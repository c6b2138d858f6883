#!/usr/bin/env bash
# memcached 1.6.18-1 as Debian builds it, with one real upstream fix applied: the fix's commit
# (named in bench/servers/memcached-fixes.tsv) is read from a memcached git history, its diff of
# the server's top-level .c/.h files is applied to Debian's source tree, and the tree is built
# exactly as bench/servers/memcached.sh builds the unfixed 1.6.18-1.
#
#   bench/servers/memcached-fix.sh NAME [OUT_DIR]     (default build/servers)
#   bench/servers/memcached-fix.sh --list             (the fixes' names)
#
# MEMCACHED_GIT is the git directory of a memcached history (a bare clone or a .git); default:
# the first memcached history under /work/.mirror (the `fetch` tool's github:memcached/memcached).
# Without one: git clone --bare https://github.com/memcached/memcached /some/dir and set it.
#
# Output: OUT_DIR/memcached-1.6.18-1+NAME/memcached, its source tree OUT_DIR/src/1.6.18-1+NAME
# (with fix.diff, the diff that was applied, and patch.log). Hunks of the commit outside the
# server's top-level .c/.h files (tests in t/ and testapp.c, docs) are left out, and the script
# says which. The configure options and CFLAGS are those recorded by the unfixed build's
# config.status (built first by memcached.sh if missing), with its source directory replaced by
# this one in -ffile-prefix-map, so that the fixed and unfixed objects compare function by
# function. Nothing is rebuilt when the binary is newer than this script and was built from the
# commit the list names (OUT_DIR/memcached-1.6.18-1+NAME/commit).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
fixes=$here/memcached-fixes.tsv
base=1.6.18-1
die() { echo "bench/servers/memcached-fix.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
[ -f "$fixes" ] || die "$fixes missing: it lists the fixes (restore it from git)"
if [ "$1" = --list ]; then
	awk -F'\t' 'NR > 1 { print $1 }' "$fixes"
	exit 0
fi
case $1 in -h | --help) usage ;; esac
name=$1
row=$(awk -F'\t' -v n="$name" 'NR > 1 && $1 == n' "$fixes")
[ -n "$row" ] || die "no fix named '$name' in $fixes (names: $(awk -F'\t' 'NR > 1 { print $1 }' "$fixes" | paste -sd' '))"
commit=$(printf '%s\n' "$row" | cut -f2)

out=$(mkdir -p "${2:-$root/build/servers}" && cd "${2:-$root/build/servers}" && pwd)
bin=$out/memcached-$base+$name/memcached
stamp=$(dirname "$bin")/commit
if [ -x "$bin" ] && [ "$bin" -nt "${BASH_SOURCE[0]}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$commit" ]; then
	echo "memcached $base+$name: $bin (built)"
	exit 0
fi

# The history.
git_dir=${MEMCACHED_GIT:-}
if [ -z "$git_dir" ]; then
	for d in /work/.mirror/*memcached*/repo /work/.mirror/*memcached*; do
		if [ -d "$d" ] && git --git-dir="$d" rev-parse --verify -q "1.6.18^{commit}" >/dev/null 2>&1; then
			git_dir=$d
			break
		fi
	done
	[ -n "$git_dir" ] || die "no memcached history under /work/.mirror: set MEMCACHED_GIT to a memcached git directory (git clone --bare https://github.com/memcached/memcached DIR)"
fi
git --git-dir="$git_dir" rev-parse --git-dir >/dev/null 2>&1 ||
	die "$git_dir is not a git directory: set MEMCACHED_GIT to a memcached history (git clone --bare https://github.com/memcached/memcached DIR)"
git --git-dir="$git_dir" rev-parse --verify -q "$commit^{commit}" >/dev/null 2>&1 ||
	die "commit $commit ($name) is not in $git_dir: point MEMCACHED_GIT at a memcached history that has it (git fetch there)"

# The unfixed build gives the Debian source package and the configure options.
"$here/memcached.sh" "$out" >/dev/null || die "bench/servers/memcached.sh failed: run it alone to see why"
dsc=$out/fetch/$base/memcached_$base.dsc
base_src=$out/src/$base
[ -f "$dsc" ] || die "$dsc missing after memcached.sh: run bench/servers/memcached.sh $out"
[ -x "$base_src/config.status" ] || die "$base_src/config.status missing: delete $out/memcached-$base and rerun bench/servers/memcached.sh $out"
config=$("$base_src/config.status" --config)
case $config in *"-ffile-prefix-map=$base_src=."*) ;;
*) die "the unfixed build's options ($config) do not map $base_src: rebuild it with bench/servers/memcached.sh" ;;
esac

src=$out/src/$base+$name
rm -rf "$src"
mkdir -p "$out/src"
dpkg-source --no-check -x "$dsc" "$src" >/dev/null || die "dpkg-source -x $dsc failed"

# The server's part of the commit: top-level .c/.h files, minus the test program.
git --git-dir="$git_dir" show --format= --no-color --no-ext-diff "$commit" -- \
	':(glob)*.c' ':(glob)*.h' ':!testapp.c' >"$src/fix.diff"
[ -s "$src/fix.diff" ] || die "commit $commit ($name) changes no server .c/.h file"
applied=$(grep '^+++ b/' "$src/fix.diff" | sed 's|^+++ b/||' | sort)
skipped=$(git --git-dir="$git_dir" show --format= --name-only "$commit" | sort |
	comm -23 - <(printf '%s\n' "$applied") | paste -sd' ')
echo "memcached $base+$name: applying ${commit:0:12} to $(paste -sd' ' <<<"$applied")${skipped:+; left out (tests/docs, not server code): $skipped}"
(cd "$src" && patch -p1 --forward --fuzz=2 --no-backup-if-mismatch <fix.diff >patch.log 2>&1) ||
	die "the diff of $commit does not apply to Debian's $base ($src/patch.log): the fix needs porting, drop it from $fixes"
if grep -q 'with fuzz' "$src/patch.log"; then
	echo "memcached $base+$name: $(grep -c 'with fuzz' "$src/patch.log") hunk(s) applied with fuzz: check them in $src/patch.log"
fi

# Same configure options as the unfixed build, this tree in the prefix map.
eval "set -- $config"
args=()
for a; do args+=("${a//"-ffile-prefix-map=$base_src=."/"-ffile-prefix-map=$src=."}"); done
echo "memcached $base+$name: configuring and building in $src"
start=$(date +%s)
(cd "$src" && ./configure "${args[@]}" >"$src/configure.log" 2>&1 &&
	make -j"$(($(nproc) < 2 ? $(nproc) : 2))" memcached >"$src/make.log" 2>&1) ||
	die "building memcached $base+$name failed: see $src/configure.log and $src/make.log"
mkdir -p "$(dirname "$bin")"
cp "$src/memcached" "$bin"
echo "$commit" >"$stamp"
echo "memcached $base+$name: $bin ($(($(date +%s) - start)) s)"
