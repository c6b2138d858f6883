#!/usr/bin/env bash
# make demo: wait-free live patching of a running multi-threaded program on the views kernel.
#
# Boots the release views kernel in QEMU and runs tests/guest/runtime/wait_free.cpp there: four
# worker threads call code_version() in a loop while the function is patched (A: returns 2),
# reverted, patched again, stacked (B on A: returns 3) and reverted, each time in wait-free
# mode (a new view is created, the patch is written into its private text, every worker moves
# itself into it at its next quiescence point, the new view becomes the base and the old one
# is deleted), then once in global mode (stop the world). No worker ever stops, and none mixes
# versions between two quiescence points.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
user=${1:-$root/build/user}
kernel=${2:-$root/build/kernel/bzImage}
dir=$user/tests/guest/runtime
for f in "$dir/guest_wait_free" "$dir/wait_free.v2.patch.o" "$dir/wait_free.v3.patch.o"; do
	[ -r "$f" ] || { echo "make demo: $f is missing; run 'make' first" >&2; exit 1; }
done
[ -r "$kernel" ] || { echo "make demo: $kernel is missing; run 'make kernel' first" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== atlas demo: wait-free live patching on the views kernel ($(basename "$kernel"), QEMU, 2 vCPUs)"
echo "== 4 threads run code_version() non-stop; the patcher applies, reverts and stacks patches."
status=0
"$root/guest/run" --kernel "$kernel" --cpus 2 --timeout 600 --quiet --log "$log" \
	--add "$dir/guest_wait_free:/atlas/bin/wait_free" \
	--add "$dir/wait_free.v2.patch.o:/atlas/a.patch.o" \
	--add "$dir/wait_free.v3.patch.o:/atlas/b.patch.o" \
	-- wait_free /atlas/a.patch.o /atlas/b.patch.o >/dev/null || status=$?
grep -E '^(ok|not ok|#) ' "$log" | sed -E 's/@[0-9a-f]{64}\/[0-9a-f]{40}//g'
if [ "$status" -eq 0 ]; then
	echo "== demo finished: every transition completed while the workers kept running"
else
	echo "== demo FAILED (guest/run exit $status); console log kept in $log" >&2
	trap - EXIT
fi
exit "$status"
