#!/usr/bin/env bash
# Create a git tree of the kernel source for developing the views series:
#
#   kernel/dev-tree.sh DIR
#
# DIR gets Debian's linux-source-6.12, committed as the upstream base (tag atlas-base), then one
# commit adding the new files of kernel/src/, then the series applied with `git am`, one commit
# per patch. Edit and commit there (one logical change per commit), then bring the result back
# with kernel/export-series.sh DIR. docs/building.md, "The patch series".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:?usage: kernel/dev-tree.sh DIR}
[ ! -e "$dir" ] || { echo "kernel/dev-tree.sh: $dir exists; choose a new directory" >&2; exit 1; }
src_tar=/usr/src/linux-source-6.12.tar.xz
[ -r "$src_tar" ] || { echo "kernel/dev-tree.sh: $src_tar missing: run 'make deps'" >&2; exit 1; }

mkdir -p "$dir"
tar -xf "$src_tar" -C "$dir" --strip-components=1
cd "$dir"
# Debian's tarball ignores everything at the top level ("/*" in .gitignore): drop that so git
# sees the tree. Only the development tree's base commit has this change, never a patch.
sed -i -e '/^\/\*$/d' -e '/^!\/debian\/$/d' .gitignore
git init -q
git add -A
git -c user.name=atlas -c user.email=atlas@localhost commit -qm "linux-source-6.12 $(dpkg-query -W -f='${Version}' linux-source-6.12)"
git tag atlas-base
if [ -d "$root/kernel/src" ] && [ -n "$(ls -A "$root/kernel/src")" ]; then
	cp -r "$root/kernel/src/." .
	git add -A
	git -c user.name=atlas -c user.email=atlas@localhost commit -qm "atlas: new files (kernel/src)"
fi
sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$root/kernel/patches/series" | while read -r p; do
	git am -q "$root/kernel/patches/$p"
done
echo "kernel/dev-tree.sh: $dir ready ($(git rev-list --count atlas-base..HEAD) commits on atlas-base)"
