#!/usr/bin/env bash
# Export the views series from a development tree made by kernel/dev-tree.sh:
#
#   kernel/export-series.sh [--out OUT] DIR
#
# Every commit in atlas-base..HEAD becomes one patch in kernel/patches/ (git format-patch; a new
# file is added by the patch of the commit that adds it), listed in order in
# kernel/patches/series, with a cover letter (0000-cover-letter.patch, its text from
# kernel/cover-letter.txt); the source version of atlas-base goes to kernel/linux-source.version
# (the version the series is tested on, which `make deps` installs). The new uapi headers are
# also copied to kernel/src/include/uapi/, for user space that builds against them
# (tests/unit/CMakeLists.txt); kernel/build.sh does not use that copy.
# --out OUT writes OUT/patches/, OUT/src/ and OUT/linux-source.version instead of kernel/'s
# (e.g. to compare a new series with the current one).
# Afterwards it checks everything with checkpatch.pl --strict and the kernel-doc of every C file
# the series touches with kernel-doc -Wall, and says what it found.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/kernel
while [ $# -gt 1 ]; do
	case "$1" in
	--out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift 2 ;;
	*) break ;;
	esac
done
dir=$(cd "${1:?usage: kernel/export-series.sh [--out OUT] DIR}" && pwd)
cd "$dir"
git rev-parse -q --verify atlas-base >/dev/null || { echo "kernel/export-series.sh: $dir has no tag atlas-base (make it with kernel/dev-tree.sh)" >&2; exit 1; }
base_version=$(git log -1 --format=%s atlas-base | sed -n 's/^linux-source-6\.12 //p')
[ -n "$base_version" ] || { echo "kernel/export-series.sh: atlas-base's subject does not name the linux-source-6.12 version (make the tree with kernel/dev-tree.sh)" >&2; exit 1; }
[ -z "$(git status --porcelain)" ] || { echo "kernel/export-series.sh: $dir has uncommitted changes; commit them first" >&2; exit 1; }

mapfile -t new_files < <(git diff --name-only --diff-filter=A atlas-base HEAD)
rm -rf "$out/src"
for f in "${new_files[@]}"; do
	case "$f" in include/uapi/*) ;; *) continue ;; esac
	mkdir -p "$out/src/$(dirname "$f")"
	cp "$f" "$out/src/$f"
done

mkdir -p "$out/patches"
rm -f "$out/patches/"*.patch
git -c user.name="atlas developer" -c user.email=dev@atlas.invalid format-patch -q --no-signature --zero-commit --cover-letter -o "$out/patches" atlas-base..HEAD
# The cover letter's subject and text: kernel/cover-letter.txt (first line, then the rest).
python3 - "$out/patches/0000-cover-letter.patch" "$root/kernel/cover-letter.txt" <<'PY'
import sys
letter, text = sys.argv[1], open(sys.argv[2]).read().split('\n', 1)
body = open(letter).read()
body = body.replace('*** SUBJECT HERE ***', text[0]).replace('*** BLURB HERE ***', text[1].strip('\n'))
open(letter, 'w').write(body)
PY
{
	echo "# atlas kernel patch series, applied in this order by kernel/build.sh (patch -p1, no fuzz)."
	echo "# Exported from a development tree by kernel/export-series.sh; each new file is added by the patch that first needs it."
	(cd "$out/patches" && ls -1 ./*.patch 2>/dev/null | sed 's|^\./||' | grep -v '^0000-cover-letter')
} >"$out/patches/series"

echo "$base_version" >"$out/linux-source.version"

echo "exported $(grep -c '\.patch$' "$out/patches/series") patches (${#new_files[@]} new files in them) to ${out#"$root"/}/patches, tested-on version $base_version"
# checkpatch's SPDX check runs python3 with the ply module: Debian's python3-ply, so Debian's
# python3 first (a python3 of pyenv or a venv lacks it).
export PATH=/usr/bin:$PATH
status=0
for p in "$out"/patches/*.patch; do
	[ -e "$p" ] || continue
	case "$p" in */0000-cover-letter.patch) continue ;; esac
	scripts/checkpatch.pl --strict -q "$p" || status=1
done
for f in "${new_files[@]}"; do
	case "$f" in *.c | *.h) scripts/checkpatch.pl --strict -q -f "$f" || status=1 ;; esac
done
[ $status = 0 ] && echo "checkpatch --strict: clean" || echo "checkpatch --strict: see above"
# kernel-doc of every C file the series touches (tools/ has none), and with -Wall of the files
# it adds (upstream files have -Wall warnings of their own).
mapfile -t c_files < <(git diff --name-only atlas-base HEAD -- '*.c' '*.h' ':(exclude)tools/**')
mapfile -t new_c_files < <(git diff --name-only --diff-filter=A atlas-base HEAD -- '*.c' '*.h' ':(exclude)tools/**')
doc_warnings=$( {
	scripts/kernel-doc -none "${c_files[@]}"
	scripts/kernel-doc -none -Wall "${new_c_files[@]}"
} 2>&1)
if [ -z "$doc_warnings" ]; then
	echo "kernel-doc: clean (${#c_files[@]} files; -Wall on the ${#new_c_files[@]} new ones)"
else
	echo "$doc_warnings"
	echo "kernel-doc: see above"
	status=1
fi
exit $status
