#!/usr/bin/env bash
# Create a git tree of the kernel source for developing the views series:
#
#   kernel/dev-tree.sh [--rebase] DIR
#
# DIR gets the installed Debian linux-source-6.12, committed as the upstream base (tag
# atlas-base), then the series applied with `git am`, one commit per patch (the patches add the
# new files too). Edit and commit there (one logical change per commit), then
# bring the result back with kernel/export-series.sh DIR. docs/building.md, "The patch series".
#
# --rebase is for a source version the series was not exported on (kernel/linux-source.version
# names the one it was): a patch that `git am` cannot apply exactly is applied with fuzz by
# patch(1) and committed with its own message, and the script lists those commits at the end.
# Review each (`git show`), fix what landed in the wrong place, build and test, then export: the
# exported patches then apply without fuzz. docs/building.md, "When the series stops applying".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rebase=0
if [ "${1:-}" = --rebase ]; then rebase=1; shift; fi
dir=${1:?usage: kernel/dev-tree.sh [--rebase] DIR}
die() { echo "kernel/dev-tree.sh: $*" >&2; exit 1; }
[ ! -e "$dir" ] || die "$dir exists; choose a new directory"
src_tar=/usr/src/linux-source-6.12.tar.xz
[ -r "$src_tar" ] || die "$src_tar missing: run 'make deps'"
version=$(dpkg-query -W -f='${Version}' linux-source-6.12)
tested=$(<"$root/kernel/linux-source.version")
if [ "$version" != "$tested" ] && [ $rebase = 0 ]; then
	echo "kernel/dev-tree.sh: note: the series was exported on linux-source-6.12 $tested, this is $version; if a patch does not apply, start again with --rebase" >&2
fi
commit() { git -c user.name=atlas -c user.email=atlas@localhost commit -q "$@"; }

mkdir -p "$dir"
tar -xf "$src_tar" -C "$dir" --strip-components=1
cd "$dir"
# Debian's tarball ignores everything at the top level ("/*" in .gitignore): drop that so git
# sees the tree. Only the development tree's base commit has this change, never a patch.
sed -i -e '/^\/\*$/d' -e '/^!\/debian\/$/d' .gitignore
git init -q
git add -A
# kernel/export-series.sh reads the version back from this subject.
commit -m "linux-source-6.12 $version"
git tag atlas-base
fuzzed=()
mapfile -t series < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$root/kernel/patches/series")
for p in "${series[@]}"; do
	git -c user.name=atlas -c user.email=atlas@localhost am -q "$root/kernel/patches/$p" >/dev/null 2>&1 && continue
	[ $rebase = 1 ] || die "$p does not apply to linux-source-6.12 $version (tested on $tested): start again with --rebase"
	# git am stopped with the patch's message and author in its state; apply the diff with
	# fuzz and let git am commit it.
	if ! patch -p1 --batch --forward --fuzz=3 --no-backup-if-mismatch --quiet <"$root/kernel/patches/$p"; then
		die "$p does not apply even with fuzz to linux-source-6.12 $version: resolve by hand in $dir (rejected hunks are in *.rej), then 'git add -A && git am --continue', and apply the remaining patches with git am"
	fi
	git add -A
	git -c user.name=atlas -c user.email=atlas@localhost am --continue -q
	fuzzed+=("$(git log -1 --format='%h %s')")
done
echo "kernel/dev-tree.sh: $dir ready ($(git rev-list --count atlas-base..HEAD) commits on linux-source-6.12 $version)"
if [ ${#fuzzed[@]} -gt 0 ]; then
	echo "kernel/dev-tree.sh: applied with fuzz, review each hunk's place (git show COMMIT):"
	printf '  %s\n' "${fuzzed[@]}"
	echo "then build and test, and export with kernel/export-series.sh $dir"
fi
