#!/usr/bin/env bash
# Build the reshaped series (PLAN.md, 40 patches) as commits in a development tree:
#
#   kernel/reshape/make-series.sh DEVTREE NEWTREE [LAST]
#
# DEVTREE: a development tree of the current series (kernel/dev-tree.sh; its HEAD is the final
# tree). NEWTREE: a new git worktree of DEVTREE from atlas-base, on a branch named after
# NEWTREE's last path component. For each
# new patch P = 1..LAST (default 40) it writes
#   - every upstream file as it is after P (upstream.py write: manifest_up.tsv, up-variants/),
#   - mm/mmview.c and include/linux/mmview.h after P (assemble.py --write: manifest_c/h.tsv and
#     the variants gen_variants.py writes from the final files),
#   - the other new files whole in the patch that adds them: the uapi header in 7, the selftest
#     in 39, Documentation/mm/mmview.rst in 40,
# and commits them with the message msgs/P.txt (subject line, blank line, body), or, while that
# file is missing, a placeholder subject naming P. It stops at the first patch it cannot write
# (a hunk without its variant). At the end (LAST = 40) it checks that the reshaped tree equals
# DEVTREE's HEAD (git diff --stat must be empty).
# Export the result with kernel/export-series.sh [--out DIR] NEWTREE.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dev=$(cd "${1:?usage: make-series.sh DEVTREE NEWTREE [LAST]}" && pwd)
new=${2:?usage: make-series.sh DEVTREE NEWTREE [LAST]}
last=${3:-40}
die() { echo "make-series.sh: $*" >&2; exit 1; }
[ ! -e "$new" ] || die "$new exists; choose a new directory"
git -C "$dev" rev-parse -q --verify atlas-base >/dev/null || die "$dev has no tag atlas-base"
final=$(git -C "$dev" rev-parse HEAD)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$dev" show "$final:mm/mmview.c" >"$tmp/final.c"
git -C "$dev" show "$final:include/linux/mmview.h" >"$tmp/final.h"
python3 "$here/gen_variants.py" "$tmp/final.c" "$tmp/final.h" "$here/variants" >/dev/null
python3 "$here/assemble.py" "$tmp/final.c" "$tmp/final.h" --final
python3 "$here/upstream.py" final "$dev" "$final"

branch=$(basename "$new")
git -C "$dev" worktree add -q -b "$branch" "$new" atlas-base
new=$(cd "$new" && pwd)
# A fixed date, so that the exported patches change only where their contents do.
commit() { GIT_AUTHOR_DATE="2026-12-07T00:00:00Z" GIT_COMMITTER_DATE="2026-12-07T00:00:00Z" git -C "$new" -c user.name="atlas developer" -c user.email=dev@atlas.invalid commit -q "$@"; }

for ((P = 1; P <= last; P++)); do
	python3 "$here/upstream.py" write "$dev" "$P" "$new" "$final" || die "patch $P: an upstream file cannot be written (above)"
	if [ "$P" -ge 7 ]; then
		python3 "$here/assemble.py" "$tmp/final.c" "$tmp/final.h" "$P" --write "$new" >/dev/null
		git -C "$dev" show "$final:include/uapi/linux/mmview.h" >"$new/include/uapi/linux/mmview.h"
	fi
	[ "$P" -lt 39 ] || git -C "$dev" show "$final:tools/testing/selftests/mm/mmview.c" >"$new/tools/testing/selftests/mm/mmview.c"
	[ "$P" -lt 40 ] || git -C "$dev" show "$final:Documentation/mm/mmview.rst" >"$new/Documentation/mm/mmview.rst"
	git -C "$new" add -A
	if [ -f "$here/msgs/$P.txt" ]; then
		commit -F "$here/msgs/$P.txt"
	else
		commit --allow-empty -m "reshape: new patch $P (message: kernel/reshape/msgs/$P.txt)"
	fi
	echo "patch $P: $(git -C "$new" diff --shortstat HEAD^ HEAD)"
done

if [ "$last" = 40 ]; then
	diff=$(git -C "$new" diff --stat "$final" HEAD)
	[ -z "$diff" ] || die "the reshaped tree differs from $dev's HEAD:
$diff"
	echo "make-series.sh: $new (branch $branch) equals $dev's HEAD"
fi
