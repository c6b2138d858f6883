#!/usr/bin/env bash
# Checks every fix of bench/servers/memcached-fixes.tsv both ways: builds 1.6.18-1 with the fix
# (memcached-fix.sh) and runs the fix's reproducer against the unfixed build (must show the
# bug: exit 1) and the fixed build (must behave as fixed: exit 0). Prints one table row per
# fix and a closing line; fails if any row is not "bug / fixed".
#
#   bench/servers/repro/verify.sh [OUT_DIR] [NAME...]     (default build/servers, every fix)
#
# Needs a memcached history for the diffs (MEMCACHED_GIT, see memcached-fix.sh). Takes about a
# minute for the reproducers, plus ~10 s per fix build on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
servers=$(cd "$here/.." && pwd)
root=$(cd "$servers/../.." && pwd)
out=${1:-$root/build/servers}
[ $# -gt 0 ] && shift
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <("$servers/memcached-fix.sh" --list)
unfixed=$out/memcached-1.6.18-1/memcached
"$servers/memcached.sh" "$out" >/dev/null ||
	{ echo "verify: bench/servers/memcached.sh failed: run it alone to see why" >&2; exit 1; }
word() { case $1 in 0) echo fixed ;; 1) echo bug ;; *) echo "error($1)" ;; esac; }
bad=0
printf '| fix | unfixed 1.6.18-1 | 1.6.18-1 + fix |\n|---|---|---|\n'
for name in "${names[@]}"; do
	log=$(mktemp)
	if ! "$servers/memcached-fix.sh" "$name" "$out" >"$log" 2>&1; then
		echo "verify: building $name failed: $(tail -n1 "$log")" >&2
		rm -f "$log"
		bad=$((bad + 1))
		continue
	fi
	rm -f "$log"
	set +e
	a=$("$here/run.sh" "$name" "$unfixed"); ra=$?
	b=$("$here/run.sh" "$name" "$out/memcached-1.6.18-1+$name/memcached"); rb=$?
	set -e
	printf '| %s | %s | %s |\n' "$name" "$(word $ra)" "$(word $rb)"
	echo "    unfixed: $a" >&2
	echo "    fixed:   $b" >&2
	[ $ra -eq 1 ] && [ $rb -eq 0 ] || bad=$((bad + 1))
done
echo "verify: $((${#names[@]} - bad)) of ${#names[@]} reproducers show the bug unfixed and pass fixed"
[ $bad -eq 0 ]
