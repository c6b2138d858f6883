#!/usr/bin/env bash
# slapd 2.5.13+dfsg-5 (bench/servers/slapd.sh) with one real upstream fix applied: the fix's
# commit (named in bench/servers/slapd-fixes.tsv) is read from an OpenLDAP git history, its diff
# of the files the list names is applied to a fresh copy of Debian's source tree, and the tree
# is built exactly as slapd.sh builds the unfixed server.
#
#   bench/servers/slapd-fix.sh NAME [OUT_DIR]     (default build/servers)
#   bench/servers/slapd-fix.sh --list             (the fixes' names)
#
# OPENLDAP_GIT is the git directory of an OpenLDAP history (a bare clone or a .git); default:
# the first one under /work/.mirror that has the tag OPENLDAP_REL_ENG_2_5_13 (the `fetch`
# tool's github:openldap/openldap). Without one:
#   git clone --bare https://git.openldap.org/openldap/openldap.git /some/dir
# and set OPENLDAP_GIT=/some/dir.
#
# Output: OUT_DIR/slapd-2.5.13+dfsg-5+NAME/slapd, its source tree
# OUT_DIR/src/openldap-2.5.13+dfsg-5+NAME (with fix.diff, the diff that was applied, and
# patch.log). Hunks of the commit in other files (other backends, tests) are left out, and the
# script says which. Nothing is rebuilt when the binary is newer than this script and was built
# from the commit the list names (OUT_DIR/slapd-2.5.13+dfsg-5+NAME/commit).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
fixes=$here/slapd-fixes.tsv
version=2.5.13+dfsg-5
die() { echo "bench/servers/slapd-fix.sh: $*" >&2; exit 1; }
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
read -r -a files <<<"$(printf '%s\n' "$row" | cut -f4)"

out=$(mkdir -p "${2:-$root/build/servers}" && cd "${2:-$root/build/servers}" && pwd)
bin=$out/slapd-$version+$name/slapd
stamp=$(dirname "$bin")/commit
if [ -x "$bin" ] && [ "$bin" -nt "${BASH_SOURCE[0]}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$commit" ]; then
	echo "slapd $version+$name: $bin (built)"
	exit 0
fi

# The history.
git_dir=${OPENLDAP_GIT:-}
if [ -z "$git_dir" ]; then
	for d in /work/.mirror/*openldap*/repo /work/.mirror/*openldap*; do
		if [ -d "$d" ] && git --git-dir="$d" rev-parse --verify -q "OPENLDAP_REL_ENG_2_5_13^{commit}" >/dev/null 2>&1; then
			git_dir=$d
			break
		fi
	done
	[ -n "$git_dir" ] || die "no OpenLDAP history under /work/.mirror: set OPENLDAP_GIT to an OpenLDAP git directory (git clone --bare https://git.openldap.org/openldap/openldap.git DIR)"
fi
git --git-dir="$git_dir" rev-parse --git-dir >/dev/null 2>&1 ||
	die "$git_dir is not a git directory: set OPENLDAP_GIT to an OpenLDAP history"
git --git-dir="$git_dir" rev-parse --verify -q "$commit^{commit}" >/dev/null 2>&1 ||
	die "commit $commit ($name) is not in $git_dir: point OPENLDAP_GIT at an OpenLDAP history that has it (git fetch there)"

# The unfixed build fetches Debian's source package.
"$here/slapd.sh" "$out" >/dev/null || die "bench/servers/slapd.sh failed: run it alone to see why"
dsc=$out/fetch/openldap-$version/openldap_$version.dsc
[ -f "$dsc" ] || die "$dsc missing after slapd.sh: run bench/servers/slapd.sh $out"

src=$out/src/openldap-$version+$name
rm -rf "$src"
mkdir -p "$out/src"
dpkg-source --no-check -x "$dsc" "$src" >/dev/null || die "dpkg-source -x $dsc failed"
git --git-dir="$git_dir" show --format= --no-color --no-ext-diff "$commit" -- "${files[@]}" >"$src/fix.diff"
[ -s "$src/fix.diff" ] || die "commit $commit ($name) changes none of ${files[*]}"
skipped=$(git --git-dir="$git_dir" show --format= --name-only "$commit" | sort |
	comm -23 - <(printf '%s\n' "${files[@]}" | sort) | paste -sd' ')
echo "slapd $version+$name: applying ${commit:0:12} to ${files[*]}${skipped:+; left out (not built into this slapd): $skipped}"
(cd "$src" && patch -p1 --forward --fuzz=2 --no-backup-if-mismatch <fix.diff >patch.log 2>&1) ||
	die "the diff of $commit does not apply to Debian's $version ($src/patch.log): the fix needs porting, drop it from $fixes"
if grep -q 'with fuzz' "$src/patch.log"; then
	echo "slapd $version+$name: $(grep -c 'with fuzz' "$src/patch.log") hunk(s) applied with fuzz: check them in $src/patch.log"
fi
SLAPD_SRC=$src SLAPD_SUFFIX=+$name "$here/slapd.sh" "$out" ||
	die "building slapd $version+$name failed (see the logs in $src)"
echo "$commit" >"$stamp"
