#!/usr/bin/env bash
# Runs one reproducer of bench/servers/memcached-fixes.tsv against a memcached binary.
#
#   bench/servers/repro/run.sh NAME BINARY
#   bench/servers/repro/run.sh --list
#
# Starts BINARY on a free loopback port (as nobody when run as root), runs case NAME and prints
# one line. Exit status: 0 the server behaves as fixed upstream, 1 it shows the bug, 2 the case
# could not run (harness error; the line says what). The cases are in memcached_repro.py.
# Example, both ways:
#   bench/servers/repro/run.sh me-exptime build/servers/memcached-1.6.18-1/memcached              # 1
#   bench/servers/repro/run.sh me-exptime build/servers/memcached-1.6.18-1+me-exptime/memcached   # 0
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -eq 1 ] && [ "$1" = --list ]; then
	exec python3 "$here/memcached_repro.py" --list
fi
if [ $# -ne 2 ]; then
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
fi
command -v python3 >/dev/null || { echo "$1: harness error: python3 missing: apt-get install python3"; exit 2; }
exec python3 "$here/memcached_repro.py" "$1" "$2"
