#!/usr/bin/env bash
# Runs the views kernel benchmarks in 4 GiB guests and prints their results; docs/benchmarks.md
# records them with this command:
#
#   make bench   (= bench/kernel/run.sh build/user build/kernel/bzImage build/kernel-stock/bzImage)
#
# mmview_bench runs on the release kernel; noview_bench runs on it and on the stock kernel (the
# same configuration without the series), one after the other, so their ratios compare runs
# on the same machine under the same load.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
user=${1:-$root/build/user}
kernel=${2:-$root/build/kernel/bzImage}
stock=${3:-$root/build/kernel-stock/bzImage}
for f in "$user/bench/kernel/mmview_bench" "$user/bench/kernel/noview_bench"; do
	[ -x "$f" ] || { echo "bench/kernel/run.sh: $f is missing: build user space first (make)" >&2; exit 1; }
done
for k in "$kernel" "$stock"; do
	[ -r "$k" ] || { echo "bench/kernel/run.sh: $k is missing (make kernel kernel-stock)" >&2; exit 1; }
done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { # KERNEL PROGRAM PREFIX
	"$root/guest/run" --kernel "$1" --cpus 2 --mem 4G --timeout 900 --quiet --log "$log" \
		--add "$user/bench/kernel/$2:/atlas/bin/$2" -- "$2" >/dev/null
	tr -d '\r' <"$log" | grep -E '^[a-z_0-9]+ [0-9.]+ [a-zA-Z]+$' | sed "s/^/$3/"
}
echo "# $(date -u +%F), 2 vCPUs, 4 GiB, QEMU TCG; kernels: $kernel, $stock"
run "$kernel" mmview_bench ""
for round in 1 2; do
	run "$kernel" noview_bench "series.r$round."
	run "$stock" noview_bench "stock.r$round."
done
