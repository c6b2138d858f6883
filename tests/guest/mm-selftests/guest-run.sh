#!/bin/sh
# Runs inside the guest: every selftest named in /atlas/mm/expected.txt that is neither
# "unbuildable" nor "excluded", one after the other, each under a time limit, printing one line per test:
#   MMTEST <name> <pass|skip|fail> rc=<exit status> secs=<seconds>
# (kselftest convention: exit 0 pass, 4 skip, anything else fail).
cd /atlas/mm || exit 1
mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages
while read -r name outcome setting _; do
	case "$name" in '#'* | '') continue ;; esac
	case "$outcome" in unbuildable | excluded) continue ;; esac
	# Huge pages reserved for the test: hugepages=N in expected.txt, else 64 (128 MiB).
	case "$setting" in hugepages=*) pages=${setting#hugepages=} ;; *) pages=64 ;; esac
	echo "$pages" >/proc/sys/vm/nr_hugepages
	start=$(date +%s)
	timeout 300 "./$name" >"/tmp/$name.out" 2>&1
	rc=$?
	case $rc in 0) got=pass ;; 4) got=skip ;; *) got=fail ;; esac
	echo "MMTEST $name $got rc=$rc secs=$(($(date +%s) - start))"
	[ $got = fail ] && sed 's/^/#   /' "/tmp/$name.out" | tail -n 15
done <expected.txt
echo "MMTEST-DONE"
