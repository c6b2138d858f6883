#!/usr/bin/env bash
# Build the upstream mm selftests (tools/testing/selftests/mm) of the kernel source that
# kernel/build.sh extracted (build/linux), against that kernel's exported uapi headers, into
# OUTDIR. Tests that do not compile in this source package are listed in expected.txt as
# "unbuildable" with the reason; any other build failure fails this script.
#   tests/guest/mm-selftests/build.sh OUTDIR KERNEL_HEADERS
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
out=${1:?usage: build.sh OUTDIR KERNEL_HEADERS}
headers=${2:?usage: build.sh OUTDIR KERNEL_HEADERS}
src=$root/build/linux/tools/testing/selftests/mm
[ -d "$src" ] || { echo "mm-selftests: $src missing: run 'make kernel-debug' first" >&2; exit 1; }
[ -d "$headers" ] || { echo "mm-selftests: $headers missing: run 'make kernel-debug' first" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd) # make runs in the source directory (-C): OUTPUT must be absolute
# -k: carry on past the known-unbuildable tests; which ones failed is checked below.
make -s -k -C "$src" -j"$(nproc)" OUTPUT="$out" KHDR_INCLUDES="-isystem $headers" >"$out/build.log" 2>&1 || true
missing=()
while read -r name outcome _; do
	case "$name" in '#'* | '') continue ;; esac
	[ "$outcome" = unbuildable ] && continue
	[ -x "$out/$name" ] || missing+=("$name")
done <"$root/tests/guest/mm-selftests/expected.txt"
if [ ${#missing[@]} -gt 0 ]; then
	echo "mm-selftests: these tests did not build: ${missing[*]} (see $out/build.log)" >&2
	exit 1
fi
# The preload of the second pass, which runs every test inside a non-base view (in_view.c).
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -I "$root/lib/include" \
	-o "$out/in_view.so" "$root/tests/guest/mm-selftests/in_view.c"
