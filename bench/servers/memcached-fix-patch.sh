#!/usr/bin/env bash
# A live patch of the running 1.6.18-1 build from one real upstream fix, made by
# `atlas build-patch` (docs/patch-builder.md): the fix's diff (bench/servers/memcached-fix.sh
# extracts it from a memcached history, MEMCACHED_GIT) against a fresh copy of Debian's source,
# built with the configure options and flags of bench/servers/memcached.sh's build, compared
# with that build's binary.
#
#   bench/servers/memcached-fix-patch.sh NAME [OUT_DIR [BUILDER OPTIONS...]]   (default build/servers)
#
# The original build is cached in OUT_DIR/build-patch-cache (ATLAS_BUILD_PATCH_CACHE): the first
# fix builds the whole tree, the next ones only the objects their diff touches and the link.
# BUILDER OPTIONS go to atlas build-patch (e.g. --no-cache, --json).
#
# Output: OUT_DIR/patches/NAME.patch.o, a patch named NAME (revert it by that name). BUILD names
# the user-space build whose atlas-build-patch is used (default build/user).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
name=${1:?usage: bench/servers/memcached-fix-patch.sh NAME [OUT_DIR [BUILDER OPTIONS...]]}
out=$(mkdir -p "${2:-$root/build/servers}" && cd "${2:-$root/build/servers}" && pwd)
shift $(($# < 2 ? $# : 2))
builder=${BUILD:-$root/build/user}/tools/build-patch/atlas-build-patch
die() { echo "bench/servers/memcached-fix-patch.sh: $*" >&2; exit 1; }
[ -x "$builder" ] || die "$builder missing: build user space first (make)"
"$root/bench/servers/memcached.sh" "$out" >/dev/null || die "building memcached 1.6.18-1 failed"
"$root/bench/servers/memcached-fix.sh" "$name" "$out" >/dev/null ||
	die "getting fix $name failed (bench/servers/memcached-fix.sh $name; it needs MEMCACHED_GIT)"
diff=$out/src/1.6.18-1+$name/fix.diff
target=$out/memcached-1.6.18-1/memcached
[ -s "$diff" ] || die "$diff missing"
# The unfixed build's configure line, without the prefix map of its own source directory (the
# builder maps its copies itself).
config=$(sed -n "s/^ac_cs_config='\(.*\)'$/\1/p" "$out/src/1.6.18-1/config.status" |
	sed -e "s/'\\\\''/'/g" -e 's/ -ffile-prefix-map=[^ ]*=\.//')
[ -n "$config" ] || die "cannot read the configure options of $out/src/1.6.18-1/config.status"
# A pristine tree at a fixed path (the builder copies it; its cache of original builds is keyed
# by the tree's path and content, so every fix after the first reuses the original build).
pristine=$out/src/1.6.18-1-pristine
if [ ! -f "$pristine/.extracted" ] || [ "$out/fetch/1.6.18-1/memcached_1.6.18-1.dsc" -nt "$pristine/.extracted" ]; then
	rm -rf "$pristine"
	dpkg-source --no-check -x "$out"/fetch/1.6.18-1/memcached_1.6.18-1.dsc "$pristine" >/dev/null
	touch "$pristine/.extracted"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$diff" "$work/$name.diff"
mkdir -p "$out/patches"
export ATLAS_BUILD_PATCH_CACHE=${ATLAS_BUILD_PATCH_CACHE:-$out/build-patch-cache}
"$builder" --src "$pristine" --diff "$work/$name.diff" --target "$target" \
	--configure "./configure $config >/dev/null" --build "make -j$(nproc) memcached" \
	-o "$out/patches/$name.patch.o" "$@"
