#!/usr/bin/env bash
# A live patch of the running slapd 2.5.13+dfsg-5 (bench/servers/slapd.sh) from one real
# upstream fix of bench/servers/slapd-fixes.tsv, made by `atlas build-patch`
# (docs/patch-builder.md): the fix's diff (bench/servers/slapd-fix.sh extracts it from an
# OpenLDAP history, OPENLDAP_GIT) against a fresh copy of Debian's source, configured and built
# as slapd.sh builds it, compared with that build's binary.
#
#   bench/servers/slapd-fix-patch.sh NAME [OUT_DIR [BUILDER OPTIONS...]]   (default build/servers)
#
# The original build is cached in OUT_DIR/build-patch-cache (ATLAS_BUILD_PATCH_CACHE): the first
# fix builds slapd and its libraries (about 2 minutes on 2 cores), the next ones only the objects
# their diff touches and the link. BUILDER OPTIONS go to atlas build-patch (e.g. --json).
#
# Output: OUT_DIR/patches/slapd-NAME.patch.o, a patch named NAME (revert it by that name).
# BUILD names the user-space build whose atlas-build-patch is used (default build/user).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:?usage: bench/servers/slapd-fix-patch.sh NAME [OUT_DIR [BUILDER OPTIONS...]]}
out=$(mkdir -p "${2:-$root/build/servers}" && cd "${2:-$root/build/servers}" && pwd)
shift $(($# < 2 ? $# : 2))
version=2.5.13+dfsg-5
builder=${BUILD:-$root/build/user}/tools/build-patch/atlas-build-patch
die() { echo "bench/servers/slapd-fix-patch.sh: $*" >&2; exit 1; }
[ -x "$builder" ] || die "$builder missing: build user space first (make)"
"$here/slapd.sh" "$out" >/dev/null || die "building slapd $version failed (bench/servers/slapd.sh)"
"$here/slapd-fix.sh" "$name" "$out" >/dev/null ||
	die "getting fix $name failed (bench/servers/slapd-fix.sh $name; it needs OPENLDAP_GIT)"
diff=$out/src/openldap-$version+$name/fix.diff
target=$out/slapd-$version/slapd
[ -s "$diff" ] || die "$diff missing"
# slapd.sh's configure options and flags, read from the script so that they cannot drift; the
# builder maps its copy's directory itself (no -ffile-prefix-map here).
eval "$(sed -n '/^patchable_cflags=/p; /^configure_opts=(/,/)$/p' "$here/slapd.sh")"
[ ${#configure_opts[@]} -gt 0 ] || die "cannot read the configure options of $here/slapd.sh"
configure="./configure ${configure_opts[*]} CFLAGS='$patchable_cflags' LDFLAGS='-pie -Wl,--build-id' >/dev/null && make depend >/dev/null"
build="make -j$(nproc) -C include >/dev/null && make -j$(nproc) -C libraries >/dev/null && make -j$(nproc) -C servers/slapd >/dev/null"
# A pristine tree at a fixed path (the builder copies it; its cache of original builds is keyed
# by the tree's path and content, so every fix after the first reuses the original build).
dsc=$out/fetch/openldap-$version/openldap_$version.dsc
pristine=$out/src/openldap-$version-pristine
if [ ! -f "$pristine/.extracted" ] || [ "$dsc" -nt "$pristine/.extracted" ]; then
	rm -rf "$pristine"
	dpkg-source --no-check -x "$dsc" "$pristine" >/dev/null
	# The builder copies a symbolic link of the tree to the path of the link's target, which
	# fails here: "cannot copy .../tests/data/homedir/skel/directory ...: Too many levels of
	# symbolic links" (skel/symlink -> directory), "cannot copy .../servers/lloadd/design.md to
	# <copy>/doc/devel/lloadd/design.md: File exists". The tree's 4 links are test data and
	# lloadd's (the load balancer, not built): slapd's build reads none of them, so they go.
	find "$pristine" -type l -delete
	touch "$pristine/.extracted"
fi
# The date slapd.sh builds with (SOURCE_DATE_EPOCH: Versionstr stays the same in every build).
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$pristine/debian/changelog" -STimestamp)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$diff" "$work/$name.diff"
mkdir -p "$out/patches"
export ATLAS_BUILD_PATCH_CACHE=${ATLAS_BUILD_PATCH_CACHE:-$out/build-patch-cache}
"$builder" --src "$pristine" --diff "$work/$name.diff" --target "$target" \
	--configure "$configure" --build "$build" -o "$out/patches/slapd-$name.patch.o" "$@"
