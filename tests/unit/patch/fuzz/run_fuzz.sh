#!/bin/sh
# run_fuzz.sh FUZZER CORPUS_DIR SECONDS SEED...: runs the patch parser fuzzer for a bounded
# time over a fresh corpus seeded with valid patches; fails on any crash, leak or timeout.
set -eu
fuzzer=$1 corpus=$2 seconds=$3
shift 3
rm -rf "$corpus" "$corpus.artifacts"
mkdir -p "$corpus" "$corpus.artifacts"
for seed in "$@"; do
	cp "$seed" "$corpus/"
done
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$corpus.artifacts/" "$corpus"
