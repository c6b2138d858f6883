#!/usr/bin/env bash
# Runs the views kernel benchmark (mmview_bench.c) in a 4 GiB guest on the release kernel and
# prints its results; docs/benchmarks.md records them with this command:
#
#   make bench        (= bench/kernel/run.sh build/user build/kernel/bzImage)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
user=${1:-$root/build/user}
kernel=${2:-$root/build/kernel/bzImage}
[ -x "$user/bench/kernel/mmview_bench" ] || { echo "bench/kernel/run.sh: build user space first (make)" >&2; exit 1; }
[ -r "$kernel" ] || { echo "bench/kernel/run.sh: $kernel is missing (make kernel)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "mmview_bench on $(basename "$kernel") ($kernel), 2 vCPUs, 4 GiB, $(date -u +%F)"
"$root/guest/run" --kernel "$kernel" --cpus 2 --mem 4G --timeout 900 --quiet --log "$log" \
	--add "$user/bench/kernel/mmview_bench:/atlas/bin/mmview_bench" -- mmview_bench >/dev/null
grep -E '^[a-z_0-9]+ [0-9.]+ [a-zA-Z]+$' "$log"
