#!/bin/sh
# Runs inside the guest: every selftest named in /atlas/mm/expected.txt that is neither
# "unbuildable" nor "excluded", one after the other, each under a time limit, in two passes:
# as is, then inside a non-base view (in_view.so preloaded: the test's process creates a view
# and moves into it before main). One line per test and pass:
#   MMTEST <name> <pass|skip|fail> rc=<exit status> secs=<seconds>
#   MMVIEWTEST <name> <pass|skip|fail|noview> rc=<exit status> secs=<seconds>
# (kselftest convention: exit 0 pass, 4 skip, anything else fail; noview: the preload did not
# run, e.g. a static binary, so the second pass proved nothing).
cd /atlas/mm || exit 1
# No brk randomization (mmap and stack stay randomized): mremap_test maps a 40 MB "preamble"
# above its low source mapping without checking the range is free, and a randomized heap of a
# non-PIE test can lie there ("Failed to map dest preamble region: File exists"), which made it
# fail about 1 run in 10, outside views as inside (measured on the debug kernel).
echo 1 >/proc/sys/kernel/randomize_va_space
mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages
set -f # the comments in expected.txt are not globs
for pass in MMTEST MMVIEWTEST; do
	while read -r name outcome rest; do
		case "$name" in '#'* | '') continue ;; esac
		case "$outcome" in unbuildable | excluded) continue ;; esac
		# Huge pages reserved for the test: hugepages=N in expected.txt, else 64 (128 MiB).
		pages=64
		for word in $rest; do
			case "$word" in '#'*) break ;; hugepages=*) pages=${word#hugepages=} ;; esac
		done
		echo "$pages" >/proc/sys/vm/nr_hugepages
		start=$(date +%s)
		if [ $pass = MMTEST ]; then
			timeout 300 "./$name" >"/tmp/$name.out" 2>&1
		else
			LD_PRELOAD=/atlas/mm/in_view.so timeout 300 "./$name" >"/tmp/$name.out" 2>&1
		fi
		rc=$?
		case $rc in 0) got=pass ;; 4) got=skip ;; *) got=fail ;; esac
		if [ $pass = MMVIEWTEST ] && ! grep -q '^atlas-in-view: running in view' "/tmp/$name.out"; then
			got=noview
		fi
		echo "$pass $name $got rc=$rc secs=$(($(date +%s) - start))"
		# awk ends every line, also an output's last one without a newline.
		[ $got = pass ] || [ $got = skip ] || awk '{ print "#   " $0 }' "/tmp/$name.out" | tail -n 15
	done <expected.txt
done
echo "MMTEST-DONE"
